"""The stub resolver: asks DNS servers itself, one by one, in order, as resolv.conf would have them
asked, and keeps the evidence a diagnosis needs: which server answered, the CNAME chain, TTLs,
whether TCP was needed, and why a name did not resolve.

The system's stub resolver hides exactly those facts. dnspython builds and parses the messages.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from probe import descriptors
from probe.deadline import Deadline, Stopwatch
from probe.facts import AddressRecord, CnameLink, DnsFacts
from probe.reasons import Reason
from probe.rtt import CMSG_SPACE, arrival_ns, stamp_arrivals
from probe.settings import ProbeSettings
from probe.system import Hosts, Server, parse_server, read_hosts, read_resolv_conf
from probe.transport.resolve import LookupFn, Resolution, literal_resolution

# Modern resolvers' default EDNS buffer (DNS flag day 2020): big enough, never fragmented.
_EDNS_PAYLOAD = 1232
# Finish a little before the caller's deadline so a slow lookup still returns its evidence
# instead of being cut off by a caller that started its clock at the same moment.
_RESERVE_S = 0.02
# Ask every server twice (resolv.conf's default attempts:2): one lost datagram is not a dead resolver.
_ROUNDS = 2
_FAMILY: dict[dns.rdatatype.RdataType, Literal["ipv4", "ipv6"]] = {
    dns.rdatatype.A: "ipv4",
    dns.rdatatype.AAAA: "ipv6",
}
# When no server gave a usable answer, the outcome worth reporting: an answer beats silence.
_FAILURE_RANK = {Reason.DNS_SERVFAIL: 0, Reason.DNS_REFUSED: 1, Reason.DNS_ERROR: 2, Reason.DNS_TIMEOUT: 3}


@dataclass
class _Outcome:
    """One query type's result after trying the servers in order."""

    rdtype: dns.rdatatype.RdataType
    reason: Reason
    server: Server | None = None
    rcode: str | None = None
    transport: Literal["udp", "tcp"] | None = None
    truncated_retry: bool = False
    chain: list[CnameLink] = field(default_factory=list)
    canonical: str | None = None
    records: list[AddressRecord] = field(default_factory=list)
    # One phrase per server tried, for the detail sentence.
    tried: list[str] = field(default_factory=list)
    # Wall-clock ns at which the answer used arrived (the kernel's stamp over UDP).
    answered_ns: int | None = None

    @property
    def answered(self) -> bool:
        """The server's answer is authoritative for the name: no point asking another."""
        return self.reason in (Reason.OK, Reason.DNS_NXDOMAIN, Reason.DNS_NO_ANSWER)

    @property
    def type_name(self) -> str:
        return dns.rdatatype.to_text(self.rdtype)


def _text(name: dns.name.Name) -> str:
    # Names are case-insensitive; one spelling keeps the checks' comparisons simple.
    return name.to_text(omit_final_dot=True).lower()


def _read_answer(out: _Outcome, qname: dns.name.Name, response: dns.message.Message) -> None:
    """Fill the chain, canonical name and records of ``out`` from ``response``'s answer section."""
    current, seen = qname, {qname}
    while True:
        cname = next((r for r in response.answer if r.name == current and r.rdtype == dns.rdatatype.CNAME), None)
        if cname is None or len(cname) == 0:
            break
        target = next(iter(cname)).target
        out.chain.append(CnameLink(name=_text(current), target=_text(target), ttl=cname.ttl))
        if target in seen:
            break
        seen.add(target)
        current = target
    out.canonical = _text(current)
    for rrset in response.answer:
        if rrset.name == current and rrset.rdtype == out.rdtype:
            out.records.extend(
                AddressRecord(address=rd.address, family=_FAMILY[out.rdtype], ttl=rrset.ttl) for rd in rrset
            )


