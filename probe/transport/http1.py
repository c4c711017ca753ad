"""HTTP/1.1 on the wire: the response head (status line and headers), the body, and the request target.

Read from an asyncio stream (the http and websocket probers) or straight from a raw socket without
consuming a byte past the head (a proxy's answer to CONNECT, before TLS takes the socket over).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from probe.deadline import Deadline
from probe.errors import BadHttpResponse
from probe.facts import HttpFacts
from probe.model import MAX_PEER_TEXT
from probe.transport.connect import endpoint

HEAD_LIMIT = 64 * 1024
# Headers worth keeping besides Server and Via: they tell who answered and why.
KEPT_HEADERS = ("content-type", "location", "www-authenticate", "proxy-authenticate", "x-cache", "x-squid-error")
# Request-identifier headers (X-Request-Id, X-Correlation-Id, a service's own x-<vendor>-request-id, ...)
# name the service that answered, so they are kept too, a few and bounded.
_ID_HEADER = re.compile(r"(?:^|-)(?:request|correlation|trace|activity)-?id$", re.IGNORECASE)
_ID_HEADERS_MAX = 6
_VALUE_MAX = 200
# The body is read up to BODY_LIMIT bytes and kept up to BODY_KEEP characters: service error documents
# (an XML <Error>, a JSON {"error": ...}) are a few hundred bytes; block pages are longer and only
# their start matters. BODY_KEEP is the report's bound on any one peer string (probe.model).
BODY_LIMIT = 16 * 1024
BODY_KEEP = MAX_PEER_TEXT
_NO_BODY = {204, 304}

_STATUS_LINE = re.compile(r"HTTP/(\d)\.(\d) +(\d{3})(?: +(.*))?")


@dataclass
class HttpHead:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def facts(self, *, upgraded: bool | None = None, keep: Sequence[str] = ()) -> HttpFacts:
        names = list(dict.fromkeys([*KEPT_HEADERS, *(k.lower() for k in keep)]))
        kept = {k: v[: _VALUE_MAX * 4] for k in names if (v := self.get(k)) is not None}
        ids = [k.lower() for k, _ in self.headers if _ID_HEADER.search(k)]
        for name in list(dict.fromkeys(ids))[:_ID_HEADERS_MAX]:
            kept[name] = (self.get(name) or "")[:_VALUE_MAX]
        return HttpFacts(
            status=self.status,
            reason_phrase=self.reason or None,
            server=self.get("server"),
            via=self.get("via"),
            headers=kept,
            upgraded=upgraded,
        )


def find_head_end(data: bytes) -> int | None:
    """Index just past the blank line ending a head (CRLF CRLF, or bare LF LF), or None."""
    ends = [i + len(t) for t in (b"\r\n\r\n", b"\n\n") if (i := data.find(t)) >= 0]
    return min(ends) if ends else None


def parse_head(data: bytes) -> HttpHead:
    text = data.decode("latin-1")
    lines = re.split(r"\r?\n", text.rstrip("\r\n"))
    m = _STATUS_LINE.fullmatch(lines[0].rstrip())
    if m is None:
        shown = lines[0][:60].encode("unicode_escape").decode("ascii")
        raise BadHttpResponse(f"not an HTTP status line: '{shown}'")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            # obs-fold: a continuation of the previous header's value.
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadHttpResponse(f"malformed header line: '{line[:60]}'")
        headers.append((name, value.strip()))
    return HttpHead(f"{m.group(1)}.{m.group(2)}", int(m.group(3)), (m.group(4) or "").strip(), headers)


async def read_response_head(
    reader: asyncio.StreamReader, deadline: Deadline, limit: int = HEAD_LIMIT
) -> tuple[HttpHead, bytes]:
    """The response head, skipping interim 1xx answers (but not 101), and the bytes read past it."""
    buf = b""
    while True:
        end = find_head_end(buf)
        if end is None:
            if len(buf) >= limit:
                raise BadHttpResponse(f"response head larger than {limit} bytes")
            chunk = await deadline.within(reader.read(limit))
            if not chunk:
                if buf:
                    raise BadHttpResponse("connection closed in the middle of the response head")
                raise EOFError("closed without answering")
            buf += chunk
            continue
        head = parse_head(buf[:end])
        if 100 <= head.status < 200 and head.status != 101:
            buf = buf[end:]
            continue
        return head, buf[end:]


async def _read_until(reader: asyncio.StreamReader, buf: bytearray, need: int, deadline: Deadline) -> bool:
    """Grow ``buf`` to ``need`` bytes; False when the peer closed first."""
    while len(buf) < need:
        chunk = await deadline.within(reader.read(max(need - len(buf), 4096)))
        if not chunk:
            return False
        buf += chunk
    return True


async def _read_chunked(
    reader: asyncio.StreamReader, buf: bytearray, deadline: Deadline, limit: int
) -> tuple[bytes, bool]:
    """Decode a chunked body (RFC 9112 §7.1) until ``limit`` bytes of content or the last chunk."""
    out = bytearray()
    while len(out) < limit:
        while (nl := buf.find(b"\n")) < 0:
            if len(buf) > 1024 or not await _read_until(reader, buf, len(buf) + 1, deadline):
                return bytes(out), True
        size_text = bytes(buf[:nl]).split(b";", 1)[0].strip()
        del buf[: nl + 1]
        try:
            size = int(size_text, 16)
        except ValueError:
            return bytes(out), True
        if size == 0:
            return bytes(out), False
        take = min(size, limit - len(out))
        complete = await _read_until(reader, buf, take, deadline)
        out += buf[:take]
        del buf[:take]
        if not complete or take < size:
            return bytes(out), True
        await _read_until(reader, buf, 2, deadline)
        del buf[:2]
    return bytes(out), True


async def read_body(
    reader: asyncio.StreamReader, head: HttpHead, rest: bytes, deadline: Deadline, limit: int = BODY_LIMIT
) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body that follows ``head`` (``rest``: what was read past the head),
    and whether there was more. Content-Length, chunked, or until the peer closes (the request said
    Connection: close). A peer that stops sending leaves what came so far when the deadline passes."""
    if head.status in _NO_BODY or 100 <= head.status < 200:
        return b"", False
    buf = bytearray(rest)
    try:
        if "chunked" in (head.get("transfer-encoding") or "").lower():
            return await _read_chunked(reader, buf, deadline, limit)
        length_text = head.get("content-length")
        if length_text is not None and length_text.strip().isdigit():
            length = int(length_text.strip())
            await _read_until(reader, buf, min(length, limit), deadline)
            return bytes(buf[: min(length, limit)]), length > limit
        while len(buf) < limit:
            if not await _read_until(reader, buf, len(buf) + 1, deadline):
                return bytes(buf), False
        return bytes(buf[:limit]), True
    except (TimeoutError, OSError, ssl.SSLError):
        return bytes(buf[:limit]), True


