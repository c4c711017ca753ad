"""Which resources have a private endpoint, decided per resource from what DNS answered.

Sources for each rule (see also docs/sources.md, "Private DNS and catalog"):

* A ``privatelink.`` label in a name's CNAME chain means the resource has a private endpoint: "When you
  create a private endpoint, the DNS CNAME resource record for the storage account is updated to an
  alias in a subdomain with the prefix privatelink" (learn.microsoft.com/azure/storage/common/
  storage-private-endpoints#dns-changes-for-private-endpoints); the workspace FQDNs "resolve to the
  following Canonical Names (CNAMEs)" in privatelink.api.azureml.ms (how-to-custom-dns). The public
  CNAME exists whatever resolver is asked, so Azure DNS from an unlinked VNet still shows it.
* A private address without any CNAME also means one: that is what the custom-DNS doc recommends for
  manual DNS ("creating a unique zone for the entire FQDN, and creating the A record in the root of
  the zone"), and what its troubleshooting example shows (``Name: ...api.azureml.ms  Address: 10.3.0.5``).
* Public answers with no privatelink anywhere mean none: a workspace without private endpoints, or
  storage and key vault on service endpoints, which Azure ML supports ("either a private endpoint or
  service endpoint", how-to-secure-workspace-vnet).

The user's explicit word (``--no-private-endpoint``, ``--private-endpoint RESOURCE=yes|no``) overrides
the evidence; the report keeps both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from checks.addresses import AZURE_DNS, IPNetwork, is_private
from checks.inputs import Inputs
from checks.plan import DnsExpectation, Plan
from probe.model import CheckResult, Status


@dataclass
class PeVerdict:
    """One resource's answer: ``private_endpoint`` is what the judge uses; ``dns`` what DNS alone said."""

    resource: str
    private_endpoint: bool | None
    evidence: str
    dns: bool | None
    input: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "private_endpoint": self.private_endpoint,
            "evidence": self.evidence,
            "dns_says": self.dns,
            "input": self.input,
        }

    def line(self) -> str:
        word = {True: "yes", False: "no", None: "unknown"}[self.private_endpoint]
        return f"{self.resource}: {word} ({self.evidence})"


def has_privatelink(result: CheckResult) -> str | None:
    """The first ``privatelink.*`` name in the answer's CNAME chain, or None."""
    if result.dns is None:
        return None
    for link in result.dns.chain:
        for name in (link.name, link.target):
            if "privatelink" in name.rstrip(".").lower().split("."):
                return name.rstrip(".").lower()
    return None


def _who(result: CheckResult) -> str:
    if "@reference" in result.id:
        server = result.dns.server if result.dns and result.dns.server else AZURE_DNS
        return f"Azure DNS (reference, {server})"
    if result.dns is not None and result.dns.source == "hosts":
        return "the hosts file"
    return "the configured resolver"


def _answered(result: CheckResult | None) -> bool:
    return result is not None and result.status is Status.PASS and bool(result.addresses)


def _dns_verdict(
    pairs: Iterable[tuple[DnsExpectation, CheckResult | None, CheckResult | None]], extra: list[IPNetwork]
) -> tuple[bool | None, str]:
    public_seen: list[str] = []
    for exp, configured, reference in pairs:
        for result in (configured, reference):
            if result is None:
                continue
            if (target := has_privatelink(result)) is not None:
                return True, f"{exp.name} has a CNAME to {target} ({_who(result)})"
        for result in (configured, reference):
            if result is not None and _answered(result) and all(is_private(a, extra) for a in result.addresses):
                who = _who(result)
                how = "in the hosts file" if who == "the hosts file" else "without a CNAME (manual record)"
                return True, f"{exp.name} resolves to private {', '.join(result.addresses)} {how} ({who})"
        if any(_answered(r) for r in (configured, reference)):
            public_seen.append(exp.name)
    if public_seen:
        names = ", ".join(public_seen[:2]) + (f" and {len(public_seen) - 2} more" if len(public_seen) > 2 else "")
        return False, f"{names}: public addresses, no privatelink CNAME from any resolver"
    return None, "no name of it resolved"


def decide_private_endpoints(
    plan: Plan, inputs: Inputs, by_id: Mapping[str, CheckResult], extra: list[IPNetwork]
) -> dict[str, PeVerdict]:
    """resource -> verdict, for every resource the plan has private-endpoint names of."""
    groups: dict[str, list[tuple[DnsExpectation, CheckResult | None, CheckResult | None]]] = {}
    for exp in plan.dns_expectations:
        if exp.pe_resource is None:
            continue
        configured = by_id.get(exp.check_id)
        reference = by_id.get(exp.reference_check_id) if exp.reference_check_id else None
        groups.setdefault(exp.pe_resource, []).append((exp, configured, reference))
    verdicts: dict[str, PeVerdict] = {}
    for resource, pairs in groups.items():
        dns, evidence = _dns_verdict(pairs, extra)
        said, field = inputs.private_endpoint_for(resource)
        if said is None:
            verdicts[resource] = PeVerdict(resource, dns, evidence, dns)
            continue
        source = inputs.sources.get(field, "input")
        flag = "--no-private-endpoint" if field == "private_endpoint" else "--private-endpoint"
        text = f"input {field} ({flag}, from {source}); DNS says: {evidence}"
        verdicts[resource] = PeVerdict(resource, said, text, dns, said)
    return verdicts


def expected(exp: DnsExpectation, verdicts: Mapping[str, PeVerdict]) -> str | None:
    """ "private", "public", or None when nothing decides (no name of the resource resolved)."""
    if exp.expect != "evidence":
        return exp.expect
    verdict = verdicts.get(exp.pe_resource or "")
    if verdict is None or verdict.private_endpoint is None:
        return None
    return "private" if verdict.private_endpoint else "public"
