"""One root cause, one finding: the diagnosis over hand-built results."""

from __future__ import annotations

from typing import Any

from checks.addresses import is_ip
from checks.catalog import load_catalog
from checks.diagnosis import RULES, Evidence, diagnose
from checks.inputs import Inputs
from checks.localfacts import LocalFacts
from checks.plan import Plan, build_plan
from checks.verdicts import Verdict
from probe.model import CheckResult, OverallStatus, Protocol, Severity, Status, overall_status
from probe.reasons import Reason
from tests.helpers.report import made_up_result

INPUTS = Inputs.model_validate(
    {
        "region": "eastus",
        "workspace_id": "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37",
        "workspace_name": "lab-ws",
        "storage_account": "labsa",
        "key_vault": "lab-kv",
        "container_registry": "labacr",
        "instance_name": "ci1",
        "resource_group": "rg-ml",
    }
)
PLAN: Plan = build_plan(load_catalog("public"), INPUTS)


def healthy() -> list[CheckResult]:
    out = []
    for spec in PLAN.checks:
        r = made_up_result(spec, Status.PASS, Reason.OK, "ok", addresses=["10.0.1.5"])
        out.append(r)
    return out


def fail(results: list[CheckResult], pred: Any, reason: Reason) -> list[str]:
    hit = []
    for r in results:
        if pred(r):
            r.status, r.reason, r.detail = Status.FAIL, reason, f"{reason.value} for {r.id}"
            hit.append(r.id)
    return hit


def run(results: list[CheckResult], local: LocalFacts | None = None, dns_servers: list[str] | None = None) -> list[Any]:
    return diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS, local=local, dns_servers=dns_servers or []))


def test_healthy_has_no_findings() -> None:
    assert run(healthy()) == []


def test_every_aml_front_end_dropped_is_one_finding() -> None:
    results = healthy()
    hit = fail(
        results,
        lambda r: (
            r.target.port == 443
            and r.target.protocol is not Protocol.DNS
            and r.labels.get("service_tag") == "AzureMachineLearning"
            and r.labels.get("resource") is None
        ),
        Reason.TCP_TIMEOUT,
    )
    assert len(hit) >= 2
    (finding,) = run(results)
    assert finding.id == "outbound-443-blocked"
    assert sorted(finding.evidence) == sorted(hit)
    assert "AzureMachineLearning" in finding.title and "dropped" in finding.title
    cmd = finding.remediation[0].commands[0]
    assert cmd.startswith("az network nsg rule create --resource-group rg-ml ")
    assert "--destination-port-ranges 443" in cmd and "--protocol Tcp" in cmd


def test_two_service_tags_are_two_findings() -> None:
    results = healthy()
    fail(
        results,
        lambda r: r.labels.get("service_tag") == "AzureActiveDirectory" and r.target.port == 443,
        Reason.TCP_REFUSED,
    )
    fail(
        results,
        lambda r: r.labels.get("service_tag") == "AzureResourceManager" and r.target.port == 443,
        Reason.TCP_TIMEOUT,
    )
    findings = run(results)
    assert [f.id for f in findings] == ["outbound-443-blocked", "outbound-443-blocked"]
    titles = " | ".join(f.title for f in findings)
    assert "AzureActiveDirectory is refused" in titles and "AzureResourceManager is dropped" in titles
    # Report contract 2.0: one rule's findings differ by their instance, so a diff or a monitor keeps both.
    assert sorted(f.instance for f in findings) == ["AzureActiveDirectory", "AzureResourceManager"]


def test_every_unexplained_failure_is_its_own_instance() -> None:
    results = healthy()
    hit = fail(
        results,
        lambda r: r.id in ("tls:management.azure.com:443", "tls:login.microsoftonline.com:443"),
        Reason.TLS_HANDSHAKE_FAILED,
    )
    findings = run(results)
    assert len(hit) == 2
    assert sorted((f.id, f.instance) for f in findings) == [("unexplained-failure", h) for h in sorted(hit)]


