"""UDP prober with nmap's port states: open, closed, filtered, open|filtered.

UDP has no handshake, so the answer is whatever comes back to one datagram (sent up to three
times, spread over the timeout): a datagram means open; ICMP port unreachable means closed; any
other ICMP unreachable (or a local route that refuses) means filtered; silence means
open|filtered, which no test from inside can split: a service that ignores the payload and a
firewall that drops it look the same.

ICMP errors reach a connected UDP socket as a pending socket error. asyncio-dgram queues that
error but does not wake a pending ``recv()`` for it, so a plain ``await recv()`` would time out
and call every closed port open|filtered. The wait here is therefore cut into short slices,
each new ``recv()`` first re-raising any queued error.
"""

from __future__ import annotations

import errno
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import asyncio_dgram

from probe.context import ProbeContext, make_result
from probe.model import CheckResult, CheckSpec, Confidence, Status, UdpFacts
from probe.reasons import Reason
from probe.tcp import endpoint
from probe.timing import Stopwatch, now, remaining, within

SENDS = 3
# How late a queued ICMP error may be noticed; also bounds the latency's error.
SLICE = 0.010

# Linux: without IP_RECVERR a connected UDP socket only learns of "hard" ICMP errors (port or
# protocol unreachable, administratively prohibited); plain host/net unreachable from a router
# are dropped. The constants are missing from Python's socket module.
_IP_RECVERR = 11
_IPV6_RECVERR = 25

OPEN_FILTERED_NOTE = (
    "open|filtered cannot be confirmed from inside: no reply and no ICMP error came back, and a "
    "silent service that ignores this payload looks exactly like a firewall that drops it."
)

_MEANING = {
    errno.EHOSTUNREACH: "host unreachable or administratively prohibited (ICMP)",
    errno.ENETUNREACH: "network unreachable (ICMP or no route)",
    errno.EHOSTDOWN: "host down",
    errno.ENETDOWN: "network down",
    errno.EACCES: "prohibited by local policy (a prohibit route or local firewall)",
    errno.EPERM: "prohibited by local firewall",
    errno.ENOPROTOOPT: "protocol unreachable (ICMP)",
    errno.EADDRNOTAVAIL: "no local address can reach it",
}


UdpState = Literal["open", "closed", "filtered", "open|filtered"]


@dataclass
class _Outcome:
    state: UdpState
    reason: Reason
    status: Status
    detail: str
    sent: int
    received: int = 0
    icmp: str | None = None
    latency_ms: float | None = None
    confidence: Confidence = Confidence.CONFIRMED
    note: str | None = None


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def _enable_icmp_errors(stream: asyncio_dgram.DatagramClient) -> None:
    if not sys.platform.startswith("linux"):
        return
    sock = stream.socket
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)


def _from_error(exc: OSError, peer: str, sent: int, latency_ms: float | None, *, at_connect: bool = False) -> _Outcome:
    name = _errno_name(exc)
    if exc.errno == errno.ECONNREFUSED:
        detail = f"ICMP port unreachable from {peer}: nothing listens on this UDP port (closed)."
        return _Outcome("closed", Reason.UDP_CLOSED, Status.FAIL, detail, sent, icmp=name, latency_ms=latency_ms)
    if at_connect and exc.errno == errno.EINVAL:
        meaning = "the local routing table discards it (blackhole route)"
    else:
        meaning = _MEANING.get(exc.errno or 0, str(exc.strerror or exc))
    when = "before any datagram left" if sent == 0 else f"after {sent} datagram{'s' * (sent > 1)}"
    detail = f"UDP {peer} is filtered: {name}, {meaning}, {when}."
    return _Outcome("filtered", Reason.UDP_FILTERED, Status.FAIL, detail, sent, icmp=name, latency_ms=latency_ms)


