"""Rules for the way out: no network at all, no egress at all, egress only through a proxy, 443 blocked to a
service tag, private endpoints that do not answer, and WireServer as seen by a non-root user."""

from __future__ import annotations

from checks.addresses import AZURE_DNS
from checks.diagnosis.base import (
    DOC_FIREWALL,
    DOC_PROXY,
    DOC_TRAINING_VNET,
    DOC_WIRESERVER,
    SEEN,
    TCP_BASED,
    Evidence,
    Rule,
    by_key,
    hosts,
    own_reason,
    rule,
    service_tag,
    tcp_failed,
)
from checks.remedies import (
    egress_fix,
    firewall_fqdn_fix,
    local_route_check,
    nsg_fix,
    proxy_bypass_fix,
    subnet_egress_check,
    wireserver_root_fix,
)
from probe.model import CheckResult, Finding, Protocol, Severity, Status
from probe.reasons import DNS_FAILURES, TCP_FAILURES, Reason


@rule(
    id="wireserver-non-root",
    severity=Severity.INFO,
    title="WireServer cannot be tested as a non-root user",
    cause=f"The Azure Linux agent's firewall drops non-root TCP to {AZURE_DNS} (WALinuxAgent PR #914): normal.",
    fix="Nothing; run as root to test WireServer itself.",
    doc=DOC_WIRESERVER,
    remedies=(lambda c: wireserver_root_fix(["<PORTS>"]),),
)
def wireserver_non_root(ev: Evidence, rule: Rule) -> list[Finding]:
    seen = ev.open(lambda r: r.labels.get("inconclusive") == "wireserver-non-root")
    if not seen:
        return []
    ports = sorted({str(r.target.port) for r in seen})
    return [
        rule.finding(
            f"WireServer ({AZURE_DNS}) cannot be tested as a non-root user",
            f"TCP {', '.join(ports)} to {AZURE_DNS} got no answer, which is normal for a non-root user: the Azure"
            " Linux agent's firewall (OS.EnableFirewall) accepts only root's connections to WireServer and drops"
            " the rest (Azure/WALinuxAgent PR #914). Run amlprobe as root to test the path itself.",
            ev.claim(seen),
            [wireserver_root_fix(ports)],
        )
    ]


def _answered(r: CheckResult) -> bool:
    """Whether the probe got an answer of its own from something on the network (a refusal is an answer too)."""
    seen = own_reason(r)
    if r.target.protocol is Protocol.DNS:
        return seen not in (Reason.DNS_TIMEOUT, Reason.DNS_ERROR, Reason.DNS_NO_SERVERS)
    if r.target.protocol is Protocol.UDP:
        return seen in (Reason.UDP_OPEN, Reason.UDP_CLOSED)
    return seen not in TCP_FAILURES and seen not in DNS_FAILURES


@rule(
    id="network-unavailable",
    severity=Severity.CRITICAL,
    title="No network: nothing answered",
    cause="Nothing on the network answered this machine: no resolver, not one connection, not even to an address."
    " The machine has no route out (its interface or default route, or a route table sending everything nowhere),"
    " or everything is dropped on the way.",
    fix="Check this machine's interface and default route, then the compute subnet's route table, NSG and NAT gateway.",
    doc=DOC_FIREWALL,
    remedies=(lambda c: local_route_check(), subnet_egress_check, lambda c: nsg_fix(c, "AzureCloud", "Tcp", "443")),
)
def network_unavailable(ev: Evidence, rule: Rule) -> list[Finding]:
    """One finding for a machine with no network at all, which swallows every consequence: the names that did not
    resolve, the connections that could not be made, the reference resolver that was not reached."""
    probed = [r for r in ev.results if r.status is not Status.SKIP]
    dns = [r for r in probed if r.target.protocol is Protocol.DNS]
    direct = [r for r in probed if tcp_failed(r)]
    # Proof needs two independent facts: the resolvers are silent, and a connection to an address failed too.
    if not dns or not direct or any(_answered(r) for r in probed):
        return []
    everything = ev.open(lambda r: True)
    ways = sorted({SEEN[r.reason] for r in direct})
    return [
        rule.finding(
            "No network: nothing answered, not the resolvers and not one connection",
            f"None of {len(dns)} DNS queries got an answer ({dns[0].detail}), and every connection to an address"
            f" failed ({'; '.join(ways)}: {hosts(direct)}). Every other check failed because of that. Check the"
            " machine's interface and default route (ip route), then the subnet's route table (a UDR 0.0.0.0/0 to"
            " an appliance that is down?), NSG and NAT gateway.",
            ev.claim(everything),
            rule.fixes(ev.remedies),
        )
    ]


