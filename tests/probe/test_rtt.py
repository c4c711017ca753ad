"""Round trips: the kernel's RTT on TCP results, and the UDP wait derived from round trips measured in the run."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from lab.servers.udp import UdpSink
from probe.deadline import Deadline
from probe.model import CheckSpec, Protocol, Status, Target
from probe.probers.tcp import probe_tcp
from probe.probers.udp import probe_udp
from probe.reasons import Reason
from probe.rtt import UDP_WAIT_FLOOR, RttBook, kernel_rtt_ms, network_of
from probe.runner import run_prober
from probe.settings import ProbeSettings
from probe.transport.lookup import lookup
from tests.helpers.probes import no_lookup_context

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is read on Linux")


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
    ctx = no_lookup_context(1.0)
    result = await run_prober(probe_tcp, _spec(Protocol.TCP, listener), ctx)
    assert result.status is Status.PASS, result.detail
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 100
    assert "connect" in result.phases_ms
    assert f"kernel RTT {result.rtt_ms:g} ms" in result.detail
    # ...and the run's book has it, for the UDP wait.
    assert ctx.rtt.udp_wait("127.0.0.9", 1.0).adaptive


@linux_only
async def test_udp_silence_is_waited_for_as_long_as_round_trips_say(listener: int) -> None:
    ctx = no_lookup_context(2.0)
    assert (await run_prober(probe_tcp, _spec(Protocol.TCP, listener), ctx)).reason is Reason.OK
    async with UdpSink() as sink:
        result = await run_prober(probe_udp, _spec(Protocol.UDP, sink.port), ctx)
    assert result.reason is Reason.UDP_OPEN_FILTERED, result.detail
    assert result.udp is not None and result.udp.wait_ms is not None
    # At least the floor, far below the 2 s timeout.
    assert UDP_WAIT_FLOOR * 1000 <= result.udp.wait_ms < 1000
    assert result.udp.wait_basis is not None and "127.0.0.0/24" in result.udp.wait_basis
    assert f"waited {result.udp.wait_ms / 1000:.2f} s" in result.detail


async def test_udp_without_round_trips_waits_the_timeout_and_says_so() -> None:
    async with UdpSink() as sink:
        result = await run_prober(probe_udp, _spec(Protocol.UDP, sink.port), no_lookup_context(0.6))
    assert result.reason is Reason.UDP_OPEN_FILTERED, result.detail
    assert result.udp is not None and result.udp.wait_ms is not None
    assert result.udp.wait_ms >= 0.5 * 600
    assert result.udp.wait_basis is not None and result.udp.wait_basis.startswith("the timeout")


# --- timestamps where the event happens: answers arrive while the event loop is busy -------------


class _ThreadPeer:
    """A UDP peer in its own thread (it keeps answering while the test blocks the event loop),
    answering 50 ms late: ``dns`` answers A queries with 10.9.9.9, ``echo`` returns each datagram."""

    DELAY = 0.05

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _ThreadPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            time.sleep(self.DELAY)
            if self.kind == "echo":
                self.sock.sendto(data, addr)
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "10.9.9.9"))
            self.sock.sendto(response.to_wire(), addr)


def _hog_the_loop_soon(seconds: float) -> None:
    # Once the queries are out (20 ms), keep the event loop busy: the answers arrive meanwhile (50 ms),
    # and the loop gets to them only when it is free again (after 20 ms + ``seconds``).
    asyncio.get_running_loop().call_later(0.02, time.sleep, seconds)


@linux_only
async def test_dns_latency_is_when_the_answer_arrived_not_when_the_loop_got_to_it() -> None:
    with _ThreadPeer("dns") as peer:
        settings = ProbeSettings(timeout=2.0, dns_servers=[f"127.0.0.1:{peer.port}"], env={}, trust_env=False)
        _hog_the_loop_soon(0.4)
        res = await lookup("busy.example", settings, Deadline.after(settings.timeout))
    assert res.reason is Reason.OK, res.detail
    assert res.addresses == ["10.9.9.9"]
    assert res.latency_ms is not None and 40 < res.latency_ms < 200, res.latency_ms


@linux_only
async def test_udp_answer_latency_is_when_it_arrived(listener: int) -> None:
    with _ThreadPeer("echo") as peer:
        _hog_the_loop_soon(0.4)
        result = await run_prober(probe_udp, _spec(Protocol.UDP, peer.port), no_lookup_context(2.0))
    assert result.reason is Reason.UDP_OPEN, result.detail
    assert result.latency_ms is not None and 40 < result.latency_ms < 200, result.latency_ms
