"""probe_udp against real UDP peers on loopback and real ICMP/route errors inside a namespace."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import textwrap
from pathlib import Path

import asyncio_dgram
import pytest

from lab.servers.udp import UdpEcho, UdpSink
from probe.deadline import Deadline
from probe.model import CheckResult, CheckSpec, Confidence, DnsFacts, Protocol, Status, Target
from probe.probers.udp import SENDS, probe_udp
from probe.reasons import Reason
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from probe.transport.resolve import LookupFn, Resolution, literal_resolution
from tests.helpers.netns import python_in_netns, requires_netns
from tests.helpers.ports import closed_udp_port
from tests.helpers.probes import no_lookup, no_lookup_context

TIMEOUT = 0.5
REPO = Path(__file__).resolve().parents[2]


def make_ctx(timeout: float = TIMEOUT, lookup: LookupFn = no_lookup) -> ProbeContext:
    return no_lookup_context(timeout, lookup)


def spec(host: str, port: int | None, payload_hex: str = "") -> CheckSpec:
    return CheckSpec(id="udp", target=Target(host=host, port=port, protocol=Protocol.UDP), payload_hex=payload_hex)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_echo_is_open() -> None:
    async with UdpEcho() as echo:
        result = await run_prober(probe_udp, spec("127.0.0.1", echo.port, "deadbeef"), make_ctx())
    assert result.status is Status.PASS, result.detail
    assert result.reason is Reason.UDP_OPEN
    assert result.udp is not None
    assert result.udp.state == "open"
    assert (result.udp.sent, result.udp.received) == (1, 1)
    assert echo.received == 1
    assert "4 bytes" in result.detail
    assert result.latency_ms is not None and result.latency_ms < TIMEOUT * 1000
    assert result.peer == f"127.0.0.1:{echo.port}"


async def test_closed_port_is_closed_not_open_filtered() -> None:
    # The asyncio-dgram trap: its recv() is not woken by ICMP port unreachable, so a naive
    # prober waits out the timeout and reports open|filtered here.
    port = closed_udp_port()
    result = await run_prober(probe_udp, spec("127.0.0.1", port), make_ctx(timeout=2.0))
    assert result.reason is Reason.UDP_CLOSED, result.detail
    assert result.status is Status.FAIL
    assert result.confidence is Confidence.CONFIRMED
    assert result.udp is not None
    assert result.udp.state == "closed"
    assert result.udp.icmp == "ECONNREFUSED"
    assert result.udp.sent == 1
    # Order of magnitude only: the ICMP answer comes long before the first retransmission (0.67 s).
    assert result.phases_ms["udp"] < 500, "must not wait for a retransmission to notice"


async def test_the_trap_is_real_for_a_naive_recv() -> None:
    """Proves the test above can fail: plain recv() on a closed port only times out."""
    port = closed_udp_port()
    stream = await asyncio_dgram.connect(("127.0.0.1", port))
    try:
        await stream.send(b"\x00")
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await Deadline(loop.time() + 0.2).within(stream.recv())
        with pytest.raises(ConnectionRefusedError):
            _ = stream.exception
    finally:
        stream.close()


async def test_sink_is_open_filtered_and_says_it_cannot_be_confirmed() -> None:
    async with UdpSink() as sink:
        result = await run_prober(probe_udp, spec("127.0.0.1", sink.port), make_ctx())
        await asyncio.sleep(0.05)
        received = sink.received
    assert result.status is Status.WARN, result.detail
    assert result.reason is Reason.UDP_OPEN_FILTERED
    assert result.confidence is Confidence.UNCONFIRMED
    assert result.latency_ms is None
    assert result.udp is not None
    assert result.udp.state == "open|filtered"
    assert result.udp.icmp is None
    assert result.udp.sent == SENDS
    assert received == SENDS, "every retransmission must reach the peer"
    assert result.udp.note is not None and "cannot be confirmed from inside" in result.udp.note
    assert "cannot be confirmed from inside" in result.detail
    assert "silent service and a silent firewall" in result.detail
    # Bounded by the timeout: waits it out, but not much longer.
    assert TIMEOUT * 1000 * 0.5 < result.phases_ms["udp"] < TIMEOUT * 1000 * 3


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_echo_and_closed() -> None:
    async with UdpEcho("::1") as echo:
        opened = await run_prober(probe_udp, spec("::1", echo.port), make_ctx())
    closed = await run_prober(probe_udp, spec("::1", closed_udp_port("::1")), make_ctx(timeout=2.0))
    assert opened.reason is Reason.UDP_OPEN, opened.detail
    assert opened.peer == f"[::1]:{echo.port}"
    assert closed.reason is Reason.UDP_CLOSED, closed.detail


async def test_name_is_resolved_through_the_shared_resolver() -> None:
    asked: list[str] = []

    async def lookup(name: str) -> Resolution:
        asked.append(name)
        res = literal_resolution("127.0.0.1")
        assert res is not None
        facts = DnsFacts(query=name, records=res.facts.records, source="dns")
        return Resolution(Reason.OK, "resolved", facts, 1.0)

    async with UdpEcho() as echo:
        result = await run_prober(probe_udp, spec("tundra.example.test", echo.port), make_ctx(lookup=lookup))
    assert asked == ["tundra.example.test"]
    assert result.reason is Reason.UDP_OPEN, result.detail
    assert result.addresses == ["127.0.0.1"]
    assert "resolve" in result.phases_ms


async def test_dns_failure_keeps_the_dns_reason() -> None:
    async def lookup(name: str) -> Resolution:
        return Resolution(Reason.DNS_NXDOMAIN, f"{name} does not exist.", DnsFacts(query=name, rcode="NXDOMAIN"))

    result = await run_prober(probe_udp, spec("missing.example.test", 9), make_ctx(lookup=lookup))
    assert result.status is Status.FAIL
    assert result.reason is Reason.DNS_NXDOMAIN
    assert result.udp is None


async def test_missing_port_is_skipped() -> None:
    result = await run_prober(probe_udp, spec("127.0.0.1", None), make_ctx())
    assert result.status is Status.SKIP
    assert result.reason is Reason.SKIPPED_MISSING_INPUT


# -- closed and filtered: real route and ICMP errors inside a throwaway network namespace ---------

_NETNS_PROBE = textwrap.dedent(
    """
    import asyncio, json, socket
    from probe.transport.context import ProbeContext
    from probe.settings import ProbeSettings
    from probe.probers.tcp import probe_tcp
    from lab.servers.udp import UdpEcho
    from probe.model import AddressRecord, CheckSpec, DnsFacts, Protocol, Target
    from probe.reasons import Reason
    from probe.transport.resolve import Resolution, SharedResolver
    from probe.probers.udp import probe_udp
    from probe.runner import run_prober
    from tests.helpers.icmp import DelayedUnreachable

    async def lookup(name):
        assert name == "dual.example.test", name
        records = [AddressRecord(address=a, family="ipv4") for a in ("203.0.113.9", "127.0.0.1")]
        return Resolution(Reason.OK, "fixed", DnsFacts(query=name, records=records), 0.1)

    async def probe(host, port, timeout):
        ctx = ProbeContext(settings=ProbeSettings(timeout=timeout, env={}), resolver=SharedResolver(lookup))
        spec = CheckSpec(id=host, target=Target(host=host, port=port, protocol=Protocol.UDP))
        return json.loads((await run_prober(probe_udp, spec, ctx)).model_dump_json())

    async def probe_after_a_round_trip(host, port, timeout):
        # A TCP handshake with another host of the same /24 first: the UDP wait is then derived from
        # its round trip (a fraction of a millisecond here), not the timeout.
        listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
        ctx = ProbeContext(settings=ProbeSettings(timeout=timeout, env={}), resolver=SharedResolver(lookup))
        tcp_port = listener.getsockname()[1]
        tcp = CheckSpec(id="tcp", target=Target(host="127.0.0.1", port=tcp_port, protocol=Protocol.TCP))
        assert (await run_prober(probe_tcp, tcp, ctx)).reason is Reason.OK
        listener.close()
        spec = CheckSpec(id=host, target=Target(host=host, port=port, protocol=Protocol.UDP))
        return json.loads((await run_prober(probe_udp, spec, ctx)).model_dump_json())

    async def main():
        out = {}
        with DelayedUnreachable(3, delay=0.15) as peer:
            out["icmp_port_adaptive"] = await probe_after_a_round_trip(*peer.address, 2.0)
        for name, host in [("prohibit", "203.0.113.9"), ("unreachable", "203.0.113.10"),
                           ("blackhole", "203.0.113.11"), ("arp_failure", "10.255.255.2")]:
            out[name] = await probe(host, 53, 0.6)
        for name, code in [("icmp_port", 3), ("icmp_net", 0), ("icmp_host", 1), ("icmp_admin", 13)]:
            with DelayedUnreachable(code, delay=0.15) as peer:
                out[name] = await probe(*peer.address, 2.0)
        async with UdpEcho() as echo:
            out["fallback"] = await probe("dual.example.test", echo.port, 0.6)
        print(json.dumps(out))

    asyncio.run(main())
    """
)

_NETNS_SETUP = [
    "ip route add prohibit 203.0.113.9/32",
    "ip route add unreachable 203.0.113.10/32",
    "ip route add blackhole 203.0.113.11/32",
    # A link where 10.255.255.2 never answers ARP: after one 100 ms probe the kernel sends
    # itself ICMP host unreachable, an ICMP error generated by the kernel, not by the test.
    "ip link add amlp0 type veth peer name amlp1",
    "ip link set amlp0 up",
    "ip link set amlp1 up",
    "ip addr add 10.255.255.1/30 dev amlp0",
    "echo 1 > /proc/sys/net/ipv4/neigh/amlp0/mcast_solicit",
    "echo 100 > /proc/sys/net/ipv4/neigh/amlp0/retrans_time_ms",
]


@pytest.fixture(scope="module")
def netns_results() -> dict[str, CheckResult]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = python_in_netns(_NETNS_SETUP, _NETNS_PROBE, timeout=30.0, env=env)
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: CheckResult.model_validate(r) for name, r in raw.items()}


@requires_netns
@pytest.mark.netns
def test_delayed_icmp_port_unreachable_is_closed(netns_results: dict[str, CheckResult]) -> None:
    # The trap as it shows on a real network: the ICMP error arrives while recv() already waits,
    # and asyncio-dgram does not wake it. It must be seen at once, not at the retransmission
    # (0.67 s) nor at the timeout (2 s).
    result = netns_results["icmp_port"]
    assert result.reason is Reason.UDP_CLOSED, result.detail
    assert result.confidence is Confidence.CONFIRMED
    assert result.udp is not None
    assert result.udp.icmp == "ECONNREFUSED"
    assert result.latency_ms is not None
    assert 100 < result.latency_ms < 500


@requires_netns
@pytest.mark.netns
def test_delayed_icmp_is_seen_within_the_adaptive_wait(netns_results: dict[str, CheckResult]) -> None:
    # Issue 13: with a round trip measured to the same network, the wait shrinks from the timeout
    # (2 s) to its floor (250 ms); an ICMP port unreachable arriving 150 ms late must still count.
    result = netns_results["icmp_port_adaptive"]
    assert result.reason is Reason.UDP_CLOSED, result.detail
    assert result.udp is not None
    assert result.udp.icmp == "ECONNREFUSED"
    assert result.udp.wait_basis is not None and "127.0.0.0/24" in result.udp.wait_basis
    assert result.latency_ms is not None and 100 < result.latency_ms < 500


@requires_netns
@pytest.mark.netns
@pytest.mark.parametrize(
    ("case", "icmp"),
    [
        # Soft errors: Linux reports these to a UDP socket only with IP_RECVERR set.
        ("icmp_net", "ENETUNREACH"),
        ("icmp_host", "EHOSTUNREACH"),
        ("icmp_admin", "EHOSTUNREACH"),
        ("arp_failure", "EHOSTUNREACH"),
    ],
)
def test_icmp_unreachable_is_filtered(netns_results: dict[str, CheckResult], case: str, icmp: str) -> None:
    result = netns_results[case]
    assert result.reason is Reason.UDP_FILTERED, result.detail
    assert result.status is Status.FAIL
    assert result.udp is not None
    assert result.udp.state == "filtered"
    assert result.udp.icmp == icmp
    assert result.udp.sent >= 1
    assert result.latency_ms is not None and result.latency_ms < 500


@requires_netns
@pytest.mark.netns
@pytest.mark.parametrize(
    ("case", "icmp"),
    [("prohibit", "EACCES"), ("unreachable", "EHOSTUNREACH"), ("blackhole", "EINVAL")],
)
def test_local_route_errors_are_filtered(netns_results: dict[str, CheckResult], case: str, icmp: str) -> None:
    result = netns_results[case]
    assert result.reason is Reason.UDP_FILTERED, result.detail
    assert result.udp is not None
    assert result.udp.state == "filtered"
    assert result.udp.icmp == icmp
    # The route refuses at connect(): nothing was sent.
    assert result.udp.sent == 0
    assert "before any datagram left" in result.detail


@requires_netns
@pytest.mark.netns
def test_an_address_the_route_refuses_gives_way_to_the_next(netns_results: dict[str, CheckResult]) -> None:
    result = netns_results["fallback"]
    assert result.reason is Reason.UDP_OPEN, result.detail
    assert result.peer is not None
    port = result.peer.rpartition(":")[2]
    assert result.peer == f"127.0.0.1:{port}"
    assert result.attempts == [
        f"203.0.113.9:{port} filtered after 0 datagrams",
        f"127.0.0.1:{port} open after 1 datagram",
    ]
