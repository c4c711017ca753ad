"""Private endpoints decided per resource from DNS, and the judgement that follows, against real DNS
servers on loopback (dnspython-served zones). Each healthy case is a documented Azure set-up that the
old judgement (assume private endpoints everywhere, require the privatelink CNAME, compare any two
answers) called critical or warning; each test would fail on a regression to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from checks.catalog import load_catalog
from checks.inputs import Inputs
from checks.interpret import interpret
from checks.localfacts import LocalFacts
from checks.plan import Plan, build_plan
from checks.verdicts import Verdict
from lab.servers.dns import DnsServer
from probe.model import CheckResult, Finding, Protocol, Severity, Status
from probe.reasons import Reason
from probe.runner import run_checks
from probe.settings import ProbeSettings
from probe.transport.context import ProbeContext
from probe.transport.lookup import make_lookup
from probe.transport.resolve import SharedResolver
from tests.helpers.report import made_up_result

WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
WS_NAME = f"{WS}.workspace.eastus.api.azureml.ms"
WS_PL = f"{WS}.workspace.eastus.privatelink.api.azureml.ms"
CERT = f"{WS}.workspace.eastus.cert.api.azureml.ms"
BLOB = "labsa.blob.core.windows.net"
BLOB_PL = "labsa.privatelink.blob.core.windows.net"
FILE = "labsa.file.core.windows.net"
FILE_PL = "labsa.privatelink.file.core.windows.net"
KV = "labkv.vault.azure.net"
KV_PL = "labkv.privatelink.vaultcore.azure.net"
CI = "ci1.eastus.instances.azureml.ms"  # the live variant here (ARM compute response, S1)
CI_MLAZURE = "ci1.eastus.instances.ml.azure.ms"
CI_NET = "ci1.eastus.instances.azureml.net"
# Names that do not exist in these zones: the compute-instance variants that are not live.
ABSENT = frozenset(
    {
        CI_MLAZURE,
        "ci1-18881.eastus.instances.ml.azure.ms",
        "ci1-8787.eastus.instances.ml.azure.ms",
        CI_NET,
    }
)

Zone = dict[str, list[tuple[str, str, int]]]


def private_view() -> Zone:
    """Azure DNS in a VNet linked to the private zones: privatelink CNAME, then the PE address."""
    return {
        WS_NAME: [("CNAME", WS_PL, 300)],
        WS_PL: [("A", "10.1.0.5", 10)],
        CERT: [("CNAME", f"{WS}.workspace.eastus.cert.privatelink.api.azureml.ms", 300)],
        f"{WS}.workspace.eastus.cert.privatelink.api.azureml.ms": [("A", "10.1.0.5", 10)],
        CI: [("A", "10.1.0.5", 300)],
        BLOB: [("CNAME", BLOB_PL, 300)],
        BLOB_PL: [("A", "10.1.0.7", 10)],
        FILE: [("CNAME", FILE_PL, 300)],
        FILE_PL: [("A", "10.1.0.8", 10)],
        KV: [("CNAME", KV_PL, 300)],
        KV_PL: [("A", "10.1.0.9", 10)],
    }


def public_view() -> Zone:
    """The same resources with private endpoints, asked from a VNet the zones are not linked to: the
    public privatelink CNAME (storage-private-endpoints: the CNAME "is updated to an alias in a
    subdomain with the prefix privatelink") and a public address."""
    zone = private_view()
    for pl, address in (
        (WS_PL, "192.0.2.5"),
        (BLOB_PL, "203.0.113.7"),
        (FILE_PL, "203.0.113.8"),
        (KV_PL, "203.0.113.9"),
    ):
        zone[pl] = [("A", address, 60)]
    zone[f"{WS}.workspace.eastus.cert.privatelink.api.azureml.ms"] = [("A", "192.0.2.5", 60)]
    zone[CI] = [("A", "192.0.2.6", 300)]
    return zone


def no_private_endpoints() -> Zone:
    """A workspace, storage and key vault without private endpoints: public, no privatelink anywhere."""
    return {
        WS_NAME: [("A", "192.0.2.5", 300)],
        CERT: [("A", "192.0.2.5", 300)],
        CI: [("A", "192.0.2.6", 300)],
        "ci1-18881.eastus.instances.azureml.ms": [("A", "192.0.2.6", 300)],
        "ci1-8787.eastus.instances.azureml.ms": [("A", "192.0.2.6", 300)],
        BLOB: [("CNAME", "blob.bl5prdstr05a.store.core.windows.net", 300)],
        "blob.bl5prdstr05a.store.core.windows.net": [("A", "203.0.113.7", 300)],
        FILE: [("A", "203.0.113.8", 300)],
        KV: [("A", "203.0.113.9", 300)],
    }


def inputs(**kw: Any) -> Inputs:
    base = {
        "region": "eastus",
        "workspace_id": WS,
        "storage_account": "labsa",
        "key_vault": "labkv",
        "instance_name": "ci1",
    }
    return Inputs.model_validate({**base, **kw})


@pytest.fixture
async def servers() -> AsyncIterator[tuple[DnsServer, DnsServer]]:
    configured = DnsServer("127.0.0.1", 0)
    azure_dns = DnsServer("127.0.0.2", 0)
    async with configured, azure_dns:
        yield configured, azure_dns


async def run(
    configured: DnsServer, azure_dns: DnsServer, inp: Inputs, *, absent: frozenset[str] = ABSENT
) -> tuple[dict[str, CheckResult], list[Finding], dict[str, Any]]:
    """Every DNS check of the plan against the two servers; every connection as if it answered (PASS), so
    only the DNS judgement and the selection of forms decide the outcome. Planned names the zones do not
    mention (login.microsoftonline.com, ...) get a public address, except ``absent`` ones."""
    inp = inp.model_copy(update={"reference_dns": [azure_dns.server_spec]})
    plan: Plan = build_plan(load_catalog("public"), inp)
    for host in {s.target.host for s in plan.checks if not s.target.host[0].isdigit()} - absent:
        for server in (configured, azure_dns):
            if not any(k.lower() == host for k in server.records):
                server.add(host, "A", "198.51.100.10")
    dns_specs = [s for s in plan.checks if s.target.protocol is Protocol.DNS]
    settings = ProbeSettings(timeout=1.0, dns_servers=[configured.server_spec], env={}, trust_env=False)
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    outcome = await run_checks(dns_specs, ctx)
    by_host = {r.target.host: r for r in outcome.results if "@reference" not in r.id}
    results = list(outcome.results)
    for spec in plan.checks:
        if spec.target.protocol is Protocol.DNS:
            continue
        name = by_host.get(spec.target.host)
        if name is not None and name.status is not Status.PASS:
            results.append(made_up_result(spec, Status.FAIL, name.reason, name.detail))
        else:
            addresses = name.addresses if name is not None else [spec.target.host]
            results.append(made_up_result(spec, Status.PASS, Reason.OK, "ok", addresses=addresses))
    judged, findings, environment = interpret(
        results, plan, inp, local=LocalFacts(euid=0), dns_servers=[configured.server_spec]
    )
    return {r.id: r for r in judged}, findings, environment


def loud(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings if f.severity is not Severity.INFO]


def pe(environment: dict[str, Any]) -> dict[str, bool | None]:
    return {k: v["private_endpoint"] for k, v in environment["private_endpoints"].items()}


# -- healthy, documented set-ups: no warning, no critical -----------------------------------------


async def test_workspace_without_private_endpoints_needs_no_flag(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = no_private_endpoints()
    azure_dns.records = no_private_endpoints()
    out, findings, env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []
    assert pe(env) == {
        "workspace": False,
        "storage-blob": False,
        "storage-file": False,
        "key-vault": False,
    }
    assert "no privatelink CNAME" in env["private_endpoints"]["storage-blob"]["evidence"]
    assert out[f"dns:{BLOB}"].status is Status.PASS
    # Without a private endpoint the apps answer as <ci>-<port>.<suffix> on 443; the bare ports do not apply.
    assert out["tls:ci1-8787.eastus.instances.azureml.ms:443"].status is Status.PASS
    assert out[f"tcp:{CI}:8787"].status is Status.SKIP
    assert "has no private endpoint" in out[f"tcp:{CI}:8787"].detail
    assert out[f"tcp:{CI}:18881"].reason is Reason.SKIPPED_NOT_APPLICABLE
    # The name variants that do not exist are not applicable while the live one resolves.
    assert out[f"dns:{CI_MLAZURE}"].status is Status.SKIP and out[f"dns:{CI_NET}"].status is Status.SKIP
    assert out[f"wss:{CI_NET}:443"].status is Status.SKIP
    assert f"{CI} resolved" in out[f"dns:{CI_NET}"].detail


async def test_private_endpoints_everywhere(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = private_view()
    azure_dns.records = private_view()
    out, findings, env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []
    assert set(pe(env).values()) == {True}
    assert f"CNAME to {WS_PL}" in env["private_endpoints"]["workspace"]["evidence"]
    # With a workspace private endpoint the apps are reached on <ci>.<suffix>:<port>.
    assert out[f"tcp:{CI}:8787"].status is Status.PASS
    assert out["tls:ci1-8787.eastus.instances.azureml.ms:443"].status is Status.SKIP
    assert out["dns:ci1-8787.eastus.instances.azureml.ms"].status is Status.SKIP
    # A connection to a private endpoint is covered by VirtualNetwork, not the public service tag.
    assert out[f"tls:{BLOB}:443"].labels["service_tag"] == "VirtualNetwork"


async def test_storage_and_key_vault_on_service_endpoints(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    zone = private_view()
    public = no_private_endpoints()
    for name in (BLOB, FILE, KV):
        zone[name] = public[name]
    zone.update({k: v for k, v in public.items() if "store.core" in k})
    configured.records = dict(zone)
    azure_dns.records = dict(zone)
    out, findings, env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []
    assert pe(env) == {"workspace": True, "storage-blob": False, "storage-file": False, "key-vault": False}
    assert out[f"dns:{BLOB}"].status is Status.PASS and out[f"dns:{KV}"].status is Status.PASS


async def test_manual_a_record_without_cname_is_healthy(servers: tuple[DnsServer, DnsServer]) -> None:
    # how-to-custom-dns, manual DNS: "creating the A record in the root of the zone"; no zone linked, so
    # Azure DNS answers the public chain.
    configured, azure_dns = servers
    configured.records = {name: [("A", "10.1.0.5", 300)] for name in (WS_NAME, CERT, CI)}
    configured.records.update({BLOB: [("A", "10.1.0.7", 300)], FILE: [("A", "10.1.0.8", 300)]})
    configured.records[KV] = [("A", "10.1.0.9", 300)]
    azure_dns.records = public_view()
    out, findings, env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []
    assert out[f"dns:{WS_NAME}"].status is Status.PASS  # old judgement: dns_missing_privatelink_cname
    assert set(pe(env).values()) == {True}
    assert [f.id for f in findings if f.id == "dns-comparison-inconclusive"] == ["dns-comparison-inconclusive"]


async def test_hub_and_spoke_is_inconclusive_not_a_warning(servers: tuple[DnsServer, DnsServer]) -> None:
    # Zones linked to the hub's DNS server only: 168.63.129.16 from the spoke answers public.
    configured, azure_dns = servers
    configured.records = private_view()
    azure_dns.records = public_view()
    out, findings, _env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []  # old judgement: dns-resolver-mismatch (warning)
    (info,) = [f for f in findings if f.id == "dns-comparison-inconclusive"]
    assert info.severity is Severity.INFO and f"dns@reference:{WS_NAME}" in info.evidence
    assert "hub and spoke" in info.detail
    assert any("private-dns link vnet list" in c for r in info.remediation for c in r.commands)
    assert out[f"dns:{WS_NAME}"].status is Status.PASS


async def test_two_public_answers_that_differ_are_no_mismatch(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = no_private_endpoints()
    azure_dns.records = no_private_endpoints()
    azure_dns.set(FILE, ("A", "203.0.113.99", 300))  # another front end of the same CDN / geo-DNS
    out, findings, _env = await run(configured, azure_dns, inputs())
    assert loud(findings) == []
    assert out[f"dns@reference:{FILE}"].status is Status.PASS


async def test_non_root_wireserver_drop_is_information(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = no_private_endpoints()
    azure_dns.records = no_private_endpoints()
    plan = build_plan(load_catalog("public"), inputs())
    wire = [s for s in plan.checks if s.target.host == "168.63.129.16"]
    assert sorted(s.target.port or 0 for s in wire) == [80, 32526]
    results = [made_up_result(s, Status.FAIL, Reason.TCP_TIMEOUT, "no answer to SYN") for s in wire]
    others = [made_up_result(s, Status.PASS, Reason.OK, "ok", addresses=["192.0.2.1"]) for s in plan.checks]
    others = [r for r in others if r.target.host != "168.63.129.16" and r.target.protocol is not Protocol.DNS]
    dns = [made_up_result(s, Status.PASS, Reason.OK, "ok", addresses=["192.0.2.1"]) for s in plan.checks]
    dns = [r for r in dns if r.target.protocol is Protocol.DNS]
    for euid, expected in ((1000, ["wireserver-non-root"]), (0, [])):
        fresh = [r.model_copy(deep=True) for r in (*results, *others, *dns)]
        judged, findings, _ = interpret(fresh, plan, inputs(), local=LocalFacts(euid=euid))
        if expected:
            assert [f.id for f in findings] == expected and findings[0].severity is Severity.INFO
            assert "WALinuxAgent" in findings[0].detail
            assert all(r.status is Status.WARN for r in judged if r.target.host == "168.63.129.16")
        else:
            # As root a drop is a real failure.
            assert "wireserver-non-root" not in [f.id for f in findings]
            assert any(f.severity is not Severity.INFO for f in findings)


# -- real faults: one finding naming the cause -------------------------------------------------------


async def test_zone_not_linked_when_azure_dns_also_answers_public(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = public_view()
    azure_dns.records = public_view()
    out, findings, env = await run(configured, azure_dns, inputs())
    assert loud(findings) == ["private-dns-zone-not-linked"]
    assert set(pe(env).values()) == {True}  # the public privatelink CNAME shows the endpoints exist
    assert out[f"dns:{BLOB}"].reason is Verdict.DNS_PUBLIC_ADDRESS
    f = findings[0]
    assert "privatelink.blob.core.windows.net" in f.title
    commands = [c for r in f.remediation for c in r.commands]
    assert any("az network private-dns link vnet create" in c for c in commands)
    # The configured resolver here is a custom DNS: its forwarders are named too.
    assert any("168.63.129.16" in c for c in commands)


async def test_custom_dns_without_forwarders_says_forwarders(servers: tuple[DnsServer, DnsServer]) -> None:
    # The custom DNS recurses on the internet: public privatelink chain; Azure DNS here answers privately.
    configured, azure_dns = servers
    configured.records = public_view()
    azure_dns.records = private_view()
    _out, findings, _env = await run(configured, azure_dns, inputs())
    assert loud(findings) == ["custom-dns-not-forwarding"]
    commands = [c for r in findings[0].remediation for c in r.commands]
    assert any("Add-DnsServerConditionalForwarderZone -Name blob.core.windows.net" in c for c in commands)
    assert not any("private-dns link vnet create" in c for c in commands)


async def test_explicit_input_overrides_the_evidence(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = private_view()
    azure_dns.records = private_view()
    out, _findings, env = await run(configured, azure_dns, inputs(private_endpoints={"storage": False}))
    assert env["private_endpoints"]["storage-blob"] == {
        "private_endpoint": False,
        "evidence": env["private_endpoints"]["storage-blob"]["evidence"],
        "dns_says": True,
        "input": False,
    }
    assert "--private-endpoint" in env["private_endpoints"]["storage-blob"]["evidence"]
    assert out[f"dns:{BLOB}"].reason is Verdict.DNS_PRIVATE_ADDRESS
    assert out[f"dns:{WS_NAME}"].status is Status.PASS


async def test_a_missing_variant_is_a_fault_when_no_variant_resolves(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = no_private_endpoints()
    azure_dns.records = no_private_endpoints()
    configured.remove(CI)
    azure_dns.remove(CI)
    out, findings, _env = await run(configured, azure_dns, inputs(), absent=ABSENT | {CI})
    assert out[f"dns:{CI}"].status is Status.FAIL and out[f"dns:{CI}"].reason is Reason.DNS_NXDOMAIN
    assert out[f"dns:{CI_MLAZURE}"].status is Status.FAIL
    assert loud(findings)


async def test_a_variant_only_the_custom_dns_lacks_is_not_absent(servers: tuple[DnsServer, DnsServer]) -> None:
    configured, azure_dns = servers
    configured.records = no_private_endpoints()
    azure_dns.records = no_private_endpoints()
    azure_dns.add(CI_MLAZURE, "A", "192.0.2.6")
    out, _findings, _env = await run(configured, azure_dns, inputs())
    assert out[f"dns:{CI_MLAZURE}"].status is Status.FAIL  # Azure DNS knows it: not a missing variant
    assert out[f"dns:{CI_NET}"].status is Status.SKIP


async def _with_a_public_variant(
    servers: tuple[DnsServer, DnsServer], zone: Zone
) -> tuple[dict[str, CheckResult], list[Finding]]:
    """Both resolvers serve ``zone``, and answer the ml.azure.ms variant with a public address."""
    configured, azure_dns = servers
    configured.records, azure_dns.records = zone, dict(zone)
    for server in (configured, azure_dns):
        server.add(CI_MLAZURE, "A", "20.42.0.5")
    out, findings, _env = await run(configured, azure_dns, inputs(), absent=ABSENT - {CI_MLAZURE})
    return out, findings


async def test_a_variant_answered_publicly_beside_a_private_one_is_not_the_vnets(
    servers: tuple[DnsServer, DnsServer],
) -> None:
    # Run off the compute instance (no .nbvm): the private zone holds the live name, and the custom DNS
    # recurses for the other variant, which the internet answers (real-world-azure.md Q3a; azure-docs#87505).
    out, findings = await _with_a_public_variant(servers, private_view())
    assert out[f"dns:{CI}"].status is Status.PASS
    assert out[f"dns:{CI_MLAZURE}"].status is Status.SKIP
    assert f"while {CI}, another name of the same ci-host, resolved to its private endpoint" in (
        out[f"dns:{CI_MLAZURE}"].detail
    )
    assert out[f"wss:{CI_MLAZURE}:443"].status is Status.SKIP
    assert loud(findings) == []


async def test_with_no_private_variant_a_public_variant_is_still_judged(
    servers: tuple[DnsServer, DnsServer],
) -> None:
    out, findings = await _with_a_public_variant(servers, public_view())
    assert out[f"dns:{CI_MLAZURE}"].status is not Status.SKIP
    assert loud(findings)


@pytest.mark.parametrize(("registry_pe", "status"), [(False, Status.SKIP), (True, Status.FAIL)])
async def test_registry_data_endpoint_exists_only_with_a_private_endpoint(
    servers: tuple[DnsServer, DnsServer], registry_pe: bool, status: Status
) -> None:
    configured, azure_dns = servers
    zone = no_private_endpoints()
    if registry_pe:
        zone["labacr.azurecr.io"] = [("CNAME", "labacr.privatelink.azurecr.io", 300)]
        zone["labacr.privatelink.azurecr.io"] = [("A", "10.1.0.11", 10)]
    else:
        zone["labacr.azurecr.io"] = [("A", "203.0.113.20", 300)]
    configured.records = dict(zone)
    azure_dns.records = dict(zone)
    data = "labacr.eastus.data.azurecr.io"
    out, _findings, env = await run(
        configured, azure_dns, inputs(container_registry="labacr", scenarios=["docker-images"]), absent=ABSENT | {data}
    )
    assert env["private_endpoints"]["acr"]["private_endpoint"] is registry_pe
    assert out[f"dns:{data}"].status is status
    assert out[f"tls:{data}:443"].status is status
