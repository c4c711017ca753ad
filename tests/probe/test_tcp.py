"""The tcp prober and TCP connect (probe.transport.connect) against real peers: loopback listeners, closed ports, full accept queues, namespaces."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from probe.deadline import Deadline
from probe.errors import ConnectFailed
from probe.model import CheckSpec, Confidence, Protocol, Status, Target
from probe.probers.tcp import probe_tcp
from probe.reasons import Reason
from probe.runner import run_prober
from probe.transport.connect import connect_tcp, interleave
from probe.transport.context import ProbeContext
from tests.helpers.netns import DROP_SETUP, drop_route, python_in_netns, requires_netns
from tests.helpers.probes import probe_context

REPO = Path(__file__).resolve().parents[2]


def tcp_spec(host: str, port: int | None) -> CheckSpec:
    return CheckSpec(id=f"tcp-{host}-{port}", target=Target(host=host, port=port, protocol=Protocol.TCP))


@pytest.fixture
def listener() -> Iterator[Callable[..., int]]:
    """``listener(host, port=0) -> port``: a socket in LISTEN state (the kernel completes handshakes)."""
    held: list[socket.socket] = []

    def make(host: str = "127.0.0.1", port: int = 0) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        held.append(s)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(16)
        bound: int = s.getsockname()[1]
        return bound

    yield make
    for s in held:
        s.close()


def test_interleave_puts_ipv6_first_and_alternates() -> None:
    addrs = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2", "192.0.2.1"]
    assert interleave(addrs) == ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"]


async def test_open_port_passes_with_connect_time(listener: Callable[..., int]) -> None:
    port = listener()
    result = await run_prober(probe_tcp, tcp_spec("127.0.0.1", port), probe_context())
    assert result.status is Status.PASS
    assert result.reason is Reason.OK
    assert result.peer == f"127.0.0.1:{port}"
    assert result.route == "direct"
    assert result.addresses == ["127.0.0.1"]
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000
    assert result.latency_ms == result.phases_ms["connect"]
    assert result.attempts == [result.attempts[0]] and "connected" in result.attempts[0]
    assert result.detail.startswith(f"Connected to 127.0.0.1:{port} in ")
    assert result.dns is not None and result.dns.source == "literal"


async def test_closed_port_is_refused_and_confirmed(closed_port: int) -> None:
    result = await run_prober(probe_tcp, tcp_spec("127.0.0.1", closed_port), probe_context())
    assert result.status is Status.FAIL
    assert result.reason is Reason.TCP_REFUSED
    assert result.confidence is Confidence.CONFIRMED
    assert "refused" in result.detail and f"127.0.0.1:{closed_port}" in result.detail
    assert len(result.attempts) == 1 and "refused in" in result.attempts[0]
    assert "connect" in result.phases_ms


async def test_full_accept_queue_times_out_and_is_only_likely(full_backlog: Callable[..., int]) -> None:
    port = full_backlog()
    result = await run_prober(probe_tcp, tcp_spec("127.0.0.1", port), probe_context(timeout=0.4))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TCP_TIMEOUT
    assert result.confidence is Confidence.LIKELY
    assert "timed out after" in result.detail and "dropped silently" in result.detail
    assert "timed out after" in result.attempts[0]
    # Bounded by the deadline, not by the kernel's SYN retries (minutes).
    assert result.phases_ms["connect"] < 3000


async def test_name_is_resolved_once_and_dns_facts_kept(listener: Callable[..., int]) -> None:
    port = listener()
    ctx = probe_context(hosts={"svc.test": ["127.0.0.1"]})
    result = await run_prober(probe_tcp, tcp_spec("svc.test", port), ctx)
    assert result.status is Status.PASS
    assert result.dns is not None and result.dns.query == "svc.test"
    assert "resolve" in result.phases_ms


async def test_unresolvable_name_keeps_the_dns_reason() -> None:
    result = await run_prober(probe_tcp, tcp_spec("missing.test", 443), probe_context())
    assert result.status is Status.FAIL
    assert result.reason is Reason.DNS_NXDOMAIN
    assert result.dns is not None and result.dns.rcode == "NXDOMAIN"
    assert result.attempts == []


async def test_missing_port_is_skipped() -> None:
    result = await run_prober(probe_tcp, tcp_spec("127.0.0.1", None), probe_context())
    assert result.status is Status.SKIP
    assert result.reason is Reason.SKIPPED_MISSING_INPUT


async def test_ipv6_is_tried_first_when_both_families_answer(listener: Callable[..., int]) -> None:
    port = listener("::1")
    listener("127.0.0.1", port)
    ctx = probe_context(hosts={"dual.test": ["127.0.0.1", "::1"]})
    result = await run_prober(probe_tcp, tcp_spec("dual.test", port), ctx)
    assert result.status is Status.PASS
    assert result.peer == f"[::1]:{port}"
    assert len(result.attempts) == 1


async def test_refused_ipv6_falls_back_to_ipv4_at_once(listener: Callable[..., int]) -> None:
    port = listener("127.0.0.1")
    if free_port_or_none("::1", port) is None:
        pytest.skip("the port happens to be in use on ::1")
    conn = await connect_tcp(["127.0.0.1", "::1"], port, Deadline.after(1.0))
    conn.sock.close()
    assert conn.peer == f"127.0.0.1:{port}"
    assert conn.attempts[0].startswith(f"[::1]:{port} refused")
    assert conn.attempts[1].startswith(f"127.0.0.1:{port} connected")
    # A refusal starts the next attempt without waiting for the 250 ms attempt delay.
    assert conn.connect_ms < 200


async def test_silent_ipv6_gives_way_to_ipv4_after_the_attempt_delay(
    full_backlog: Callable[..., int], listener: Callable[..., int]
) -> None:
    port = full_backlog("::1")
    listener("127.0.0.1", port)
    conn = await connect_tcp(["127.0.0.1", "::1"], port, Deadline.after(2.0))
    try:
        assert conn.sock.getpeername()[:2] == ("127.0.0.1", port)
        assert conn.sock.getblocking() is False
    finally:
        conn.sock.close()
    assert conn.peer == f"127.0.0.1:{port}"
    assert conn.attempts[0].startswith(f"[::1]:{port} abandoned")
    assert conn.attempts[1].startswith(f"127.0.0.1:{port} connected")
    # The IPv4 attempt waited for the attempt delay (250 ms), and no longer than the deadline.
    assert 150 < conn.connect_ms < 2000


async def test_connect_is_bounded_by_the_deadline(full_backlog: Callable[..., int]) -> None:
    port = full_backlog()
    with pytest.raises(ConnectFailed) as info:
        await connect_tcp(["127.0.0.1"], port, Deadline.after(0.3))
    assert info.value.reason is Reason.TCP_TIMEOUT
    assert info.value.elapsed_ms < 3000


async def test_no_addresses_fails_cleanly() -> None:
    with pytest.raises(ConnectFailed) as info:
        await connect_tcp([], 443, Deadline.after(0.3))
    assert info.value.reason is Reason.TCP_ERROR


async def test_probe_through_make_probe_context_fixture(
    make_probe_context: Callable[..., ProbeContext], listener: Callable[..., int]
) -> None:
    port = listener()
    result = await run_prober(probe_tcp, tcp_spec("127.0.0.1", port), make_probe_context(timeout=0.5))
    assert result.status is Status.PASS


def free_port_or_none(host: str, port: int) -> int | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
    return port


# --- inside a network namespace: real drops, unreachable and prohibited routes --------------------

NS_PRELUDE = textwrap.dedent(
    f"""
    import asyncio, json, socket, sys
    sys.path.insert(0, {str(REPO)!r})
    from probe.model import CheckSpec, Protocol, Target
    from probe.probers.tcp import probe_tcp
    from probe.runner import run_prober
    from tests.helpers.probes import probe_context

    def spec(host, port):
        return CheckSpec(id="t", target=Target(host=host, port=port, protocol=Protocol.TCP))
    """
)


def run_ns(setup: list[str], body: str) -> dict[str, Any]:
    proc = python_in_netns(setup, NS_PRELUDE + textwrap.dedent(body), timeout=30.0)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@requires_netns
def test_silent_drop_in_namespace_times_out() -> None:
    result = run_ns(
        DROP_SETUP + drop_route("192.0.2.0/24"),
        """
        r = asyncio.run(run_prober(probe_tcp, spec("192.0.2.10", 443), probe_context(timeout=0.5)))
        print(r.model_dump_json())
        """,
    )
    assert result["status"] == "fail"
    assert result["reason"] == "tcp_timeout"
    assert result["confidence"] == "likely"
    assert result["detail"].startswith("Connection to 192.0.2.10:443 timed out after 0.5 s")


@requires_netns
def test_unreachable_route_in_namespace() -> None:
    result = run_ns(
        ["ip route add unreachable 198.51.100.7/32"],
        """
        r = asyncio.run(run_prober(probe_tcp, spec("198.51.100.7", 443), probe_context(timeout=0.5)))
        print(r.model_dump_json())
        """,
    )
    assert result["reason"] == "tcp_unreachable"
    assert "EHOSTUNREACH" in result["attempts"][0]


@requires_netns
def test_prohibit_route_in_namespace() -> None:
    result = run_ns(
        ["ip route add prohibit 198.51.100.8/32"],
        """
        r = asyncio.run(run_prober(probe_tcp, spec("198.51.100.8", 443), probe_context(timeout=0.5)))
        print(r.model_dump_json())
        """,
    )
    assert result["reason"] == "tcp_prohibited"


@requires_netns
def test_most_informative_reason_wins_across_addresses() -> None:
    # Dropped, unreachable and refused addresses for one name: the refusal explains the most.
    result = run_ns(
        DROP_SETUP + drop_route("192.0.2.0/24") + ["ip route add unreachable 198.51.100.7/32"],
        """
        hosts = {"multi.test": ["192.0.2.10", "198.51.100.7", "127.0.0.1"]}
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
        r = asyncio.run(run_prober(probe_tcp, spec("multi.test", port), probe_context(timeout=1.0, hosts=hosts)))
        print(r.model_dump_json())
        """,
    )
    assert result["reason"] == "tcp_refused"
    assert [a.split(" ", 2)[1] for a in result["attempts"]] == ["timed", "unreachable", "refused"]
    assert "also tried" in result["detail"]
    assert "tcp_unreachable" in result["detail"] and "tcp_timeout" in result["detail"]