def test_dns_down_makes_tcp_failures_consequences() -> None:
    results = healthy()
    dns = fail(results, lambda r: r.id.startswith("dns:"), Reason.DNS_TIMEOUT)
    # IP literals need no name, so they cannot fail for want of one.
    consequences = fail(
        results, lambda r: r.target.protocol is not Protocol.DNS and not r.target.host[0].isdigit(), Reason.DNS_TIMEOUT
    )
    (finding,) = run(results, LocalFacts(), dns_servers=["10.0.0.4"])
    # Issue 11: a resolver that does not answer is its own cause, with its own fix: not forwarders, which no query
    # reaches (the old dns-unavailable suggested them).
    assert finding.id == "dns-resolver-not-answering"
    assert set(finding.evidence) >= set(dns) | set(consequences)
    kinds = [r.kind for r in finding.remediation]
    assert kinds == ["verify", "nsg_rule", "dns_servers"] and "dns_forwarder" not in kinds
    commands = [c for r in finding.remediation for c in r.commands]
    assert commands[0] == "dig @10.0.0.4 login.microsoftonline.com +time=2 +tries=1"
    assert "--destination-address-prefixes 10.0.0.4 --destination-port-ranges 53" in commands[1]
    # The reference resolver answered (the hand-built results pass): said so, the network works.
    assert "answered" in finding.detail and "the fault is that resolver" in finding.detail


def test_no_resolver_configured_is_no_working_dns() -> None:
    results = healthy()
    fail(results, lambda r: r.id.startswith("dns:"), Reason.DNS_NO_SERVERS)
    fail(
        results,
        lambda r: r.target.protocol is not Protocol.DNS and not is_ip(r.target.host),
        Reason.DNS_NO_SERVERS,
    )
    (finding,) = run(results, LocalFacts())
    assert finding.id == "dns-unavailable"
    assert [r.kind for r in finding.remediation] == ["verify", "dns_servers"]  # no forwarders: nothing to forward


def test_a_resolver_failing_every_name_servfail_suggests_forwarders() -> None:
    results = healthy()
    fail(results, lambda r: r.id.startswith("dns:"), Reason.DNS_SERVFAIL)
    fail(results, lambda r: r.target.protocol is not Protocol.DNS and not is_ip(r.target.host), Reason.DNS_SERVFAIL)
    (finding,) = run(results, LocalFacts(), dns_servers=["10.0.0.4"])
    assert finding.id == "dns-unavailable" and "dns_servfail" in finding.detail
    assert [r.kind for r in finding.remediation] == ["verify", "dns_servers", "dns_forwarder"]


def test_nothing_answering_at_all_is_one_finding() -> None:
    # No route out: both resolvers unreachable, the connections to addresses (WireServer) too, and everything
    # else failed for want of a name. One cause, one finding, every failure its evidence.
    results = healthy()
    fail(results, lambda r: r.target.protocol is Protocol.DNS, Reason.DNS_ERROR)
    fail(results, lambda r: is_ip(r.target.host) and r.target.protocol is not Protocol.UDP, Reason.TCP_UNREACHABLE)
    fail(results, lambda r: r.status is Status.PASS, Reason.DNS_ERROR)
    (finding,) = run(results, LocalFacts(), dns_servers=["10.0.0.4"])
    assert finding.id == "network-unavailable"
    assert set(finding.evidence) == {r.id for r in results}
    assert "ip route show default" in [c for r in finding.remediation for c in r.commands]


def test_a_reference_resolver_answering_means_the_network_works() -> None:
    # The same, but Azure DNS answered: not "no network", the configured resolver is the fault.
    results = healthy()
    fail(results, lambda r: r.id.startswith("dns:"), Reason.DNS_TIMEOUT)
    fail(results, lambda r: is_ip(r.target.host) and r.target.protocol is not Protocol.UDP, Reason.TCP_TIMEOUT)
    fail(results, lambda r: r.status is Status.PASS and not r.id.startswith("dns@"), Reason.DNS_TIMEOUT)
    findings = run(results, LocalFacts(), dns_servers=["10.0.0.4"])
    assert [f.id for f in findings] == ["dns-resolver-not-answering", "unexplained-failure", "unexplained-failure"]


