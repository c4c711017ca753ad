"""UDP prober with nmap's port states: open, closed, filtered, open|filtered.

UDP has no handshake, so the answer is whatever comes back to one datagram (sent up to three
times, spread over the wait): a datagram means open; ICMP port unreachable means closed; any
other ICMP unreachable (or a local route that refuses) means filtered; silence means
open|filtered, which no test from inside can split: a service that ignores the payload and a
firewall that drops it look the same.

How long silence is waited for is derived from round trips measured to the same network during
the run (``RttBook.udp_wait``: nmap-style, srtt + 4 * rttvar with margins), bounded below by
``UDP_WAIT_FLOOR`` and above by the timeout; with nothing measured it is the timeout. The report
says how long it waited and why.

ICMP errors reach a connected UDP socket as a pending socket error, which epoll reports as an
error event: the socket's reader callback fires and ``recv()`` raises it. (asyncio-dgram's
``recv()`` is not woken by that error, so a prober built on it would call every closed port
open|filtered; this one reads the socket itself.) Replies are timestamped by the kernel
(SO_TIMESTAMPNS), so the latency is the network's, not the event loop's.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from probe import descriptors
from probe.deadline import Deadline, Stopwatch, now
from probe.facts import UdpFacts
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Phase, Recorder
from probe.rtt import CMSG_SPACE, UdpWait, arrival_ns, stamp_arrivals
from probe.transport.classify import errno_name
from probe.transport.connect import endpoint
from probe.transport.context import ProbeContext

SENDS = 3
# While nothing has been measured on the target's network, look again this often: round trips
# measured meanwhile by the run's other probes shorten the wait.
RECHECK = 0.05

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
    reason: Reason
    detail: str
    facts: UdpFacts
    latency_ms: float | None = None


def _outcome(
    state: UdpState, reason: Reason, detail: str, sent: int, *, icmp: str | None = None, latency_ms: float | None = None
) -> _Outcome:
    facts = UdpFacts(state=state, icmp=icmp, sent=sent, received=1 if state == "open" else 0)
    return _Outcome(reason, detail, facts, latency_ms)


def _enable_icmp_errors(sock: socket.socket) -> None:
    if not sys.platform.startswith("linux"):
        return
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
    stamp_arrivals(sock)


def _from_error(exc: OSError, peer: str, sent: int, latency_ms: float | None, *, at_connect: bool = False) -> _Outcome:
    name = errno_name(exc)
    if exc.errno == errno.ECONNREFUSED:
        detail = f"ICMP port unreachable from {peer}: nothing listens on this UDP port (closed)."
        return _outcome("closed", Reason.UDP_CLOSED, detail, sent, icmp=name, latency_ms=latency_ms)
    if at_connect and exc.errno == errno.EINVAL:
        meaning = "the local routing table discards it (blackhole route)"
    else:
        meaning = _MEANING.get(exc.errno or 0, str(exc.strerror or exc))
    when = "before any datagram left" if sent == 0 else f"after {sent} datagram{'s' * (sent > 1)}"
    detail = f"UDP {peer} is filtered: {name}, {meaning}, {when}."
    return _outcome("filtered", Reason.UDP_FILTERED, detail, sent, icmp=name, latency_ms=latency_ms)


@dataclass
class _Heard:
    """What the socket's reader callback saw, and when (wall-clock ns: the kernel's stamp if any)."""

    data: bytes | None
    error: OSError | None
    at_ns: int


def _read(sock: socket.socket) -> _Heard | None:
    """One datagram or the pending ICMP error; None when there is nothing to read after all."""
    seen = time.time_ns()
    try:
        data, ancdata, _flags, _addr = sock.recvmsg(65535, CMSG_SPACE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        at_ns = seen
        if sys.platform.startswith("linux"):
            # The ICMP message itself is on the error queue, stamped when the kernel received it.
            try:
                _d, ancdata, _f, _a = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                at_ns = arrival_ns(ancdata) or seen
            except OSError:
                pass
        return _Heard(None, exc, at_ns)
    return _Heard(data, None, arrival_ns(ancdata) or seen)


@dataclass
class _Waited:
    ms: float | None = None
    how: UdpWait | None = None


async def _exchange(
    address: str, port: int, payload: bytes, deadline: Deadline, *, wait_for: Callable[[], UdpWait], waited: _Waited
) -> _Outcome:
    peer = endpoint(address, port)
    loop = asyncio.get_running_loop()
    try:
        family, type_, proto, _, sockaddr = socket.getaddrinfo(
            address, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
        )[0]
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        descriptors.check(exc)
        return _from_error(exc, peer, 0, None, at_connect=True)
    sent = 0
    first_ns = 0
    try:
        sock.setblocking(False)
        _enable_icmp_errors(sock)
        try:
            # connect() on UDP only consults the routing table: unreachable/prohibit routes fail here.
            sock.connect(sockaddr)
        except OSError as exc:
            return _from_error(exc, peer, 0, None, at_connect=True)
        heard: asyncio.Future[_Heard] = loop.create_future()

        def readable() -> None:
            if not heard.done():
                got = _read(sock)
                if got is not None:
                    heard.set_result(got)

        fd = sock.fileno()
        loop.add_reader(fd, readable)
        try:
            start = now()
            while not heard.done():
                how = wait_for()
                waited.how = how
                at = now()
                send_at = start + sent * how.seconds / SENDS
                if sent < SENDS and at >= send_at:
                    # Before the send: on a short path the ICMP answer is stamped before send() returns.
                    sending_ns = time.time_ns()
                    try:
                        sock.send(payload)
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        # An ICMP error about an earlier datagram, reported by this send.
                        waited.ms = round((at - start) * 1000.0, 3)
                        return _from_error(exc, peer, sent, _ms_since(first_ns) if sent else None)
                    if sent == 0:
                        first_ns = sending_ns
                    sent += 1
                    continue
                end = min(deadline.at, start + how.seconds)
                if at >= end:
                    break
                wake = end
                if sent < SENDS:
                    wake = min(wake, start + sent * how.seconds / SENDS)
                if not how.adaptive:
                    wake = min(wake, at + RECHECK)
                await asyncio.wait((heard,), timeout=max(0.0, wake - at))
            waited.ms = round((now() - start) * 1000.0, 3)
        finally:
            loop.remove_reader(fd)
    finally:
        sock.close()
    if not heard.done():
        return _outcome("open|filtered", Reason.UDP_OPEN_FILTERED, "", sent)
    got = heard.result()
    ms = round(max(0, got.at_ns - first_ns) / 1e6, 3) if first_ns else None
    if got.error is not None:
        return _from_error(got.error, peer, sent, ms)
    data = got.data or b""
    detail = (
        f"UDP {peer} answered with {len(data)} byte{'s' * (len(data) != 1)} after {sent} "
        f"datagram{'s' * (sent > 1)} in {ms:g} ms (open)."
    )
    return _outcome("open", Reason.UDP_OPEN, detail, sent, latency_ms=ms)


def _ms_since(first_ns: int) -> float:
    return round((time.time_ns() - first_ns) / 1e6, 3)


async def probe_udp(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    """Send a datagram to host:port and report the nmap state of the port."""
    host, port = spec.target.host, spec.target.port
    if port is None:
        return rec.result(Reason.SKIPPED_MISSING_INPUT, f"No port given for the UDP check of {host}.")
    try:
        payload = bytes.fromhex(spec.payload_hex) or b"\x00"
    except ValueError:
        return rec.result(Reason.INTERNAL_ERROR, f"The UDP payload {spec.payload_hex!r} is not valid hex.")
    watch = Stopwatch()
    try:
        resolution = await rec.deadline.within(ctx.resolver.resolve(host))
    except TimeoutError:
        rec.conn.phases[Phase.RESOLVE] = watch.ms()
        return rec.result(Reason.DNS_TIMEOUT, f"Resolving {host} did not finish in time.")
    if resolution.facts.source == "dns":
        rec.conn.phases[Phase.RESOLVE] = watch.restart()
    rec.conn.dns = resolution.facts
    if not resolution.ok or not resolution.addresses:
        reason = resolution.reason if not resolution.ok else Reason.DNS_NO_ANSWER
        return rec.result(reason, resolution.detail)
    rec.conn.addresses = resolution.addresses
    # One address is probed, as nmap does: UDP cannot tell a dead address from a silent one. Only
    # an address the local routing table refuses outright (nothing sent) gives way to the next.
    watch.restart()
    waited = _Waited()
    for listed in resolution.addresses:
        address = listed.strip("[]")
        peer = endpoint(address, port)

        def wait_for(address: str = address) -> UdpWait:
            return ctx.rtt.udp_wait(address, ctx.settings.timeout)

        out = await _exchange(address, port, payload, rec.deadline, wait_for=wait_for, waited=waited)
        udp = out.facts
        rec.conn.attempts.append(f"{peer} {udp.state} after {udp.sent} datagram{'s' * (udp.sent != 1)}")
        if udp.sent > 0 or udp.state != "filtered":
            break
    rec.conn.peer = peer
    udp_ms = rec.conn.phases[Phase.UDP] = watch.ms()
    if out.latency_ms is not None:
        # A reply or an ICMP error is a round trip too.
        ctx.rtt.add(address, out.latency_ms)
    udp.wait_ms = waited.ms
    udp.wait_basis = waited.how.basis if waited.how is not None else None
    if udp.state == "open|filtered":
        how = f" (waited {waited.ms / 1000:.2f} s after the first datagram)" if waited.ms is not None else ""
        out.detail = (
            f"No reply and no ICMP error from UDP {peer} to {udp.sent} "
            f"datagram{'s' * (udp.sent != 1)} in {udp_ms / 1000:.1f} s{how}: open|filtered. "
            "This cannot be confirmed from inside: a silent service and a silent firewall look the same."
        )
        udp.note = OPEN_FILTERED_NOTE
    return rec.result(out.reason, out.detail, latency_ms=out.latency_ms, udp=udp)
