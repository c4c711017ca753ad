"""Get a connected TCP socket to host:port: resolve once, connect direct, or tunnel through a proxy.

Every TCP-based prober (tcp, tls, websocket, http, smb) dials through here, so the route taken
(direct or proxy), the addresses tried and the phase timings are recorded the same way.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from probe.context import ProbeContext
from probe.model import DnsFacts, ProxyFacts, Route
from probe.reasons import Reason
from probe.rtt import kernel_rtt_ms
from probe.tcp import ConnectFailed, connect_tcp
from probe.timing import Stopwatch, within


@dataclass
class DialInfo:
    """What dialing learned, whether it succeeded or not."""

    route: Route = "direct"
    addresses: list[str] = field(default_factory=list)
    peer: str | None = None
    attempts: list[str] = field(default_factory=list)
    phases_ms: dict[str, float] = field(default_factory=dict)
    # The kernel's RTT of the connection (to the proxy when proxied).
    rtt_ms: float | None = None
    dns: DnsFacts | None = None
    proxy: ProxyFacts | None = None

    def result_fields(self) -> dict[str, Any]:
        """What every TCP-based result records about how it got (or failed to get) its connection."""
        return {
            "addresses": self.addresses,
            "peer": self.peer,
            "route": self.route,
            "phases_ms": dict(self.phases_ms),
            "rtt_ms": self.rtt_ms,
            "attempts": self.attempts,
            "dns": self.dns,
            "proxy": self.proxy,
        }


class DialFailed(Exception):
    def __init__(self, reason: Reason, detail: str, info: DialInfo) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.info = info


async def dial(
    ctx: ProbeContext, host: str, port: int, deadline: float, *, tls: bool, allow_proxy: bool = True
) -> tuple[socket.socket, DialInfo]:
    """Return a connected, non-blocking socket (a CONNECT tunnel when a proxy applies).

    ``tls`` says whether the caller will speak TLS on it; it selects HTTPS_PROXY vs HTTP_PROXY.
    Raises DialFailed with a dns_*, tcp_* or proxy_* reason; never anything else for network faults.
    """
    info = DialInfo()
    choice = ctx.proxy_for(host, port, tls=tls) if allow_proxy else None
    if choice is not None:
        from probe.proxy import ProxyFailed, open_tunnel

        info.route = "proxy"
        watch = Stopwatch()
        try:
            sock, facts = await open_tunnel(ctx, choice, host, port, deadline)
        except ProxyFailed as exc:
            info.proxy = exc.facts
            info.phases_ms["proxy_connect"] = watch.ms()
            info.attempts.extend(exc.attempts)
            raise DialFailed(exc.reason, exc.detail, info) from None
        info.proxy = facts
        info.peer = facts.url
        info.phases_ms["proxy_connect"] = watch.ms()
        info.rtt_ms = kernel_rtt_ms(sock)
        return sock, info

    watch = Stopwatch()
    try:
        resolution = await within(ctx.resolver.resolve(host), deadline)
    except TimeoutError:
        info.phases_ms["resolve"] = watch.ms()
        raise DialFailed(Reason.DNS_TIMEOUT, f"resolving {host} did not finish in time", info) from None
    info.dns = resolution.facts
    info.addresses = resolution.addresses
    if resolution.facts.source == "dns":
        info.phases_ms["resolve"] = watch.ms()
    if not resolution.ok:
        raise DialFailed(resolution.reason, resolution.detail, info)
    try:
        connected = await connect_tcp(info.addresses, port, deadline)
    except ConnectFailed as exc:
        info.attempts = exc.attempts
        info.phases_ms["connect"] = exc.elapsed_ms
        raise DialFailed(exc.reason, exc.detail, info) from None
    info.peer = connected.peer
    info.attempts = connected.attempts
    info.phases_ms["connect"] = connected.connect_ms
    info.rtt_ms = kernel_rtt_ms(connected.sock)
    if info.rtt_ms is not None:
        ctx.rtt.add(connected.address, info.rtt_ms)
    return connected.sock, info