def test_everything_dropped_is_no_outbound() -> None:
    results = healthy()
    fail(
        results,
        # Every TCP-based protocol, the resources' anonymous http requests included (issue 10).
        lambda r: r.target.protocol in (Protocol.TCP, Protocol.TLS, Protocol.WEBSOCKET, Protocol.SMB, Protocol.HTTP),
        Reason.TCP_TIMEOUT,
    )
    findings = run(results)
    assert [f.id for f in findings] == ["outbound-unavailable"]


def test_hosts_override_is_reported() -> None:
    name = next(s.target.host for s in PLAN.checks if ".workspace." in s.target.host)
    findings = run(healthy(), LocalFacts(hosts_overrides={name: ["10.9.9.9"]}))
    assert [f.id for f in findings] == ["hosts-file-override"]
    assert name in findings[0].detail
    assert "/etc/hosts" in findings[0].remediation[0].commands[0]


def test_unknown_failure_is_never_hidden() -> None:
    results = healthy()
    (hit,) = fail(results, lambda r: r.id == "tls:management.azure.com:443", Reason.TLS_HANDSHAKE_FAILED)
    (finding,) = run(results)
    assert finding.id == "unexplained-failure" and finding.evidence == [hit]


def test_rules_have_unique_ids_and_docs() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(r.doc.startswith("https://learn.microsoft.com/") for r in RULES)


def test_resolvers_disagreeing_on_private_addresses_is_a_mismatch_finding() -> None:
    results = healthy()
    exp = next(e for e in PLAN.dns_expectations if e.reference_check_id and ".workspace." in e.name)
    ref = next(r for r in results if r.id == exp.reference_check_id)
    ref.status, ref.reason = Status.WARN, Verdict.DNS_RESOLVER_MISMATCH
    ref.detail = "The configured resolver answered 10.0.1.5, but the reference resolver answered 10.0.1.9."
    ref.labels["mismatch_with"] = exp.check_id
    findings = run(results)
    assert [f.id for f in findings] == ["dns-resolver-mismatch"]
    assert findings[0].evidence == [ref.id]


# -- situational rows (catalog required = false) ----------------------------------------------------


def test_situational_rows_blocked_are_one_warning() -> None:
    results = healthy()
    hit = fail(results, lambda r: r.required is False and r.target.protocol is not Protocol.DNS,
               Reason.TCP_TIMEOUT)  # fmt: skip
    hosts = {r.target.host for r in results if r.id in hit}
    assert {"ghcr.io", "dc.services.visualstudio.com", "crl.microsoft.com"} <= hosts
    (finding,) = run(results)
    assert finding.id == "situational-endpoints-blocked" and finding.severity is Severity.WARNING
    assert sorted(finding.evidence) == sorted(hit)
    assert overall_status(results, [finding], incomplete=False) is OverallStatus.WARNING
    commands = [c for r in finding.remediation for c in r.commands]
    # No service tag covers ghcr.io or the PKI hosts: an FQDN rule, not an NSG rule naming "(no service tag)".
    assert any(c.startswith("az network firewall application-rule create") and "ghcr.io" in c for c in commands)
    assert any("--protocols Http=80" in c and "crl.microsoft.com" in c for c in commands)
    assert any("--destination-address-prefixes AzureMonitor" in c for c in commands)
    assert not any("(no service tag)" in c for c in commands)


