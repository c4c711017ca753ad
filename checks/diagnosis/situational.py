"""Situational endpoints (catalog ``required = false``): at most a warning, never a critical run.

The catalog promises it (checks/data/common.toml, ``required``): a row needed only for a feature the
workspace may not use (RStudio, package mirrors, monitoring, PKI over HTTP) must not fail the run.
"""

from __future__ import annotations

from checks.diagnosis.base import DOC_FIREWALL, SEEN, Evidence, Rule, by_key, hosts, rule, service_tag, tcp_failed
from checks.remedies import egress_fix, firewall_fqdn_fix, nsg_fix
from probe.model import CheckResult, Finding, Severity


def _tag_port(r: CheckResult) -> tuple[str, int | None]:
    return (service_tag(r), r.target.port)


@rule(
    id="situational-endpoints-blocked",
    severity=Severity.WARNING,
    title="Situational endpoints blocked",
    cause="Endpoints the catalog marks situational (required = false) are blocked; nothing required is.",
    fix="Allow them if you use the features they serve (RStudio, package mirrors, monitoring, PKI over HTTP).",
    doc=DOC_FIREWALL,
    remedies=(
        lambda c: nsg_fix(c, "<SERVICE_TAG>", "Tcp", "<PORT>"),
        lambda c: firewall_fqdn_fix(c, ["<HOST>"], "443"),  # HTTP(S): an application rule
        lambda c: firewall_fqdn_fix(c, ["<HOST>"], "<PORT>"),  # other ports: a network rule
    ),
)
def situational_endpoints_blocked(ev: Evidence, rule: Rule) -> list[Finding]:
    """Situational rows blocked while nothing required behind the same service tag and port is."""
    failed = ev.open(tcp_failed)
    # A required endpoint behind the same service tag failing too: one cause, left to the rules below.
    required = {service_tag(r) for r in failed if r.required is not False}
    bad = [r for r in failed if r.required is False and service_tag(r) not in required]
    if not bad:
        return []
    ways = sorted({SEEN[r.reason] for r in bad})
    purposes = sorted({r.labels.get("purpose", "") for r in bad if r.labels.get("purpose")})
    remediation = []
    for (tag, port), checks in sorted(by_key(bad, _tag_port).items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        remediation.append(egress_fix(ev.remedies, tag, sorted({c.target.host for c in checks}), str(port)))
    return [
        rule.finding(
            f"Situational endpoints are {' / '.join(ways)} (not required)",
            f"{len(bad)} situational endpoint(s) could not be reached: {hosts(bad)}. The catalog marks them"
            f" situational (needed only for: {'; '.join(purposes)}); everything required works. Allow them if"
            " you use those features.",
            ev.claim(bad),
            remediation,
        )
    ]


def cap_situational(findings: list[Finding], results: list[CheckResult]) -> None:
    """A finding whose every piece of evidence is a situational row is at most a warning, whichever rule
    made it."""
    required = {r.id: r.required is not False for r in results}
    for f in findings:
        if f.severity is Severity.CRITICAL and f.evidence and not any(required.get(e, True) for e in f.evidence):
            f.severity = Severity.WARNING
            f.detail += " (Situational endpoints only: a warning, not a failure.)"
