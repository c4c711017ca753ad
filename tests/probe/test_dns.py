"""The stub resolver (probe.transport.lookup) and the dns prober against real DNS servers (lab.servers.dns) on loopback; never the machine's resolver."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from lab.servers.dns import DnsServer, Record
from probe.deadline import Deadline, Stopwatch
from probe.model import CheckSpec, Protocol, Status, Target
from probe.probers.dns import probe_dns
from probe.reasons import Reason
from probe.runner import run_prober
from probe.settings import ProbeSettings, SystemPaths
from probe.system import Server, parse_server
from probe.transport.context import ProbeContext
from probe.transport.lookup import lookup, make_lookup, system_servers
from probe.transport.resolve import Resolution, SharedResolver

TIMEOUT = 0.6

ZONE: dict[str, list[Record]] = {
    # The private-endpoint shape: public name -> privatelink name -> private address.
    "ws.example": [("CNAME", "ws.region.example", 300)],
    "ws.region.example": [("CNAME", "ws.region.privatelink.example", 60)],
    "ws.region.privatelink.example": [("A", "10.1.0.5", 10), ("AAAA", "fd00::5", 20)],
    "v4only.example": [("A", "10.1.0.7", 30)],
    "dangling.example": [("CNAME", "gone.privatelink.example", 60)],
    "mail.example": [],
    "sub.mail.example": [("A", "10.9.9.9", 30)],
}

StartDns = Callable[..., Awaitable[DnsServer]]


@pytest.fixture
async def start_dns() -> AsyncIterator[StartDns]:
    """``await start_dns(host="127.0.0.1", **kw) -> DnsServer``, serving a copy of ZONE by default."""
    started: list[DnsServer] = []

    async def start(host: str = "127.0.0.1", **kw: object) -> DnsServer:
        kw.setdefault("records", {k: list(v) for k, v in ZONE.items()})
        server = DnsServer(host, 0, **kw)  # type: ignore[arg-type]
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def resolve(name: str, settings: ProbeSettings) -> Resolution:
    return await lookup(name, settings, Deadline.after(settings.timeout))


def settings_for(*servers: DnsServer, timeout: float = TIMEOUT, hosts_file: str | None = None) -> ProbeSettings:
    return ProbeSettings(
        timeout=timeout,
        dns_servers=[s.server_spec for s in servers],
        trust_env=False,
        env={},
        paths=SystemPaths(hosts=hosts_file) if hosts_file else SystemPaths(),
        use_hosts_file=hosts_file is not None,
    )


def dns_spec(host: str) -> CheckSpec:
    return CheckSpec(id=f"dns-{host}", target=Target(host=host, protocol=Protocol.DNS))


# --- answers ------------------------------------------------------------------------------------


async def test_cname_chain_with_ttls_and_both_families(start_dns: StartDns) -> None:
    server = await start_dns()
    res = await resolve("WS.example.", settings_for(server))

    assert res.reason is Reason.OK, res.detail
    facts = res.facts
    assert [(c.name, c.target, c.ttl) for c in facts.chain] == [
        ("ws.example", "ws.region.example", 300),
        ("ws.region.example", "ws.region.privatelink.example", 60),
    ]
    assert facts.canonical_name == "ws.region.privatelink.example"
    assert sorted((r.address, r.family, r.ttl) for r in facts.records) == [
        ("10.1.0.5", "ipv4", 10),
        ("fd00::5", "ipv6", 20),
    ]
    assert sorted(res.addresses) == ["10.1.0.5", "fd00::5"]
    assert facts.server == server.server_spec
    assert (facts.rcode, facts.transport, facts.truncated_retry, facts.source) == ("NOERROR", "udp", False, "dns")
    assert "ws.region.privatelink.example" in res.detail and "10.1.0.5" in res.detail
    assert server.server_spec in res.detail
    assert server.count("ws.example", "A", "udp") == 1 and server.count("ws.example", "AAAA", "udp") == 1


async def test_one_family_is_enough(start_dns: StartDns) -> None:
    server = await start_dns()
    res = await resolve("v4only.example", settings_for(server))
    assert res.reason is Reason.OK
    assert res.addresses == ["10.1.0.7"]


async def test_records_changed_between_queries_are_seen(start_dns: StartDns) -> None:
    server = await start_dns()
    settings = settings_for(server)
    assert (await resolve("v4only.example", settings)).addresses == ["10.1.0.7"]
    server.set("v4only.example", ("A", "10.1.0.8", 30))
    assert (await resolve("v4only.example", settings)).addresses == ["10.1.0.8"]


async def test_nxdomain(start_dns: StartDns) -> None:
    server = await start_dns()
    res = await resolve("nope.example", settings_for(server))
    assert res.reason is Reason.DNS_NXDOMAIN
    assert res.facts.rcode == "NXDOMAIN" and res.facts.server == server.server_spec
    assert res.addresses == []
    assert "does not exist" in res.detail


async def test_nxdomain_at_the_end_of_a_cname_keeps_the_chain(start_dns: StartDns) -> None:
    server = await start_dns()
    res = await resolve("dangling.example", settings_for(server))
    assert res.reason is Reason.DNS_NXDOMAIN
    assert [(c.name, c.target) for c in res.facts.chain] == [("dangling.example", "gone.privatelink.example")]
    assert "gone.privatelink.example does not exist" in res.detail


async def test_name_without_addresses_is_no_answer(start_dns: StartDns) -> None:
    server = await start_dns()
    # mail.example has no records but a name below it: it exists (NOERROR), with no data.
    res = await resolve("mail.example", settings_for(server))
    assert res.reason is Reason.DNS_NO_ANSWER, res.detail
    assert res.facts.rcode == "NOERROR" and res.addresses == []


# --- failing servers ----------------------------------------------------------------------------


async def test_servfail(start_dns: StartDns) -> None:
    server = await start_dns(faults={"ws.region.privatelink.example": "servfail"})
    res = await resolve("ws.example", settings_for(server))
    assert res.reason is Reason.DNS_SERVFAIL
    assert res.facts.rcode == "SERVFAIL" and res.facts.server == server.server_spec
    assert "SERVFAIL" in res.detail and server.server_spec in res.detail


async def test_servfail_falls_back_to_the_next_server(start_dns: StartDns) -> None:
    broken = await start_dns(mode="servfail")
    good = await start_dns("127.0.0.2")
    res = await resolve("ws.example", settings_for(broken, good))
    assert res.reason is Reason.OK, res.detail
    assert res.facts.server == good.server_spec
    assert broken.count("ws.example", "A") == 1 and good.count("ws.example", "A") == 1


async def test_refused(start_dns: StartDns) -> None:
    server = await start_dns(mode="refused")
    res = await resolve("ws.example", settings_for(server))
    assert res.reason is Reason.DNS_REFUSED
    assert res.facts.rcode == "REFUSED"


async def test_an_answer_beats_silence_when_every_server_fails(start_dns: StartDns) -> None:
    silent = await start_dns(mode="silent")
    refusing = await start_dns("127.0.0.2", mode="refused")
    res = await resolve("ws.example", settings_for(silent, refusing))
    assert res.reason is Reason.DNS_REFUSED
    assert silent.server_spec in res.detail and refusing.server_spec in res.detail


async def test_silent_server_times_out_within_the_budget(start_dns: StartDns) -> None:
    server = await start_dns(mode="silent")
    watch = Stopwatch()
    res = await resolve("ws.example", settings_for(server, timeout=0.4))
    elapsed = watch.ms() / 1000
    assert res.reason is Reason.DNS_TIMEOUT
    assert res.facts.server is None and res.facts.rcode is None
    # Asked twice, as resolv.conf's attempts:2 would, within the one budget.
    assert server.count("ws.example", "A") == 2
    assert f"no answer from {server.server_spec}" in res.detail
    assert 0.2 < elapsed < 2.0


async def test_silent_first_server_leaves_time_for_the_second(start_dns: StartDns) -> None:
    silent = await start_dns(mode="silent")
    good = await start_dns("127.0.0.2")
    res = await resolve("ws.example", settings_for(silent, good, timeout=1.0))
    assert res.reason is Reason.OK, res.detail
    assert res.facts.server == good.server_spec


async def test_one_family_silent_the_other_answered(start_dns: StartDns) -> None:
    # Some broken forwarders drop AAAA queries: the A answer still counts, with a note.
    server = await start_dns(faults={"ws.example/AAAA": "silent"})
    res = await resolve("ws.example", settings_for(server, timeout=0.4))
    assert res.reason is Reason.OK
    assert res.addresses == ["10.1.0.5"]
    assert "AAAA query failed" in res.detail


async def test_truncated_answer_is_retried_over_tcp(start_dns: StartDns) -> None:
    server = await start_dns(faults={"ws.example": "truncate"})
    res = await resolve("ws.example", settings_for(server))
    assert res.reason is Reason.OK, res.detail
    assert res.facts.truncated_retry is True and res.facts.transport == "tcp"
    assert sorted(res.addresses) == ["10.1.0.5", "fd00::5"]
    assert server.count("ws.example", "A", "udp") == 1 and server.count("ws.example", "A", "tcp") == 1
    assert "over TCP" in res.detail


async def test_answer_too_big_for_udp_comes_over_tcp(start_dns: StartDns) -> None:
    many = [("A", f"10.2.{i // 250}.{i % 250 + 1}", 60) for i in range(120)]
    server = await start_dns(records={"big.example": many})
    res = await resolve("big.example", settings_for(server))
    assert res.reason is Reason.OK
    assert len(res.addresses) == 120
    assert res.facts.truncated_retry is True


async def test_malformed_answer_is_dns_error() -> None:
    class Garbage(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            # The query's id, then bytes that are not a DNS message.
            self.transport.sendto(data[:2] + b"\x81\x80\xff\xff", addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Garbage, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        res = await resolve("ws.example", ProbeSettings(timeout=TIMEOUT, dns_servers=[f"127.0.0.1:{port}"]))
    finally:
        transport.close()
    assert res.reason is Reason.DNS_ERROR, res.detail


async def test_invalid_server_is_dns_error() -> None:
    res = await resolve("ws.example", ProbeSettings(timeout=TIMEOUT, dns_servers=["not-an-ip:53"]))
    assert res.reason is Reason.DNS_ERROR
    assert "not-an-ip" in res.detail


async def test_no_servers(tmp_path: Path) -> None:
    empty = tmp_path / "resolv.conf"
    empty.write_text("search example\n")
    res = await resolve(
        "ws.example", ProbeSettings(timeout=TIMEOUT, dns_servers=[], paths=SystemPaths(resolv_conf=str(empty)))
    )
    assert res.reason is Reason.DNS_NO_SERVERS
    assert str(empty) in res.detail


# --- hosts file, IPv6, parsing ------------------------------------------------------------------


async def test_hosts_file_wins_without_a_query(start_dns: StartDns, tmp_path: Path) -> None:
    server = await start_dns()
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n127.0.0.1 localhost\n10.1.0.9  other.example WS.example  # PE\nfd00::9 ws.example\n")
    res = await resolve("ws.example", settings_for(server, hosts_file=str(hosts)))
    assert res.reason is Reason.OK
    assert res.facts.source == "hosts"
    assert res.addresses == ["10.1.0.9", "fd00::9"]
    assert server.count() == 0
    # A name the hosts file lacks still goes to DNS.
    assert (await resolve("v4only.example", settings_for(server, hosts_file=str(hosts)))).facts.source == "dns"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_server(start_dns: StartDns) -> None:
    server = await start_dns("::1")
    assert server.server_spec.startswith("[::1]:")
    res = await resolve("ws.example", settings_for(server))
    assert res.reason is Reason.OK, res.detail
    assert res.facts.server == server.server_spec


def test_parse_server() -> None:
    assert parse_server("10.0.0.4") == Server("10.0.0.4", 53)
    assert parse_server("10.0.0.4:5353") == Server("10.0.0.4", 5353)
    assert parse_server("[::1]:5353") == Server("::1", 5353)
    assert parse_server("fd00::53") == Server("fd00::53", 53)
    assert parse_server("[fd00::53]") == Server("fd00::53", 53)
    assert str(Server("10.0.0.4", 53)) == "10.0.0.4" and str(Server("::1", 5353)) == "[::1]:5353"
    for bad in ["resolver.example", "10.0.0.4:0", "10.0.0.4:x", "[::1]x", ""]:
        with pytest.raises(ValueError):
            parse_server(bad)


def test_system_servers_reads_nameserver_lines(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    lines = ["search example", "nameserver 127.0.0.53", "nameserver resolver.example", "nameserver 127.0.0.53"]
    conf.write_text("\n".join([*lines, "nameserver ::1", ""]))
    assert system_servers(str(conf)) == ["127.0.0.53", "::1"]
    assert system_servers(str(tmp_path / "missing")) == []


# --- the prober and the shared resolver ---------------------------------------------------------


async def test_probe_dns_shares_one_lookup_per_name(start_dns: StartDns) -> None:
    server = await start_dns()
    settings = settings_for(server)
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    first, second = await asyncio.gather(
        run_prober(probe_dns, dns_spec("ws.example"), ctx), run_prober(probe_dns, dns_spec("WS.example"), ctx)
    )

    assert server.count("ws.example", "A") == 1
    for result in (first, second):
        assert result.status is Status.PASS and result.reason is Reason.OK
        assert sorted(result.addresses) == ["10.1.0.5", "fd00::5"]
        assert result.dns is not None and result.dns.canonical_name == "ws.region.privatelink.example"
        assert result.latency_ms is not None and result.latency_ms > 0
    assert first.detail.startswith("ws.example resolved via CNAME chain")


async def test_probe_dns_failure(start_dns: StartDns) -> None:
    server = await start_dns()
    settings = settings_for(server)
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    result = await run_prober(probe_dns, dns_spec("nope.example"), ctx)
    assert result.status is Status.FAIL and result.reason is Reason.DNS_NXDOMAIN
    assert result.dns is not None and result.dns.rcode == "NXDOMAIN"


async def test_probe_dns_with_its_own_servers_bypasses_the_shared_resolver(start_dns: StartDns, tmp_path: Path) -> None:
    configured = await start_dns()
    reference = await start_dns("127.0.0.2", records={"ws.example": [("A", "20.1.2.3", 60)]})
    hosts = tmp_path / "hosts"
    hosts.write_text("10.9.9.9 ws.example\n")
    settings = settings_for(configured, hosts_file=str(hosts))
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    spec = dns_spec("ws.example").model_copy(update={"dns_servers": [reference.server_spec]})
    shared, direct = await asyncio.gather(
        run_prober(probe_dns, dns_spec("ws.example"), ctx), run_prober(probe_dns, spec, ctx)
    )
    assert shared.addresses == ["10.9.9.9"] and shared.dns is not None and shared.dns.source == "hosts"
    assert direct.addresses == ["20.1.2.3"] and direct.dns is not None and direct.dns.server == reference.server_spec
    assert configured.count() == 0 and reference.count("ws.example", "A") == 1


async def test_a_runs_lookup_reads_the_hosts_file_and_resolv_conf_once(tmp_path: Path) -> None:
    # Thousands of names in a run: the files are read when first needed, then kept (make_lookup).
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 one.test\n127.0.0.2 two.test\n")
    resolv.write_text("nameserver 127.0.0.1\n")
    settings = ProbeSettings(
        timeout=TIMEOUT,
        dns_servers=[],
        paths=SystemPaths(hosts=str(hosts), resolv_conf=str(resolv)),
        use_hosts_file=True,
    )
    run = make_lookup(settings)
    first = await run("one.test")
    hosts.write_text("127.0.0.9 one.test\n")  # changed under the run: the run keeps what it read
    resolv.unlink()
    again, second = await run("one.test"), await run("two.test")
    assert [first.addresses, again.addresses, second.addresses] == [["127.0.0.1"], ["127.0.0.1"], ["127.0.0.2"]]
    # A lookup made for another run reads the files as they are now.
    assert (await make_lookup(settings)("one.test")).addresses == ["127.0.0.9"]
