"""Rules for the compute instance's websocket (Jupyter): stripped by something in between, or not proven.
Sources: docs/sources.md, "The compute-instance front end and the websocket upgrade"."""

from __future__ import annotations

from checks.diagnosis.base import DOC_JUPYTER, Evidence, Rule, hosts, rule
from checks.remedies import proxy_bypass_fix, tls_bypass_fix, websocket_desktop_check
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Protocol, Severity
from probe.probers.websocket import middlebox_signs
from probe.reasons import Reason

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


@rule(
    id="websocket-stripped",
    severity=Severity.CRITICAL,
    title="Websocket upgrade stripped",
    cause="A proxy or firewall answers the websocket upgrade itself (407, Via, a proxy's Server header, a block"
    " page, 200) or resets it: Jupyter cannot connect.",
    fix="Let websockets to *.instances.azureml.ms pass (bypass the proxy / inspection); check the desktop's path.",
    doc=DOC_JUPYTER,
    remedies=(proxy_bypass_fix, lambda c: tls_bypass_fix(["<HOST>"]), lambda c: websocket_desktop_check(["<HOST>"])),
)
def websocket_stripped(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: r.target.protocol is Protocol.WEBSOCKET and r.reason in _STRIPPED)
    if not bad:
        return []
    names = {c.target.host for c in bad}
    # A box that answers a wss:// upgrade has decrypted it: its re-signed certificates on the same hosts are
    # this finding's evidence, not a second cause.
    decrypted = ev.open(lambda r: r.target.host in names and r.reason is Verdict.TLS_UNEXPECTED_ISSUER)
    detail = f"Websocket upgrades to {hosts(bad)} were answered or cut by something in between. {bad[0].detail}"
    if decrypted:
        issuer = decrypted[0].tls.leaf.issuer_common_name if decrypted[0].tls and decrypted[0].tls.leaf else None
        detail += f" It decrypts TLS to these hosts (certificates issued by '{issuer or 'an unknown CA'}')."
    fixes = [tls_bypass_fix(sorted(names))]
    if any(c.route == "proxy" for c in bad):
        fixes.insert(0, proxy_bypass_fix(ev.remedies))
    return [
        rule.finding(
            f"Websocket upgrade stripped by {_who_answered(bad[0])}: Jupyter will not work",
            detail + _BROWSER_SIDE,
            ev.claim(bad) + ev.claim(decrypted),
            [*fixes, websocket_desktop_check(sorted(names))],
        )
    ]


@rule(
    id="websocket-inconclusive",
    severity=Severity.WARNING,
    title="Websocket path not proven",
    cause="The anonymous upgrade got an answer that neither comes visibly from the Azure ML front end nor from a"
    " middlebox.",
    fix="Run the desktop check; if it shows a proxy's marks, let websockets to *.instances.azureml.ms pass.",
    doc=DOC_JUPYTER,
    remedies=(lambda c: websocket_desktop_check(["<HOST>"]),),
)
def websocket_inconclusive(ev: Evidence, rule: Rule) -> list[Finding]:
    unsure = ev.open(lambda r: r.target.protocol is Protocol.WEBSOCKET and r.reason is Reason.WS_INCONCLUSIVE)
    if not unsure:
        return []
    return [
        rule.finding(
            "Websocket path to the compute instance not proven (inconclusive)",
            unsure[0].detail + _BROWSER_SIDE,
            ev.claim(unsure),
            [websocket_desktop_check(sorted({c.target.host for c in unsure}))],
        )
    ]
