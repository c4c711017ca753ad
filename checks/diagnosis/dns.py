"""Rules for name resolution: a resolver that does not answer, no working DNS, custom DNS without forwarders,
private DNS zones not linked, the two resolvers disagreeing, hosts-file pins. Sources: docs/sources.md,
"Private DNS and catalog"."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from checks.addresses import AZURE_DNS
from checks.diagnosis.base import (
    DOC_CUSTOM_DNS,
    DOC_NAME_RESOLUTION,
    DOC_PE_DNS,
    Evidence,
    Rule,
    consequences,
    dns_probe,
    hosts,
    own_reason,
    rule,
    zones_of,
)
from checks.remedies import (
    dns_forwarder_fix,
    dns_link_fix,
    dns_path_fix,
    hosts_fix,
    local_resolver_check,
    resolver_check,
    verify_zone_links_fix,
    vnet_dns_servers_fix,
)
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Severity, Status
from probe.reasons import Reason
from probe.system import parse_server


def _server_host(server: str) -> str:
    """A resolver's address without its port ("ip", "ip:port", "[v6]:port", bare IPv6: probe.system's
    parse_server); a nameserver line that is none of them as it stands."""
    try:
        return parse_server(server).host
    except ValueError:
        return server


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolver_hosts(ev: Evidence) -> list[str]:
    """The configured resolvers' addresses, without a port, for a remedy (loopback stubs have no path to fix)."""
    return list(dict.fromkeys(_server_host(server) for server in ev.configured_resolvers()))


@dataclass
class _DnsDown:
    """Every configured DNS check failed alike: them, the reference checks of the same names (and which of those
    got an answer of their own, whatever a judge made of it), and the evidence claimed for the finding."""

    dns: list[CheckResult]
    refs: list[CheckResult]
    answered: list[CheckResult]
    evidence: list[str]


def _dns_down(ev: Evidence, reasons: tuple[Reason, ...]) -> _DnsDown | None:
    dns = ev.open(dns_probe)
    if not dns or not all(r.reason in reasons for r in dns):
        return None
    names = {r.target.host for r in dns}
    refs = [r for r in ev.results if dns_probe(r, reference=True) and r.target.host in names]
    answered = [r for r in refs if r.status is not Status.SKIP and own_reason(r) not in _SILENT]
    evidence = ev.claim(dns) + ev.claim(consequences(ev, names)) + ev.claim(refs)
    return _DnsDown(dns, refs, answered, evidence)


# What a resolver that does not answer looks like: no reply in time, or none possible (no route, refused port).
_SILENT = (Reason.DNS_TIMEOUT, Reason.DNS_ERROR)


@rule(
    id="dns-resolver-not-answering",
    severity=Severity.CRITICAL,
    title="The configured resolver does not answer",
    cause="The DNS server the compute is told to ask (the VNet's DNS servers, resolv.conf) never replies: it is"
    " down, or UDP/TCP 53 to it is blocked on the way. Forwarders do not help: no query reaches them.",
    fix="Make that resolver answer (its service, and UDP and TCP 53 open to it from the compute subnet), or point the"
    " VNet at a resolver that does.",
    doc=DOC_NAME_RESOLUTION,
    remedies=(
        lambda c: resolver_check(["<DNS_SERVER_IP>"], "<HOST>"),
        lambda c: dns_path_fix(c, ["<DNS_SERVER_IP>"]),
        vnet_dns_servers_fix,
    ),
)
def dns_resolver_not_answering(ev: Evidence, rule: Rule) -> list[Finding]:
    down = _dns_down(ev, _SILENT)
    if down is None:
        return []
    dns, refs, answered = down.dns, down.refs, down.answered
    servers = _resolver_hosts(ev)
    detail = (
        f"None of {len(dns)} names got an answer from the configured resolver ({ev.configured_resolver_text()}):"
        f" {dns[0].detail}"
    )
    if answered:
        detail += (
            f" The reference resolver ({ev.reference_resolvers(answered)}) answered {len(answered)} of them from"
            " here, so the network works: the fault is that resolver, or the path to it."
        )
    elif refs:
        detail += " The reference resolver did not answer either: UDP/TCP 53 may be blocked on the way out."
    fixes = [resolver_check(servers, dns[0].target.host), vnet_dns_servers_fix(ev.remedies)]
    routable = [s for s in servers if not _is_loopback(s)]
    if routable:
        fixes.insert(1, dns_path_fix(ev.remedies, routable))
    return [rule.finding("The configured resolver does not answer", detail, down.evidence, fixes)]