def body_text(data: bytes, head: HttpHead, keep: int = BODY_KEEP) -> str:
    """The body as text: the charset the Content-Type names, else UTF-8; undecodable bytes replaced."""
    charset = "utf-8"
    for part in (head.get("content-type") or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"').strip()
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff")[:keep]


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def auth_schemes(challenges: Sequence[str]) -> str:
    """The schemes a WWW-Authenticate or Proxy-Authenticate answer offers ("Basic, Negotiate"), or "nothing".

    RFC 9110 §11.6.1: a challenge is a scheme token, then its parameters; challenges are separated
    by commas, as are the parameters (``name=value``), so a scheme is a bare token after a comma.
    """
    tokens = [part.split(None, 1)[0] for value in challenges for part in value.split(",") if part.strip()]
    return ", ".join(dict.fromkeys(t for t in tokens if _TOKEN.fullmatch(t))) or "nothing"


def answered_by(server: str | None, via: str | None) -> str:
    """' (Server: x; Via: y)': who an answer says sent it, for a sentence; empty when it does not say."""
    parts = [f"Server: {server}"] if server else []
    if via:
        parts.append(f"Via: {via}")
    return f" ({'; '.join(parts)})" if parts else ""


def request_target(path: str | None) -> str:
    target = path or "/"
    if not target.startswith("/"):
        target = "/" + target
    # Never let a path smuggle whitespace or CR/LF into the request line.
    return quote(target, safe="/%?#[]@!$&'()*+,;=:~-._")


def host_header(host: str, port: int, *, tls: bool) -> str:
    bare = host.strip("[]")
    if port == (443 if tls else 80):
        return f"[{bare}]" if ":" in bare else bare
    return endpoint(bare, port)


def _readable(sock: socket.socket) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    fut.add_done_callback(lambda _: loop.remove_reader(fd))
    return fut


async def read_head_exact(sock: socket.socket, deadline: Deadline, limit: int | None = None) -> bytes:
    """Read a response head (at most ``limit`` bytes, default HEAD_LIMIT) from a raw socket without
    consuming one byte past it.

    The socket is handed on for TLS (or another protocol) afterwards, so peeking then taking
    exactly what belongs to the head keeps whatever the peer sends next in the kernel buffer.
    """
    limit = HEAD_LIMIT if limit is None else limit
    head = bytearray()
    while True:
        await deadline.within(_readable(sock))
        try:
            chunk = sock.recv(limit, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        if not chunk:
            raise ConnectionResetError("closed by the peer")
        keep = min(3, len(head))
        end = find_head_end(bytes(head[len(head) - keep :]) + chunk)
        if end is not None:
            head += sock.recv(end - keep)
            return bytes(head)
        if len(head) + len(chunk) >= limit:
            raise BadHttpResponse(f"response head larger than {limit} bytes")
        head += sock.recv(len(chunk))
