"""SMB2 NEGOTIATE on the wire ([MS-SMB2] 2.2.3, 2.2.4): the request a Linux CIFS client sends, and
the server's answer read and checked as far as a NEGOTIATE goes. Nothing past NEGOTIATE is spoken.

The request offers 2.0.2 to 3.1.1 and, for 3.1.1, the ciphers and signing algorithms the caller
chooses, plus SIGNING_CAPABILITIES with AES-GMAC, AES-CMAC and HMAC-SHA256 ([MS-SMB2] 2.2.3.1.7).
The server must pick one of the offered ciphers or answer cipher 0, "no common cipher" ([MS-SMB2]
3.3.5.4; the Linux client's ``decode_encrypt_ctx``: "server is allowed to return 0 to indicate no
supported cipher"). What comes back instead of a usable answer raises an SmbFailure (probe.errors).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from probe.deadline import Deadline
from probe.errors import Closed, NoCommonDialect, NotSmb

DEFAULT_PORT = 445

SMB2_MAGIC = b"\xfeSMB"
SMB1_MAGIC = b"\xffSMB"
SMB2_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")  # [MS-SMB2] 2.2.1.2, 64 bytes
NEGOTIATE_REQUEST = struct.Struct("<HHHHI16sIHH")  # 2.2.3 up to Dialects, 36 bytes
NEGOTIATE_RESPONSE = struct.Struct("<HHHH16sIIIIQQHHI")  # 2.2.4 up to Buffer, 64 bytes
CONTEXT_HEADER = struct.Struct("<HHI")  # 2.2.3.1

CMD_NEGOTIATE = 0
FLAG_SERVER_TO_REDIR = 0x0001
FLAG_ASYNC = 0x0002
SIGNING_ENABLED = 0x0001
SIGNING_REQUIRED = 0x0002
STATUS_SUCCESS = 0x00000000
STATUS_PENDING = 0x00000103

PREAUTH_INTEGRITY_CAPABILITIES = 0x0001
ENCRYPTION_CAPABILITIES = 0x0002
SIGNING_CAPABILITIES = 0x0008
HASH_SHA512 = 0x0001
# [MS-SMB2] 2.2.3.1.2, cipher ids.
CIPHER_NONE = 0x0000
CIPHER_AES128_CCM = 0x0001
CIPHER_AES128_GCM = 0x0002
CIPHER_AES256_CCM = 0x0003
CIPHER_AES256_GCM = 0x0004
CIPHERS: dict[int, str] = {
    CIPHER_AES128_CCM: "AES-128-CCM",
    CIPHER_AES128_GCM: "AES-128-GCM",
    CIPHER_AES256_CCM: "AES-256-CCM",
    CIPHER_AES256_GCM: "AES-256-GCM",
}
# [MS-SMB2] 2.2.3.1.7, signing algorithm ids.
SIGNING_ALGORITHMS: dict[int, str] = {0x0000: "HMAC-SHA256", 0x0001: "AES-CMAC", 0x0002: "AES-GMAC"}
SIGNING_OFFER = (0x0002, 0x0001, 0x0000)
# What the Linux CIFS client of Ubuntu 22.04 (5.15, enable_gcm_256 on) offers, in its order (see above).
LINUX_CIFS_CIPHERS = (CIPHER_AES128_GCM, CIPHER_AES256_GCM, CIPHER_AES128_CCM)
LINUX_CIFS_CLIENT = "the Linux CIFS client of Ubuntu 22.04"
AES256_ONLY = (CIPHER_AES256_GCM,)
AES128_ONLY = (CIPHER_AES128_GCM, CIPHER_AES128_CCM)
# [MS-SMB2] 2.2.3 Capabilities: DFS, LEASING, LARGE_MTU, ENCRYPTION ("the client supports encryption"),
# as a Linux client sets them. Samba 4.17 answers no ENCRYPTION context to a client without ENCRYPTION.
CLIENT_CAPABILITIES = 0x0001 | 0x0002 | 0x0004 | 0x0040
SERVER_CAP_ENCRYPTION = 0x0040

DIALECTS: dict[int, str] = {
    0x0202: "SMB 2.0.2",
    0x0210: "SMB 2.1",
    0x0300: "SMB 3.0",
    0x0302: "SMB 3.0.2",
    0x0311: "SMB 3.1.1",
}
WILDCARD_DIALECT = 0x02FF  # answer to an SMB1-style multi-protocol negotiate

STATUS_NOT_SUPPORTED = 0xC00000BB

NT_STATUS_NAMES = {
    0xC0000001: "STATUS_UNSUCCESSFUL",
    0xC0000002: "STATUS_NOT_IMPLEMENTED",
    0xC000000D: "STATUS_INVALID_PARAMETER",
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC00000BB: "STATUS_NOT_SUPPORTED",
    0xC0000205: "STATUS_INSUFF_SERVER_RESOURCES",
}

# A NEGOTIATE response is a few hundred bytes (header, fixed part, SPNEGO hint, contexts).
MAX_MESSAGE = 64 * 1024
# Interim STATUS_PENDING answers tolerated before the final one.
MAX_INTERIM = 3

Recv = Callable[[], Awaitable[bytes]]


def pad8(n: int) -> int:
    return (8 - n % 8) % 8


def netbios_frame(message: bytes) -> bytes:
    """Direct TCP transport ([MS-SMB2] 2.1): a zero byte then a 24-bit big-endian length."""
    return struct.pack(">I", len(message)) + message


def _id_list(ids: tuple[int, ...]) -> bytes:
    return struct.pack(f"<H{len(ids)}H", len(ids), *ids)


def _negotiate_contexts(salt: bytes, ciphers: tuple[int, ...]) -> list[tuple[int, bytes]]:
    preauth = struct.pack("<HHH", 1, len(salt), HASH_SHA512) + salt
    return [
        (PREAUTH_INTEGRITY_CAPABILITIES, preauth),
        (ENCRYPTION_CAPABILITIES, _id_list(ciphers)),
        (SIGNING_CAPABILITIES, _id_list(SIGNING_OFFER)),
    ]


def build_negotiate_request(
    client_guid: bytes, salt: bytes, message_id: int = 0, *, ciphers: tuple[int, ...] = LINUX_CIFS_CIPHERS
) -> bytes:
    """An SMB2 NEGOTIATE offering 2.0.2 to 3.1.1 and ``ciphers`` (in preference order), framed for TCP 445."""
    header = SMB2_HEADER.pack(SMB2_MAGIC, 64, 0, 0, CMD_NEGOTIATE, 1, 0, 0, message_id, 0, 0, 0, bytes(16))
    dialects = list(DIALECTS)
    dialect_bytes = struct.pack(f"<{len(dialects)}H", *dialects)
    # Offsets count from the start of the SMB2 header; contexts start 8-byte aligned.
    end_of_dialects = len(header) + NEGOTIATE_REQUEST.size + len(dialect_bytes)
    context_offset = end_of_dialects + pad8(end_of_dialects)
    contexts = b""
    items = _negotiate_contexts(salt, ciphers)
    for i, (ctype, data) in enumerate(items):
        contexts += CONTEXT_HEADER.pack(ctype, len(data), 0) + data
        if i < len(items) - 1:
            contexts += bytes(pad8(len(contexts)))
    body = NEGOTIATE_REQUEST.pack(
        36, len(dialects), SIGNING_ENABLED, 0, CLIENT_CAPABILITIES, client_guid, context_offset, len(items), 0
    )
    message = header + body + dialect_bytes + bytes(pad8(end_of_dialects)) + contexts
    return netbios_frame(message)


@dataclass(frozen=True)
class NegotiateAnswer:
    status: int
    dialect: int
    security_mode: int
    server_guid: bytes
    capabilities: int = 0
    # SMB 3.1.1: the one cipher the server chose (CIPHER_NONE: no common cipher); None: no ENCRYPTION context.
    cipher: int | None = None
    signing_algorithm: int | None = None

    @property
    def agreed_cipher(self) -> int | None:
        """The cipher the connection would use: 3.1.1's context; SMB 3.0/3.0.2 use AES-128-CCM when the server
        announces encryption ([MS-SMB2] 3.1.4.3); None when nothing says."""
        if self.dialect == 0x0311:
            return self.cipher
        if self.dialect in (0x0300, 0x0302):
            return CIPHER_AES128_CCM if self.capabilities & SERVER_CAP_ENCRYPTION else None
        return None


def preview(data: bytes, limit: int = 40) -> str:
    """Printable text as text (an HTTP status line), anything else as hex."""
    head = data[:limit]
    text = head.decode("ascii", "replace")
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        shown = text.split("\r\n", 1)[0].split("\n", 1)[0]
        return repr(shown)
    return head.hex(" ")


def _check_frame_start(buf: bytes) -> None:
    """Judge a reply as soon as its first bytes are in, so a chatty non-SMB peer is not a timeout."""
    if len(buf) >= 4:
        length = int.from_bytes(buf[1:4], "big")
        if buf[0] != 0 or length < SMB2_HEADER.size // 2:
            raise NotSmb(f"answered with non-SMB bytes {preview(buf)}")
    if len(buf) >= 8:
        magic = buf[4:8]
        if magic == SMB1_MAGIC:
            raise NotSmb("answered SMB1 only")
        if magic != SMB2_MAGIC:
            raise NotSmb(f"answered with non-SMB bytes {preview(buf)}")
        length = int.from_bytes(buf[1:4], "big")
        if length > MAX_MESSAGE:
            raise NotSmb(f"announced a {length}-byte message, too large for a NEGOTIATE response")


async def _read_message(recv: Recv, buf: bytearray, deadline: Deadline) -> bytes:
    """One NetBIOS-framed message; ``buf`` keeps whatever arrived beyond it."""
    while True:
        if len(buf) >= 4:
            need = 4 + int.from_bytes(buf[1:4], "big")
            if len(buf) >= need:
                message = bytes(buf[4:need])
                del buf[:need]
                return message
        chunk = await deadline.within(recv())
        if not chunk:
            raise Closed(bytes(buf))
        buf += chunk
        _check_frame_start(bytes(buf))


def parse_negotiate_response(message: bytes) -> tuple[int, int, NegotiateAnswer | None]:
    """Return (status, flags, answer); answer is None unless the status is success."""
    if len(message) < SMB2_HEADER.size:
        raise NotSmb(f"sent a {len(message)}-byte message, shorter than an SMB2 header")
    magic, size, _, status, command, _, flags, *_ = SMB2_HEADER.unpack_from(message)
    if magic == SMB1_MAGIC:
        raise NotSmb("answered SMB1 only")
    if magic != SMB2_MAGIC or size != 64:
        raise NotSmb(f"answered with non-SMB bytes {preview(message)}")
    if not flags & FLAG_SERVER_TO_REDIR:
        raise NotSmb("echoed the request back instead of answering it")
    if command != CMD_NEGOTIATE:
        raise NotSmb(f"answered SMB2 command {command} instead of NEGOTIATE", smb2=True)
    if status != STATUS_SUCCESS:
        return status, flags, None
    body = message[SMB2_HEADER.size :]
    if len(body) < NEGOTIATE_RESPONSE.size:
        raise NotSmb("sent a truncated NEGOTIATE response", smb2=True)
    fields = NEGOTIATE_RESPONSE.unpack_from(body)
    structure_size, security_mode, dialect, context_count, server_guid, capabilities = fields[:6]
    context_offset = fields[-1]
    if structure_size != 65:
        raise NotSmb(f"sent a NEGOTIATE response with StructureSize {structure_size}, not 65", smb2=True)
    cipher = signing = None
    if dialect == 0x0311 and context_count:
        contexts = parse_contexts(message, context_offset, context_count)
        cipher = _single_id(contexts.get(ENCRYPTION_CAPABILITIES), "cipher")
        signing = _single_id(contexts.get(SIGNING_CAPABILITIES), "signing algorithm")
    return status, flags, NegotiateAnswer(status, dialect, security_mode, server_guid, capabilities, cipher, signing)


def parse_contexts(message: bytes, offset: int, count: int) -> dict[int, bytes]:
    """The negotiate contexts of a response ([MS-SMB2] 2.2.4.1): type -> data. Each starts 8-byte aligned."""
    contexts: dict[int, bytes] = {}
    pos = offset
    for _ in range(min(count, 16)):
        pos += pad8(pos)
        if pos + CONTEXT_HEADER.size > len(message):
            raise NotSmb("sent negotiate contexts that run past the message", smb2=True)
        ctype, length, _ = CONTEXT_HEADER.unpack_from(message, pos)
        start = pos + CONTEXT_HEADER.size
        if start + length > len(message):
            raise NotSmb("sent a negotiate context that runs past the message", smb2=True)
        contexts.setdefault(ctype, message[start : start + length])
        pos = start + length
    return contexts


def _single_id(data: bytes | None, what: str) -> int | None:
    """A response's ENCRYPTION or SIGNING context: a count that must be 1, then the chosen id."""
    if data is None:
        return None
    if len(data) < 4:
        raise NotSmb(f"sent a malformed {what} context", smb2=True)
    count, chosen = struct.unpack_from("<HH", data)
    if count != 1:
        # The Linux client rejects any other count too ("Invalid SMB3.11 cipher count").
        raise NotSmb(f"answered {count} values in its {what} context; a server chooses exactly one", smb2=True)
    return int(chosen)


