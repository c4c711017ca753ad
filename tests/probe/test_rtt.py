"""Round trips: the kernel's RTT on TCP results, and the UDP wait derived from round trips measured in the run."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from lab.servers.udp import UdpSink
from probe.context import ProbeContext, ProbeSettings
from probe.model import CheckSpec, Protocol, Status, Target
from probe.reasons import Reason
from probe.resolve import SharedResolver
from probe.rtt import UDP_WAIT_FLOOR, RttBook, kernel_rtt_ms, network_of
from probe.tcp import probe_tcp
from probe.udp import probe_udp

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is read on Linux")


async def _no_lookup(name: str) -> object:
    raise AssertionError(f"no name lookups expected, got {name}")


def _ctx(timeout: float) -> ProbeContext:
    return ProbeContext(settings=ProbeSettings(timeout=timeout, env={}), resolver=SharedResolver(_no_lookup))  # type: ignore[arg-type]


def _spec(protocol: Protocol, port: int, host: str = "127.0.0.1") -> CheckSpec:
    return CheckSpec(id=f"{protocol.value}:{port}", target=Target(host=host, port=port, protocol=protocol))


@pytest.fixture
def listener() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_networks_are_slash_24_and_slash_64() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("[2001:db8::1]") == "2001:db8::/64"
    assert network_of("not-an-address") is None


def test_nothing_measured_means_the_whole_timeout() -> None:
    wait = RttBook().udp_wait("192.0.2.3", 5.0)
    assert (wait.seconds, wait.adaptive) == (5.0, False)
    assert "no round trip measured" in wait.basis


def test_the_wait_follows_the_round_trips_within_its_bounds() -> None:
    book = RttBook()
    book.add("192.0.2.1", 0.05)
    fast = book.udp_wait("192.0.2.3", 5.0)
    assert fast.adaptive and fast.seconds == UDP_WAIT_FLOOR
    assert "192.0.2.0/24" in fast.basis
    book.add("198.51.100.1", 400.0)
    # Another network's slow round trip does not touch 192.0.2.0/24's wait...
    assert book.udp_wait("192.0.2.3", 5.0).seconds == UDP_WAIT_FLOOR
    # ...but a network with nothing measured falls back to everything the run measured, capped by the timeout.
    other = book.udp_wait("203.0.113.5", 1.0)
    assert other.seconds == 1.0 and "none measured in 203.0.113.0/24" in other.basis
    book.add("192.0.2.2", 120.0)
    slow = book.udp_wait("192.0.2.3", 5.0)
    assert UDP_WAIT_FLOOR < slow.seconds <= 5.0


@linux_only
def test_kernel_rtt_of_a_loopback_connection(listener: int) -> None:
    with socket.create_connection(("127.0.0.1", listener)) as s:
        rtt = kernel_rtt_ms(s)
    assert rtt is not None and 0 < rtt < 100


@linux_only
async def test_tcp_result_reports_the_kernel_rtt_next_to_the_phase(listener: int) -> None:
    ctx = _ctx(1.0)
    result = await probe_tcp(_spec(Protocol.TCP, listener), ctx)
    assert result.status is Status.PASS, result.detail
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 100
    assert "connect" in result.phases_ms
    assert f"kernel RTT {result.rtt_ms:g} ms" in result.detail
    # ...and the run's book has it, for the UDP wait.
    assert ctx.rtt.udp_wait("127.0.0.9", 1.0).adaptive


@linux_only
async def test_udp_silence_is_waited_for_as_long_as_round_trips_say(listener: int) -> None:
    ctx = _ctx(2.0)
    assert (await probe_tcp(_spec(Protocol.TCP, listener), ctx)).reason is Reason.OK
    async with UdpSink() as sink:
        result = await probe_udp(_spec(Protocol.UDP, sink.port), ctx)
    assert result.reason is Reason.UDP_OPEN_FILTERED, result.detail
    assert result.udp is not None and result.udp.wait_ms is not None
    # At least the floor, far below the 2 s timeout.
    assert UDP_WAIT_FLOOR * 1000 <= result.udp.wait_ms < 1000
    assert result.udp.wait_basis is not None and "127.0.0.0/24" in result.udp.wait_basis
    assert f"waited {result.udp.wait_ms / 1000:.2f} s" in result.detail


async def test_udp_without_round_trips_waits_the_timeout_and_says_so() -> None:
    async with UdpSink() as sink:
        result = await probe_udp(_spec(Protocol.UDP, sink.port), _ctx(0.6))
    assert result.reason is Reason.UDP_OPEN_FILTERED, result.detail
    assert result.udp is not None and result.udp.wait_ms is not None
    assert result.udp.wait_ms >= 0.5 * 600
    assert result.udp.wait_basis is not None and result.udp.wait_basis.startswith("the timeout")