@rule(
    id="dns-unavailable",
    severity=Severity.CRITICAL,
    title="No working DNS",
    cause="No name resolves: no resolver is configured, or the one configured answers every query with an error"
    " (REFUSED: it does not serve this client; SERVFAIL: it cannot resolve, often a broken forwarder).",
    fix="Configure a resolver that serves the compute subnet (the VNet's DNS servers, resolv.conf); a custom DNS"
    f" server must forward what it cannot resolve, ultimately to Azure DNS ({AZURE_DNS}).",
    doc=DOC_NAME_RESOLUTION,
    remedies=(lambda c: local_resolver_check(), vnet_dns_servers_fix, lambda c: dns_forwarder_fix(c, zones=None)),
)
def dns_unavailable(ev: Evidence, rule: Rule) -> list[Finding]:
    down = _dns_down(ev, (Reason.DNS_NO_SERVERS, Reason.DNS_REFUSED, Reason.DNS_SERVFAIL, *_SILENT))
    if down is None:
        return []
    dns, answered = down.dns, down.answered
    seen = "/".join(sorted({r.reason.value for r in dns}))
    detail = (
        f"None of {len(dns)} names resolved through the configured resolver ({ev.configured_resolver_text()}),"
        f" which answered {seen}: {dns[0].detail}"
    )
    if answered:
        detail += f" The reference resolver answered {len(answered)} of them from here: the fault is the resolver."
    fixes = [local_resolver_check(), vnet_dns_servers_fix(ev.remedies)]
    if any(r.reason is Reason.DNS_SERVFAIL for r in dns):
        fixes.append(dns_forwarder_fix(ev.remedies, zones=None))
    return [rule.finding("No working DNS: no name resolves", detail, down.evidence, fixes)]


@rule(
    id="custom-dns-not-forwarding",
    severity=Severity.CRITICAL,
    title="Custom DNS does not forward the privatelink zones",
    cause="The VNet's custom DNS answers privatelink names itself (NXDOMAIN or public) instead of asking Azure DNS.",
    fix=f"Add conditional forwarders for the listed zones to {AZURE_DNS}.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: dns_forwarder_fix(c, zones=["<ZONE>"]),),
)
def custom_dns_not_forwarding(ev: Evidence, rule: Rule) -> list[Finding]:
    """The configured resolver fails or answers publicly where Azure DNS answers privately."""
    bad = []
    for ref in ev.open(lambda r: r.reason is Verdict.DNS_RESOLVER_MISMATCH):
        ours = next((r for r in ev.results if r.id == ref.labels.get("mismatch_with")), None)
        if ours is None:
            continue
        exp = ev.expectation(ours.id)
        if exp is not None and ev.expects_private(exp) and ours.reason is not Reason.OK:
            bad.append((ours, ref))
    if not bad:
        return []
    configured = [o for o, _ in bad]
    zones = zones_of(ev, configured)
    evidence = ev.claim(configured) + ev.claim(r for _, r in bad)
    evidence += ev.claim(consequences(ev, {c.target.host for c in configured}))
    seen = sorted({o.reason.value for o in configured})
    return [
        rule.finding(
            f"The custom DNS does not forward the privatelink zones to Azure DNS ({', '.join(zones)})",
            f"For {hosts(configured)} the configured resolver answered {'/'.join(seen)} while Azure DNS"
            f" ({ev.reference_resolvers(r for _, r in bad)}) returned the private endpoint's address: the conditional"
            " forwarders are missing.",
            evidence,
            [dns_forwarder_fix(ev.remedies, zones=zones)],
        )
    ]