async def _exchange(address: str, port: int, payload: bytes, deadline: float) -> _Outcome:
    peer = endpoint(address, port)
    try:
        stream = await within(asyncio_dgram.connect((address, port)), deadline)
    except TimeoutError:
        return _Outcome("open|filtered", Reason.UDP_OPEN_FILTERED, Status.WARN, "", 0)
    except OSError as exc:
        # connect() on UDP only consults the routing table: unreachable/prohibit routes fail here.
        return _from_error(exc, peer, 0, None, at_connect=True)
    sent = 0
    watch = Stopwatch()
    try:
        _enable_icmp_errors(stream)
        start, budget = now(), remaining(deadline)
        send_at = [start + i * budget / SENDS for i in range(SENDS)]
        while True:
            if sent < SENDS and now() >= send_at[sent]:
                await within(stream.send(payload), deadline)
                sent += 1
            if remaining(deadline) <= 0:
                break
            until = min(deadline, now() + SLICE, send_at[sent] if sent < SENDS else deadline)
            try:
                data, _ = await within(stream.recv(), until)
            except TimeoutError:
                continue
            ms = watch.ms()
            detail = (
                f"UDP {peer} answered with {len(data)} byte{'s' * (len(data) != 1)} after {sent} "
                f"datagram{'s' * (sent > 1)} in {ms:g} ms (open)."
            )
            return _Outcome("open", Reason.UDP_OPEN, Status.PASS, detail, sent, received=1, latency_ms=ms)
        # An error that arrived during the last slice.
        _ = stream.exception
    except OSError as exc:
        return _from_error(exc, peer, sent, watch.ms() if sent else None)
    except TimeoutError:
        pass
    finally:
        stream.close()
    return _Outcome("open|filtered", Reason.UDP_OPEN_FILTERED, Status.WARN, "", sent)


async def probe_udp(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """Send a datagram to host:port and report the nmap state of the port."""
    started = datetime.now(timezone.utc)
    host, port = spec.target.host, spec.target.port
    if port is None:
        return make_result(
            spec,
            Status.SKIP,
            Reason.SKIPPED_MISSING_INPUT,
            f"No port given for the UDP check of {host}.",
            started_at=started,
        )
    try:
        payload = bytes.fromhex(spec.payload_hex) or b"\x00"
    except ValueError:
        return make_result(
            spec,
            Status.FAIL,
            Reason.INTERNAL_ERROR,
            f"The UDP payload {spec.payload_hex!r} is not valid hex.",
            started_at=started,
        )
    deadline = ctx.deadline()
    phases: dict[str, float] = {}
    watch = Stopwatch()
    try:
        resolution = await within(ctx.resolver.resolve(host), deadline)
    except TimeoutError:
        return make_result(
            spec,
            Status.FAIL,
            Reason.DNS_TIMEOUT,
            f"Resolving {host} did not finish in time.",
            confidence=Confidence.LIKELY,
            started_at=started,
            phases_ms={"resolve": watch.ms()},
        )
    if resolution.facts.source == "dns":
        phases["resolve"] = watch.restart()
    if not resolution.ok or not resolution.addresses:
        reason = resolution.reason if not resolution.ok else Reason.DNS_NO_ANSWER
        return make_result(
            spec,
            Status.FAIL,
            reason,
            resolution.detail,
            confidence=Confidence.LIKELY if reason is Reason.DNS_TIMEOUT else Confidence.CONFIRMED,
            started_at=started,
            phases_ms=phases,
            dns=resolution.facts,
        )
    # One address is probed, as nmap does: UDP cannot tell a dead address from a silent one. Only
    # an address the local routing table refuses outright (nothing sent) gives way to the next.
    attempts: list[str] = []
    watch.restart()
    for listed in resolution.addresses:
        address = listed.strip("[]")
        peer = endpoint(address, port)
        out = await _exchange(address, port, payload, deadline)
        attempts.append(f"{peer} {out.state} after {out.sent} datagram{'s' * (out.sent != 1)}")
        if out.sent > 0 or out.state != "filtered":
            break
    phases["udp"] = watch.ms()
    if out.state == "open|filtered":
        out.detail = (
            f"No reply and no ICMP error from UDP {peer} to {out.sent} "
            f"datagram{'s' * (out.sent != 1)} in {phases['udp'] / 1000:.1f} s: open|filtered. "
            "This cannot be confirmed from inside: a silent service and a silent firewall look the same."
        )
        out.confidence = Confidence.UNCONFIRMED
        out.note = OPEN_FILTERED_NOTE
    return make_result(
        spec,
        out.status,
        out.reason,
        out.detail,
        confidence=out.confidence,
        started_at=started,
        latency_ms=out.latency_ms,
        addresses=resolution.addresses,
        peer=peer,
        phases_ms=phases,
        attempts=attempts,
        dns=resolution.facts,
        udp=UdpFacts(
            state=out.state,
            icmp=out.icmp,
            sent=out.sent,
            received=out.received,
            note=out.note,
        ),
    )