def cipher_name(cipher: int | None) -> str:
    if cipher is None:
        return "not named"
    if cipher == CIPHER_NONE:
        return "none in common"
    return CIPHERS.get(cipher, f"cipher 0x{cipher:04X}")


def cipher_list(ciphers: tuple[int, ...]) -> str:
    return ", ".join(CIPHERS[c] for c in ciphers)


def status_name(status: int) -> str:
    name = NT_STATUS_NAMES.get(status)
    return f"{name} (0x{status:08X})" if name else f"NT status 0x{status:08X}"


def dialect_name(dialect: int) -> str:
    if dialect == WILDCARD_DIALECT:
        return "SMB 2.x (wildcard 0x02FF)"
    return DIALECTS.get(dialect, f"dialect 0x{dialect:04X}")


async def read_negotiate_response(recv: Recv, deadline: Deadline) -> NegotiateAnswer:
    """Read the server's NEGOTIATE response, skipping interim STATUS_PENDING answers."""
    buf = bytearray()
    for _ in range(MAX_INTERIM + 1):
        message = await _read_message(recv, buf, deadline)
        status, flags, answer = parse_negotiate_response(message)
        if status == STATUS_PENDING and flags & FLAG_ASYNC:
            continue
        if answer is None:
            if status == STATUS_NOT_SUPPORTED:
                raise NoCommonDialect(status, status_name(status))
            raise NotSmb(
                f"speaks SMB2 but rejected NEGOTIATE with {status_name(status)}: "
                "it accepts none of SMB 2.0.2 to 3.1.1 as offered",
                smb2=True,
            )
        return answer
    raise NotSmb(f"sent {MAX_INTERIM + 1} interim answers and no final NEGOTIATE response", smb2=True)


async def negotiate(sock: socket.socket, deadline: Deadline, ciphers: tuple[int, ...]) -> NegotiateAnswer:
    """One NEGOTIATE offering ``ciphers`` on a connected socket. Raises TimeoutError, Closed, NotSmb,
    NoCommonDialect or OSError."""
    loop = asyncio.get_running_loop()
    request = build_negotiate_request(uuid.uuid4().bytes, os.urandom(32), ciphers=ciphers)
    await deadline.within(loop.sock_sendall(sock, request))
    return await read_negotiate_response(functools.partial(loop.sock_recv, sock, 65536), deadline)