@rule(
    id="private-dns-zone-not-linked",
    severity=Severity.CRITICAL,
    title="Private DNS zone not linked",
    cause="Names with private endpoints resolve to public addresses even through Azure DNS.",
    fix="Link the privatelink zones to the VNet (az network private-dns link vnet create).",
    doc=DOC_PE_DNS,
    remedies=(lambda c: dns_link_fix(c, ["<ZONE>"]), lambda c: dns_forwarder_fix(c, zones=["<ZONE>"])),
)
def private_dns_zone_not_linked(ev: Evidence, rule: Rule) -> list[Finding]:
    """Names of resources with a private endpoint answer publicly (or not at all) through the configured
    resolver, and Azure DNS asked from here does not answer privately either (else the custom DNS rule
    above has claimed them)."""
    bad = ev.open(
        lambda r: (
            r.reason in (Verdict.DNS_PUBLIC_ADDRESS, Reason.DNS_NXDOMAIN)
            and dns_probe(r)
            and ev.expects_private(ev.expectation(r.id))
        )
    )
    if not bad:
        return []
    zones = zones_of(ev, bad)
    evidence = ev.claim(bad) + ev.claim(consequences(ev, {c.target.host for c in bad}))
    refs = ev.open(lambda r: dns_probe(r, reference=True) and r.target.host in {c.target.host for c in bad})
    evidence += ev.claim(refs)
    agrees = "and Azure DNS asked from this VNet agrees" if refs else "(no reference resolver was asked)"
    detail = (
        f"{hosts(bad)} resolved to public addresses (or not at all) although the resource has a private"
        f" endpoint (its privatelink CNAME shows it), {agrees}: the private DNS zones are not linked to this"
        " VNet, or the private endpoints were created without DNS integration."
    )
    remediation = [dns_link_fix(ev.remedies, zones)]
    custom = [s for s in ev.configured_resolvers() if _server_host(s) != AZURE_DNS]
    if custom:
        # A custom DNS (hub and spoke) needs both: the zones linked to ITS VNet, and forwarders to Azure DNS.
        detail += (
            f" The configured resolver ({', '.join(custom)}) is a custom DNS: link the zones to the VNet it runs"
            f" in, and make it forward these zones to {AZURE_DNS}."
        )
        remediation.append(dns_forwarder_fix(ev.remedies, zones=zones))
    title = f"Private DNS zone not linked to the VNet ({', '.join(zones)})"
    return [rule.finding(title, detail, evidence, remediation)]


@rule(
    id="dns-comparison-inconclusive",
    severity=Severity.INFO,
    title="Azure DNS from this VNet answers publicly, the configured resolver privately",
    cause="Private DNS zones linked only to the DNS server's VNet (hub and spoke), or manual records: documented.",
    fix="Nothing; verify which VNets the zones are linked to if in doubt.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: verify_zone_links_fix(c, ["<ZONE>"]),),
)
def dns_comparison_inconclusive(ev: Evidence, rule: Rule) -> list[Finding]:
    """The configured resolver answers privately, Azure DNS from here does not: hub and spoke, or manual
    records. Documented and healthy; said as information only."""
    seen = ev.open(lambda r: r.labels.get("inconclusive") == "reference-not-private")
    if not seen:
        return []
    zones = zones_of(ev, seen)
    return [
        rule.finding(
            "Azure DNS from this VNet answers publicly where the configured resolver answers privately",
            f"For {hosts(seen)} the configured resolver returned the private endpoint's address, while"
            f" {ev.reference_resolvers(seen)} asked from this VNet did not. That is Microsoft's documented layout"
            " when the private DNS zones are linked to the DNS server's VNet only (hub and spoke), or when the"
            " custom DNS holds manual A records: private zone records are returned only to resolvers in a linked"
            " VNet. The comparison is inconclusive; the compute resolves the private endpoints correctly.",
            ev.claim(seen),
            [verify_zone_links_fix(ev.remedies, zones)],
        )
    ]


@rule(
    id="dns-resolver-mismatch",
    severity=Severity.WARNING,
    title="Configured resolver disagrees with Azure DNS",
    cause="Two resolvers give different answers for a workspace name: split-horizon drift.",
    fix=f"Forward the zones to {AZURE_DNS} or fix the records the custom DNS serves.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: dns_forwarder_fix(c, zones=["<ZONE>"]),),
)
def dns_resolver_mismatch(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: r.reason is Verdict.DNS_RESOLVER_MISMATCH)
    if not bad:
        return []
    return [
        rule.finding(
            "The configured resolver disagrees with Azure DNS",
            f"For {hosts(bad)} the configured resolver and {ev.reference_resolvers(bad)} give different answers: "
            + bad[0].detail,
            ev.claim(bad),
            [dns_forwarder_fix(ev.remedies, zones=zones_of(ev, bad))],
        )
    ]


@rule(
    id="hosts-file-override",
    severity=Severity.WARNING,
    title="Hosts-file override of an Azure ML name",
    cause="/etc/hosts pins a catalog name; the pin goes stale when the endpoint moves.",
    fix="Remove the entries and let DNS answer.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: hosts_fix(["<HOST>"]),),
)
def hosts_file_override(ev: Evidence, rule: Rule) -> list[Finding]:
    overrides = (ev.local.hosts_overrides if ev.local is not None else None) or {}
    if not overrides:
        return []
    checks = ev.open(lambda r: r.target.host in overrides and dns_probe(r))
    listed = ", ".join(f"{h} -> {a}" for h, a in sorted(overrides.items()))
    return [
        rule.finding(
            "The hosts file overrides Azure ML names",
            f"/etc/hosts pins {listed}. Such entries go stale when a private endpoint's address changes,"
            " and they hide what DNS says.",
            [c.id for c in checks],
            [hosts_fix(sorted(overrides))],
        )
    ]