def test_a_required_row_behind_the_same_tag_keeps_the_finding_critical() -> None:
    results = healthy()
    monitor = fail(
        results,
        lambda r: r.labels.get("service_tag") == "AzureMonitor" and r.target.protocol is not Protocol.DNS,
        Reason.TCP_TIMEOUT,
    )
    arm = fail(results, lambda r: r.id == "tls:management.azure.com:443", Reason.TCP_TIMEOUT)
    findings = run(results)
    # Two tags, two causes: the situational one is a warning, the required one stays critical.
    assert sorted((f.id, f.severity.value) for f in findings) == [
        ("outbound-443-blocked", "critical"),
        ("situational-endpoints-blocked", "warning"),
    ]
    assert next(f for f in findings if f.id == "outbound-443-blocked").evidence == arm
    assert sorted(next(f for f in findings if f.id == "situational-endpoints-blocked").evidence) == sorted(monitor)


def test_situational_and_required_rows_behind_one_tag_are_one_finding() -> None:
    results = healthy()
    # Healthy() resolves everything privately, so PE forms apply; take a tag with both kinds: the CI apps.
    both = fail(
        results,
        lambda r: (
            r.target.port == 443
            and r.labels.get("service_tag") == "AzureMachineLearning"
            and r.target.protocol is not Protocol.DNS
        ),
        Reason.TCP_TIMEOUT,
    )
    assert any(r.required is False for r in results if r.id in both)
    (finding,) = run(results)
    assert finding.id == "outbound-443-blocked" and finding.severity is Severity.CRITICAL
    assert sorted(finding.evidence) == sorted(both)


def test_no_service_tag_pastes_a_firewall_rule() -> None:
    results = healthy()
    fail(results, lambda r: r.id == "tls:graph.windows.net:443", Reason.TCP_REFUSED)
    (finding,) = run(results)
    assert finding.id == "outbound-443-blocked" and finding.severity is Severity.CRITICAL
    (cmd,) = finding.remediation[0].commands
    assert cmd.startswith("az network firewall application-rule create --resource-group rg-ml ")
    assert cmd.endswith("--protocols Https=443 --target-fqdns graph.windows.net")


def test_a_finding_made_only_of_situational_rows_is_at_most_a_warning() -> None:
    results = healthy()
    via_proxy = next(r for r in results if r.id == "tls:login.microsoftonline.com:443")
    via_proxy.route = "proxy"
    # Only situational non-HTTPS rows lack a direct path: the proxy rule claims them, capped at warning.
    hit = fail(results, lambda r: r.target.port == 80 and r.required is False, Reason.TCP_TIMEOUT)
    assert hit
    (finding,) = run(results)
    assert finding.id == "proxy-only-egress" and finding.severity is Severity.WARNING
    assert "Situational endpoints only" in finding.detail


def test_udp_silence_gets_the_outside_checks_filled_with_the_address_seen() -> None:
    from tests.helpers.remedies import assert_pastes

    results = healthy()
    for r in results:
        if r.target.protocol is Protocol.UDP:
            r.status, r.reason, r.addresses = Status.WARN, Reason.UDP_OPEN_FILTERED, ["192.0.2.7"]
    (finding,) = [f for f in run(results) if f.id == "udp-5831-unconfirmed"]
    outside = finding.remediation[0]
    assert outside.kind == "outside_check" and "not in your subscription" in outside.text
    commands = outside.commands
    assert any("test-ip-flow --resource-group rg-ml" in c and "--remote 192.0.2.7:5831" in c for c in commands)
    assert any(
        "run-configuration-diagnostic" in c and "--destination AzureMachineLearning --port 5831" in c for c in commands
    )
    assert any("--dest-ip 192.0.2.7" in c for c in commands)
    assert_pastes(commands)
    # Unresolved: the address stays a placeholder, explained.
    for r in results:
        if r.target.protocol is Protocol.UDP:
            r.addresses = []
    (finding,) = [f for f in run(results) if f.id == "udp-5831-unconfirmed"]
    assert any("--remote <TUNDRA_IP>:5831" in c for c in finding.remediation[0].commands)
    assert "<TUNDRA_IP> is the address the tundra name resolves to" in finding.remediation[0].text
