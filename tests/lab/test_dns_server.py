"""lab.servers.dns answered by dnspython's own query functions, over UDP and TCP, and run standalone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from lab.servers.dns import DnsServer
from tests.helpers.netns import python_in_netns, requires_netns

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 0.5


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    async with DnsServer(
        records={
            "Alias.Example.": [("CNAME", "target.example", 120)],
            "target.example": [("A", "10.0.0.1", 30), ("A", "10.0.0.2", 60), ("AAAA", "fd00::1", 30)],
            "*.inference.example": [("A", "10.0.0.3", 30)],
            "exact.inference.example": [("A", "10.0.0.4", 30)],
            "loop1.example": [("CNAME", "loop2.example", 30)],
            "loop2.example": [("CNAME", "loop1.example", 30)],
            "bad.example": [("A", "not-an-address", 30)],
        }
    ) as s:
        yield s


async def ask(server: DnsServer, name: str, rtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rtype)
    host, port = server.address
    if tcp:
        return await dns.asyncquery.tcp(query, host, timeout=TIMEOUT, port=port)
    return await dns.asyncquery.udp(query, host, timeout=TIMEOUT, port=port)


def answer_text(response: dns.message.Message) -> list[str]:
    # One line per record, lower-cased: name compression may reuse the question's spelling.
    return sorted(line.lower() for rrset in response.answer for line in rrset.to_text().splitlines())


async def test_cname_chain_and_records_over_udp_and_tcp(server: DnsServer) -> None:
    for tcp in (False, True):
        response = await ask(server, "ALIAS.example", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert answer_text(response) == [
            "alias.example. 120 in cname target.example.",
            "target.example. 30 in a 10.0.0.1",
            "target.example. 30 in a 10.0.0.2",
        ]
    assert server.count("alias.example", "A", "udp") == 1
    assert server.count("alias.example", "A", "tcp") == 1
    assert server.count("alias.example") == 2


async def test_cname_query_gets_only_the_cname(server: DnsServer) -> None:
    response = await ask(server, "alias.example", "CNAME")
    assert answer_text(response) == ["alias.example. 120 in cname target.example."]


async def test_wildcard_and_exact_names(server: DnsServer) -> None:
    wild = await ask(server, "ep1.inference.example")
    assert answer_text(wild) == ["ep1.inference.example. 30 in a 10.0.0.3"]
    exact = await ask(server, "exact.inference.example")
    assert answer_text(exact) == ["exact.inference.example. 30 in a 10.0.0.4"]


async def test_nxdomain_and_no_data(server: DnsServer) -> None:
    assert (await ask(server, "missing.example")).rcode() == dns.rcode.NXDOMAIN
    # "inference.example" holds no record but has names below it: it exists, with no data.
    empty = await ask(server, "inference.example")
    assert empty.rcode() == dns.rcode.NOERROR and empty.answer == []
    no_mx = await ask(server, "target.example", "MX")
    assert no_mx.rcode() == dns.rcode.NOERROR and no_mx.answer == []


async def test_cname_loop_and_bad_record_are_servfail(server: DnsServer) -> None:
    assert (await ask(server, "loop1.example")).rcode() == dns.rcode.SERVFAIL
    assert (await ask(server, "bad.example")).rcode() == dns.rcode.SERVFAIL
    # The server survives a broken record.
    assert (await ask(server, "target.example")).rcode() == dns.rcode.NOERROR


async def test_faults_apply_along_the_chain_and_per_type(server: DnsServer) -> None:
    server.faults["target.example"] = "refused"
    assert (await ask(server, "alias.example")).rcode() == dns.rcode.REFUSED
    server.faults.clear()
    server.faults["target.example/AAAA"] = "servfail"
    assert (await ask(server, "alias.example", "AAAA")).rcode() == dns.rcode.SERVFAIL
    assert (await ask(server, "alias.example", "A")).rcode() == dns.rcode.NOERROR


async def test_truncate_fault_answers_fully_over_tcp(server: DnsServer) -> None:
    server.faults["target.example"] = "truncate"
    udp = await ask(server, "target.example")
    assert udp.flags & dns.flags.TC and udp.answer == []
    tcp = await ask(server, "target.example", tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer) == 1


async def test_silent_mode_and_runtime_changes(server: DnsServer) -> None:
    server.mode = "silent"
    with pytest.raises(dns.exception.Timeout):
        await ask(server, "target.example")
    assert server.count("target.example") == 1
    server.mode = None
    server.set("target.example", ("A", "10.0.0.9", 5))
    assert answer_text(await ask(server, "target.example")) == ["target.example. 5 in a 10.0.0.9"]
    server.remove("target.example")
    assert (await ask(server, "target.example")).rcode() == dns.rcode.NXDOMAIN


async def test_stop_with_an_open_tcp_connection() -> None:
    server = DnsServer(records={"a.example": [("A", "10.0.0.1", 5)]}, mode="silent")
    await server.start()
    host, port = server.address
    query = dns.message.make_query("a.example", "A")
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.tcp(query, host, timeout=0.2, port=port)
    await server.stop()
    with pytest.raises(OSError):
        await dns.asyncquery.tcp(query, host, timeout=0.2, port=port)


def test_standalone_process(tmp_path: Path) -> None:
    zone = tmp_path / "zone.json"
    zone.write_text(json.dumps({"records": {"a.example": [["A", "10.0.0.1", 42]]}, "faults": {"b.example": "refused"}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.servers.dns", "--listen", "127.0.0.1:0", "--zone", str(zone)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dns server listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        import dns.query

        a = dns.query.udp(dns.message.make_query("a.example", "A"), "127.0.0.1", timeout=2, port=port)
        assert answer_text(a) == ["a.example. 42 in a 10.0.0.1"]
        b = dns.query.udp(dns.message.make_query("b.example", "A"), "127.0.0.1", timeout=2, port=port)
        assert b.rcode() == dns.rcode.REFUSED
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@requires_netns
def test_serves_port_53_inside_a_namespace() -> None:
    # Port 53 on a VNet-like address, as the lab runs it; the prober resolves through it.
    code = textwrap.dedent(
        """
        import asyncio
        from lab.servers.dns import DnsServer
        from probe.deadline import Deadline
        from probe.settings import ProbeSettings
        from probe.transport.lookup import lookup

        async def main():
            async with DnsServer("10.0.0.53", 53, records={"ws.example": [("A", "10.1.0.5", 30)]}) as s:
                res = await lookup("ws.example", ProbeSettings(timeout=1.0, dns_servers=["10.0.0.53"]), Deadline.after(1.0))
                print(s.server_spec, res.reason.value, res.facts.server, ",".join(res.addresses))

        asyncio.run(main())
        """
    )
    done = python_in_netns(["ip addr add 10.0.0.53/32 dev lo"], code, timeout=30.0, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10.0.0.53:53", "ok", "10.0.0.53", "10.1.0.5"]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}
