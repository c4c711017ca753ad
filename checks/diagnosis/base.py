"""What every diagnosis rule is made of: the evidence it reads, its own description, and shared predicates.

A rule is a function from the evidence to findings, decorated with everything a reader and the docs
need about it (ansible-lint's style: the rule carries its id, severity and doc beside its logic)::

    @rule(id="smb-445-blocked", severity=Severity.CRITICAL, title=..., cause=..., fix=..., doc=DOC_TRAINING_VNET,
          remedies=(lambda c: nsg_fix(c, "Storage", "Tcp", "445"),))
    def smb_445_blocked(ev: Evidence, rule: Rule) -> list[Finding]:
        bad = ev.open(lambda r: r.target.protocol is Protocol.SMB and r.status is Status.FAIL)
        return [rule.finding(title, detail, ev.claim(bad), [nsg_fix(ev.remedies, ...)])] if bad else []

``remedies`` lists every remedy a finding of the rule may carry, in order, as a function of the
RemedyContext; docs/troubleshooting.md shows each with the placeholders of an empty context
(checks.docs). Where the rule computes an argument at run time, the example passes its placeholder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.addresses import AZURE_DNS
from checks.evidence import PeVerdict
from checks.inputs import Inputs
from checks.localfacts import LocalFacts
from checks.plan import DnsExpectation, Plan
from checks.registry import RegistryLayers
from checks.remedies import RemedyContext
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Protocol, Remediation, Severity, Status
from probe.reasons import DNS_FAILURES, TCP_FAILURES, Reason, ReasonCode

# Microsoft's documentation the findings link (a finding may link its endpoint's own catalog doc instead).
DOC_FIREWALL = "https://learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall"
DOC_CUSTOM_DNS = "https://learn.microsoft.com/azure/machine-learning/how-to-custom-dns"
DOC_NAME_RESOLUTION = (
    "https://learn.microsoft.com/azure/virtual-network/virtual-networks-name-resolution-for-vms-and-role-instances"
)
DOC_PE_DNS = "https://learn.microsoft.com/azure/private-link/private-endpoint-dns"
DOC_JUPYTER = "https://learn.microsoft.com/azure/machine-learning/how-to-run-jupyter-notebooks#troubleshooting"
DOC_TRAINING_VNET = "https://learn.microsoft.com/azure/machine-learning/how-to-secure-training-vnet"
DOC_CA = "https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details"
DOC_PROXY = "https://learn.microsoft.com/azure/machine-learning/how-to-troubleshoot-secure-connection-workspace"
DOC_WIRESERVER = "https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16"
DOC_RESOURCE_FIREWALL = "https://learn.microsoft.com/azure/storage/common/storage-network-security"
DOC_FILES_SMB = "https://learn.microsoft.com/azure/storage/files/files-smb-protocol"
DOC_FILES_MOUNT = (
    "https://learn.microsoft.com/troubleshoot/azure/azure-kubernetes/storage/fail-to-mount-azure-file-share"
)
DOC_ACR_ENDPOINTS = "https://learn.microsoft.com/azure/container-registry/container-registry-endpoint-reference"

TCP_BASED = frozenset(p for p in Protocol if p.over_tcp)
# How a failed connection was refused, in a finding's words.
SEEN: dict[ReasonCode, str] = {
    Reason.TCP_TIMEOUT: "dropped (no answer to SYN)",
    Reason.TCP_REFUSED: "refused (RST)",
    Reason.TCP_UNREACHABLE: "unreachable (no route / ICMP)",
    Reason.TCP_PROHIBITED: "prohibited by local policy",
    Reason.TCP_RESET: "reset",
    Reason.TCP_ERROR: "failed",
}


@dataclass
class Evidence:
    """Everything a rule may read, plus the ids already explained by earlier rules (``claimed``)."""

    results: list[CheckResult]
    plan: Plan
    inputs: Inputs
    local: LocalFacts | None = None
    # --dns-server as given; empty: the system resolver (resolv.conf's, in ``local``).
    dns_servers: Sequence[str] = ()
    # Which resources have a private endpoint (checks.evidence), by resource.
    private_endpoints: Mapping[str, PeVerdict] = field(default_factory=dict)
    registry_layers: RegistryLayers | None = None
    claimed: set[str] = field(default_factory=set)

    def open(self, pred: Callable[[CheckResult], bool]) -> list[CheckResult]:
        """Unexplained checks matching ``pred``; skipped (not applicable) checks are never evidence."""
        return [r for r in self.results if r.id not in self.claimed and r.status is not Status.SKIP and pred(r)]

    def claim(self, checks: Iterable[CheckResult]) -> list[str]:
        """Mark ``checks`` explained; checks labelled a consequence of one of them (``consequence_of``: an http
        check that failed exactly as the TLS check of its host, checks.resources) are explained with them."""
        ids = [c.id for c in checks]
        ids += [
            r.id
            for r in self.results
            if r.labels.get("consequence_of") in ids and r.id not in self.claimed and r.id not in ids
        ]
        self.claimed.update(ids)
        return ids

    def expectation(self, check_id: str) -> DnsExpectation | None:
        for exp in self.plan.dns_expectations:
            if check_id in (exp.check_id, exp.reference_check_id):
                return exp
        return None

    def expects_private(self, exp: DnsExpectation | None) -> bool:
        """Whether ``exp``'s name should answer privately: the catalog or the user said so, or the
        per-resource evidence (checks.evidence) found a private endpoint."""
        if exp is None:
            return False
        if exp.expect != "evidence":
            return exp.expect == "private"
        verdict = self.private_endpoints.get(exp.pe_resource or "")
        return verdict is not None and verdict.private_endpoint is True

    def configured_resolvers(self) -> list[str]:
        """The resolvers the compute asks: --dns-server, else resolv.conf's effective nameservers."""
        if self.dns_servers:
            return list(self.dns_servers)
        return self.local.effective_nameservers() if self.local is not None else []

    def configured_resolver_text(self) -> str:
        """The configured resolver as the report's settings show it: the servers, or "system"."""
        return str(list(self.dns_servers)) if self.dns_servers else "system"

    def reference_resolvers(self, checks: Iterable[CheckResult] = ()) -> str:
        """The reference resolver actually asked for ``checks`` (their DNS facts), else the one configured."""
        asked = sorted({c.dns.server for c in checks if c.dns is not None and c.dns.server})
        return ", ".join(asked or self.inputs.reference_dns or [AZURE_DNS])

    @functools.cached_property
    def remedies(self) -> RemedyContext:
        """What the remedies may fill in: validated inputs, the plan's forwarder zones, names to bypass a proxy."""
        forwarders: dict[str | None, set[str]] = {}
        for exp in self.plan.dns_expectations:
            forwarders.setdefault(exp.zone, set()).update(exp.forwarder_zones)
        probed = [r for r in self.results if r.status is not Status.SKIP]
        bypass = {r.target.host for r in probed if r.labels.get("resource") is not None}
        bypass |= {r.target.host for r in probed if "instances." in r.target.host}
        return RemedyContext(
            resource_group=self.inputs.resource_group,
            region=self.inputs.region,
            forwarders={zone: tuple(sorted(zones)) for zone, zones in forwarders.items()},
            bypass_hosts=tuple(sorted(bypass)),
        )


