"""One HTTP/1.1 GET over a fresh connection: dial (direct or through the proxy's CONNECT tunnel),
TLS when asked, the request, and the answer's head (and the start of its body).

The http and websocket probers both speak HTTP this way, so a DNS, TCP, proxy or TLS failure
reads the same whichever of them met it. Through a proxy, plain http:// is tunnelled with
CONNECT as https:// is, so what the proxy says (proxy_*) never mixes with what the service says.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probe import __version__
from probe.deadline import Deadline, Stopwatch
from probe.errors import BadHttpResponse, DialFailed, HttpFailed
from probe.facts import CertInfo, TlsFacts
from probe.reasons import Reason, ReasonCode
from probe.recorder import Connection, Phase
from probe.transport.classify import classify_socket_error, classify_tls_error
from probe.transport.connect import endpoint
from probe.transport.context import ProbeContext
from probe.transport.dial import dial
from probe.transport.handshake import handshake_failure_detail, where_to
from probe.transport.http1 import HEAD_LIMIT, HttpHead, host_header, read_body, read_response_head
from probe.transport.tlsconfig import ca_bundle_in_use


def route_phrase(conn: Connection) -> str:
    """'through proxy URL', 'direct to ip:port' or 'direct', for a sentence about an exchange."""
    if conn.route == "proxy" and conn.proxy is not None:
        return f"through proxy {conn.proxy.url}"
    return f"direct to {conn.peer}" if conn.peer else "direct"


@dataclass
class HttpAnswer:
    head: HttpHead
    tls: TlsFacts | None
    url: str
    body: bytes = b""
    body_truncated: bool = False


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
    deadline: Deadline,
    conn: Connection,
    host: str,
    port: int,
    *,
    target: str,
    tls: bool,
    headers: Sequence[tuple[str, str]] = (),
    phase: Phase = Phase.HTTP,
    farewell: bytes = b"",
    body_limit: int = 0,
    describe: Callable[[bytes], CertInfo | None] | None = None,
) -> HttpAnswer:
    """One HTTP/1.1 GET of ``target`` over a fresh connection (TLS when ``tls``, through the proxy when one applies);
    return the response head, and up to ``body_limit`` bytes of the body. ``farewell`` is sent after a
    101 before closing. ``conn`` records the connection; the request and answer are timed as ``phase``.
    ``describe``: turns the server's leaf certificate (DER) into the TLS facts' ``leaf``. Raises HttpFailed."""
    url = f"{'https' if tls else 'http'}://{host_header(host, port, tls=tls)}{target}"
    try:
        sock = await dial(ctx, deadline, conn, host, port, tls=tls)
    except DialFailed as exc:
        raise HttpFailed(exc.reason, exc.detail, None, "connect") from None

    tls_facts: TlsFacts | None = None
    watch = Stopwatch()
    try:
        if tls:
            tls_facts = TlsFacts(server_name=host, verified=False, ca_bundle=ca_bundle_in_use(ctx.settings))
            reader, writer = await deadline.within(
                asyncio.open_connection(
                    sock=sock, ssl=ctx.tls.get(), server_hostname=host.strip("[]"), limit=HEAD_LIMIT
                )
            )
        else:
            reader, writer = await asyncio.open_connection(sock=sock, limit=HEAD_LIMIT)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        conn.phases[Phase.TLS] = watch.ms()
        reason = classify_tls_error(exc)
        where = where_to(conn, endpoint(host.strip("[]"), port))
        if isinstance(exc, ssl.SSLCertVerificationError):
            if tls_facts is not None:
                tls_facts.verify_error = exc.verify_message
            detail = f"TLS with {where} failed certificate verification ({exc.verify_message or exc})."
        else:
            detail = handshake_failure_detail(reason, exc, where, watch.ms() / 1000)
        raise HttpFailed(reason, detail, tls_facts, "tls") from None
    except BaseException:
        sock.close()
        raise
    if tls_facts is not None:
        conn.phases[Phase.TLS] = watch.restart()
        sslobj = writer.get_extra_info("ssl_object")
        tls_facts.verified = True
        if sslobj is not None:
            tls_facts.version = sslobj.version()
            cipher = sslobj.cipher()
            tls_facts.cipher = cipher[0] if cipher else None
            tls_facts.alpn = sslobj.selected_alpn_protocol()
            if describe is not None and (der := sslobj.getpeercert(binary_form=True)):
                tls_facts.leaf = describe(der)  # who the session ends at, for whoever judges the answer

    def failed(reason: ReasonCode, detail: str, *, closed: bool = False) -> HttpFailed:
        conn.phases[phase] = watch.ms()
        return HttpFailed(reason, detail, tls_facts, "request", closed=closed)

    via = route_phrase(conn)
    body, truncated = b"", False
    try:
        writer.write(_request(host, port, target, tls=tls, headers=headers))
        await deadline.within(writer.drain())
        head, rest = await read_response_head(reader, deadline)
        if head.status == 101 and farewell:
            writer.write(farewell)
            await deadline.within(writer.drain())
        elif body_limit > 0 and head.status != 101:
            body, truncated = await read_body(reader, head, rest, deadline, body_limit)
    except TimeoutError:
        raise failed(Reason.HTTP_TIMEOUT, f"No HTTP answer from {url} ({via}) in time.") from None
    except BadHttpResponse as exc:
        raise failed(Reason.HTTP_BAD_RESPONSE, f"The answer from {url} ({via}) is not valid HTTP: {exc}.") from None
    except EOFError:
        detail = f"{url} ({via}) closed the connection without answering the request."
        raise failed(Reason.HTTP_BAD_RESPONSE, detail, closed=True) from None
    except ssl.SSLError as exc:
        detail = f"TLS failed after the handshake with {url} ({via}): {exc}."
        raise failed(classify_tls_error(exc), detail, closed=True) from None
    except OSError as exc:
        why = exc.strerror or exc
        detail = f"The connection to {url} ({via}) failed while waiting for the answer ({why})."
        reason = classify_socket_error(exc)
        raise failed(reason, detail, closed=reason is Reason.TCP_RESET) from None
    finally:
        writer.close()
    conn.phases[phase] = watch.ms()
    return HttpAnswer(head=head, tls=tls_facts, url=url, body=body, body_truncated=truncated)
