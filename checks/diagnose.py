"""From judged check results to root causes: one finding per cause, with evidence and a paste-able fix.

Rules run in order. Each claims the checks it explains, so a later rule never reports a
consequence of an earlier cause again: with DNS down, the failed TCP probes are evidence of the
DNS finding, not forty findings of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from checks.addresses import is_ip
from checks.inputs import AZURE_DNS, Inputs
from checks.plan import Plan
from checks.remedies import (
    G2_ROOT,
    ca_store_update_fix,
    dns_forwarder_fix,
    dns_link_fix,
    firewall_fqdn_fix,
    g2_root_fix,
    hosts_fix,
    nsg_fix,
    proxy_bypass_fix,
    tls_bypass_fix,
    udp_outside_checks,
    verify_zone_links_fix,
    websocket_desktop_check,
    wireserver_root_fix,
)
from checks.resource_rules import (
    rule_registry_layers_unprobed,
    rule_resource_inconclusive,
    rule_resource_intercepted,
    rule_resource_network_denied,
    rule_resource_public_access_disabled,
    rule_smb_aes256_only,
    rule_smb_no_common_security,
)
from checks.truststores import stores_trusting
from checks.verdicts import Verdict
from probe.model import CertInfo, CheckResult, Finding, Protocol, Severity, Status, TlsFacts
from probe.probers.websocket import middlebox_signs
from probe.reasons import DNS_FAILURES, TCP_FAILURES, Reason, ReasonCode

DOC_FIREWALL = "https://learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall"
DOC_CUSTOM_DNS = "https://learn.microsoft.com/azure/machine-learning/how-to-custom-dns"
DOC_PE_DNS = "https://learn.microsoft.com/azure/private-link/private-endpoint-dns"
DOC_JUPYTER = "https://learn.microsoft.com/azure/machine-learning/how-to-run-jupyter-notebooks#troubleshooting"
DOC_TRAINING_VNET = "https://learn.microsoft.com/azure/machine-learning/how-to-secure-training-vnet"
DOC_CA = "https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details"
DOC_PROXY = "https://learn.microsoft.com/azure/machine-learning/how-to-troubleshoot-secure-connection-workspace"
DOC_WIRESERVER = "https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16"
DOC_RESOURCE_FIREWALL = "https://learn.microsoft.com/azure/storage/common/storage-network-security"
DOC_FILES_SMB = "https://learn.microsoft.com/azure/storage/files/files-smb-protocol"
DOC_FILES_MOUNT = (
    "https://learn.microsoft.com/troubleshoot/azure/azure-kubernetes/storage/fail-to-mount-azure-file-share"
)
DOC_ACR_ENDPOINTS = "https://learn.microsoft.com/azure/container-registry/container-registry-endpoint-reference"

_TCP_BASED = {p for p in Protocol if p.over_tcp}
_SEEN: dict[ReasonCode, str] = {
    Reason.TCP_TIMEOUT: "dropped (no answer to SYN)",
    Reason.TCP_REFUSED: "refused (RST)",
    Reason.TCP_UNREACHABLE: "unreachable (no route / ICMP)",
    Reason.TCP_PROHIBITED: "prohibited by local policy",
    Reason.TCP_RESET: "reset",
    Reason.TCP_ERROR: "failed",
}


@dataclass
class Facts:
    """Everything a rule may read, plus the ids already explained by earlier rules."""

    results: list[CheckResult]
    plan: Plan
    inputs: Inputs
    environment: dict[str, Any]
    claimed: set[str]

    def open(self, pred: Callable[[CheckResult], bool]) -> list[CheckResult]:
        """Unexplained checks matching ``pred``; skipped (not applicable) checks are never evidence."""
        return [r for r in self.results if r.id not in self.claimed and r.status is not Status.SKIP and pred(r)]

    def claim(self, checks: Iterable[CheckResult]) -> list[str]:
        """Mark ``checks`` explained; checks labelled a consequence of one of them (``consequence_of``: an http
        check that failed exactly as the TLS check of its host, checks.resources) are explained with them."""
        ids = [c.id for c in checks]
        ids += [
            r.id
            for r in self.results
            if r.labels.get("consequence_of") in ids and r.id not in self.claimed and r.id not in ids
        ]
        self.claimed.update(ids)
        return ids

    def expectation(self, check_id: str) -> Any:
        for exp in self.plan.dns_expectations:
            if check_id in (exp.check_id, exp.reference_check_id):
                return exp
        return None

    def expects_private(self, exp: Any) -> bool:
        """Whether ``exp``'s name should answer privately: the catalog or the user said so, or the
        per-resource evidence (environment["private_endpoints"], checks.evidence) found a private endpoint."""
        if exp is None:
            return False
        if exp.expect != "evidence":
            return bool(exp.expect == "private")
        verdict = (self.environment.get("private_endpoints") or {}).get(exp.pe_resource or "") or {}
        return verdict.get("private_endpoint") is True

    def configured_resolvers(self) -> list[str]:
        """The resolvers the compute asks: --dns-server, else resolv.conf's effective nameservers."""
        servers = (self.environment.get("settings") or {}).get("dns_servers")
        if isinstance(servers, list) and servers:
            return [str(s) for s in servers]
        dns = (self.environment.get("local") or {}).get("dns") or {}
        return [str(s) for s in dns.get("effective_nameservers") or []]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    cause: str
    fix: str
    doc: str
    run: Callable[[Facts, Rule], list[Finding]]

    def finding(self, title: str, detail: str, evidence: list[str], remediation: list[Any], doc: str = "") -> Finding:
        return Finding(
            id=self.id,
            severity=self.severity,
            title=title,
            detail=detail,
            evidence=evidence,
            doc=doc or self.doc,
            remediation=remediation,
        )


