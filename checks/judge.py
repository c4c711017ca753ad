"""Judge raw probe results against what Azure ML expects: private answers, privatelink CNAMEs,
agreeing resolvers, Azure certificate issuers, the services' own answers.

A judgement replaces a check's verdict through checks.verdicts.rejudge, which keeps what the probe
itself said in ``observed``. The diagnosis (checks.diagnosis) reads the judged results; this module
knows nothing of it (checks.interpret runs one, then the other).
"""

from __future__ import annotations

from collections.abc import Sequence

from checks.addresses import AZURE_DNS, IPNetwork, is_private
from checks.evidence import PeVerdict, has_privatelink
from checks.issuers import inspecting_issuers, is_azure_issuer, issuer_cn, operator
from checks.plan import DnsExpectation
from checks.verdicts import Verdict, rejudge
from probe.model import CheckResult, Confidence, Protocol, Status
from probe.reasons import DNS_FAILURES, Reason, ReasonCode

# No answer at all: nothing to compare.
_NO_ANSWER = (Reason.DNS_TIMEOUT, Reason.DNS_ERROR, Reason.DNS_NO_SERVERS)


def _judge(result: CheckResult, status: Status, reason: ReasonCode, detail: str) -> None:
    rejudge(result, status, reason, detail)


def _not_private(result: CheckResult, extra: list[IPNetwork]) -> bool:
    """A definite answer that is not a private address: public addresses, or the name does not exist."""
    if result.status is Status.PASS:
        return bool(result.addresses) and not any(is_private(a, extra) for a in result.addresses)
    return result.reason in (Reason.DNS_NXDOMAIN, Reason.DNS_NO_ANSWER)


def apply_dns_expectation(
    exp: DnsExpectation,
    configured: CheckResult | None,
    reference: CheckResult | None,
    extra: list[IPNetwork],
    expect: str | None = None,
) -> None:
    """Judge one name. ``expect``: "private" / "public" as decided for its resource (None: undecided)."""
    expect = exp.expect if expect is None and exp.expect != "evidence" else expect
    if configured is not None and configured.status is Status.PASS:
        addrs = configured.addresses
        public = [a for a in addrs if not is_private(a, extra)]
        if expect == "private" and public:
            via = has_privatelink(configured)
            through = f" through {via}" if via else ""
            _judge(
                configured,
                Status.FAIL,
                Verdict.DNS_PUBLIC_ADDRESS,
                f"{exp.name} resolved{through} to public {', '.join(public)}; its private endpoint"
                f" ({exp.zone or 'private DNS'}) should answer with a private address.",
            )
        elif expect == "public" and len(public) < len(addrs):
            _judge(
                configured,
                Status.WARN,
                Verdict.DNS_PRIVATE_ADDRESS,
                f"{exp.name} resolved to a private address ({', '.join(addrs)}) though you said it has no"
                " private endpoint: a stale private DNS zone or hosts entry?",
            )
        # A private answer without the privatelink CNAME is healthy: a manual A record, as the custom-DNS
        # doc recommends ("creating the A record in the root of the zone").
    if reference is None:
        return
    if (
        configured is not None
        and configured.status is not Status.PASS
        and configured.reason is reference.reason
        and reference.reason not in _NO_ANSWER
    ):
        # Both resolvers say the same (e.g. NXDOMAIN): the comparison agrees; the configured check
        # carries the fact. Two silences are no answer: the reference keeps its own failure.
        _judge(reference, Status.PASS, Reason.OK, f"Same answer as the configured resolver: {reference.reason.value}.")
        return
    ours_private = (
        configured is not None
        and configured.status is Status.PASS
        and bool(configured.addresses)
        and all(is_private(a, extra) for a in configured.addresses)
    )
    if ours_private and configured is not None and _not_private(reference, extra):
        # Microsoft's hub-and-spoke layout: the zones are linked to the DNS server's VNet only, and
        # "records listed in Private DNS Zones are only returned to devices resolving domains using the
        # default Azure DNS Virtual Server IP address" from a linked VNet (how-to-custom-dns). Manual A
        # records in a custom DNS look the same. Not a fault: the comparison is inconclusive.
        seen = ", ".join(reference.addresses) if reference.status is Status.PASS else reference.reason.value
        _judge(
            reference,
            Status.WARN,
            Verdict.DNS_RESOLVER_MISMATCH,
            f"The configured resolver answered {', '.join(configured.addresses)} (private) for {exp.name}; Azure DNS"
            f" {_server(reference)} asked from this VNet answered {seen}. Expected when the private DNS zones are"
            " linked only to the DNS server's VNet (hub and spoke) or the custom DNS holds manual records:"
            " inconclusive, not a fault.",
        )
        reference.labels["mismatch_with"] = configured.id
        reference.labels["inconclusive"] = "reference-not-private"
        reference.confidence = Confidence.UNCONFIRMED
        return
    if reference.status is not Status.PASS:
        # The reference resolver is only a comparison; failing to reach it is worth a warning.
        _judge(reference, Status.WARN, reference.reason, f"Reference resolver: {reference.detail}")
        return
    if configured is None or configured.reason in _NO_ANSWER:
        return  # the configured resolver gave no answer to compare: its own failure carries the fact
    ref_addrs = sorted(reference.addresses)
    ours = sorted(configured.addresses) if configured.reason not in DNS_FAILURES else []
    if ours == ref_addrs:
        return
    if ours and not any(is_private(a, extra) for a in (*ours, *ref_addrs)):
        # Two public answers that differ: CDNs and geo-DNS give each resolver its own nearby address.
        return
    seen = ", ".join(ours) if ours else configured.reason.value
    _judge(
        reference,
        Status.WARN,
        Verdict.DNS_RESOLVER_MISMATCH,
        f"The configured resolver answered {seen} for {exp.name}, but the reference resolver"
        f" {_server(reference)} answered {', '.join(ref_addrs)}.",
    )
    reference.labels["mismatch_with"] = configured.id
    reference.confidence = Confidence.CONFIRMED


