"""Rules for name resolution: no resolver at all, custom DNS without forwarders, private DNS zones not
linked, the two resolvers disagreeing, hosts-file pins. Sources: docs/sources.md, "Private DNS and catalog"."""

from __future__ import annotations

from checks.diagnosis.base import (
    DOC_CUSTOM_DNS,
    DOC_PE_DNS,
    Evidence,
    Rule,
    consequences,
    dns_probe,
    hosts,
    rule,
    zones_of,
)
from checks.inputs import AZURE_DNS
from checks.remedies import dns_forwarder_fix, dns_link_fix, hosts_fix, verify_zone_links_fix
from checks.verdicts import Verdict
from probe.model import Finding, Severity, Status
from probe.reasons import Reason


@rule(
    id="dns-unavailable",
    severity=Severity.CRITICAL,
    title="No DNS at all",
    cause="The configured resolver never answers (down, unreachable, or blocked UDP/TCP 53).",
    fix=f"Point the VNet at a working resolver, or add Azure DNS ({AZURE_DNS}) as a forwarder.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: dns_forwarder_fix(c, zones=None),),
)
def dns_unavailable(ev: Evidence, rule: Rule) -> list[Finding]:
    dns = ev.open(dns_probe)
    if not dns or not all(r.reason in (Reason.DNS_TIMEOUT, Reason.DNS_NO_SERVERS, Reason.DNS_ERROR) for r in dns):
        return []
    refs = [r for r in ev.results if dns_probe(r, reference=True)]
    ref_ok = [r for r in refs if r.reason is not Reason.DNS_TIMEOUT and r.status is not Status.FAIL]
    evidence = ev.claim(dns) + ev.claim(consequences(ev, {r.target.host for r in dns})) + ev.claim(refs)
    detail = (
        f"None of {len(dns)} names resolved through the configured resolver ({ev.configured_resolver_text()}):"
        f" {dns[0].detail}"
    )
    if ref_ok:
        detail += f" The reference resolver still answered {len(ref_ok)} of them, so the fault is the resolver."
    return [
        rule.finding(
            "No DNS at all: the configured resolver does not answer",
            detail,
            evidence,
            [dns_forwarder_fix(ev.remedies, zones=None)],
        )
    ]


@rule(
    id="custom-dns-not-forwarding",
    severity=Severity.CRITICAL,
    title="Custom DNS does not forward the privatelink zones",
    cause="The VNet's custom DNS answers privatelink names itself (NXDOMAIN or public) instead of asking Azure DNS.",
    fix=f"Add conditional forwarders for the listed zones to {AZURE_DNS}.",
    doc=DOC_CUSTOM_DNS,
    remedies=(lambda c: dns_forwarder_fix(c, zones=["<zone>"]),),
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
    remedies=(lambda c: dns_link_fix(c, ["<zone>"]), lambda c: dns_forwarder_fix(c, zones=["<zone>"])),
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
    custom = [s for s in ev.configured_resolvers() if s.split(":")[0] != AZURE_DNS]
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
    remedies=(lambda c: verify_zone_links_fix(c, ["<zone>"]),),
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
    remedies=(lambda c: dns_forwarder_fix(c, zones=["<zone>"]),),
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
    remedies=(lambda c: hosts_fix(["<host>"]),),
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