RuleFn = Callable[[Evidence, "Rule"], list[Finding]]
# A remedy a rule offers, as a function of the context (docs call it with an empty one).
RemedyExample = Callable[[RemedyContext], Remediation]


@dataclass(frozen=True)
class Rule:
    """One root cause: its description (the docs read these attributes) and ``run``, its logic."""

    id: str
    severity: Severity
    title: str
    cause: str
    fix: str
    doc: str
    run: RuleFn
    remedies: tuple[RemedyExample, ...] = ()
    # A finding links the failing endpoint's own catalog doc instead of ``doc`` when it has one.
    links_endpoint_doc: bool = False

    def __call__(self, ev: Evidence) -> list[Finding]:
        return self.run(ev, self)

    def fixes(self, ctx: RemedyContext) -> list[Remediation]:
        """The rule's remedies filled from ``ctx``: a finding's fixes when they need nothing of it."""
        return [remedy(ctx) for remedy in self.remedies]

    def finding(
        self,
        title: str,
        detail: str,
        evidence: list[str],
        remediation: list[Remediation],
        doc: str = "",
        *,
        instance: str = "",
    ) -> Finding:
        """One finding of this rule. ``instance``: which occurrence it is, for a rule that can find its cause more
        than once in a run (a service tag, a resource, a check); (id, instance) is unique in a report."""
        return Finding(
            id=self.id,
            instance=instance,
            severity=self.severity,
            title=title,
            detail=detail,
            evidence=evidence,
            doc=doc or self.doc,
            remediation=remediation,
        )


