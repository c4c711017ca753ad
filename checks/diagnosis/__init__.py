"""From judged check results to root causes: one finding per cause, with evidence and a paste-able fix.

One module per family of causes; each rule carries its id, severity, title, cause, fix, doc and
remedies beside its logic (checks.diagnosis.base.rule). Adding a rule: write it in its family's
module and list it in RULES below; docs/troubleshooting.md follows (``python -m checks.docs``).
"""

from __future__ import annotations

from checks.diagnosis import dns, egress, fallback, resources, situational, smb, tls, udp, websocket
from checks.diagnosis.base import Evidence, Rule
from checks.diagnosis.situational import cap_situational
from probe.model import Finding, Severity

# The order is meaning. Each rule claims the checks it explains, and a later rule sees only what is left,
# so a consequence is never reported again as a cause of its own: with DNS down, the failed TCP probes are
# evidence of dns-resolver-not-answering, not forty findings. Hence: what explains everything (no network, no
# DNS, no egress) first; DNS before what fails because of DNS; a middlebox (websocket, TLS inspection, a
# resource answered for) before the generic "443 blocked"; a required path's cause before the situational
# rows behind the same tag; the fallback last, so that no failure is ever hidden.
RULES: tuple[Rule, ...] = (
    egress.wireserver_non_root,  # normal for a non-root user: claimed before any rule calls it a drop
    egress.network_unavailable,  # nothing answered at all: one cause for every failure
    dns.dns_resolver_not_answering,  # the resolver is silent: every name's failure is its consequence
    dns.dns_unavailable,
    egress.outbound_unavailable,
    dns.custom_dns_not_forwarding,
    dns.private_dns_zone_not_linked,
    dns.dns_comparison_inconclusive,
    dns.dns_resolver_mismatch,
    dns.hosts_file_override,
    websocket.websocket_stripped,  # claims the re-signed certificates of the hosts it strips
    websocket.websocket_inconclusive,
    tls.tls_inspection,
    tls.trust_store_lacks_microsoft_root,
    resources.resource_network_denied,
    resources.resource_public_access_disabled,
    resources.resource_request_intercepted,
    resources.resource_answer_inconclusive,
    egress.proxy_only_egress,  # before the per-port rules: one cause for every path a proxy cannot carry
    situational.situational_endpoints_blocked,
    egress.outbound_443_blocked,
    udp.udp_5831_blocked,
    smb.smb_no_common_security,
    smb.smb_encryption_aes256_only,
    smb.smb_445_blocked,
    egress.private_endpoint_unreachable,
    udp.udp_5831_unconfirmed,
    resources.registry_layers_unprobed,
    fallback.unexplained_failure,
)

_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def diagnose(evidence: Evidence) -> list[Finding]:
    """Run every rule in order over ``evidence``; findings come back most severe first."""
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(evidence))
    cap_situational(findings, evidence.results)
    _distinct_instances(findings)
    return sorted(findings, key=lambda f: _SEVERITY_ORDER[f.severity])


def _distinct_instances(findings: list[Finding]) -> None:
    """(id, instance) is a finding's key in the report contract: should a rule ever name two findings alike, the
    later ones add their first piece of evidence, so that neither a diff nor a monitor folds them into one."""
    seen: set[tuple[str, str]] = set()
    for f in findings:
        if (f.id, f.instance) in seen and f.evidence:
            f.instance = f"{f.instance}@{f.evidence[0]}" if f.instance else f.evidence[0]
        seen.add((f.id, f.instance))


__all__ = ["RULES", "Evidence", "Rule", "diagnose"]
