"""An SMB2 NEGOTIATE responder: the first exchange of an SMB mount, and nothing more.

It stands in for an Azure Files endpoint on 445 in the lab without Samba: it answers one
NEGOTIATE with a valid response (the highest dialect both sides know, with the SMB 3.1.1
negotiate contexts when 3.1.1 is chosen) and closes. It never authenticates anyone. The wire
format is written here independently of probe/transport/smb2.py, so each checks the other.

Ciphers. Azure Files supports AES-128-CCM, AES-128-GCM and AES-256-GCM, and an account may allow a
subset ("channel encryption": learn.microsoft.com/azure/storage/files/files-smb-protocol). The
responder picks, in its own preference order (Windows' default order: AES-128-GCM, AES-128-CCM,
AES-256-GCM), the first allowed cipher the client offered, or answers cipher 0 when none is
([MS-SMB2] 3.3.5.4), as Samba 4.17 does. Azure Files itself checks the account's setting only at
session setup ("these settings are checked when an SMB session is established", files-smb-protocol),
and answers AES-128-GCM to a client that offers it even when the account allows only AES-256-GCM
(linux-cifs thread "mount.cifs fails to negotiate AES-256-GCM ...", Oct 2025, Enzo Matsumiya):
``policy_at_negotiate=False`` plays that, choosing among everything Azure Files supports.

Run standalone (e.g. inside a lab namespace)::

    python -m lab.servers.smb --listen 10.0.0.45:445 [--max-dialect 3.0.2] [--signing-required]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import struct
import sys
import time
import uuid
from collections.abc import Iterable

from lab.servers.base import LabServer, close_stream_server

SUPPORTED_DIALECTS = (0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
_DIALECT_BY_NAME = {"2.0.2": 0x0202, "2.1": 0x0210, "3.0": 0x0300, "3.0.2": 0x0302, "3.1.1": 0x0311}

_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")
_NEGOTIATE_REQ = struct.Struct("<HHHHI16sIHH")
_NEGOTIATE_RESP = struct.Struct("<HHHH16sIIIIQQHHI")
_ERROR_RESP = struct.Struct("<HBBI")  # StructureSize 9, ErrorContextCount, Reserved, ByteCount
_CONTEXT = struct.Struct("<HHI")

_FLAG_SERVER_TO_REDIR = 0x0001
_SIGNING_ENABLED = 0x0001
_SIGNING_REQUIRED = 0x0002
_CAP_DFS = 0x0001
_CAP_LARGE_MTU = 0x0004
_STATUS_SUCCESS = 0x00000000
_STATUS_INVALID_PARAMETER = 0xC000000D
_STATUS_NOT_SUPPORTED = 0xC00000BB
_PREAUTH = 0x0001
_ENCRYPTION = 0x0002
_SHA512 = 0x0001
_SIGNING = 0x0008
# Azure Files' ciphers in the responder's preference order: AES-128-GCM, AES-128-CCM, AES-256-GCM.
AZURE_FILES_CIPHERS = (0x0002, 0x0001, 0x0004)
AES_256_GCM = 0x0004
# [MS-SMB2] 2.2.3.1.7: AES-GMAC, AES-CMAC, HMAC-SHA256, in the responder's preference order.
_OUR_SIGNING = (0x0002, 0x0001, 0x0000)
_MAX_REQUEST = 64 * 1024
_READ_TIMEOUT = 10.0
# Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
_FILETIME_EPOCH = 11_644_473_600


def _pad8(n: int) -> int:
    return (8 - n % 8) % 8


def _filetime_now() -> int:
    return int((time.time() + _FILETIME_EPOCH) * 10_000_000)


def _frame(message: bytes) -> bytes:
    return struct.pack(">I", len(message)) + message


class _BadRequest(Exception):
    pass


def _parse_contexts(message: bytes, offset: int, count: int) -> dict[int, bytes]:
    contexts: dict[int, bytes] = {}
    pos = offset
    for _ in range(count):
        if pos + _CONTEXT.size > len(message):
            raise _BadRequest("negotiate context list runs past the message")
        ctype, length, _ = _CONTEXT.unpack_from(message, pos)
        start = pos + _CONTEXT.size
        if start + length > len(message):
            raise _BadRequest("negotiate context data runs past the message")
        contexts[ctype] = message[start : start + length]
        pos = start + length
        pos += _pad8(pos)
    return contexts


def _client_ids(data: bytes) -> list[int]:
    if len(data) < 2:
        return []
    (count,) = struct.unpack_from("<H", data)
    return list(struct.unpack_from(f"<{count}H", data, 2)) if len(data) >= 2 + 2 * count else []


class Smb2Responder(LabServer):
    """Answer SMB2 NEGOTIATE on (host, port) with a real NEGOTIATE response, then close.

    ``dialects`` are the ones this server speaks (an older server: drop 3.x); with no dialect in
    common it answers STATUS_NOT_SUPPORTED, as Windows does. ``ciphers`` are the ones the account
    allows (see the module's docstring). ``negotiated`` lists the dialect chosen for each request
    answered, ``chosen_ciphers`` the cipher (0: none in common) for each 3.1.1 one.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        dialects: Iterable[int] = SUPPORTED_DIALECTS,
        signing_required: bool = False,
        server_guid: uuid.UUID | None = None,
        ciphers: Iterable[int] = AZURE_FILES_CIPHERS,
        policy_at_negotiate: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.dialects = frozenset(dialects)
        unknown = self.dialects - set(SUPPORTED_DIALECTS)
        if unknown:
            raise ValueError(f"unsupported dialects: {sorted(unknown)}")
        self.signing_required = signing_required
        self.server_guid = server_guid or uuid.uuid4()
        # Allowed ciphers, in preference order; with policy_at_negotiate False, NEGOTIATE ignores them.
        self.ciphers = tuple(ciphers)
        self.policy_at_negotiate = policy_at_negotiate
        self.negotiated: list[int] = []
        self.chosen_ciphers: list[int] = []
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            await close_stream_server(self._server, self._writers)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readexactly(4), _READ_TIMEOUT)
            length = int.from_bytes(head[1:], "big")
            if head[0] != 0 or length > _MAX_REQUEST:
                return
            message = await asyncio.wait_for(reader.readexactly(length), _READ_TIMEOUT)
            reply = self.answer(message)
            if reply is not None:
                writer.write(_frame(reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def answer(self, message: bytes) -> bytes | None:
        """The SMB2 reply to one request message (without NetBIOS framing); None: just hang up."""
        if len(message) < _HEADER.size + _NEGOTIATE_REQ.size:
            return None
        magic, size, _, _, command, _, _, _, message_id, *_ = _HEADER.unpack_from(message)
        if magic != b"\xfeSMB" or size != 64 or command != 0:
            return None
        try:
            return self._negotiate(message, message_id)
        except _BadRequest:
            return self._error(message_id, _STATUS_INVALID_PARAMETER)

    def _negotiate(self, message: bytes, message_id: int) -> bytes:
        (size, count, _, _, _, _, ctx_offset, ctx_count, _) = _NEGOTIATE_REQ.unpack_from(message, _HEADER.size)
        start = _HEADER.size + _NEGOTIATE_REQ.size
        if size != 36 or count == 0 or start + 2 * count > len(message):
            raise _BadRequest("malformed NEGOTIATE request")
        offered = struct.unpack_from(f"<{count}H", message, start)
        common = [d for d in offered if d in self.dialects]
        if not common:
            return self._error(message_id, _STATUS_NOT_SUPPORTED)
        dialect = max(common)
        contexts = b""
        context_count = 0
        if dialect == 0x0311:
            client = _parse_contexts(message, ctx_offset, ctx_count)
            # [MS-SMB2] 3.3.5.4: a 3.1.1 NEGOTIATE without preauth integrity is invalid.
            if _PREAUTH not in client:
                raise _BadRequest("SMB 3.1.1 offered without PREAUTH_INTEGRITY_CAPABILITIES")
            salt = os.urandom(32)
            items = [(_PREAUTH, struct.pack("<HHH", 1, len(salt), _SHA512) + salt)]
            if _ENCRYPTION in client:
                offered_ciphers = _client_ids(client[_ENCRYPTION])
                allowed = self.ciphers if self.policy_at_negotiate else AZURE_FILES_CIPHERS
                chosen = next((c for c in allowed if c in offered_ciphers), 0)
                self.chosen_ciphers.append(chosen)
                items.append((_ENCRYPTION, struct.pack("<HH", 1, chosen)))
            if _SIGNING in client:
                offered_signing = _client_ids(client[_SIGNING])
                # [MS-SMB2] 3.3.5.4: no common algorithm means AES-CMAC.
                signing = next((a for a in _OUR_SIGNING if a in offered_signing), 0x0001)
                items.append((_SIGNING, struct.pack("<HH", 1, signing)))
            for i, (ctype, data) in enumerate(items):
                contexts += _CONTEXT.pack(ctype, len(data), 0) + data
                if i < len(items) - 1:
                    contexts += bytes(_pad8(len(contexts)))
            context_count = len(items)
        security_offset = _HEADER.size + _NEGOTIATE_RESP.size
        context_offset = security_offset if contexts else 0
        security_mode = _SIGNING_ENABLED | (_SIGNING_REQUIRED if self.signing_required else 0)
        capabilities = _CAP_DFS | (_CAP_LARGE_MTU if dialect >= 0x0210 else 0)
        body = _NEGOTIATE_RESP.pack(
            65,
            security_mode,
            dialect,
            context_count,
            self.server_guid.bytes_le,
            capabilities,
            8 * 1024 * 1024,
            8 * 1024 * 1024,
            8 * 1024 * 1024,
            _filetime_now(),
            0,
            security_offset,
            0,
            context_offset,
        )
        self.negotiated.append(dialect)
        # StructureSize 65 counts one byte of the variable part, so it is never empty.
        return self._header(message_id, _STATUS_SUCCESS) + body + (contexts or b"\x00")

    def _error(self, message_id: int, status: int) -> bytes:
        return self._header(message_id, status) + _ERROR_RESP.pack(9, 0, 0, 0) + b"\x00"

    @staticmethod
    def _header(message_id: int, status: int) -> bytes:
        return _HEADER.pack(b"\xfeSMB", 64, 0, status, 0, 1, _FLAG_SERVER_TO_REDIR, 0, message_id, 0, 0, 0, bytes(16))


def _listen(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    return host, int(port)


async def _serve_forever(server: Smb2Responder) -> None:
    async with server:
        print(f"smb2 responder listening on {server.host}:{server.port}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.servers.smb", description="Answer SMB2 NEGOTIATE.", allow_abbrev=False
    )
    parser.add_argument("--listen", default="127.0.0.1:4445", help="host:port ([v6]:port) to serve on")
    parser.add_argument("--max-dialect", choices=sorted(_DIALECT_BY_NAME), default="3.1.1")
    parser.add_argument("--signing-required", action="store_true")
    args = parser.parse_args(argv)
    host, port = _listen(args.listen)
    top = _DIALECT_BY_NAME[args.max_dialect]
    server = Smb2Responder(
        host, port, dialects=[d for d in SUPPORTED_DIALECTS if d <= top], signing_required=args.signing_required
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