def _not_applicable(result: CheckResult, detail: str) -> None:
    _judge(result, Status.SKIP, Reason.SKIPPED_NOT_APPLICABLE, detail)


def apply_private_endpoint_forms(results: list[CheckResult], verdicts: dict[str, PeVerdict]) -> None:
    """Keep the form of a compute-instance app port that the workspace's private-endpoint evidence selects.

    With a private endpoint the app is reached at ``<ci>.<suffix>:<port>``; without one at
    ``<ci>-<port>.<suffix>`` on 443 (microsoft/responsible-ai-toolbox azure_nb_environment.py;
    vscode-tools-for-ai#974; firewall doc: "Ports 8787 and 18881 for compute instance are only needed
    when your Azure Machine workspace has a private endpoint"). The other form is not applicable.
    """
    for r in results:
        when = r.labels.get("when_private_endpoint")
        if when is None or r.status is Status.SKIP:
            continue
        verdict = verdicts.get(r.labels.get("pe_resource", ""))
        if verdict is None or verdict.private_endpoint is None:
            continue
        if verdict.private_endpoint != (when == "true"):
            has = "has" if verdict.private_endpoint else "has no"
            form = "on <instance>.<suffix>:<port>" if verdict.private_endpoint else "as <instance>-<port>.<suffix>:443"
            _not_applicable(
                r,
                f"Not applicable: the {verdict.resource} {has} private endpoint ({verdict.evidence}), so this"
                f" app is reached {form}.",
            )


def _resolved(result: CheckResult | None) -> bool:
    return result is not None and result.status is not Status.SKIP and bool(result.addresses)


def apply_absent_names(
    results: list[CheckResult], verdicts: dict[str, PeVerdict], extra: Sequence[IPNetwork] = ()
) -> None:
    """Names that may rightly not exist (a variant, an inferred name, a registry data endpoint without a
    private endpoint) and do not: every check of them is not applicable, not a failure.

    "Does not exist" needs NXDOMAIN from the configured resolver and, when asked, from Azure DNS too: a
    name only the custom DNS lacks is its fault, not absent. A variant counts as absent only while
    another variant of its group resolves. A variant that resolves only to public addresses while another
    resolves to private ones is not served by this VNet's private zone (a custom DNS recursing for the
    compute-instance name the zone does not hold): which name the compute instance uses is settled by the
    name it reports (/mnt/azmnt/.nbvm, the catalog's preferred row), not by this machine; the live name is
    not settled in the sources either (real-world-azure.md Q3a, azure-docs#87505).
    """
    by_id = {r.id: r for r in results}

    def works(r: CheckResult) -> bool:
        # A variant "works" when its own name resolves (not merely its <ci>-<port> name).
        return r.target.protocol is Protocol.DNS and "app_port" not in r.labels and _resolved(r)

    def private(r: CheckResult) -> bool:
        return works(r) and all(is_private(a, extra) for a in r.addresses)

    resolved_groups = {r.labels["variant_group"] for r in results if "variant_group" in r.labels and works(r)}
    private_groups = {r.labels["variant_group"] for r in results if "variant_group" in r.labels and private(r)}
    absent: dict[str, str] = {}
    for r in results:
        if r.target.protocol is not Protocol.DNS or "@reference" in r.id or r.status is Status.SKIP:
            continue
        group = r.labels.get("variant_group")
        if r.reason is not Reason.DNS_NXDOMAIN:
            if group in private_groups and works(r) and not any(is_private(a, extra) for a in r.addresses):
                others = sorted(x.target.host for x in results if x.labels.get("variant_group") == group and private(x))
                absent[r.target.host] = (
                    f"Not applicable: {r.target.host} resolved only to public addresses while {others[0]}, another"
                    f" name of the same {group}, resolved to its private endpoint: this VNet's private zone serves"
                    " that name, not this one. amlprobe run on the compute instance itself probes the one name it"
                    " reports (/mnt/azmnt/.nbvm)."
                )
            continue
        ref = by_id.get(f"dns@reference:{r.target.host}")
        if ref is not None and ref.reason is not Reason.DNS_NXDOMAIN and ref.status is not Status.SKIP:
            continue
        verdict = verdicts.get(r.labels.get("pe_resource", ""))
        if group is not None and group in resolved_groups:
            others = sorted(x.target.host for x in results if x.labels.get("variant_group") == group and works(x))
            why = f"a variant of {group} that does not exist here; {others[0]} resolved"
        elif r.labels.get("managed_network_only") == "true":
            why = "it exists only in an Azure ML managed virtual network (az ml compute connect-ssh)"
        elif r.labels.get("may_not_exist") == "true" and not (verdict and verdict.private_endpoint):
            why = f"it exists only with a private endpoint on the {r.labels.get('pe_resource')}"
        elif r.labels.get("inferred") == "true" and group is None:
            why = "an inferred name (no source names it) that does not exist"
        else:
            continue
        asked = (
            "the configured resolver and Azure DNS"
            if f"dns@reference:{r.target.host}" in by_id
            else "the configured resolver"
        )
        absent[r.target.host] = f"Not applicable: {r.target.host} does not exist (NXDOMAIN from {asked}): {why}."
    for r in results:
        detail = absent.get(r.target.host)
        if detail is not None and r.status is not Status.SKIP:
            _not_applicable(r, detail)


