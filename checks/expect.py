"""Judge raw probe results against what Azure ML expects: private answers, privatelink CNAMEs,
agreeing resolvers, Azure certificate issuers. Then hand the judged results to the diagnosis.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from checks import toml
from checks.addresses import IPNetwork, is_private, parse_networks
from checks.inputs import Inputs
from checks.plan import DnsExpectation, Plan
from checks.websocket import apply_websocket_answers
from probe.model import CertInfo, CheckResult, Confidence, Finding, Status
from probe.reasons import DNS_FAILURES, Reason


@functools.cache
def trust_data() -> dict[str, Any]:
    text = resources.files("checks").joinpath("data/trust.toml").read_text()
    data: dict[str, Any] = toml.loads(text)
    return data


def is_azure_issuer(cert: CertInfo) -> bool:
    """``cert`` was issued by a CA Azure uses (trust.toml), judged on the issuer's own name attributes.

    Never on the RFC 4514 string: there the real Azure CA "GeoTrust Global TLS RSA4096 SHA256 2022 CA1"
    reads ``O=DigiCert\\, Inc.``, and splitting it on commas loses the organisation.
    """
    data = trust_data()
    org = (cert.issuer_organization or "").casefold()
    cn = (cert.issuer_common_name or "").casefold()
    if org and org in {o.casefold() for o in data["issuer_organizations"]}:
        return True
    return bool(cn) and any(cn.startswith(p.casefold()) for p in data["issuer_common_name_prefixes"])


def operator(result: CheckResult) -> str | None:
    """Who runs the host, from the catalog row ("microsoft", "third-party"); None for ad-hoc targets."""
    return result.labels.get("operator")


def _judge(result: CheckResult, status: Status, reason: Reason, detail: str) -> None:
    result.status, result.reason, result.detail = status, reason, detail


def _names_in_chain(result: CheckResult) -> list[str]:
    if result.dns is None:
        return []
    return [link.target.rstrip(".").lower() for link in result.dns.chain]


def apply_dns_expectation(
    exp: DnsExpectation, configured: CheckResult | None, reference: CheckResult | None, extra: list[IPNetwork]
) -> None:
    if configured is not None and configured.status is Status.PASS:
        addrs = configured.addresses
        public = [a for a in addrs if not is_private(a, extra)]
        chain = _names_in_chain(configured)
        from_hosts = configured.dns is not None and configured.dns.source == "hosts"
        if exp.expect == "private":
            if public:
                _judge(
                    configured,
                    Status.FAIL,
                    Reason.DNS_PUBLIC_ADDRESS,
                    f"{exp.name} resolved to public {', '.join(public)}; its private endpoint"
                    f" ({exp.zone or 'private DNS'}) should answer with a private address.",
                )
            elif (
                exp.privatelink_suffix and not from_hosts and not any(n.endswith(exp.privatelink_suffix) for n in chain)
            ):
                _judge(
                    configured,
                    Status.FAIL,
                    Reason.DNS_MISSING_PRIVATELINK_CNAME,
                    f"{exp.name} resolved to {', '.join(addrs)} without the expected CNAME into"
                    f" {exp.privatelink_suffix}: a record outside the private DNS zone answers.",
                )
        elif exp.expect == "public" and len(public) < len(addrs):
            _judge(
                configured,
                Status.WARN,
                Reason.DNS_PRIVATE_ADDRESS,
                f"{exp.name} resolved to a private address ({', '.join(addrs)}) though the workspace has no"
                " private endpoint: a stale private DNS zone or hosts entry?",
            )
    if reference is None:
        return
    if reference.status is not Status.PASS:
        # The reference resolver is only a comparison; failing to reach it is worth a warning.
        reference.status = Status.WARN
        reference.detail = f"Reference resolver: {reference.detail}"
        return
    if configured is None:
        return
    ref_addrs = sorted(reference.addresses)
    ours = sorted(configured.addresses) if configured.reason not in DNS_FAILURES else []
    if ours != ref_addrs:
        seen = ", ".join(ours) if ours else configured.reason.value
        _judge(
            reference,
            Status.WARN,
            Reason.DNS_RESOLVER_MISMATCH,
            f"The configured resolver answered {seen} for {exp.name}, but the reference resolver"
            f" {_server(reference)} answered {', '.join(ref_addrs)}.",
        )
        reference.labels["mismatch_with"] = configured.id
        reference.confidence = Confidence.CONFIRMED


def _server(result: CheckResult) -> str:
    return f"({result.dns.server})" if result.dns and result.dns.server else ""


def _issuer_cn(cert: CertInfo) -> str:
    return cert.issuer_common_name or cert.issuer


def inspecting_issuers(results: list[CheckResult]) -> set[str]:
    """Issuers (full names) seen on Microsoft-operated hosts that are not Azure CAs: what re-signs traffic."""
    return {
        r.tls.leaf.issuer
        for r in results
        if operator(r) == "microsoft"
        and r.reason in (Reason.TLS_UNEXPECTED_ISSUER, Reason.TLS_UNTRUSTED)
        and r.tls is not None
        and r.tls.leaf is not None
        and not is_azure_issuer(r.tls.leaf)
    }


def apply_tls_issuers(results: list[CheckResult]) -> None:
    """Flag verified certificates that something in the path re-signed.

    A host Microsoft operates must show an Azure CA. A third-party host (pypi, github, ...) may show any
    CA this machine trusts, except the one that re-signs the Microsoft hosts: the question is who
    operates the host, not who sold the certificate (real-world-azure.md Q2). Ad-hoc targets (no
    operator) are not judged.
    """
    verified = [r for r in results if r.status is Status.PASS and r.tls is not None and r.tls.verified]
    for r in verified:
        leaf = r.tls.leaf if r.tls else None
        if operator(r) == "microsoft" and leaf is not None and not is_azure_issuer(leaf):
            _judge(
                r,
                Status.WARN,
                Reason.TLS_UNEXPECTED_ISSUER,
                f"The certificate for {r.target.host} was issued by '{_issuer_cn(leaf)}', not by an Azure CA,"
                " though Microsoft operates the host: something in the path inspects TLS.",
            )
    inspecting = inspecting_issuers(results)
    for r in verified:
        leaf = r.tls.leaf if r.tls else None
        if operator(r) == "third-party" and leaf is not None and leaf.issuer in inspecting:
            _judge(
                r,
                Status.WARN,
                Reason.TLS_UNEXPECTED_ISSUER,
                f"The certificate for {r.target.host} was issued by '{_issuer_cn(leaf)}', the CA that re-signs"
                " the Microsoft hosts: this host's TLS is inspected too.",
            )


def interpret(
    results: list[CheckResult], plan: Plan, inputs: Inputs, environment: dict[str, Any]
) -> tuple[list[CheckResult], list[Finding]]:
    from checks.diagnose import diagnose

    by_id = {r.id: r for r in results}
    extra = parse_networks(inputs.private_networks)
    for exp in plan.dns_expectations:
        apply_dns_expectation(
            exp,
            by_id.get(exp.check_id),
            by_id.get(exp.reference_check_id) if exp.reference_check_id else None,
            extra,
        )
    apply_tls_issuers(results)
    apply_websocket_answers(results)
    environment["variants"] = {
        group: {cid: by_id[cid].status.value for cid in ids if cid in by_id}
        for group, ids in plan.variant_groups.items()
    }
    return results, diagnose(results, plan, inputs, environment)
