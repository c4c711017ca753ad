"""One root cause, one finding: the diagnosis over hand-built results."""

from __future__ import annotations

from typing import Any

from checks.catalog import load_catalog
from checks.diagnose import RULES, diagnose
from checks.inputs import Inputs
from checks.plan import Plan, build_plan
from probe.context import make_result
from probe.model import CheckResult, Protocol, Status
from probe.reasons import Reason

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
        r = make_result(spec, Status.PASS, Reason.OK, "ok", addresses=["10.0.1.5"])
        out.append(r)
    return out


def fail(results: list[CheckResult], pred: Any, reason: Reason) -> list[str]:
    hit = []
    for r in results:
        if pred(r):
            r.status, r.reason, r.detail = Status.FAIL, reason, f"{reason.value} for {r.id}"
            hit.append(r.id)
    return hit


def run(results: list[CheckResult], env: dict[str, Any] | None = None) -> list[Any]:
    return diagnose(results, PLAN, INPUTS, env if env is not None else {"local": {}})


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


def test_dns_down_makes_tcp_failures_consequences() -> None:
    results = healthy()
    dns = fail(results, lambda r: r.id.startswith("dns:"), Reason.DNS_TIMEOUT)
    # IP literals need no name, so they cannot fail for want of one.
    consequences = fail(
        results, lambda r: r.target.protocol is not Protocol.DNS and not r.target.host[0].isdigit(), Reason.DNS_TIMEOUT
    )
    (finding,) = run(results, {"local": {}, "settings": {"dns_servers": ["10.0.0.4"]}})
    assert finding.id == "dns-unavailable"
    assert set(finding.evidence) >= set(dns) | set(consequences)


def test_everything_dropped_is_no_outbound() -> None:
    results = healthy()
    fail(
        results,
        lambda r: r.target.protocol in (Protocol.TCP, Protocol.TLS, Protocol.WEBSOCKET, Protocol.SMB),
        Reason.TCP_TIMEOUT,
    )
    findings = run(results)
    assert [f.id for f in findings] == ["outbound-unavailable"]


def test_hosts_override_is_reported() -> None:
    name = next(s.target.host for s in PLAN.checks if ".workspace." in s.target.host)
    findings = run(healthy(), {"local": {"hosts_overrides": {name: ["10.9.9.9"]}}})
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
    ref.status, ref.reason = Status.WARN, Reason.DNS_RESOLVER_MISMATCH
    ref.detail = "The configured resolver answered 10.0.1.5, but the reference resolver answered 10.0.1.9."
    ref.labels["mismatch_with"] = exp.check_id
    findings = run(results)
    assert [f.id for f in findings] == ["dns-resolver-mismatch"]
    assert findings[0].evidence == [ref.id]