def _tcp_failed(r: CheckResult) -> bool:
    return r.target.protocol in _TCP_BASED and r.status is Status.FAIL and r.reason in TCP_FAILURES


def _dns_probe(r: CheckResult, *, reference: bool = False) -> bool:
    return r.target.protocol is Protocol.DNS and (("@reference" in r.id) == reference)


def _hosts(checks: Iterable[CheckResult]) -> str:
    names = sorted({c.target.host for c in checks})
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


# A resource refusing a request that reached its public endpoint only because its name resolved publicly.
_REFUSED_PUBLICLY = (Verdict.HTTP_NETWORK_DENIED, Verdict.HTTP_PUBLIC_ACCESS_DISABLED)


def _consequences(facts: Facts, hosts: set[str]) -> list[CheckResult]:
    """Probes that failed only because these names did not resolve (or resolved to a public address where a
    private endpoint exists, so the resource refused a request it would have admitted through the endpoint)."""
    return facts.open(
        lambda r: (
            r.target.protocol is not Protocol.DNS
            and r.target.host in hosts
            and (r.reason in DNS_FAILURES or r.reason in _REFUSED_PUBLICLY)
        )
    )


# -- rules, in the order they run -------------------------------------------------------------


def rule_no_dns(facts: Facts, rule: Rule) -> list[Finding]:
    dns = facts.open(_dns_probe)
    if not dns or not all(r.reason in (Reason.DNS_TIMEOUT, Reason.DNS_NO_SERVERS, Reason.DNS_ERROR) for r in dns):
        return []
    refs = [r for r in facts.results if _dns_probe(r, reference=True)]
    ref_ok = [r for r in refs if r.reason is not Reason.DNS_TIMEOUT and r.status is not Status.FAIL]
    servers = facts.environment.get("settings", {}).get("dns_servers", "system")
    evidence = facts.claim(dns) + facts.claim(_consequences(facts, {r.target.host for r in dns})) + facts.claim(refs)
    detail = f"None of {len(dns)} names resolved through the configured resolver ({servers}): {dns[0].detail}"
    if ref_ok:
        detail += f" The reference resolver still answered {len(ref_ok)} of them, so the fault is the resolver."
    return [
        rule.finding(
            "No DNS at all: the configured resolver does not answer",
            detail,
            evidence,
            [dns_forwarder_fix(facts, zones=None)],
        )
    ]


def rule_no_outbound(facts: Facts, rule: Rule) -> list[Finding]:
    tcp = facts.open(lambda r: r.target.protocol in _TCP_BASED and r.status is not Status.SKIP)
    if len(tcp) < 3 or not all(_tcp_failed(r) for r in tcp):
        return []
    ways = sorted({_SEEN[r.reason] for r in tcp})
    return [
        rule.finding(
            "No outbound connectivity at all: every TCP probe failed",
            f"All {len(tcp)} TCP connections failed ({'; '.join(ways)}). Check the subnet's route table"
            " (UDR 0.0.0.0/0 to a firewall?), NAT gateway and the NSG's outbound rules.",
            facts.claim(tcp),
            [nsg_fix(facts, "AzureCloud", "Tcp", "443")],
        )
    ]


def _zones_of(facts: Facts, checks: Iterable[CheckResult]) -> list[str]:
    zones = set()
    for c in checks:
        exp = facts.expectation(c.id)
        if exp is not None and exp.zone:
            zones.add(exp.zone)
    return sorted(zones)


def rule_custom_dns_not_forwarding(facts: Facts, rule: Rule) -> list[Finding]:
    """The configured resolver fails or answers publicly where Azure DNS answers privately."""
    bad = []
    for ref in facts.open(lambda r: r.reason is Verdict.DNS_RESOLVER_MISMATCH):
        ours = next((r for r in facts.results if r.id == ref.labels.get("mismatch_with")), None)
        if ours is None:
            continue
        exp = facts.expectation(ours.id)
        if exp is not None and facts.expects_private(exp) and ours.reason is not Reason.OK:
            bad.append((ours, ref))
    if not bad:
        return []
    configured = [o for o, _ in bad]
    zones = _zones_of(facts, configured)
    evidence = facts.claim(configured) + facts.claim(r for _, r in bad)
    evidence += facts.claim(_consequences(facts, {c.target.host for c in configured}))
    seen = sorted({o.reason.value for o in configured})
    return [
        rule.finding(
            f"The custom DNS does not forward the privatelink zones to Azure DNS ({', '.join(zones)})",
            f"For {_hosts(configured)} the configured resolver answered {'/'.join(seen)} while Azure DNS"
            " (168.63.129.16) returned the private endpoint's address: the conditional forwarders are missing.",
            evidence,
            [dns_forwarder_fix(facts, zones=zones)],
        )
    ]


