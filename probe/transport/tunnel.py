"""A CONNECT tunnel through an HTTP proxy (RFC 9110 §9.3.6), and what the proxy said about it.

Whatever goes wrong is the proxy's part of the path, reported as proxy_*, never mixed with what
the destination says once the tunnel stands.
"""

from __future__ import annotations

import asyncio
import base64
import socket

from probe import __version__
from probe.deadline import Deadline
from probe.errors import BadHttpResponse, ConnectFailed, ProxyFailed
from probe.facts import ProxyFacts
from probe.reasons import Reason, ReasonCode
from probe.transport.connect import connect_tcp, endpoint
from probe.transport.http1 import answered_by, auth_schemes, parse_head, read_head_exact
from probe.transport.proxyenv import ProxyChoice
from probe.transport.resolve import SharedResolver

_UNREACHED: dict[ReasonCode, str] = {
    Reason.TCP_REFUSED: "refused the connection",
    Reason.TCP_TIMEOUT: "did not answer the TCP connection attempt in time",
    Reason.TCP_UNREACHABLE: "is unreachable (no route)",
    Reason.TCP_PROHIBITED: "is forbidden by local policy",
    Reason.TCP_RESET: "reset the connection",
}


async def connect_proxy(
    resolver: SharedResolver, choice: ProxyChoice, deadline: Deadline, facts: ProxyFacts
) -> tuple[socket.socket, list[str]]:
    """A TCP connection to the proxy itself; every failure is ``proxy_refused``."""
    if choice.problem is not None:
        raise ProxyFailed(Reason.PROXY_REFUSED, choice.problem, facts, [])
    try:
        resolution = await deadline.within(resolver.resolve(choice.host))
    except TimeoutError:
        detail = f"Resolving the proxy name {choice.host} did not finish in time."
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, []) from None
    if not resolution.ok:
        detail = f"The proxy name {choice.host} did not resolve ({resolution.reason.value}): {resolution.detail}"
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, [])
    try:
        connected = await connect_tcp(resolution.addresses, choice.port, deadline)
    except ConnectFailed as exc:
        what = _UNREACHED.get(exc.reason, f"could not be reached ({exc.reason.value})")
        detail = f"Proxy {choice.endpoint} {what}: {exc.detail}"
        raise ProxyFailed(Reason.PROXY_REFUSED, detail, facts, exc.attempts) from None
    return connected.sock, connected.attempts


def connect_request(choice: ProxyChoice, host: str, port: int) -> bytes:
    authority = endpoint(host.strip("[]"), port)
    lines = [
        f"CONNECT {authority} HTTP/1.1",
        f"Host: {authority}",
        f"User-Agent: amlprobe/{__version__}",
    ]
    auth = proxy_authorization(choice)
    if auth is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def proxy_authorization(choice: ProxyChoice) -> str | None:
    if choice.username is None:
        return None
    token = f"{choice.username}:{choice.password or ''}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


async def open_tunnel(
    resolver: SharedResolver, choice: ProxyChoice, host: str, port: int, deadline: Deadline
) -> tuple[socket.socket, ProxyFacts]:
    """Return a socket tunnelled by ``CONNECT host:port`` through the proxy, ready for TLS.

    Raises ProxyFailed with a proxy_* reason; the socket is closed on every failure.
    """
    facts = ProxyFacts(url=choice.redacted_url, source=choice.source)
    sock, attempts = await connect_proxy(resolver, choice, deadline, facts)
    target = endpoint(host.strip("[]"), port)
    where = f"Proxy {choice.endpoint} (from {choice.source})"
    try:
        loop = asyncio.get_running_loop()
        await deadline.within(loop.sock_sendall(sock, connect_request(choice, host, port)))
        head = parse_head(await read_head_exact(sock, deadline))
    except TimeoutError:
        sock.close()
        detail = f"{where} did not answer CONNECT {target} in time."
        raise ProxyFailed(Reason.PROXY_TIMEOUT, detail, facts, attempts) from None
    except BadHttpResponse as exc:
        sock.close()
        detail = f"{where} answered CONNECT {target} with something that is not HTTP: {exc}."
        raise ProxyFailed(Reason.PROXY_CONNECT_REJECTED, detail, facts, attempts) from None
    except OSError as exc:
        sock.close()
        detail = f"{where} closed the connection during CONNECT {target} ({exc.strerror or exc})."
        raise ProxyFailed(Reason.PROXY_RESET, detail, facts, attempts) from None
    except BaseException:
        sock.close()
        raise
    facts.connect_status = head.status
    facts.server = head.get("server")
    facts.via = head.get("via")
    if 200 <= head.status < 300:
        return sock, facts
    sock.close()
    status = f"{head.status} {head.reason}".strip()
    if head.status == 407:
        offered = auth_schemes(head.get_all("proxy-authenticate"))
        if choice.username is None:
            detail = (
                f"{where} demands authentication for CONNECT {target} ({status}); no credentials are "
                f"configured, and it offers: {offered}."
            )
        else:
            detail = (
                f"{where} rejected the credentials of user '{choice.username}' for CONNECT {target} "
                f"({status}); it offers: {offered}."
            )
        raise ProxyFailed(Reason.PROXY_AUTH_REQUIRED, detail, facts, attempts)
    detail = f"{where} refused CONNECT {target} with {status}{answered_by(head.get('server'), head.get('via'))}."
    raise ProxyFailed(Reason.PROXY_CONNECT_REJECTED, detail, facts, attempts)