async def _udp(query: dns.message.Message, server: Server, deadline: Deadline, out: _Outcome) -> dns.message.Message:
    """One query over UDP on a connected socket; the answer's arrival is stamped by the kernel.

    ``out.answered_ns`` is the kernel's receive time of the answer (SO_TIMESTAMPNS; else when the
    reader callback saw it), so the latency is the resolver's, not the event loop's.
    """
    loop = asyncio.get_running_loop()
    family, type_, proto, _, sockaddr = socket.getaddrinfo(
        server.host, server.port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
    )[0]
    sock = socket.socket(family, type_, proto)
    answer: asyncio.Future[dns.message.Message] = loop.create_future()

    def readable() -> None:
        while not answer.done():
            seen = time.time_ns()
            try:
                data, ancdata, _flags, _addr = sock.recvmsg(65535, CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error about the query: nothing listens there, ...
                answer.set_exception(exc)
                return
            # As dnspython's own udp(): a truncated, malformed or mismatched answer is the outcome.
            try:
                response = dns.message.from_wire(
                    data, keyring=query.keyring, request_mac=query.request_mac, raise_on_truncation=True
                )
            except (dns.exception.DNSException, ValueError) as exc:
                answer.set_exception(exc)
                return
            out.answered_ns = arrival_ns(ancdata) or seen
            if query.is_response(response):
                answer.set_result(response)
            else:
                answer.set_exception(dns.query.BadResponse())  # type: ignore[no-untyped-call]

    try:
        sock.setblocking(False)
        stamp_arrivals(sock)
        sock.connect(sockaddr)
        loop.add_reader(sock.fileno(), readable)
        try:
            sock.send(query.to_wire())
            return await deadline.within(answer)
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        sock.close()


async def _exchange(
    query: dns.message.Message, server: Server, deadline: Deadline, out: _Outcome
) -> dns.message.Message:
    """Ask over UDP; on a truncated answer ask again over TCP (noted in ``out``)."""
    try:
        return await _udp(query, server, deadline, out)
    except dns.message.Truncated:
        out.truncated_retry = True
    response = await deadline.within(
        dns.asyncquery.tcp(query, server.host, timeout=deadline.remaining(), port=server.port)
    )
    out.answered_ns = time.time_ns()
    return response


async def _ask(
    qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, servers: list[Server], deadline: Deadline
) -> _Outcome:
    failures: list[_Outcome] = []
    attempts = servers * _ROUNDS
    for i, server in enumerate(attempts):
        if deadline.passed:
            break
        # Share what is left among the attempts still to come, as resolv.conf's timeout does,
        # so one silent server cannot starve the ones after it.
        attempt_deadline = deadline.share(len(attempts) - i)
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
        out = _Outcome(rdtype, Reason.DNS_ERROR, server=server)
        try:
            response = await _exchange(query, server, attempt_deadline, out)
        except (TimeoutError, dns.exception.Timeout):
            out.reason, out.server = Reason.DNS_TIMEOUT, None
            out.tried.append(f"no answer from {server}")
            failures.append(out)
            continue
        except (OSError, EOFError, ValueError, dns.exception.DNSException) as exc:
            # No socket to ask with says nothing about the server: back-pressure for the runner.
            descriptors.check(exc)
            tcp = " over TCP after a truncated UDP answer" if out.truncated_retry else ""
            out.tried.append(f"{server} failed{tcp}: {str(exc) or type(exc).__name__}")
            failures.append(out)
            continue
        out.transport = "tcp" if out.truncated_retry else "udp"
        rcode = response.rcode()
        out.rcode = dns.rcode.to_text(rcode)
        if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            _read_answer(out, qname, response)
        if rcode == dns.rcode.NOERROR:
            out.reason = Reason.OK if out.records else Reason.DNS_NO_ANSWER
            return out
        if rcode == dns.rcode.NXDOMAIN:
            out.reason = Reason.DNS_NXDOMAIN
            return out
        out.reason = {dns.rcode.SERVFAIL: Reason.DNS_SERVFAIL, dns.rcode.REFUSED: Reason.DNS_REFUSED}.get(
            rcode, Reason.DNS_ERROR
        )
        out.tried.append(f"{out.rcode} from {server}")
        failures.append(out)
    if not failures:
        return _Outcome(rdtype, Reason.DNS_TIMEOUT, tried=["no time left to ask any server"])
    best = min(failures, key=lambda f: _FAILURE_RANK[f.reason])
    # Each server's outcome once, though the second round may have repeated it.
    best.tried = list(dict.fromkeys(phrase for f in failures for phrase in f.tried))
    return best


def _addresses_text(records: list[AddressRecord]) -> str:
    shown = [r.address for r in records[:3]]
    more = len(records) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _via_text(chain: list[CnameLink]) -> str:
    if not chain:
        return ""
    if len(chain) == 1:
        return f" via CNAME {chain[0].target}"
    return " via CNAME chain " + " -> ".join(link.target for link in chain)


def _server_text(out: _Outcome, ms: float) -> str:
    tcp = " over TCP after a truncated UDP answer" if out.truncated_retry else ""
    return f"server {out.server}{tcp}, {ms:.1f} ms"


def _combine(name: str, a: _Outcome, aaaa: _Outcome, ms: float) -> Resolution:
    """One verdict for the name from its A and AAAA outcomes."""
    records = a.records + aaaa.records
    # The outcome that speaks for the name: the one with addresses, else a definite answer.
    lead = next(
        (o for o in (a, aaaa) if o.records),
        next((o for o in (a, aaaa) if o.reason is Reason.DNS_NXDOMAIN), None),
    )
    if lead is None:
        failed = [o for o in (a, aaaa) if not o.answered]
        lead = failed[0] if failed else a
    facts = DnsFacts(
        query=name,
        server=str(lead.server) if lead.server else None,
        rcode=lead.rcode,
        chain=lead.chain,
        canonical_name=lead.canonical,
        records=records,
        transport=lead.transport,
        truncated_retry=a.truncated_retry or aaaa.truncated_retry,
    )
    other = aaaa if lead is a else a
    if records:
        note = ""
        if not other.answered:
            note = f"; the {other.type_name} query failed ({', '.join(other.tried)})"
        answer = f"{_addresses_text(records)} ({_server_text(lead, ms)})"
        detail = f"{name} resolved{_via_text(lead.chain)} to {answer}{note}."
        return Resolution(Reason.OK, detail, facts, ms)
    if lead.reason is Reason.DNS_NXDOMAIN:
        if lead.chain:
            detail = (
                f"{name} is an alias{_via_text(lead.chain)}, but {lead.canonical} does not exist: "
                f"NXDOMAIN ({_server_text(lead, ms)})."
            )
        else:
            detail = f"{name} does not exist: NXDOMAIN ({_server_text(lead, ms)})."
        return Resolution(Reason.DNS_NXDOMAIN, detail, facts, ms)
    if lead.reason is Reason.DNS_NO_ANSWER:
        target = f"{name}{_via_text(lead.chain)}" if lead.chain else name
        detail = f"{target} exists but has no A or AAAA record: NOERROR, no data ({_server_text(lead, ms)})."
        return Resolution(Reason.DNS_NO_ANSWER, detail, facts, ms)
    detail = f"{name} did not resolve in {ms / 1000:.1f} s: {lead.type_name} query: {', '.join(lead.tried)}"
    if other.reason is not lead.reason and not other.answered:
        detail += f"; {other.type_name} query: {', '.join(other.tried)}"
    return Resolution(lead.reason, detail + ".", facts, ms)


async def lookup(
    name: str,
    settings: ProbeSettings,
    deadline: Deadline,
    *,
    servers: list[str] | None = None,
    use_hosts: bool = True,
    files: SystemFiles | None = None,
) -> Resolution:
    """Resolve A and AAAA of ``name`` by ``deadline``; never raises for network faults (the reason says what failed).

    Servers: ``servers``, else settings.dns_servers, else the nameservers of settings.paths.resolv_conf.
    The hosts file (settings.paths.hosts) is consulted first when settings.use_hosts_file, unless
    ``use_hosts`` is False. ``files``: the two files as a run read them once (make_lookup); else read now.
    """
    watch = Stopwatch()
    name = name.strip().rstrip(".")
    literal = literal_resolution(name)
    if literal is not None:
        return literal
    if not name:
        return Resolution(Reason.DNS_ERROR, "cannot look up an empty name.", DnsFacts(query=name), 0.0)
    if use_hosts and settings.use_hosts_file:
        found = files.hosts(name) if files is not None else hosts_lookup(name, settings.paths.hosts)
        if found:
            facts = DnsFacts(
                query=name,
                canonical_name=name,
                source="hosts",
                records=[AddressRecord(address=a, family="ipv6" if ":" in a else "ipv4") for a in found],
            )
            detail = f"{name} resolved from the hosts file {settings.paths.hosts} to {_addresses_text(facts.records)}."
            return Resolution(Reason.OK, detail, facts, watch.ms())
    deadline = deadline.sooner(min(_RESERVE_S, deadline.remaining() * 0.1))
    resolv_conf = settings.paths.resolv_conf
    specs = servers or settings.dns_servers or (files.servers() if files is not None else system_servers(resolv_conf))
    try:
        parsed = [parse_server(s) for s in specs]
        qname = dns.name.from_text(name)
    except (ValueError, dns.exception.DNSException) as exc:
        return Resolution(Reason.DNS_ERROR, f"cannot look up {name}: {exc}.", DnsFacts(query=name), watch.ms())
    if not parsed:
        detail = f"cannot look up {name}: no DNS server given and none in {resolv_conf}."
        return Resolution(Reason.DNS_NO_SERVERS, detail, DnsFacts(query=name), watch.ms())
    asked_ns = time.time_ns()
    a, aaaa = await asyncio.gather(
        _ask(qname, dns.rdatatype.A, parsed, deadline), _ask(qname, dns.rdatatype.AAAA, parsed, deadline)
    )
    # Up to the later of the two answers' arrival, not to when this coroutine ran again.
    stamps = [o.answered_ns for o in (a, aaaa)]
    if None in stamps:
        ms = watch.ms()
    else:
        ms = round(max(0, max(s for s in stamps if s is not None) - asked_ns) / 1e6, 3)
    return _combine(name, a, aaaa, ms)


class SystemFiles:
    """The hosts file and resolv.conf of a run, each read once, when a lookup first needs it (a run of
    thousands of names reads them once, not once a name; a run that never looks them up never reads them)."""

    def __init__(self, settings: ProbeSettings) -> None:
        self._paths = settings.paths
        self._hosts: Hosts | None = None
        self._servers: list[str] | None = None

    def hosts(self, name: str) -> list[str]:
        if self._hosts is None:
            try:
                self._hosts = read_hosts(self._paths.hosts)
            except OSError:
                self._hosts = Hosts([])
        return self._hosts.addresses(name)

    def servers(self) -> list[str]:
        if self._servers is None:
            self._servers = system_servers(self._paths.resolv_conf)
        return self._servers


def make_lookup(settings: ProbeSettings) -> LookupFn:
    """The lookup a SharedResolver runs for each name, bound to these settings (make it once a run).

    A shared lookup serves every check that needs the name, so it has a deadline of its own, made
    when the lookup starts, as long as one check's.
    """
    files = SystemFiles(settings)

    async def run(name: str) -> Resolution:
        return await lookup(name, settings, Deadline.after(settings.timeout), files=files)

    return run


def system_servers(path: str) -> list[str]:
    """The ``nameserver`` entries of resolv.conf that are plain addresses (in order; none if unreadable)."""
    try:
        return read_resolv_conf(path).servers()
    except OSError:
        return []


def hosts_lookup(name: str, path: str) -> list[str]:
    """Addresses a hosts file gives ``name``, in file order (empty if none or unreadable)."""
    try:
        return read_hosts(path).addresses(name)
    except OSError:
        return []