def rule_zone_not_linked(facts: Facts, rule: Rule) -> list[Finding]:
    """Names of resources with a private endpoint answer publicly (or not at all) through the configured
    resolver, and Azure DNS asked from here does not answer privately either (else the custom DNS rule
    above has claimed them)."""
    bad = facts.open(
        lambda r: (
            r.reason in (Verdict.DNS_PUBLIC_ADDRESS, Reason.DNS_NXDOMAIN)
            and _dns_probe(r)
            and facts.expects_private(facts.expectation(r.id))
        )
    )
    if not bad:
        return []
    zones = _zones_of(facts, bad)
    evidence = facts.claim(bad) + facts.claim(_consequences(facts, {c.target.host for c in bad}))
    refs = facts.open(lambda r: _dns_probe(r, reference=True) and r.target.host in {c.target.host for c in bad})
    evidence += facts.claim(refs)
    agrees = "and Azure DNS asked from this VNet agrees" if refs else "(no reference resolver was asked)"
    detail = (
        f"{_hosts(bad)} resolved to public addresses (or not at all) although the resource has a private"
        f" endpoint (its privatelink CNAME shows it), {agrees}: the private DNS zones are not linked to this"
        " VNet, or the private endpoints were created without DNS integration."
    )
    remediation = [dns_link_fix(facts, zones)]
    custom = [s for s in facts.configured_resolvers() if s.split(":")[0] != AZURE_DNS]
    if custom:
        # A custom DNS (hub and spoke) needs both: the zones linked to ITS VNet, and forwarders to Azure DNS.
        detail += (
            f" The configured resolver ({', '.join(custom)}) is a custom DNS: link the zones to the VNet it runs"
            " in, and make it forward these zones to 168.63.129.16."
        )
        remediation.append(dns_forwarder_fix(facts, zones=zones))
    title = f"Private DNS zone not linked to the VNet ({', '.join(zones)})"
    return [rule.finding(title, detail, evidence, remediation)]


def rule_reference_inconclusive(facts: Facts, rule: Rule) -> list[Finding]:
    """The configured resolver answers privately, Azure DNS from here does not: hub and spoke, or manual
    records. Documented and healthy; said as information only."""
    seen = facts.open(lambda r: r.labels.get("inconclusive") == "reference-not-private")
    if not seen:
        return []
    zones = _zones_of(facts, seen)
    return [
        rule.finding(
            "Azure DNS from this VNet answers publicly where the configured resolver answers privately",
            f"For {_hosts(seen)} the configured resolver returned the private endpoint's address, while"
            " 168.63.129.16 asked from this VNet did not. That is Microsoft's documented layout when the private"
            " DNS zones are linked to the DNS server's VNet only (hub and spoke), or when the custom DNS holds"
            " manual A records: private zone records are returned only to resolvers in a linked VNet. The"
            " comparison is inconclusive; the compute resolves the private endpoints correctly.",
            facts.claim(seen),
            [verify_zone_links_fix(facts, zones)],
        )
    ]


def rule_resolver_mismatch(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: r.reason is Verdict.DNS_RESOLVER_MISMATCH)
    if not bad:
        return []
    return [
        rule.finding(
            "The configured resolver disagrees with Azure DNS",
            f"For {_hosts(bad)} the configured resolver and 168.63.129.16 give different answers: " + bad[0].detail,
            facts.claim(bad),
            [dns_forwarder_fix(facts, zones=_zones_of(facts, bad))],
        )
    ]


def rule_hosts_override(facts: Facts, rule: Rule) -> list[Finding]:
    overrides: dict[str, Any] = facts.environment.get("local", {}).get("hosts_overrides") or {}
    if not overrides:
        return []
    checks = facts.open(lambda r: r.target.host in overrides and _dns_probe(r))
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


def _issuer_cn(cert: CertInfo) -> str:
    return cert.issuer_common_name or cert.issuer


def _trust_note(tls: TlsFacts) -> str:
    stores = stores_trusting(tls)
    trusted = [s for s, ok in stores.items() if ok]
    untrusted = [s for s, ok in stores.items() if ok is False]
    note = ""
    if trusted:
        note += f" Trusted by: {', '.join(trusted)}."
    if untrusted:
        note += (
            f" NOT trusted by: {', '.join(untrusted)} — tools using those stores fail with"
            " 'unable to get local issuer certificate'."
        )
    return note


