"""SMB prober: TCP to 445, then one real SMB2 NEGOTIATE, the exchange Azure Files mounts start with.

Only NEGOTIATE is ever sent: no session setup, no credentials. That is enough to tell an SMB2/3
server from a firewall or appliance that accepts TCP and then stays silent, resets, or answers
something else, and to learn the dialect and whether the server requires signing.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from probe.context import ProbeContext, make_result
from probe.model import CheckResult, CheckSpec, Confidence, SmbFacts, Status
from probe.reasons import Reason, classify_socket_error
from probe.timing import Stopwatch, within

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
HASH_SHA512 = 0x0001
CIPHER_AES128_CCM = 0x0001
CIPHER_AES128_GCM = 0x0002

DIALECTS: dict[int, str] = {
    0x0202: "SMB 2.0.2",
    0x0210: "SMB 2.1",
    0x0300: "SMB 3.0",
    0x0302: "SMB 3.0.2",
    0x0311: "SMB 3.1.1",
}
WILDCARD_DIALECT = 0x02FF  # answer to an SMB1-style multi-protocol negotiate

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
_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}

Recv = Callable[[], Awaitable[bytes]]


def pad8(n: int) -> int:
    return (8 - n % 8) % 8


def netbios_frame(message: bytes) -> bytes:
    """Direct TCP transport ([MS-SMB2] 2.1): a zero byte then a 24-bit big-endian length."""
    return struct.pack(">I", len(message)) + message


def _negotiate_contexts(salt: bytes) -> list[tuple[int, bytes]]:
    preauth = struct.pack("<HHH", 1, len(salt), HASH_SHA512) + salt
    ciphers = (CIPHER_AES128_GCM, CIPHER_AES128_CCM)
    encryption = struct.pack(f"<H{len(ciphers)}H", len(ciphers), *ciphers)
    return [(PREAUTH_INTEGRITY_CAPABILITIES, preauth), (ENCRYPTION_CAPABILITIES, encryption)]


def build_negotiate_request(client_guid: bytes, salt: bytes, message_id: int = 0) -> bytes:
    """An SMB2 NEGOTIATE offering 2.0.2 to 3.1.1, framed for TCP 445."""
    header = SMB2_HEADER.pack(SMB2_MAGIC, 64, 0, 0, CMD_NEGOTIATE, 1, 0, 0, message_id, 0, 0, 0, bytes(16))
    dialects = list(DIALECTS)
    dialect_bytes = struct.pack(f"<{len(dialects)}H", *dialects)
    # Offsets count from the start of the SMB2 header; contexts start 8-byte aligned.
    end_of_dialects = len(header) + NEGOTIATE_REQUEST.size + len(dialect_bytes)
    context_offset = end_of_dialects + pad8(end_of_dialects)
    contexts = b""
    items = _negotiate_contexts(salt)
    for i, (ctype, data) in enumerate(items):
        contexts += CONTEXT_HEADER.pack(ctype, len(data), 0) + data
        if i < len(items) - 1:
            contexts += bytes(pad8(len(contexts)))
    body = NEGOTIATE_REQUEST.pack(36, len(dialects), SIGNING_ENABLED, 0, 0, client_guid, context_offset, len(items), 0)
    message = header + body + dialect_bytes + bytes(pad8(end_of_dialects)) + contexts
    return netbios_frame(message)


@dataclass(frozen=True)
class NegotiateAnswer:
    status: int
    dialect: int
    security_mode: int
    server_guid: bytes


class NotSmb(Exception):
    """What answered is not a usable SMB2 NEGOTIATE response; the message says what it was.

    ``smb2`` marks a peer that does speak SMB2 but refused or garbled the negotiation.
    """

    def __init__(self, message: str, *, smb2: bool = False) -> None:
        super().__init__(message)
        self.smb2 = smb2


class Closed(Exception):
    def __init__(self, received: bytes) -> None:
        super().__init__(f"closed after {len(received)} bytes")
        self.received = received


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


async def _read_message(recv: Recv, buf: bytearray, deadline: float) -> bytes:
    """One NetBIOS-framed message; ``buf`` keeps whatever arrived beyond it."""
    while True:
        if len(buf) >= 4:
            need = 4 + int.from_bytes(buf[1:4], "big")
            if len(buf) >= need:
                message = bytes(buf[4:need])
                del buf[:need]
                return message
        chunk = await within(recv(), deadline)
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
    structure_size, security_mode, dialect, _, server_guid, *_ = NEGOTIATE_RESPONSE.unpack_from(body)
    if structure_size != 65:
        raise NotSmb(f"sent a NEGOTIATE response with StructureSize {structure_size}, not 65", smb2=True)
    return status, flags, NegotiateAnswer(status, dialect, security_mode, server_guid)


def status_name(status: int) -> str:
    name = NT_STATUS_NAMES.get(status)
    return f"{name} (0x{status:08X})" if name else f"NT status 0x{status:08X}"


def dialect_name(dialect: int) -> str:
    if dialect == WILDCARD_DIALECT:
        return "SMB 2.x (wildcard 0x02FF)"
    return DIALECTS.get(dialect, f"dialect 0x{dialect:04X}")


async def read_negotiate_response(recv: Recv, deadline: float) -> NegotiateAnswer:
    """Read the server's NEGOTIATE response, skipping interim STATUS_PENDING answers."""
    buf = bytearray()
    for _ in range(MAX_INTERIM + 1):
        message = await _read_message(recv, buf, deadline)
        status, flags, answer = parse_negotiate_response(message)
        if status == STATUS_PENDING and flags & FLAG_ASYNC:
            continue
        if answer is None:
            raise NotSmb(
                f"speaks SMB2 but rejected NEGOTIATE with {status_name(status)}: "
                "it accepts none of SMB 2.0.2 to 3.1.1 as offered",
                smb2=True,
            )
        return answer
    raise NotSmb(f"sent {MAX_INTERIM + 1} interim answers and no final NEGOTIATE response", smb2=True)


