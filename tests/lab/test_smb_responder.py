"""The lab's SMB2 NEGOTIATE responder, byte by byte against [MS-SMB2] 2.2.4."""

from __future__ import annotations

import asyncio
import struct
import uuid

from lab.servers.smb import Smb2Responder
from probe.transport.smb2 import build_negotiate_request

HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")
RESPONSE = struct.Struct("<HHHH16sIIIIQQHHI")
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_NOT_SUPPORTED = 0xC00000BB


def request(dialects: list[int], contexts: list[tuple[int, bytes]] | None = None, message_id: int = 0) -> bytes:
    """A NEGOTIATE built here by hand, independently of probe/transport/smb2.py."""
    header = HEADER.pack(b"\xfeSMB", 64, 0, 0, 0, 1, 0, 0, message_id, 0, 0, 0, bytes(16))
    dialect_bytes = struct.pack(f"<{len(dialects)}H", *dialects)
    end = 64 + 36 + len(dialect_bytes)
    pad = bytes(-end % 8)
    blob = b""
    for ctype, data in contexts or []:
        blob += bytes(-len(blob) % 8) + struct.pack("<HHI", ctype, len(data), 0) + data
    offset = end + len(pad) if contexts else 0
    body = struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0, bytes(16), offset, len(contexts or []), 0)
    message = header + body + dialect_bytes + (pad + blob if contexts else b"")
    return struct.pack(">I", len(message)) + message


def preauth() -> tuple[int, bytes]:
    return (1, struct.pack("<HHH", 1, 32, 1) + bytes(32))


def ciphers(*ids: int) -> tuple[int, bytes]:
    return (2, struct.pack(f"<H{len(ids)}H", len(ids), *ids))


async def exchange(responder: Smb2Responder, data: bytes) -> tuple[bytes, bytes]:
    """(the reply message without NetBIOS framing, or b"" for none; what followed it: EOF is b"")."""
    reader, writer = await asyncio.open_connection(*responder.address)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4), 2.0)
        if not head:
            return b"", b""
        assert head[0] == 0
        message = await asyncio.wait_for(reader.readexactly(int.from_bytes(head[1:], "big")), 2.0)
        rest = await asyncio.wait_for(reader.read(), 2.0)
        return message, rest
    finally:
        writer.close()


def contexts_of(message: bytes, offset: int, count: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    pos = offset
    for _ in range(count):
        assert pos % 8 == 0, "negotiate contexts must be 8-byte aligned"
        ctype, length, _ = struct.unpack_from("<HHI", message, pos)
        found[ctype] = message[pos + 8 : pos + 8 + length]
        pos += 8 + length
        pos += -pos % 8
    return found


async def test_answers_the_probe_request_with_311_and_its_contexts() -> None:
    async with Smb2Responder() as responder:
        message, rest = await exchange(responder, build_negotiate_request(bytes(16), bytes(32), message_id=7))
    assert rest == b"", "the responder closes after its answer"
    magic, size, _, status, command, credits, flags, _, message_id, *_ = HEADER.unpack_from(message)
    assert (magic, size, status, command, message_id) == (b"\xfeSMB", 64, 0, 0, 7)
    assert flags & 1, "SMB2_FLAGS_SERVER_TO_REDIR"
    assert credits >= 1
    (structure_size, mode, dialect, ctx_count, guid, *_rest) = RESPONSE.unpack_from(message, 64)
    sec_offset, sec_length, ctx_offset = _rest[-3:]
    assert (structure_size, dialect, mode) == (65, 0x0311, 1)
    assert guid == responder.server_guid.bytes_le
    assert sec_offset >= 128 and sec_length == 0
    found = contexts_of(message, ctx_offset, ctx_count)
    assert set(found) == {1, 2, 8}
    hash_count, salt_length, hash_id = struct.unpack_from("<HHH", found[1])
    assert (hash_count, salt_length, hash_id, len(found[1])) == (1, 32, 1, 38)
    assert struct.unpack("<HH", found[2]) == (1, 2), "one cipher: AES-128-GCM, the client's first"
    assert struct.unpack("<HH", found[8]) == (1, 2), "one signing algorithm: AES-GMAC"
    assert responder.negotiated == [0x0311]


async def test_picks_the_highest_common_dialect_without_contexts_below_311() -> None:
    async with Smb2Responder() as responder:
        message, _ = await exchange(responder, request([0x0202, 0x0300, 0x0210]))
    _, _, dialect, ctx_count, *_rest = RESPONSE.unpack_from(message, 64)
    assert dialect == 0x0300
    assert ctx_count == 0 and _rest[-1] == 0


async def test_server_side_dialect_limit_and_signing_required() -> None:
    async with Smb2Responder(dialects=[0x0202, 0x0210], signing_required=True) as responder:
        message, _ = await exchange(responder, request([0x0202, 0x0210, 0x0300, 0x0311], [preauth()]))
    _, mode, dialect, *_ = RESPONSE.unpack_from(message, 64)
    assert dialect == 0x0210
    assert mode == 0x3, "signing enabled and required"


async def test_chooses_ccm_when_the_client_offers_only_ccm() -> None:
    async with Smb2Responder() as responder:
        message, _ = await exchange(responder, request([0x0311], [preauth(), ciphers(1)]))
    *_, ctx_offset = RESPONSE.unpack_from(message, 64)
    ctx_count = RESPONSE.unpack_from(message, 64)[3]
    assert struct.unpack("<HH", contexts_of(message, ctx_offset, ctx_count)[2]) == (1, 1)


async def test_311_without_preauth_is_invalid_parameter() -> None:
    async with Smb2Responder() as responder:
        message, _ = await exchange(responder, request([0x0311], [ciphers(2)]))
    (status,) = struct.unpack_from("<I", message, 8)
    assert status == STATUS_INVALID_PARAMETER
    assert struct.unpack_from("<H", message, 64) == (9,), "an SMB2 ERROR response"
    assert responder.negotiated == []


async def test_no_common_dialect_is_not_supported() -> None:
    async with Smb2Responder(dialects=[0x0202]) as responder:
        message, _ = await exchange(responder, request([0x0300, 0x0302]))
    (status,) = struct.unpack_from("<I", message, 8)
    assert status == STATUS_NOT_SUPPORTED


async def test_hangs_up_on_anything_but_smb2() -> None:
    async with Smb2Responder() as responder:
        message, rest = await exchange(responder, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (message, rest) == (b"", b"")


async def test_fixed_guid_and_port_reuse_after_stop() -> None:
    guid = uuid.UUID("12345678-1234-5678-9abc-def012345678")
    responder = Smb2Responder(server_guid=guid)
    await responder.start()
    host, port = responder.address
    assert port != 0
    await responder.stop()
    async with Smb2Responder(host, port, server_guid=guid) as again:
        message, _ = await exchange(again, request([0x0202]))
    assert RESPONSE.unpack_from(message, 64)[4] == guid.bytes_le