def rule_tls_inspection(facts: Facts, rule: Rule) -> list[Finding]:
    from checks.expect import inspecting_issuers, is_azure_issuer, operator  # noqa: PLC0415 - circle expect <-> diagnose, removed by issue 12b

    inspecting = inspecting_issuers(facts.results)

    def inspected(r: CheckResult) -> bool:
        if r.tls is None or r.tls.leaf is None:
            return False
        if r.reason is Verdict.TLS_UNEXPECTED_ISSUER:
            return True
        if r.reason is not Reason.TLS_UNTRUSTED:
            return False
        if operator(r) == "microsoft":
            return not is_azure_issuer(r.tls.leaf)
        return r.tls.leaf.issuer in inspecting

    bad = facts.open(inspected)
    if not bad:
        return []
    leaves = [c.tls.leaf for c in bad if c.tls and c.tls.leaf]
    issuers = sorted({_issuer_cn(leaf) for leaf in leaves})
    ours = [c for c in bad if operator(c) != "third-party"]
    others = [c for c in bad if operator(c) == "third-party"]
    detail = f"{_hosts(ours or bad)} presented certificates issued by {'; '.join(issuers)}, not by an Azure CA."
    if ours and others:
        detail += f" The same CA re-signs third-party hosts too ({_hosts(others)})."
    detail += _trust_note(bad[0].tls)  # type: ignore[arg-type]
    return [
        rule.finding(
            f"TLS inspection: '{issuers[0]}' re-signs Azure traffic",
            detail,
            facts.claim(bad),
            [
                tls_bypass_fix(
                    sorted({c.target.host for c in facts.results if c.target.port == 443 and " " not in c.target.host})
                )
            ],
        )
    ]


def rule_missing_root(facts: Facts, rule: Rule) -> list[Finding]:
    """Azure's own chain, not trusted here: the trust store lacks its root (Azure/azhpc-images#539)."""
    from checks.expect import is_azure_issuer, operator  # noqa: PLC0415 - circle expect <-> diagnose, removed by issue 12b

    bad = facts.open(
        lambda r: (
            r.reason is Reason.TLS_UNTRUSTED
            and operator(r) == "microsoft"
            and r.tls is not None
            and r.tls.leaf is not None
            and is_azure_issuer(r.tls.leaf)
        )
    )
    if not bad:
        return []
    chains = [r.tls for r in bad if r.tls is not None and r.tls.leaf is not None]
    names = sorted({_issuer_cn(t.chain[-1] if t.chain else t.leaf) for t in chains if t.leaf})
    first = chains[0]
    issuer = _issuer_cn(first.leaf) if first.leaf else "?"
    store = first.ca_bundle or "the system trust store"
    detail = (
        f"{_hosts(bad)} presented Microsoft's own chain (issued by '{issuer}'), which leads to {', '.join(names)};"
        f" {store} lacks that root, so verification fails ('unable to get local issuer certificate'). Some"
        " Microsoft front ends send only the leaf and the intermediate, without the cross-signed bridge to"
        " DigiCert Global Root G2, so the root itself must be in the store."
    )
    detail += _trust_note(first)
    fixes = [g2_root_fix()] if G2_ROOT in names else [ca_store_update_fix()]
    return [
        rule.finding(
            f"The trust store lacks {', '.join(names)}: Microsoft's certificates cannot be verified",
            detail,
            facts.claim(bad),
            fixes,
        )
    ]


def rule_proxy_only(facts: Facts, rule: Rule) -> list[Finding]:
    via_proxy = [r for r in facts.results if r.route == "proxy" and r.status is Status.PASS]
    direct_bad = facts.open(
        lambda r: (
            (r.target.protocol in (Protocol.TCP, Protocol.SMB) and _tcp_failed(r))
            or (r.target.protocol is Protocol.UDP and r.reason in (Reason.UDP_OPEN_FILTERED, Reason.UDP_CLOSED))
        )
    )
    if not via_proxy or not any(r.target.protocol is not Protocol.UDP for r in direct_bad):
        return []
    ports = sorted({f"{r.target.protocol.value.upper()} {r.target.port}" for r in direct_bad})
    proxy = via_proxy[0].proxy.url if via_proxy[0].proxy else "the proxy"
    return [
        rule.finding(
            "HTTPS works only through the proxy; " + ", ".join(ports) + " have no direct path",
            f"{len(via_proxy)} HTTPS checks passed through {proxy}, but {len(direct_bad)} checks that no HTTP proxy"
            " can carry (UDP 5831 to tundra, SMB 445 to storage, 8787/18881 to the instance) found no direct path."
            " Compute instances need those without a proxy.",
            facts.claim(direct_bad),
            [
                nsg_fix(facts, "AzureMachineLearning", "Udp", "5831"),
                nsg_fix(facts, "Storage", "Tcp", "445"),
                nsg_fix(facts, "AzureMachineLearning", "Tcp", "8787 18881"),
                proxy_bypass_fix(facts),
            ],
        )
    ]


def rule_wireserver_non_root(facts: Facts, rule: Rule) -> list[Finding]:
    seen = facts.open(lambda r: r.labels.get("inconclusive") == "wireserver-non-root")
    if not seen:
        return []
    ports = sorted({str(r.target.port) for r in seen})
    return [
        rule.finding(
            "WireServer (168.63.129.16) cannot be tested as a non-root user",
            f"TCP {', '.join(ports)} to 168.63.129.16 got no answer, which is normal for a non-root user: the Azure"
            " Linux agent's firewall (OS.EnableFirewall) accepts only root's connections to WireServer and drops"
            " the rest (Azure/WALinuxAgent PR #914). Run amlprobe as root to test the path itself.",
            facts.claim(seen),
            [wireserver_root_fix(ports)],
        )
    ]


def _tag(r: CheckResult) -> str:
    return r.labels.get("service_tag") or ""


def _tag_port(r: CheckResult) -> tuple[str, int | None]:
    return (_tag(r), r.target.port)


