"""The http prober (one HTTP/1.1 GET), and the response-head reader the proxy code shares.

Any HTTP answer passes: the question is whether the path to the service works, and a 401, 403
or 404 from the service proves it does. The status, Server and Via are recorded, because a
403 from "Server: contoso-gw" is a different story from a 403 from the service. So are the start
of the body (bounded: error codes live there) and any response header the check asks to keep, so
that a layer which knows the service can read its answer; this module reads none of it.

Through a proxy, plain http:// is tunnelled with CONNECT as https:// is, so what the proxy says
(proxy_*) never mixes with what the service says; proxies that allow CONNECT only to 443 reject
such tunnels, and the detail says so.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import quote

from probe import __version__
from probe.context import ProbeContext, ca_bundle_in_use, make_result
from probe.dial import DialFailed, DialInfo, dial
from probe.model import MAX_PEER_TEXT, CheckResult, CheckSpec, Confidence, HttpFacts, Status, TlsFacts
from probe.reasons import Reason, classify_socket_error, classify_tls_error
from probe.tcp import endpoint
from probe.timing import Stopwatch, within
from probe.tls import handshake_failure_detail, where_to

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


class BadHttpResponse(ValueError):
    """What came back is not an HTTP/1.x response head."""


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


async def read_head(reader: asyncio.StreamReader, deadline: float, limit: int = HEAD_LIMIT) -> HttpHead:
    """Read one response head from a stream, skipping interim 1xx answers (but not 101)."""
    head, _rest = await read_response_head(reader, deadline, limit)
    return head


async def read_response_head(
    reader: asyncio.StreamReader, deadline: float, limit: int = HEAD_LIMIT
) -> tuple[HttpHead, bytes]:
    """The response head, skipping interim 1xx answers (but not 101), and the bytes read past it."""
    buf = b""
    while True:
        end = find_head_end(buf)
        if end is None:
            if len(buf) >= limit:
                raise BadHttpResponse(f"response head larger than {limit} bytes")
            chunk = await within(reader.read(limit), deadline)
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


async def _read_until(reader: asyncio.StreamReader, buf: bytearray, need: int, deadline: float) -> bool:
    """Grow ``buf`` to ``need`` bytes; False when the peer closed first."""
    while len(buf) < need:
        chunk = await within(reader.read(max(need - len(buf), 4096)), deadline)
        if not chunk:
            return False
        buf += chunk
    return True


async def _read_chunked(
    reader: asyncio.StreamReader, buf: bytearray, deadline: float, limit: int
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
    reader: asyncio.StreamReader, head: HttpHead, rest: bytes, deadline: float, limit: int = BODY_LIMIT
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


def route_phrase(info: DialInfo) -> str:
    """'through proxy URL', 'direct to ip:port' or 'direct', for a sentence about an exchange."""
    if info.route == "proxy" and info.proxy is not None:
        return f"through proxy {info.proxy.url}"
    return f"direct to {info.peer}" if info.peer else "direct"


def _confidence(reason: Reason) -> Confidence:
    if reason.value.endswith("_timeout"):
        return Confidence.LIKELY
    return Confidence.CONFIRMED


Stage = Literal["connect", "tls", "request"]


class HttpFailed(Exception):
    """An HTTP exchange got no answer. ``stage``: where it stopped (``request`` = after the request was sent);
    ``closed`` says the peer closed or reset the connection instead of answering."""

    def __init__(
        self, reason: Reason, detail: str, info: DialInfo, tls: TlsFacts | None, stage: Stage, *, closed: bool = False
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.info = info
        self.tls = tls
        self.stage = stage
        self.closed = closed


@dataclass
class HttpAnswer:
    head: HttpHead
    info: DialInfo
    tls: TlsFacts | None
    url: str
    body: bytes = b""
    body_truncated: bool = False

    @property
    def via(self) -> str:
        return route_phrase(self.info)


def _request(host: str, port: int, target: str, *, tls: bool, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header(host, port, tls=tls)}",
        f"User-Agent: amlprobe/{__version__}",
        "Accept: */*",
    ]
    # Header names and values were checked when the CheckSpec was made (probe.model).
    lines += [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "connection" for k, _ in headers):
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def exchange(
    ctx: ProbeContext,
    host: str,
    port: int,
    target: str,
    deadline: float,
    *,
    tls: bool,
    headers: Sequence[tuple[str, str]] = (),
    phase: str = "http",
    farewell: bytes = b"",
    body_limit: int = 0,
) -> HttpAnswer:
    """One HTTP/1.1 GET over a fresh connection (TLS when ``tls``, through the proxy when one applies);
    return the response head, and up to ``body_limit`` bytes of the body. ``farewell`` is sent after a
    101 before closing. Raises HttpFailed."""
    url = f"{'https' if tls else 'http'}://{host_header(host, port, tls=tls)}{target}"
    try:
        sock, info = await dial(ctx, host, port, deadline, tls=tls)
    except DialFailed as exc:
        raise HttpFailed(exc.reason, exc.detail, exc.info, None, "connect") from None

    tls_facts: TlsFacts | None = None
    watch = Stopwatch()
    try:
        if tls:
            tls_facts = TlsFacts(server_name=host, verified=False, ca_bundle=ca_bundle_in_use(ctx.settings))
            reader, writer = await within(
                asyncio.open_connection(
                    sock=sock, ssl=ctx.ssl_context(), server_hostname=host.strip("[]"), limit=HEAD_LIMIT
                ),
                deadline,
            )
        else:
            reader, writer = await asyncio.open_connection(sock=sock, limit=HEAD_LIMIT)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        info.phases_ms["tls"] = watch.ms()
        reason = classify_tls_error(exc)
        where = where_to(info, endpoint(host.strip("[]"), port))
        if isinstance(exc, ssl.SSLCertVerificationError):
            if tls_facts is not None:
                tls_facts.verify_error = exc.verify_message
            detail = f"TLS with {where} failed certificate verification ({exc.verify_message or exc})."
        else:
            detail = handshake_failure_detail(reason, exc, where, watch.ms() / 1000)
        raise HttpFailed(reason, detail, info, tls_facts, "tls") from None
    except BaseException:
        sock.close()
        raise
    if tls_facts is not None:
        info.phases_ms["tls"] = watch.restart()
        sslobj = writer.get_extra_info("ssl_object")
        tls_facts.verified = True
        if sslobj is not None:
            tls_facts.version = sslobj.version()
            cipher = sslobj.cipher()
            tls_facts.cipher = cipher[0] if cipher else None
            tls_facts.alpn = sslobj.selected_alpn_protocol()

    def failed(reason: Reason, detail: str, *, closed: bool = False) -> HttpFailed:
        info.phases_ms[phase] = watch.ms()
        return HttpFailed(reason, detail, info, tls_facts, "request", closed=closed)

    body, truncated = b"", False
    try:
        writer.write(_request(host, port, target, tls=tls, headers=headers))
        await within(writer.drain(), deadline)
        head, rest = await read_response_head(reader, deadline)
        if head.status == 101 and farewell:
            writer.write(farewell)
            await within(writer.drain(), deadline)
        elif body_limit > 0 and head.status != 101:
            body, truncated = await read_body(reader, head, rest, deadline, body_limit)
    except TimeoutError:
        raise failed(Reason.HTTP_TIMEOUT, f"No HTTP answer from {url} ({route_phrase(info)}) in time.") from None
    except BadHttpResponse as exc:
        detail = f"The answer from {url} ({route_phrase(info)}) is not valid HTTP: {exc}."
        raise failed(Reason.HTTP_BAD_RESPONSE, detail) from None
    except EOFError:
        detail = f"{url} ({route_phrase(info)}) closed the connection without answering the request."
        raise failed(Reason.HTTP_BAD_RESPONSE, detail, closed=True) from None
    except ssl.SSLError as exc:
        detail = f"TLS failed after the handshake with {url} ({route_phrase(info)}): {exc}."
        raise failed(classify_tls_error(exc), detail, closed=True) from None
    except OSError as exc:
        why = exc.strerror or exc
        detail = f"The connection to {url} ({route_phrase(info)}) failed while waiting for the answer ({why})."
        reason = classify_socket_error(exc)
        raise failed(reason, detail, closed=reason is Reason.TCP_RESET) from None
    finally:
        writer.close()
    info.phases_ms[phase] = watch.ms()
    return HttpAnswer(head=head, info=info, tls=tls_facts, url=url, body=body, body_truncated=truncated)


async def probe_http(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """GET the target path over HTTP/1.1 (HTTPS when ``spec.tls``) with the spec's extra request headers;
    any HTTP answer passes. The answer's status, kept headers and the start of its body are recorded."""
    started = datetime.now(timezone.utc)
    deadline = ctx.deadline()
    total = Stopwatch()
    host, tls = spec.target.host, spec.tls
    port = spec.target.port or (443 if tls else 80)

    def result(reason: Reason, detail: str, info: DialInfo, **extra: object) -> CheckResult:
        status = Status.PASS if reason is Reason.OK else Status.FAIL
        return make_result(
            spec,
            status,
            reason,
            detail,
            confidence=_confidence(reason),
            started_at=started,
            **info.result_fields(),
            **extra,
        )

    try:
        answer = await exchange(
            ctx,
            host,
            port,
            request_target(spec.target.path),
            deadline,
            tls=tls,
            headers=list(spec.request_headers.items()),
            body_limit=BODY_LIMIT,
        )
    except HttpFailed as exc:
        detail = exc.detail
        if exc.reason is Reason.PROXY_CONNECT_REJECTED and not tls:
            detail += " Many proxies allow CONNECT only to port 443; plain-HTTP clients send them forward requests."
        return result(exc.reason, detail, exc.info, tls=exc.tls)
    head = answer.head
    facts = head.facts(keep=spec.keep_headers)
    if answer.body:
        facts.body, facts.body_truncated = body_text(answer.body, head), answer.body_truncated
    answered = f" from {facts.server}" if facts.server else ""
    detail = f"HTTP {head.status} {head.reason}".rstrip() + f"{answered} for GET {answer.url} ({answer.via})."
    return result(Reason.OK, detail, answer.info, tls=answer.tls, http=facts, latency_ms=total.ms())