def apply_private_destinations(results: list[CheckResult], extra: list[IPNetwork]) -> None:
    """A connection to a private address goes to a private endpoint in the VNet or a peered one, so
    the NSG destination that covers it is VirtualNetwork, not the service's public tag (firewall doc:
    VirtualNetwork "required when private endpoints are present in the VNet or peered VNets")."""
    for r in results:
        tag = r.labels.get("service_tag")
        if r.target.protocol is Protocol.DNS or not tag or not r.addresses or r.status is Status.SKIP:
            continue
        if all(is_private(a, extra) for a in r.addresses):
            r.labels["service_tag"] = "VirtualNetwork"
            r.labels["public_service_tag"] = tag


def apply_wireserver_user(results: list[CheckResult], euid: int | None) -> None:
    """WireServer drops non-root TCP: the Azure Linux agent's firewall (OS.EnableFirewall, the Ubuntu
    default) accepts only uid 0 to 168.63.129.16 and drops the rest (Azure/WALinuxAgent PR #914,
    "Disable non-root access to wireserver"; WALinuxAgent#1258). A drop seen by a non-root run proves
    nothing: it is inconclusive, not a failure."""
    if euid in (None, 0):
        return
    for r in results:
        if r.target.host == AZURE_DNS and r.target.protocol is Protocol.TCP and r.reason is Reason.TCP_TIMEOUT:
            _judge(
                r,
                Status.WARN,
                r.reason,
                f"{r.detail} Expected for a non-root user (uid {euid}): the Azure Linux agent's firewall lets"
                " only root reach WireServer. Run as root to test this path.",
            )
            r.labels["inconclusive"] = "wireserver-non-root"
            r.confidence = Confidence.UNCONFIRMED


def _server(result: CheckResult) -> str:
    return f"({result.dns.server})" if result.dns and result.dns.server else ""


def apply_tls_issuers(results: list[CheckResult]) -> None:
    """Flag verified certificates that something in the path re-signed.

    A host Microsoft operates must show an Azure CA. A third-party host (pypi, github, ...) may show any
    CA this machine trusts, except the one that re-signs the Microsoft hosts: the question is who
    operates the host, not who sold the certificate (real-world-azure.md Q2). Ad-hoc targets (no
    operator) are not judged.
    """
    # The tls:// checks: a websocket check's own leaf serves its judge (checks.websocket), and its
    # host's tls:// check already reports the issuer.
    verified = [
        r
        for r in results
        if r.target.protocol is Protocol.TLS and r.status is Status.PASS and r.tls is not None and r.tls.verified
    ]
    for r in verified:
        leaf = r.tls.leaf if r.tls else None
        if operator(r) == "microsoft" and leaf is not None and not is_azure_issuer(leaf):
            _judge(
                r,
                Status.WARN,
                Verdict.TLS_UNEXPECTED_ISSUER,
                f"The certificate for {r.target.host} was issued by '{issuer_cn(leaf)}', not by an Azure CA,"
                " though Microsoft operates the host: something in the path inspects TLS.",
            )
    inspecting = inspecting_issuers(results)
    for r in verified:
        leaf = r.tls.leaf if r.tls else None
        if operator(r) == "third-party" and leaf is not None and leaf.issuer in inspecting:
            _judge(
                r,
                Status.WARN,
                Verdict.TLS_UNEXPECTED_ISSUER,
                f"The certificate for {r.target.host} was issued by '{issuer_cn(leaf)}', the CA that re-signs"
                " the Microsoft hosts: this host's TLS is inspected too.",
            )