def rule_situational(facts: Facts, rule: Rule) -> list[Finding]:
    """Situational rows (catalog ``required = false``) blocked while nothing required behind the same
    service tag and port is: at most a warning, never a critical run (common.toml's promise)."""
    failed = facts.open(_tcp_failed)
    # A required endpoint behind the same service tag failing too: one cause, left to the rules below.
    required = {_tag(r) for r in failed if r.labels.get("required") != "false"}
    bad = [r for r in failed if r.labels.get("required") == "false" and _tag(r) not in required]
    if not bad:
        return []
    ways = sorted({_SEEN[r.reason] for r in bad})
    purposes = sorted({r.labels.get("purpose", "") for r in bad if r.labels.get("purpose")})
    remediation = []
    for (tag, port), checks in sorted(_by_key(bad, _tag_port).items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if tag:
            remediation.append(nsg_fix(facts, tag, "Tcp", str(port)))
        else:
            remediation.append(firewall_fqdn_fix(facts, sorted({c.target.host for c in checks}), str(port)))
    return [
        rule.finding(
            f"Situational endpoints are {' / '.join(ways)} (not required)",
            f"{len(bad)} situational endpoint(s) could not be reached: {_hosts(bad)}. The catalog marks them"
            f" situational (needed only for: {'; '.join(purposes)}); everything required works. Allow them if"
            " you use those features.",
            facts.claim(bad),
            remediation,
        )
    ]


def _by_key(checks: Iterable[CheckResult], key: Callable[[CheckResult], Any]) -> dict[Any, list[CheckResult]]:
    out: dict[Any, list[CheckResult]] = {}
    for c in checks:
        out.setdefault(key(c), []).append(c)
    return out


def rule_outbound_443(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: _tcp_failed(r) and r.target.port == 443 and r.target.protocol is not Protocol.SMB)
    by_tag: dict[str, list[CheckResult]] = {}
    for r in bad:
        by_tag.setdefault(r.labels.get("service_tag") or "(no service tag)", []).append(r)
    findings = []
    for tag, checks in sorted(by_tag.items()):
        ways = sorted({_SEEN[c.reason] for c in checks})
        # No service tag: an NSG cannot name the destination; an FQDN rule on the firewall can.
        fix = (
            nsg_fix(facts, tag, "Tcp", "443")
            if checks[0].labels.get("service_tag")
            else firewall_fqdn_fix(facts, sorted({c.target.host for c in checks}), "443")
        )
        findings.append(
            rule.finding(
                f"Outbound TCP 443 to {tag} is {' / '.join(ways)}",
                f"{len(checks)} endpoint(s) behind {tag} could not be reached on 443: {_hosts(checks)}.",
                facts.claim(checks),
                [fix],
                doc=checks[0].labels.get("doc", ""),
            )
        )
    return findings


def rule_udp_5831(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(
        lambda r: r.target.protocol is Protocol.UDP and r.reason in (Reason.UDP_CLOSED, Reason.UDP_FILTERED)
    )
    if not bad:
        return []
    how = "rejected (ICMP port unreachable)" if bad[0].reason is Reason.UDP_CLOSED else "filtered (ICMP unreachable)"
    address = _udp_address(bad)
    return [
        rule.finding(
            f"UDP 5831 to Azure ML (tundra) is {how}: compute instances cannot be created or updated",
            f"{_hosts(bad)}: {bad[0].detail}",
            facts.claim(bad),
            [nsg_fix(facts, "AzureMachineLearning", "Udp", "5831"), udp_outside_checks(facts, address)],
        )
    ]


def _udp_address(checks: list[CheckResult]) -> str | None:
    """The IPv4 address the tundra name resolved to here (validated), for the outside checks."""

    return next((a for c in checks for a in c.addresses if is_ip(a) and ":" not in a), None)


def rule_udp_unconfirmed(facts: Facts, rule: Rule) -> list[Finding]:
    silent = facts.open(lambda r: r.target.protocol is Protocol.UDP and r.reason is Reason.UDP_OPEN_FILTERED)
    if not silent:
        return []
    address = _udp_address(silent)
    return [
        rule.finding(
            "UDP 5831 cannot be confirmed from inside (open|filtered)",
            f"{_hosts(silent)} stayed silent: no ICMP rejection came back, which is what a working path looks"
            " like and also what a silent drop looks like. No public source shows the service answering any"
            " datagram (not even a DTLS ClientHello), so nothing sent from here can tell the two apart: that"
            " takes Azure's own view of the NSG and routes, from outside (the commands below). If compute"
            " instance creation hangs, check the NSG and firewall for outbound UDP 5831 to AzureMachineLearning.",
            facts.claim(silent),
            [udp_outside_checks(facts, address), nsg_fix(facts, "AzureMachineLearning", "Udp", "5831")],
        )
    ]


def rule_smb(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: r.target.protocol is Protocol.SMB and r.status is Status.FAIL)
    if not bad:
        return []
    return [
        rule.finding(
            "SMB 445 to workspace storage is blocked: the file share cannot be mounted",
            f"{_hosts(bad)}: {bad[0].detail} Compute instances and clusters mount the workspace file share"
            " over SMB; without it they fail with StorageMountError.",
            facts.claim(bad),
            [nsg_fix(facts, "Storage", "Tcp", "445")],
        )
    ]


_STRIPPED = (Reason.WS_INTERCEPTED, Reason.WS_PROXY_AUTH_REQUIRED, Reason.WS_UPGRADE_IGNORED, Reason.WS_RESET)
_BROWSER_SIDE = (
    " This is the path from the compute; the path from the user's browser (the usual Jupyter breaker) cannot"
    " be seen from here: check it from the desktop with the command below."
)


def _who_answered(r: CheckResult) -> str:
    if r.reason is Reason.WS_RESET:
        return "a reset right after Upgrade:"
    if r.reason is Reason.WS_PROXY_AUTH_REQUIRED:
        return "an intercepting proxy (407)"
    if r.http is None:
        return "something in the path"
    signs = middlebox_signs(r.http)
    if signs:
        return signs[0]
    if r.reason is Reason.WS_UPGRADE_IGNORED:
        return f"something that dropped Upgrade (HTTP {r.http.status})"
    return "a block page"


def rule_websocket(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: r.target.protocol is Protocol.WEBSOCKET and r.reason in _STRIPPED)
    if not bad:
        return []
    hosts = {c.target.host for c in bad}
    # A box that answers a wss:// upgrade has decrypted it: its re-signed certificates on the same hosts are
    # this finding's evidence, not a second cause.
    decrypted = facts.open(lambda r: r.target.host in hosts and r.reason is Verdict.TLS_UNEXPECTED_ISSUER)
    detail = f"Websocket upgrades to {_hosts(bad)} were answered or cut by something in between. {bad[0].detail}"
    if decrypted:
        issuer = decrypted[0].tls.leaf.issuer_common_name if decrypted[0].tls and decrypted[0].tls.leaf else None
        detail += f" It decrypts TLS to these hosts (certificates issued by '{issuer or 'an unknown CA'}')."
    fixes = [tls_bypass_fix(sorted(hosts))]
    if any(c.route == "proxy" for c in bad):
        fixes.insert(0, proxy_bypass_fix(facts))
    return [
        rule.finding(
            f"Websocket upgrade stripped by {_who_answered(bad[0])}: Jupyter will not work",
            detail + _BROWSER_SIDE,
            facts.claim(bad) + facts.claim(decrypted),
            [*fixes, websocket_desktop_check(sorted(hosts))],
        )
    ]


def rule_websocket_inconclusive(facts: Facts, rule: Rule) -> list[Finding]:
    unsure = facts.open(lambda r: r.target.protocol is Protocol.WEBSOCKET and r.reason is Reason.WS_INCONCLUSIVE)
    if not unsure:
        return []
    return [
        rule.finding(
            "Websocket path to the compute instance not proven (inconclusive)",
            unsure[0].detail + _BROWSER_SIDE,
            facts.claim(unsure),
            [websocket_desktop_check(sorted({c.target.host for c in unsure}))],
        )
    ]


def rule_private_endpoint_unreachable(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: _tcp_failed(r) and r.labels.get("resource") is not None)
    if not bad:
        return []
    ports = " ".join(str(p) for p in sorted({r.target.port for r in bad if r.target.port is not None}))
    return [
        rule.finding(
            "Private endpoints do not answer",
            f"{_hosts(bad)} resolved to private endpoint addresses that did not accept connections: check the"
            f" NSG (VirtualNetwork outbound TCP {ports}) and the private endpoint's state.",
            facts.claim(bad),
            [nsg_fix(facts, "VirtualNetwork", "Tcp", ports or "443 445")],
        )
    ]


def rule_unexplained(facts: Facts, rule: Rule) -> list[Finding]:
    bad = facts.open(lambda r: r.status in (Status.FAIL, Status.WARN))
    return [
        rule.finding(
            f"{r.id}: {r.reason.value}",
            r.detail,
            facts.claim([r]),
            [],
            doc=r.labels.get("doc", ""),
        )
        for r in bad
    ]


def _r(id: str, sev: Severity, title: str, cause: str, fix: str, doc: str, run: Any) -> Rule:  # noqa: PLR0917
    return Rule(id, sev, title, cause, fix, doc, run)


RULES: tuple[Rule, ...] = (
    _r(
        "wireserver-non-root",
        Severity.INFO,
        "WireServer cannot be tested as a non-root user",
        "The Azure Linux agent's firewall drops non-root TCP to 168.63.129.16 (WALinuxAgent PR #914): normal.",
        "Nothing; run as root to test WireServer itself.",
        DOC_WIRESERVER,
        rule_wireserver_non_root,
    ),
    _r(
        "dns-unavailable",
        Severity.CRITICAL,
        "No DNS at all",
        "The configured resolver never answers (down, unreachable, or blocked UDP/TCP 53).",
        "Point the VNet at a working resolver, or add Azure DNS (168.63.129.16) as a forwarder.",
        DOC_CUSTOM_DNS,
        rule_no_dns,
    ),
    _r(
        "outbound-unavailable",
        Severity.CRITICAL,
        "No outbound connectivity at all",
        "Every TCP connection fails: a route table, NAT or NSG cuts all egress.",
        "Restore egress: NAT gateway or UDR to a firewall that allows the Azure ML service tags.",
        DOC_FIREWALL,
        rule_no_outbound,
    ),
    _r(
        "custom-dns-not-forwarding",
        Severity.CRITICAL,
        "Custom DNS does not forward the privatelink zones",
        "The VNet's custom DNS answers privatelink names itself (NXDOMAIN or public) instead of asking Azure DNS.",
        "Add conditional forwarders for the listed zones to 168.63.129.16.",
        DOC_CUSTOM_DNS,
        rule_custom_dns_not_forwarding,
    ),
    _r(
        "private-dns-zone-not-linked",
        Severity.CRITICAL,
        "Private DNS zone not linked",
        "Names with private endpoints resolve to public addresses even through Azure DNS.",
        "Link the privatelink zones to the VNet (az network private-dns link vnet create).",
        DOC_PE_DNS,
        rule_zone_not_linked,
    ),
    _r(
        "dns-comparison-inconclusive",
        Severity.INFO,
        "Azure DNS from this VNet answers publicly, the configured resolver privately",
        "Private DNS zones linked only to the DNS server's VNet (hub and spoke), or manual records: documented.",
        "Nothing; verify which VNets the zones are linked to if in doubt.",
        DOC_CUSTOM_DNS,
        rule_reference_inconclusive,
    ),
    _r(
        "dns-resolver-mismatch",
        Severity.WARNING,
        "Configured resolver disagrees with Azure DNS",
        "Two resolvers give different answers for a workspace name: split-horizon drift.",
        "Forward the zones to 168.63.129.16 or fix the records the custom DNS serves.",
        DOC_CUSTOM_DNS,
        rule_resolver_mismatch,
    ),
    _r(
        "hosts-file-override",
        Severity.WARNING,
        "Hosts-file override of an Azure ML name",
        "/etc/hosts pins a catalog name; the pin goes stale when the endpoint moves.",
        "Remove the entries and let DNS answer.",
        DOC_CUSTOM_DNS,
        rule_hosts_override,
    ),
    _r(
        "websocket-stripped",
        Severity.CRITICAL,
        "Websocket upgrade stripped",
        "A proxy or firewall answers the websocket upgrade itself (407, Via, a proxy's Server header, a block"
        " page, 200) or resets it: Jupyter cannot connect.",
        "Let websockets to *.instances.azureml.ms pass (bypass the proxy / inspection); check the desktop's path.",
        DOC_JUPYTER,
        rule_websocket,
    ),
    _r(
        "websocket-inconclusive",
        Severity.WARNING,
        "Websocket path not proven",
        "The anonymous upgrade got an answer that neither comes visibly from the Azure ML front end nor from a"
        " middlebox.",
        "Run the desktop check; if it shows a proxy's marks, let websockets to *.instances.azureml.ms pass.",
        DOC_JUPYTER,
        rule_websocket_inconclusive,
    ),
    _r(
        "tls-inspection",
        Severity.CRITICAL,
        "TLS inspection of Azure ML traffic",
        "A firewall or proxy re-signs TLS with its own CA; tools whose trust store lacks it fail.",
        "Exempt the Azure ML hosts from TLS inspection, or add the CA to every trust store.",
        DOC_CA,
        rule_tls_inspection,
    ),
    _r(
        "trust-store-lacks-microsoft-root",
        Severity.CRITICAL,
        "The trust store lacks Microsoft's root",
        "A Microsoft host presents Microsoft's own chain (e.g. Microsoft TLS G2 RSA CA OCSP NN under Microsoft"
        " TLS RSA Root G2) and this machine's trust store lacks the root.",
        "Install the root (pinned) into the OS store and point certifi-based tools at it.",
        DOC_CA,
        rule_missing_root,
    ),
    _r(
        "resource-network-denied",
        Severity.CRITICAL,
        "A workspace resource's firewall refuses this machine",
        "The storage account, key vault or registry answered an anonymous request and refused it because of where"
        " it came from: its network rules do not admit the compute (storage and the registry answer disabled public"
        " network access the same way).",
        "Admit the compute subnet (or the address the resource saw) in its network rules, or reach it through a"
        " private endpoint.",
        DOC_RESOURCE_FIREWALL,
        rule_resource_network_denied,
    ),
    _r(
        "resource-public-access-disabled",
        Severity.CRITICAL,
        "A workspace resource has public network access disabled",
        "The key vault refused the request with ForbiddenByConnection: public network access is disabled and the"
        " request did not come through an approved private endpoint.",
        "Reach it through a private endpoint in the compute's VNet (with its private DNS zone), or enable public"
        " access for chosen networks.",
        DOC_RESOURCE_FIREWALL,
        rule_resource_public_access_disabled,
    ),
    _r(
        "resource-request-intercepted",
        Severity.CRITICAL,
        "Something in between answers for a workspace resource",
        "A proxy, a block page or Azure Firewall (HTTP 470) answered the request to the storage account, key vault"
        " or registry instead of the service.",
        "Allow the resource's name on the firewall (an application rule) or send it past the proxy.",
        DOC_FIREWALL,
        rule_resource_intercepted,
    ),
    _r(
        "resource-answer-inconclusive",
        Severity.WARNING,
        "Who answered for a workspace resource cannot be told",
        "The answer carries neither the service's marks (its request id, error code or challenge) nor a middlebox's.",
        "Read the check's detail; ask the same URL from a machine known to reach the service and compare.",
        DOC_RESOURCE_FIREWALL,
        rule_resource_inconclusive,
    ),
    _r(
        "proxy-only-egress",
        Severity.CRITICAL,
        "HTTPS only through a proxy",
        "Egress exists only through an HTTP proxy, which cannot carry UDP 5831, SMB 445 or 8787/18881.",
        "Allow those ports directly to their service tags and bypass the proxy for private endpoints.",
        DOC_PROXY,
        rule_proxy_only,
    ),
    _r(
        "situational-endpoints-blocked",
        Severity.WARNING,
        "Situational endpoints blocked",
        "Endpoints the catalog marks situational (required = false) are blocked; nothing required is.",
        "Allow them if you use the features they serve (RStudio, package mirrors, monitoring, PKI over HTTP).",
        DOC_FIREWALL,
        rule_situational,
    ),
    _r(
        "outbound-443-blocked",
        Severity.CRITICAL,
        "Outbound 443 to a service tag blocked",
        "An NSG or firewall drops or rejects HTTPS to a required service tag.",
        "Allow outbound TCP 443 to the service tag.",
        DOC_FIREWALL,
        rule_outbound_443,
    ),
    _r(
        "udp-5831-blocked",
        Severity.CRITICAL,
        "UDP 5831 rejected",
        "Outbound UDP 5831 to AzureMachineLearning is rejected: compute instance management fails.",
        "Allow outbound UDP 5831 to AzureMachineLearning.",
        DOC_TRAINING_VNET,
        rule_udp_5831,
    ),
    _r(
        "smb-no-common-security",
        Severity.CRITICAL,
        "Port 445 open but no common SMB security settings",
        "Something answers SMB on 445, but with no dialect or no cipher in common with what the Linux CIFS client"
        " of Ubuntu 22.04 offers: no encrypted session can be set up.",
        "Check the file service's SMB settings (versions, channel encryption), or what answers on 445 instead of"
        " Azure Files.",
        DOC_FILES_SMB,
        rule_smb_no_common_security,
    ),
    _r(
        "smb-encryption-aes256-only",
        Severity.WARNING,
        "The file share accepts only AES-256-GCM",
        "The share refuses AES-128-GCM and AES-128-CCM. Microsoft asks for AES-128-GCM to be enabled for mounts to"
        " work; Linux clients offer it first, and older kernels offer nothing stronger.",
        "Allow AES-128-GCM next to AES-256-GCM in the storage account's SMB channel encryption.",
        DOC_FILES_MOUNT,
        rule_smb_aes256_only,
    ),
    _r(
        "smb-445-blocked",
        Severity.CRITICAL,
        "SMB 445 blocked",
        "Outbound TCP 445 to storage is blocked: the workspace file share cannot mount.",
        "Allow outbound TCP 445 to Storage (or the storage private endpoint).",
        DOC_TRAINING_VNET,
        rule_smb,
    ),
    _r(
        "private-endpoint-unreachable",
        Severity.CRITICAL,
        "Private endpoints do not answer",
        "Names resolve to private endpoint addresses that refuse or drop connections.",
        "Allow VirtualNetwork outbound 443/445 and check the private endpoint.",
        DOC_TRAINING_VNET,
        rule_private_endpoint_unreachable,
    ),
    _r(
        "udp-5831-unconfirmed",
        Severity.INFO,
        "UDP 5831 cannot be confirmed from inside",
        "UDP 5831 is open|filtered: silence is all a working path shows.",
        "Nothing if instances create fine; otherwise check outbound UDP 5831.",
        DOC_TRAINING_VNET,
        rule_udp_unconfirmed,
    ),
    _r(
        "registry-layers-unprobed",
        Severity.INFO,
        "Image layers come from the registry's storage account, which is not probed",
        "Without a dedicated data endpoint or a private endpoint a registry serves layers from its own storage"
        " account (*.blob.core.windows.net), whose name only an authenticated pull learns.",
        "Allow *.blob.core.windows.net on 443 (Storage service tag) for pulls, or give the registry a dedicated data"
        " endpoint a firewall can name.",
        DOC_ACR_ENDPOINTS,
        rule_registry_layers_unprobed,
    ),
    _r(
        "unexplained-failure",
        Severity.WARNING,
        "A check failed for a reason no rule explains",
        "A failure none of the rules above recognises.",
        "Read the check's detail.",
        DOC_FIREWALL,
        rule_unexplained,
    ),
)


def _cap_situational(findings: list[Finding], results: list[CheckResult]) -> None:
    """A finding whose every piece of evidence is a situational row (required = false) is at most a
    warning: the catalog promises that such rows never make the run critical."""
    required = {r.id: r.labels.get("required") != "false" for r in results}
    for f in findings:
        if f.severity is Severity.CRITICAL and f.evidence and not any(required.get(e, True) for e in f.evidence):
            f.severity = Severity.WARNING
            f.detail += " (Situational endpoints only: a warning, not a failure.)"


def diagnose(results: list[CheckResult], plan: Plan, inputs: Inputs, environment: dict[str, Any]) -> list[Finding]:
    facts = Facts(results=results, plan=plan, inputs=inputs, environment=environment, claimed=set())
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule.run(facts, rule))
    _cap_situational(findings, results)
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])
