"""The last rule: every failure or warning no rule above explained becomes a finding of its own."""

from __future__ import annotations

from checks.diagnosis.base import DOC_FIREWALL, Evidence, Rule, rule
from probe.model import Finding, Severity, Status


@rule(
    id="unexplained-failure",
    severity=Severity.WARNING,
    title="A check failed for a reason no rule explains",
    cause="A failure none of the rules above recognises.",
    fix="Read the check's detail.",
    doc=DOC_FIREWALL,
    links_endpoint_doc=True,
)
def unexplained_failure(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: r.status in (Status.FAIL, Status.WARN))
    return [
        rule.finding(
            f"{r.id}: {r.reason.value}", r.detail, ev.claim([r]), [], doc=r.labels.get("doc", ""), instance=r.id
        )
        for r in bad
    ]
