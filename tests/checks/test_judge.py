"""Private-DNS expectations judged against real DNS servers on loopback (dnspython-served zones)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from checks.catalog import load_catalog
from checks.inputs import Inputs
from checks.interpret import interpret
from checks.plan import build_plan
from lab.servers.dns import DnsServer
from probe.model import CheckResult, Protocol
from probe.runner import run_checks
from probe.settings import ProbeSettings
from probe.transport.context import ProbeContext
from probe.transport.lookup import make_lookup
from probe.transport.resolve import SharedResolver

WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
WS_NAME = f"{WS}.workspace.eastus.api.azureml.ms"
WS_PL = f"{WS}.workspace.eastus.privatelink.api.azureml.ms"
BLOB = "labsa.blob.core.windows.net"
BLOB_PL = "labsa.privatelink.blob.core.windows.net"


def _inputs(**kw: Any) -> Inputs:
    base = {"region": "eastus", "workspace_id": WS, "storage_account": "labsa"}
    return Inputs.model_validate({**base, **kw})


def private_zone() -> dict[str, list[tuple[str, str, int]]]:
    return {
        WS_NAME: [("CNAME", WS_PL, 300)],
        WS_PL: [("A", "10.1.0.5", 10)],
        BLOB: [("CNAME", BLOB_PL, 300)],
        BLOB_PL: [("A", "10.1.0.7", 10)],
    }


@pytest.fixture
async def resolvers() -> AsyncIterator[tuple[DnsServer, DnsServer]]:
    configured = DnsServer("127.0.0.1", 0, records=private_zone())
    reference = DnsServer("127.0.0.2", 0, records=private_zone())
    async with configured, reference:
        yield configured, reference


async def judge(inputs: Inputs, configured: DnsServer) -> dict[str, CheckResult]:
    """Run only the plan's DNS checks (configured + reference) and interpret them."""
    plan = build_plan(load_catalog("public"), inputs)
    names = {WS_NAME, BLOB}
    specs = [s for s in plan.checks if s.target.protocol is Protocol.DNS and s.target.host in names]
    settings = ProbeSettings(timeout=1.0, dns_servers=[configured.server_spec], env={}, trust_env=False)
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    outcome = await run_checks(specs, ctx)
    results, _findings, _environment = interpret(outcome.results, plan, inputs)
    return {r.id: r for r in results}


