"""Rules for TLS: something re-signs Azure ML traffic, or this machine's trust store lacks Microsoft's root.
Sources: docs/sources.md, "Who issues the certificates"."""

from __future__ import annotations

from checks.diagnosis.base import DOC_CA, Evidence, Rule, hosts, rule
from checks.issuers import inspecting_issuers, is_azure_issuer, issuer_cn, operator
from checks.remedies import G2_ROOT, ca_store_update_fix, g2_root_fix, tls_bypass_fix
from checks.remedies.base import doc_name
from checks.truststores import stores_trusting
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Severity, TlsFacts
from probe.reasons import Reason


def _trust_note(tls: TlsFacts | None) -> str:
    if tls is None:
        return ""
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


@rule(
    id="tls-inspection",
    severity=Severity.CRITICAL,
    title="TLS inspection of Azure ML traffic",
    cause="A firewall or proxy re-signs TLS with its own CA; tools whose trust store lacks it fail.",
    fix="Exempt the Azure ML hosts from TLS inspection, or add the CA to every trust store.",
    doc=DOC_CA,
    remedies=(lambda c: tls_bypass_fix(["<HOST>"]),),
)
def tls_inspection(ev: Evidence, rule: Rule) -> list[Finding]:
    inspecting = inspecting_issuers(ev.results)

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

    bad = ev.open(inspected)
    if not bad:
        return []
    leaves = [c.tls.leaf for c in bad if c.tls and c.tls.leaf]
    issuers = sorted({issuer_cn(leaf) for leaf in leaves})
    ours = [c for c in bad if operator(c) != "third-party"]
    others = [c for c in bad if operator(c) == "third-party"]
    detail = f"{hosts(ours or bad)} presented certificates issued by {'; '.join(issuers)}, not by an Azure CA."
    if ours and others:
        detail += f" The same CA re-signs third-party hosts too ({hosts(others)})."
    detail += _trust_note(bad[0].tls)
    # Every name on 443, the catalog's documented wildcards among them (rows not probed), as a bypass list takes them.
    names = sorted({n for c in ev.results if c.target.port == 443 and (n := doc_name(c.target.host, ev.remedies))})
    return [
        rule.finding(
            f"TLS inspection: '{issuers[0]}' re-signs Azure traffic", detail, ev.claim(bad), [tls_bypass_fix(names)]
        )
    ]


@rule(
    id="trust-store-lacks-microsoft-root",
    severity=Severity.CRITICAL,
    title="The trust store lacks Microsoft's root",
    cause="A Microsoft host presents Microsoft's own chain (e.g. Microsoft TLS G2 RSA CA OCSP NN under Microsoft"
    " TLS RSA Root G2) and this machine's trust store lacks the root.",
    fix="Install the root (pinned) into the OS store and point certifi-based tools at it.",
    doc=DOC_CA,
    remedies=(lambda c: g2_root_fix(), lambda c: ca_store_update_fix()),
)
def trust_store_lacks_microsoft_root(ev: Evidence, rule: Rule) -> list[Finding]:
    """Azure's own chain, not trusted here: the trust store lacks its root (Azure/azhpc-images#539)."""
    bad = ev.open(
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
    names = sorted({issuer_cn(t.chain[-1] if t.chain else t.leaf) for t in chains if t.leaf})
    first = chains[0]
    issuer = issuer_cn(first.leaf) if first.leaf else "?"
    store = first.ca_bundle or "the system trust store"
    detail = (
        f"{hosts(bad)} presented Microsoft's own chain (issued by '{issuer}'), which leads to {', '.join(names)};"
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
            ev.claim(bad),
            fixes,
        )
    ]
