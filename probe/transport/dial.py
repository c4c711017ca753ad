"""Get a connected TCP socket to host:port: resolve once, connect direct, or tunnel through a proxy.

Every TCP-based prober (tcp, tls, smb, and http and websocket through probe.transport.exchange)
dials through here, so the route taken (direct or proxy), the addresses tried and the phase
timings are recorded the same way, into the Connection the caller hands in.
"""

from __future__ import annotations

import socket

from probe.deadline import Deadline, Stopwatch
from probe.errors import ConnectFailed, DialFailed, ProxyFailed
from probe.reasons import Reason
from probe.recorder import Connection, Phase
from probe.rtt import kernel_rtt_ms
from probe.transport.connect import connect_tcp
from probe.transport.context import ProbeContext
from probe.transport.proxyenv import choose_proxy
from probe.transport.tunnel import open_tunnel


async def dial(
    ctx: ProbeContext,
    deadline: Deadline,
    conn: Connection,
    host: str,
    port: int,
    *,
    tls: bool,
    allow_proxy: bool = True,
) -> socket.socket:
    """Return a connected, non-blocking socket (a CONNECT tunnel when a proxy applies); ``conn`` records
    how it was got, or how far getting it went.

    ``tls`` says whether the caller will speak TLS on it; it selects HTTPS_PROXY vs HTTP_PROXY.
    Raises DialFailed (ConnectFailed, ProxyFailed) with a dns_*, tcp_* or proxy_* reason; never
    anything else for network faults.
    """
    conn.route = "direct"
    choice = choose_proxy(ctx.settings, host, port, tls=tls) if allow_proxy else None
    if choice is not None:
        conn.route = "proxy"
        watch = Stopwatch()
        try:
            sock, facts = await open_tunnel(ctx.resolver, choice, host, port, deadline)
        except ProxyFailed as exc:
            conn.proxy = exc.facts
            conn.phases[Phase.PROXY_CONNECT] = watch.ms()
            conn.attempts.extend(exc.attempts)
            raise
        conn.proxy = facts
        conn.peer = facts.url
        conn.phases[Phase.PROXY_CONNECT] = watch.ms()
        conn.rtt_ms = kernel_rtt_ms(sock)
        return sock

    watch = Stopwatch()
    try:
        resolution = await deadline.within(ctx.resolver.resolve(host))
    except TimeoutError:
        conn.phases[Phase.RESOLVE] = watch.ms()
        raise DialFailed(Reason.DNS_TIMEOUT, f"resolving {host} did not finish in time") from None
    conn.dns = resolution.facts
    conn.addresses = resolution.addresses
    if resolution.facts.source == "dns":
        conn.phases[Phase.RESOLVE] = watch.ms()
    if not resolution.ok:
        raise DialFailed(resolution.reason, resolution.detail)
    try:
        connected = await connect_tcp(conn.addresses, port, deadline)
    except ConnectFailed as exc:
        conn.attempts = exc.attempts
        conn.phases[Phase.CONNECT] = exc.elapsed_ms
        raise
    conn.peer = connected.peer
    conn.attempts = connected.attempts
    conn.phases[Phase.CONNECT] = connected.connect_ms
    conn.rtt_ms = kernel_rtt_ms(connected.sock)
    if conn.rtt_ms is not None:
        ctx.rtt.add(connected.address, conn.rtt_ms)
    return connected.sock