def _is_reset(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS


@dataclass
class _Outcome:
    status: Status
    reason: Reason
    detail: str
    negotiate_ms: float
    confidence: Confidence = Confidence.CONFIRMED
    latency_ms: float | None = None
    facts: SmbFacts | None = None


async def _exchange(sock: socket.socket, peer: str, deadline: float) -> _Outcome:
    """Send NEGOTIATE on the connected socket and judge whatever comes back."""
    loop = asyncio.get_running_loop()
    request = build_negotiate_request(uuid.uuid4().bytes, os.urandom(32))
    watch = Stopwatch()

    def failed(reason: Reason, detail: str, confidence: Confidence = Confidence.CONFIRMED) -> _Outcome:
        return _Outcome(Status.FAIL, reason, detail, watch.ms(), confidence)

    try:
        await within(loop.sock_sendall(sock, request), deadline)
        answer = await read_negotiate_response(functools.partial(loop.sock_recv, sock, 65536), deadline)
    except TimeoutError:
        waited = watch.ms() / 1000
        return failed(
            Reason.SMB_TIMEOUT,
            f"{peer} accepted TCP but sent no SMB2 NEGOTIATE response within {waited:.1f} s.",
            Confidence.LIKELY,
        )
    except Closed as exc:
        if exc.received:
            return failed(
                Reason.SMB_NOT_SMB,
                f"{peer} sent {len(exc.received)} bytes ({preview(exc.received)}) but no complete "
                "SMB2 NEGOTIATE response, then closed the connection.",
            )
        return failed(
            Reason.SMB_NOT_SMB,
            f"{peer} accepted TCP, then closed the connection without answering SMB2 NEGOTIATE.",
        )
    except NotSmb as exc:
        conclusion = "" if exc.smb2 else ": not an SMB2/3 server"
        return failed(Reason.SMB_NOT_SMB, f"{peer} {exc}{conclusion}.")
    except OSError as exc:
        if _is_reset(exc):
            return failed(Reason.SMB_RESET, f"{peer} reset the connection during SMB2 NEGOTIATE.")
        reason = classify_socket_error(exc)
        if reason is Reason.TCP_TIMEOUT:
            return failed(Reason.SMB_TIMEOUT, f"{peer} timed out during SMB2 NEGOTIATE: {exc}.", Confidence.LIKELY)
        return failed(reason, f"{peer} failed during SMB2 NEGOTIATE: {exc}.")

    negotiate_ms = watch.ms()
    signing_required = bool(answer.security_mode & SIGNING_REQUIRED)
    name = dialect_name(answer.dialect)
    facts = SmbFacts(
        dialect=name,
        dialect_revision=f"0x{answer.dialect:04X}",
        signing_required=signing_required,
        server_guid=str(uuid.UUID(bytes_le=answer.server_guid)),
    )
    if answer.dialect not in DIALECTS:
        detail = f"{peer} answered NEGOTIATE with {name}, which was not offered: not a usable SMB2/3 server."
        return _Outcome(Status.FAIL, Reason.SMB_NOT_SMB, detail, negotiate_ms, facts=facts)
    signing = "signing required" if signing_required else "signing not required"
    detail = f"{name} answered NEGOTIATE ({signing}) in {negotiate_ms:g} ms."
    return _Outcome(Status.PASS, Reason.OK, detail, negotiate_ms, latency_ms=negotiate_ms, facts=facts)


async def probe_smb(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """Does host:445 answer an SMB2 NEGOTIATE, and with which dialect? Never through a proxy."""
    from probe.dial import DialFailed, dial

    started = datetime.now(timezone.utc)
    host = spec.target.host
    port = spec.target.port or DEFAULT_PORT
    deadline = ctx.deadline()
    try:
        # SMB cannot cross an HTTP proxy; Azure Files over 445 is always a direct connection.
        sock, info = await dial(ctx, host, port, deadline, tls=False, allow_proxy=False)
    except DialFailed as exc:
        fi = exc.info
        timed_out = exc.reason in (Reason.TCP_TIMEOUT, Reason.DNS_TIMEOUT)
        return make_result(
            spec,
            Status.FAIL,
            exc.reason,
            exc.detail,
            confidence=Confidence.LIKELY if timed_out else Confidence.CONFIRMED,
            started_at=started,
            **fi.result_fields(),
        )

    try:
        outcome = await _exchange(sock, info.peer or f"{host}:{port}", deadline)
    finally:
        sock.close()
    return make_result(
        spec,
        outcome.status,
        outcome.reason,
        outcome.detail,
        confidence=outcome.confidence,
        started_at=started,
        latency_ms=outcome.latency_ms,
        **{**info.result_fields(), "phases_ms": {**info.phases_ms, "negotiate": outcome.negotiate_ms}},
        smb=outcome.facts,
    )