@rule(
    id="outbound-unavailable",
    severity=Severity.CRITICAL,
    title="No outbound connectivity at all",
    cause="Every TCP connection fails: a route table, NAT or NSG cuts all egress.",
    fix="Restore egress: NAT gateway or UDR to a firewall that allows the Azure ML service tags.",
    doc=DOC_FIREWALL,
    remedies=(lambda c: nsg_fix(c, "AzureCloud", "Tcp", "443"),),
)
def outbound_unavailable(ev: Evidence, rule: Rule) -> list[Finding]:
    tcp = ev.open(lambda r: r.target.protocol in TCP_BASED and r.status is not Status.SKIP)
    if len(tcp) < 3 or not all(tcp_failed(r) for r in tcp):
        return []
    ways = sorted({SEEN[r.reason] for r in tcp})
    return [
        rule.finding(
            "No outbound connectivity at all: every TCP probe failed",
            f"All {len(tcp)} TCP connections failed ({'; '.join(ways)}). Check the subnet's route table"
            " (UDR 0.0.0.0/0 to a firewall?), NAT gateway and the NSG's outbound rules.",
            ev.claim(tcp),
            rule.fixes(ev.remedies),
        )
    ]


@rule(
    id="proxy-only-egress",
    severity=Severity.CRITICAL,
    title="HTTPS only through a proxy",
    cause="Egress exists only through an HTTP proxy, which cannot carry UDP 5831, SMB 445 or 8787/18881.",
    fix="Allow those ports directly to their service tags and bypass the proxy for private endpoints.",
    doc=DOC_PROXY,
    remedies=(
        lambda c: nsg_fix(c, "AzureMachineLearning", "Udp", "5831"),
        lambda c: nsg_fix(c, "Storage", "Tcp", "445"),
        lambda c: nsg_fix(c, "AzureMachineLearning", "Tcp", "8787 18881"),
        proxy_bypass_fix,
    ),
)
def proxy_only_egress(ev: Evidence, rule: Rule) -> list[Finding]:
    via_proxy = [r for r in ev.results if r.route == "proxy" and r.status is Status.PASS]
    direct_bad = ev.open(
        lambda r: (
            (r.target.protocol in (Protocol.TCP, Protocol.SMB) and tcp_failed(r))
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
            ev.claim(direct_bad),
            rule.fixes(ev.remedies),
        )
    ]


@rule(
    id="outbound-443-blocked",
    severity=Severity.CRITICAL,
    title="Outbound 443 to a service tag blocked",
    cause="An NSG or firewall drops or rejects HTTPS to a required service tag.",
    fix="Allow outbound TCP 443 to the service tag.",
    doc=DOC_FIREWALL,
    remedies=(
        lambda c: nsg_fix(c, "<SERVICE_TAG>", "Tcp", "443"),
        lambda c: firewall_fqdn_fix(c, ["<HOST>"], "443"),
    ),
    links_endpoint_doc=True,
)
def outbound_443_blocked(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: tcp_failed(r) and r.target.port == 443 and r.target.protocol is not Protocol.SMB)
    findings = []
    for tag, checks in sorted(by_key(bad, service_tag).items()):
        ways = " / ".join(sorted({SEEN[c.reason] for c in checks}))
        names = sorted({c.target.host for c in checks})
        if tag:
            title = f"Outbound TCP 443 to {tag} is {ways}"
            detail = f"{len(checks)} endpoint(s) behind {tag} could not be reached on 443: {hosts(checks)}."
        else:
            # No service tag: an NSG cannot name the destination; an FQDN rule on the firewall can.
            title = f"Outbound TCP 443 to {hosts(checks)} is {ways}"
            detail = (
                f"{len(checks)} endpoint(s) no service tag covers could not be reached on 443: {hosts(checks)}."
                " An NSG cannot name them; a firewall's FQDN rule can."
            )
        fix = egress_fix(ev.remedies, tag, names, "443")
        findings.append(
            rule.finding(
                title, detail, ev.claim(checks), [fix], doc=checks[0].labels.get("doc", ""), instance=tag or "fqdn"
            )
        )
    return findings


@rule(
    id="private-endpoint-unreachable",
    severity=Severity.CRITICAL,
    title="Private endpoints do not answer",
    cause="Names resolve to private endpoint addresses that refuse or drop connections.",
    fix="Allow VirtualNetwork outbound 443/445 and check the private endpoint.",
    doc=DOC_TRAINING_VNET,
    remedies=(lambda c: nsg_fix(c, "VirtualNetwork", "Tcp", "<PORTS>"),),
)
def private_endpoint_unreachable(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: tcp_failed(r) and r.labels.get("resource") is not None)
    if not bad:
        return []
    ports = " ".join(str(p) for p in sorted({r.target.port for r in bad if r.target.port is not None}))
    return [
        rule.finding(
            "Private endpoints do not answer",
            f"{hosts(bad)} resolved to private endpoint addresses that did not accept connections: check the"
            f" NSG (VirtualNetwork outbound TCP {ports}) and the private endpoint's state.",
            ev.claim(bad),
            [nsg_fix(ev.remedies, "VirtualNetwork", "Tcp", ports or "443 445")],
        )
    ]
