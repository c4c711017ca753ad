"""Name resolution with evidence: which server answered, the CNAME chain, TTLs, and why it failed.

The stub resolver hides which server answered and whether TCP was needed, which is exactly what
a diagnosis needs, so servers are queried here one by one, in order, as resolv.conf would be.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from probe.context import ProbeContext, ProbeSettings, make_result
from probe.files import MAX_CONFIG_BYTES, MAX_HOSTS_BYTES, read_text
from probe.model import AddressRecord, CheckResult, CheckSpec, CnameLink, DnsFacts, Status
from probe.reasons import Reason
from probe.resolve import LookupFn, Resolution, literal_resolution
from probe.timing import Stopwatch, now, remaining, within

RESOLV_CONF = "/etc/resolv.conf"
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


@dataclass(frozen=True)
class Server:
    host: str
    port: int = 53

    def __str__(self) -> str:
        if self.port == 53:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_server(spec: str) -> Server:
    """Parse "ip", "ip:port", "[v6]:port" or a bare IPv6 address; ValueError if it is none of them."""
    text = spec.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid DNS server {spec!r}")
        port = rest[1:] or "53"
    else:
        try:
            ipaddress.ip_address(text)
            host, port = text, "53"
        except ValueError:
            host, _, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid DNS server {spec!r}: expected ip, ip:port or [ipv6]:port") from None
    if not 0 < number < 65536:
        raise ValueError(f"invalid DNS server {spec!r}: port out of range")
    return Server(host, number)


def system_servers(path: str = RESOLV_CONF) -> list[str]:
    """The ``nameserver`` entries of resolv.conf that are plain addresses (in order)."""
    found: list[str] = []
    try:
        lines = read_text(path, MAX_CONFIG_BYTES).splitlines()
    except OSError:
        return found
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and words[1] not in found:
            try:
                parse_server(words[1])
            except ValueError:
                continue
            found.append(words[1])
    return found


def hosts_lookup(name: str, path: str) -> list[str]:
    """Addresses a hosts file gives ``name``, in file order (empty if none or unreadable)."""
    wanted = name.rstrip(".").lower()
    found: list[str] = []
    try:
        lines = read_text(path, MAX_HOSTS_BYTES).splitlines()
    except OSError:
        return found
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) < 2 or wanted not in (w.rstrip(".").lower() for w in words[1:]):
            continue
        try:
            address = str(ipaddress.ip_address(words[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return found


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


async def _exchange(query: dns.message.Message, server: Server, deadline: float, out: _Outcome) -> dns.message.Message:
    """Ask over UDP; on a truncated answer ask again over TCP (noted in ``out``)."""
    try:
        return await within(
            dns.asyncquery.udp(
                query, server.host, timeout=remaining(deadline), port=server.port, raise_on_truncation=True
            ),
            deadline,
        )
    except dns.message.Truncated:
        out.truncated_retry = True
    return await within(dns.asyncquery.tcp(query, server.host, timeout=remaining(deadline), port=server.port), deadline)


async def _ask(
    qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, servers: list[Server], deadline: float
) -> _Outcome:
    failures: list[_Outcome] = []
    attempts = servers * _ROUNDS
    for i, server in enumerate(attempts):
        if remaining(deadline) <= 0:
            break
        # Share what is left among the attempts still to come, as resolv.conf's timeout does,
        # so one silent server cannot starve the ones after it.
        attempt_deadline = now() + remaining(deadline) / (len(attempts) - i)
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
    *,
    servers: list[str] | None = None,
    timeout: float | None = None,
    use_hosts: bool = True,
) -> Resolution:
    """Resolve A and AAAA of ``name``; never raises for network faults (the reason says what failed).

    Servers: ``servers``, else settings.dns_servers, else resolv.conf. The hosts file
    (settings.hosts_file) is consulted first unless ``use_hosts`` is False.
    """
    watch = Stopwatch()
    name = name.strip().rstrip(".")
    literal = literal_resolution(name)
    if literal is not None:
        return literal
    if not name:
        return Resolution(Reason.DNS_ERROR, "cannot look up an empty name.", DnsFacts(query=name), 0.0)
    if use_hosts and settings.hosts_file:
        found = hosts_lookup(name, settings.hosts_file)
        if found:
            facts = DnsFacts(
                query=name,
                canonical_name=name,
                source="hosts",
                records=[AddressRecord(address=a, family="ipv6" if ":" in a else "ipv4") for a in found],
            )
            detail = f"{name} resolved from the hosts file {settings.hosts_file} to {_addresses_text(facts.records)}."
            return Resolution(Reason.OK, detail, facts, watch.ms())
    budget = settings.timeout if timeout is None else timeout
    deadline = now() + budget - min(_RESERVE_S, budget * 0.1)
    specs = servers or settings.dns_servers or system_servers(RESOLV_CONF)
    try:
        parsed = [parse_server(s) for s in specs]
        qname = dns.name.from_text(name)
    except (ValueError, dns.exception.DNSException) as exc:
        return Resolution(Reason.DNS_ERROR, f"cannot look up {name}: {exc}.", DnsFacts(query=name), watch.ms())
    if not parsed:
        detail = f"cannot look up {name}: no DNS server given and none in {RESOLV_CONF}."
        return Resolution(Reason.DNS_NO_SERVERS, detail, DnsFacts(query=name), watch.ms())
    a, aaaa = await asyncio.gather(
        _ask(qname, dns.rdatatype.A, parsed, deadline), _ask(qname, dns.rdatatype.AAAA, parsed, deadline)
    )
    return _combine(name, a, aaaa, watch.ms())


def make_lookup(settings: ProbeSettings) -> LookupFn:
    """The lookup a SharedResolver runs for each name, bound to these settings."""

    async def run(name: str) -> Resolution:
        return await lookup(name, settings)

    return run


async def compare_resolvers(
    name: str, settings: ProbeSettings, configured: list[str], reference: list[str]
) -> tuple[Resolution, Resolution]:
    """Look ``name`` up against two server lists at once (hosts file ignored): (configured, reference)."""
    first, second = await asyncio.gather(
        lookup(name, settings, servers=configured, use_hosts=False),
        lookup(name, settings, servers=reference, use_hosts=False),
    )
    return first, second


async def probe_dns(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """The "dns" prober: does the target's name resolve, to what, via which server.

    With ``spec.dns_servers`` it asks those servers directly (no hosts file, no sharing), as a
    reference resolver must be asked; otherwise it shares the run's one lookup of the name.
    """
    deadline = ctx.deadline()
    started = datetime.now(timezone.utc)
    watch = Stopwatch()
    host = spec.target.host
    if spec.dns_servers:
        pending = lookup(host, ctx.settings, servers=spec.dns_servers, use_hosts=False)
    else:
        pending = ctx.resolver.resolve(host)
    try:
        resolution = await within(pending, deadline)
    except TimeoutError:
        detail = f"resolving {host} did not finish within {ctx.settings.timeout:g} s."
        return make_result(
            spec,
            Status.FAIL,
            Reason.DNS_TIMEOUT,
            detail,
            latency_ms=watch.ms(),
            started_at=started,
            dns=DnsFacts(query=host),
        )
    return make_result(
        spec,
        Status.PASS if resolution.ok else Status.FAIL,
        resolution.reason,
        resolution.detail,
        latency_ms=resolution.latency_ms if resolution.latency_ms is not None else watch.ms(),
        addresses=resolution.addresses,
        dns=resolution.facts,
        started_at=started,
    )