def rule(
    *,
    id: str,
    severity: Severity,
    title: str,
    cause: str,
    fix: str,
    doc: str,
    remedies: tuple[RemedyExample, ...] = (),
    links_endpoint_doc: bool = False,
) -> Callable[[RuleFn], Rule]:
    """Describe the rule function below: the result is the Rule, ready for checks.diagnosis.RULES."""

    def describe(run: RuleFn) -> Rule:
        return Rule(id, severity, title, cause, fix, doc, run, remedies, links_endpoint_doc)

    return describe


# -- shared predicates --------------------------------------------------------------------------------------


def own_reason(r: CheckResult) -> ReasonCode:
    """What the probe itself saw, before any judgement replaced it (a reference resolver's dns_error becomes "same
    answer as the configured resolver", a pass, when both fail alike)."""
    return r.observed.reason if r.observed is not None else r.reason


def tcp_failed(r: CheckResult) -> bool:
    return r.target.protocol in TCP_BASED and r.status is Status.FAIL and r.reason in TCP_FAILURES


def dns_probe(r: CheckResult, *, reference: bool = False) -> bool:
    return r.target.protocol is Protocol.DNS and (("@reference" in r.id) == reference)


def hosts(checks: Iterable[CheckResult]) -> str:
    names = sorted({c.target.host for c in checks})
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def service_tag(r: CheckResult) -> str:
    """The NSG service tag the catalog names for the check's endpoint; "" when none covers it."""
    return r.labels.get("service_tag") or ""


def by_key(checks: Iterable[CheckResult], key: Callable[[CheckResult], Any]) -> dict[Any, list[CheckResult]]:
    out: dict[Any, list[CheckResult]] = {}
    for c in checks:
        out.setdefault(key(c), []).append(c)
    return out


# A resource refusing a request that reached its public endpoint only because its name resolved publicly.
_REFUSED_PUBLICLY = (Verdict.HTTP_NETWORK_DENIED, Verdict.HTTP_PUBLIC_ACCESS_DISABLED)


def consequences(ev: Evidence, names: set[str]) -> list[CheckResult]:
    """Probes that failed only because these names did not resolve (or resolved to a public address where a
    private endpoint exists, so the resource refused a request it would have admitted through the endpoint)."""
    return ev.open(
        lambda r: (
            r.target.protocol is not Protocol.DNS
            and r.target.host in names
            and (r.reason in DNS_FAILURES or r.reason in _REFUSED_PUBLICLY)
        )
    )


def zones_of(ev: Evidence, checks: Iterable[CheckResult]) -> list[str]:
    zones = set()
    for c in checks:
        exp = ev.expectation(c.id)
        if exp is not None and exp.zone:
            zones.add(exp.zone)
    return sorted(zones)
