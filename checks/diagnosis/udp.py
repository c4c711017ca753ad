"""Rules for UDP 5831, the compute instance's management channel (tundra): rejected, or silent as a
working path is. Sources: docs/sources.md ("UDP 5831")."""

from __future__ import annotations

from checks.addresses import is_ip
from checks.diagnosis.base import DOC_TRAINING_VNET, Evidence, Rule, hosts, rule
from checks.remedies import nsg_fix, udp_outside_checks
from probe.model import CheckResult, Finding, Protocol, Severity
from probe.reasons import Reason


def _udp_address(checks: list[CheckResult]) -> str | None:
    """The IPv4 address the tundra name resolved to here (validated), for the outside checks."""
    return next((a for c in checks for a in c.addresses if is_ip(a) and ":" not in a), None)


@rule(
    id="udp-5831-blocked",
    severity=Severity.CRITICAL,
    title="UDP 5831 rejected",
    cause="Outbound UDP 5831 to AzureMachineLearning is rejected: compute instance management fails.",
    fix="Allow outbound UDP 5831 to AzureMachineLearning.",
    doc=DOC_TRAINING_VNET,
    remedies=(lambda c: nsg_fix(c, "AzureMachineLearning", "Udp", "5831"), lambda c: udp_outside_checks(c, None)),
)
def udp_5831_blocked(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: r.target.protocol is Protocol.UDP and r.reason in (Reason.UDP_CLOSED, Reason.UDP_FILTERED))
    if not bad:
        return []
    how = "rejected (ICMP port unreachable)" if bad[0].reason is Reason.UDP_CLOSED else "filtered (ICMP unreachable)"
    return [
        rule.finding(
            f"UDP 5831 to Azure ML (tundra) is {how}: compute instances cannot be created or updated",
            f"{hosts(bad)}: {bad[0].detail}",
            ev.claim(bad),
            [
                nsg_fix(ev.remedies, "AzureMachineLearning", "Udp", "5831"),
                udp_outside_checks(ev.remedies, _udp_address(bad)),
            ],
        )
    ]


@rule(
    id="udp-5831-unconfirmed",
    severity=Severity.INFO,
    title="UDP 5831 cannot be confirmed from inside",
    cause="UDP 5831 is open|filtered: silence is all a working path shows.",
    fix="Nothing if instances create fine; otherwise check outbound UDP 5831.",
    doc=DOC_TRAINING_VNET,
    remedies=(lambda c: udp_outside_checks(c, None), lambda c: nsg_fix(c, "AzureMachineLearning", "Udp", "5831")),
)
def udp_5831_unconfirmed(ev: Evidence, rule: Rule) -> list[Finding]:
    silent = ev.open(lambda r: r.target.protocol is Protocol.UDP and r.reason is Reason.UDP_OPEN_FILTERED)
    if not silent:
        return []
    return [
        rule.finding(
            "UDP 5831 cannot be confirmed from inside (open|filtered)",
            f"{hosts(silent)} stayed silent: no ICMP rejection came back, which is what a working path looks"
            " like and also what a silent drop looks like. No public source shows the service answering any"
            " datagram (not even a DTLS ClientHello), so nothing sent from here can tell the two apart: that"
            " takes Azure's own view of the NSG and routes, from outside (the commands below). If compute"
            " instance creation hangs, check the NSG and firewall for outbound UDP 5831 to AzureMachineLearning.",
            ev.claim(silent),
            [
                udp_outside_checks(ev.remedies, _udp_address(silent)),
                nsg_fix(ev.remedies, "AzureMachineLearning", "Udp", "5831"),
            ],
        )
    ]
