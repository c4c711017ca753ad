"""Round-trip times: the kernel's own measurement of a TCP connection, and the run's book of them.

``kernel_rtt_ms`` reads TCP_INFO's ``tcpi_rtt``: the kernel times the SYN / SYN-ACK exchange
itself, so the figure is the network's, whatever the event loop was busy with meanwhile.

``RttBook`` collects those samples per network and derives how long a UDP probe should wait for
an answer that may never come, as nmap derives its timeouts from measured round trips
(nmap's ``srtt + 4 * rttvar``, bounded by its min/max RTT timeouts; RFC 6298 section 2).
"""

from __future__ import annotations

import ipaddress
import platform
import socket
import struct
import sys
from dataclasses import dataclass

# struct tcp_info (linux/tcp.h): eight u8 fields, then u32s; tcpi_rtt is the 16th u32, in microseconds.
_TCPI_RTT_OFFSET = 8 + 15 * 4
_TCP_INFO_LEN = 104

# The UDP wait's bounds. The floor covers an ICMP error generated on a router's slow path, well
# above any RTT inside one region (nmap's own --min-rtt-timeout default is 100 ms).
UDP_WAIT_FLOOR = 0.25
# Multiples of the measured figures: the answer (or the ICMP error) may be slower to make than a SYN-ACK.
_RTO_FACTOR = 2.0
_MAX_FACTOR = 4.0


# SO_TIMESTAMPNS (asm-generic/socket.h; SCM_TIMESTAMPNS has the same value): the kernel's receive
# time of each datagram, as a struct timespec. Other architectures number it differently.
_SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "aarch64") else None
_TIMESPEC = struct.Struct("@qq")
# Ancillary buffer for recvmsg: room for the timestamp.
CMSG_SPACE = 64


def stamp_arrivals(sock: socket.socket) -> None:
    """Ask the kernel to stamp each datagram (and error) this socket receives (see ``arrival_ns``)."""
    if _SO_TIMESTAMPNS is not None:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)


def arrival_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's receive time (wall clock, ns) from recvmsg's ancillary data, if stamped."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec * 1_000_000_000 + nsec)
    return None


def kernel_rtt_ms(sock: socket.socket) -> float | None:
    """The kernel's smoothed RTT of a connected TCP socket (Linux TCP_INFO), or None when unknown."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None
    if len(raw) < _TCPI_RTT_OFFSET + 4:
        return None
    rtt_us = int.from_bytes(raw[_TCPI_RTT_OFFSET : _TCPI_RTT_OFFSET + 4], sys.byteorder)
    # 0: no sample (e.g. only a retransmitted SYN without timestamps, Karn's rule).
    return rtt_us / 1000.0 if rtt_us else None


def network_of(address: str) -> str | None:
    """The network an address is taken to share with its neighbours: its /24 (IPv4) or /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass
class _Estimate:
    """RFC 6298 section 2 estimator, plus the largest sample."""

    count: int = 0
    srtt: float = 0.0
    rttvar: float = 0.0
    largest: float = 0.0

    def add(self, rtt: float) -> None:
        if self.count == 0:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.largest = max(self.largest, rtt)
        self.count += 1

    def wait(self) -> float:
        return max(_RTO_FACTOR * (self.srtt + 4 * self.rttvar), _MAX_FACTOR * self.largest)


@dataclass(frozen=True)
class UdpWait:
    """How long a UDP probe waits for an answer after its first datagram, and why."""

    seconds: float
    basis: str
    adaptive: bool


class RttBook:
    """Round trips measured during the run, by network (see ``network_of``) and overall."""

    def __init__(self) -> None:
        self._nets: dict[str, _Estimate] = {}
        self._all = _Estimate()

    def add(self, address: str, rtt_ms: float) -> None:
        net = network_of(address)
        if net is None or rtt_ms <= 0:
            return
        self._nets.setdefault(net, _Estimate()).add(rtt_ms / 1000.0)
        self._all.add(rtt_ms / 1000.0)

    def udp_wait(self, address: str, ceiling: float) -> UdpWait:
        """The wait for ``address``: from round trips to its network, else to any network this run
        reached, bounded by UDP_WAIT_FLOOR and ``ceiling``; the whole ``ceiling`` when nothing was measured.
        """
        net = network_of(address)
        est = self._nets.get(net) if net is not None else None
        where = f"{net}"
        if est is None and self._all.count:
            est, where = self._all, f"the run's other networks (none measured in {net})"
        if est is None:
            return UdpWait(ceiling, "the timeout: no round trip measured on this network yet", adaptive=False)
        seconds = min(ceiling, max(UDP_WAIT_FLOOR, est.wait()))
        basis = (
            f"{est.count} round trip{'s' * (est.count != 1)} measured to {where} (TCP handshakes, UDP answers, "
            f"ICMP errors): srtt {est.srtt * 1000:.3f} ms, largest {est.largest * 1000:.3f} ms; "
            f"bounds {UDP_WAIT_FLOOR * 1000:.0f} ms to {ceiling * 1000:.0f} ms"
        )
        return UdpWait(seconds, basis, adaptive=True)