async def test_privatelink_chain_to_private_address_passes(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    for name in (WS_NAME, BLOB):
        assert out[f"dns:{name}"].reason.value == "ok"
        assert out[f"dns@reference:{name}"].reason.value == "ok"
    assert out[f"dns:{WS_NAME}"].dns.chain[0].target == WS_PL  # type: ignore[union-attr]


async def test_public_answer_where_private_expected(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    configured.set(BLOB_PL, ("A", "203.0.113.7", 60))
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{BLOB}"].reason.value == "dns_public_address"
    assert out[f"dns:{BLOB}"].status.value == "fail"
    # ...and the reference resolver, which answers privately, disagrees.
    ref = out[f"dns@reference:{BLOB}"]
    assert ref.reason.value == "dns_resolver_mismatch"
    assert "203.0.113.7" in ref.detail and "10.1.0.7" in ref.detail
    assert out[f"dns:{WS_NAME}"].reason.value == "ok"


async def test_the_verdict_keeps_what_the_probe_saw(resolvers: tuple[DnsServer, DnsServer]) -> None:
    # Issue 12: the judge's verdict replaces reason and detail; the probe's own sentence stays in observed.
    configured, reference = resolvers
    configured.set(BLOB_PL, ("A", "203.0.113.7", 60))
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    judged = out[f"dns:{BLOB}"]
    assert judged.reason.value == "dns_public_address" and "should answer with a private address" in judged.detail
    assert judged.observed is not None and judged.observed.reason.value == "ok"
    assert "203.0.113.7" in judged.observed.detail and judged.observed.detail != judged.detail
    assert out[f"dns:{WS_NAME}"].observed is None  # the probe's words stand
    dumped = judged.model_dump(mode="json")["observed"]
    assert dumped == {"reason": "ok", "detail": judged.observed.detail}


async def test_private_a_record_without_cname_is_healthy(resolvers: tuple[DnsServer, DnsServer]) -> None:
    # Was dns_missing_privatelink_cname (a critical "zone not linked"): wrong. how-to-custom-dns recommends
    # exactly this for manual DNS ("creating the A record in the root of the zone").
    configured, reference = resolvers
    configured.set(WS_NAME, ("A", "10.1.0.5", 300))  # private, but no CNAME into the privatelink zone
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{WS_NAME}"].reason.value == "ok" and out[f"dns:{WS_NAME}"].status.value == "pass"
    assert out[f"dns@reference:{WS_NAME}"].reason.value == "ok"  # same address: no disagreement


async def test_no_private_endpoint_expects_public(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    out = await judge(_inputs(reference_dns=[reference.server_spec], private_endpoint=False), configured)
    assert out[f"dns:{BLOB}"].reason.value == "dns_private_address"
    assert out[f"dns:{BLOB}"].status.value == "warn"


async def test_user_private_network_counts_as_private(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    configured.set(BLOB_PL, ("A", "198.18.0.7", 60))
    reference.set(BLOB_PL, ("A", "198.18.0.7", 60))
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{BLOB}"].reason.value == "dns_public_address"
    out = await judge(_inputs(reference_dns=[reference.server_spec], private_networks=["198.18.0.0/15"]), configured)
    assert out[f"dns:{BLOB}"].reason.value == "ok"


async def test_nxdomain_on_configured_resolver_is_a_mismatch(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    configured.remove(WS_PL)
    out = await judge(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{WS_NAME}"].reason.value == "dns_nxdomain"
    assert out[f"dns@reference:{WS_NAME}"].reason.value == "dns_resolver_mismatch"


async def test_unreachable_reference_is_only_a_warning(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, _ = resolvers
    silent = DnsServer("127.0.0.3", 0, mode="silent")
    async with silent:
        out = await judge(_inputs(reference_dns=[silent.server_spec]), configured)
    ref = out[f"dns@reference:{WS_NAME}"]
    assert ref.reason.value == "dns_timeout" and ref.status.value == "warn"
    assert out[f"dns:{WS_NAME}"].reason.value == "ok"


async def judge_cut_off(inputs: Inputs, configured: DnsServer) -> tuple[dict[str, CheckResult], list[Any]]:
    """As ``judge``, with the run's deadline passing while a silent resolver is still being waited for."""
    plan = build_plan(load_catalog("public"), inputs)
    specs = [s for s in plan.checks if s.target.protocol is Protocol.DNS and s.target.host in {WS_NAME, BLOB}]
    settings = ProbeSettings(timeout=5.0, dns_servers=[configured.server_spec], env={}, trust_env=False)
    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    outcome = await run_checks(specs, ctx, deadline_s=1.0)
    assert outcome.deadline_exceeded
    results, findings, _environment = interpret(outcome.results, plan, inputs)
    return {r.id: r for r in results}, findings


async def test_nothing_is_judged_against_a_configured_check_cut_off(resolvers: tuple[DnsServer, DnsServer]) -> None:
    # Issue 11: the run was cut off while the configured resolver was silent; the reference resolver had answered
    # (here NXDOMAIN for the blob name). Its answer means something only beside the configured one: no finding.
    configured, reference = resolvers
    configured.mode = "silent"
    reference.remove(BLOB)
    out, findings = await judge_cut_off(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{BLOB}"].reason.value == "deadline_exceeded"
    ref = out[f"dns@reference:{BLOB}"]
    assert ref.status.value == "skip" and ref.detail.startswith("Not judged")
    assert ref.observed is not None and ref.observed.reason.value == "dns_nxdomain"  # what it saw stays
    assert findings == []


async def test_a_reference_check_cut_off_is_no_evidence(resolvers: tuple[DnsServer, DnsServer]) -> None:
    configured, reference = resolvers
    reference.mode = "silent"
    out, findings = await judge_cut_off(_inputs(reference_dns=[reference.server_spec]), configured)
    assert out[f"dns:{BLOB}"].reason.value == "ok"
    assert out[f"dns@reference:{BLOB}"].reason.value == "deadline_exceeded"
    assert out[f"dns@reference:{BLOB}"].status.value == "skip"
    assert findings == []
