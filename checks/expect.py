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
from probe.model import CheckResult, Confidence, Finding, Status
from probe.reasons import DNS_FAILURES, Reason


@functools.cache
def trust_data() -> dict[str, Any]:
    text = resources.files("checks").joinpath("data/trust.toml").read_text()
    data: dict[str, Any] = toml.loads(text)
    return data


def is_azure_issuer(issuer: str) -> bool:
    """``issuer`` is an RFC 4514 string as the TLS prober reports it."""
    data = trust_data()
    parts = {}
    for rdn in issuer.split(","):
        key, _, value = rdn.strip().partition("=")
        parts[key.strip().upper()] = value.strip().lower()
    org, cn = parts.get("O", ""), parts.get("CN", "")
    if org and org in {o.lower() for o in data["issuer_organizations"]}:
        return True
    return any(cn.startswith(p.lower()) for p in data["issuer_common_name_prefixes"])


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


def apply_tls_issuer(result: CheckResult) -> None:
    tls = result.tls
    if result.status is not Status.PASS or tls is None or not tls.verified or tls.leaf is None:
        return
    if not is_azure_issuer(tls.leaf.issuer):
        _judge(
            result,
            Status.WARN,
            Reason.TLS_UNEXPECTED_ISSUER,
            f"The certificate for {result.target.host} was issued by '{tls.leaf.issuer}', not by an Azure CA:"
            " something in the path inspects TLS.",
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
    for r in results:
        apply_tls_issuer(r)
    environment["variants"] = {
        group: {cid: by_id[cid].status.value for cid in ids if cid in by_id}
        for group, ids in plan.variant_groups.items()
    }
    return results, diagnose(results, plan, inputs, environment)
