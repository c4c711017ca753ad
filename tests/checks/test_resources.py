"""The workspace resources' anonymous answers, judged on what the real http prober gets from real peers: the
lab's resource front ends (storage blob/file/queue/table/dfs, key vault, registry; admitted, refused by their
firewall, public access disabled, and admitted through a private endpoint), and aiohttp services answering as
middleboxes do (a Zscaler block page, Azure Firewall's 470, a relaying proxy, a bare 403, a 407).

Each test would fail on a regression to the old behaviour, where a TLS handshake was all these resources got and
a firewall refusal passed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from checks.catalog import load_catalog
from checks.diagnosis import Evidence, diagnose
from checks.inputs import Inputs
from checks.plan import build_plan
from checks.registry import registry_layer_path
from checks.resources import apply_resource_answers, bearer_challenge, service_error
from checks.verdicts import Verdict
from lab.servers.resources import LAB_TENANT
from lab.servers.web import HttpsFrontEnd
from probe.model import CheckResult, CheckSpec, Confidence, HttpFacts, Protocol, Severity, Status
from probe.reasons import Reason
from probe.registry import PROBERS
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from tests.helpers.probes import probe_context, server_ssl_context
from tests.helpers.remedies import assert_pastes, commands_of
from tests.helpers.web import WebPeers

SA, KV, ACR = "amlprobelabsa", "amlprobe-lab-kv", "amlprobelabacr"
INPUTS = Inputs(
    region="eastus",
    resource_group="rg-ml",
    storage_account=SA,
    key_vault=KV,
    container_registry=ACR,
    scenarios=["compute-cluster", "docker-images", "studio"],
)
PLAN = build_plan(load_catalog("public"), INPUTS)
SPECS = {s.labels["entry"]: s for s in PLAN.checks if s.target.protocol is Protocol.HTTP}
HOSTS = sorted({s.target.host for s in SPECS.values()})
STORAGE = ["storage-blob-http", "storage-file-http", "storage-queue-http", "storage-table-http", "storage-dfs-http"]


def test_the_plan_asks_each_resource_with_its_headers() -> None:
    assert sorted(SPECS) == sorted([*STORAGE, "key-vault-http", "acr-http"])
    blob = SPECS["storage-blob-http"]
    assert (blob.target.path, blob.request_headers) == ("/?comp=list", {"x-ms-version": "2023-01-03"})
    assert SPECS["storage-table-http"].request_headers == {"x-ms-version": "2020-12-06"}
    assert "x-ms-error-code" in blob.keep_headers
    assert SPECS["key-vault-http"].target.path == "/secrets?api-version=7.4"
    assert "x-ms-keyvault-network-info" in SPECS["key-vault-http"].keep_headers
    assert SPECS["acr-http"].target.path == "/v2/" and SPECS["acr-http"].labels["judge"] == "acr"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    return server_ssl_context(ca.issue_cert(*HOSTS), tmp_path)


@pytest.fixture
def context(ca: trustme.CA, tmp_path: Path) -> Callable[[], ProbeContext]:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return lambda: probe_context(hosts={h: ["127.0.0.1"] for h in HOSTS}, ca_bundle=str(bundle))


@pytest.fixture
async def peers() -> AsyncIterator[WebPeers]:
    p = WebPeers()
    yield p
    await p.close()


def _kinds() -> dict[str, str]:
    return {s.target.host: s.labels["judge"] for s in SPECS.values()}


async def ask(entries: list[str], port: int, ctx: ProbeContext, **changes: object) -> list[CheckResult]:
    results = []
    for entry in entries:
        spec = SPECS[entry]
        target = spec.target.model_copy(update={"port": port})
        spec = CheckSpec.model_validate({**spec.model_dump(), "target": target.model_dump(), **changes})
        results.append(await run_prober(PROBERS[Protocol.HTTP], spec, ctx))
    apply_resource_answers(results)
    return results


async def front_end(tls: ssl.SSLContext, modes: dict[str, str], private: tuple[str, ...] = ()) -> HttpsFrontEnd:
    front = HttpsFrontEnd([("127.0.0.1", 0)], tls, resources=_kinds(), resource_modes=modes, private_endpoints=private)
    await front.start()
    return front


# --- admitted: the service asks for credentials ----------------------------------------------------------


async def test_admitted_resources_ask_for_credentials(tls: ssl.SSLContext, context: Callable[[], ProbeContext]) -> None:
    front = await front_end(tls, {})
    try:
        results = await ask([*STORAGE, "key-vault-http", "acr-http"], front.ports[0], context())
    finally:
        await front.stop()
    by = {r.labels["entry"]: r for r in results}
    for entry in STORAGE:
        r = by[entry]
        assert (r.status, r.reason, r.confidence) == (Status.PASS, Verdict.HTTP_AUTH_REQUIRED, Confidence.LIKELY), (
            r.detail
        )
        assert (
            r.http is not None
            and r.http.status == 401
            and r.http.headers["x-ms-error-code"] == "NoAuthenticationInformation"
        )
        assert "resource_id=https://storage.azure.com" in r.detail
        assert "does not document whether its network rules are checked before this challenge" in r.detail
    # dfs and table write their errors as JSON; the code is read all the same.
    assert service_error(by["storage-dfs-http"].http or HttpFacts()).code == "NoAuthenticationInformation"
    assert (by["storage-table-http"].http or HttpFacts()).body.startswith('{"odata.error"')  # type: ignore[union-attr]
    kv = by["key-vault-http"]
    assert (kv.status, kv.reason) == (Status.PASS, Verdict.HTTP_AUTH_REQUIRED)
    assert kv.labels["seen_address"] == "127.0.0.1" and "saw this machine as 127.0.0.1" in kv.detail
    acr = by["acr-http"]
    # The registry checks its firewall before credentials: its challenge proves the network admits us.
    assert (acr.status, acr.reason, acr.confidence) == (Status.PASS, Verdict.HTTP_AUTH_REQUIRED, Confidence.CONFIRMED)
    assert diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS)) == []


def test_both_challenge_forms_are_read() -> None:
    storage = HttpFacts(
        status=401,
        headers={
            "www-authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/{LAB_TENANT}/oauth2/authorize"
            " resource_id=https://storage.azure.com"
        },
    )
    assert bearer_challenge(storage) == {
        "authorization_uri": f"https://login.microsoftonline.com/{LAB_TENANT}/oauth2/authorize",
        "resource_id": "https://storage.azure.com",
    }
    vault = HttpFacts(
        status=401,
        headers={"www-authenticate": 'Bearer authorization="https://x/t", resource="https://vault.azure.net"'},
    )
    assert bearer_challenge(vault) == {"authorization": "https://x/t", "resource": "https://vault.azure.net"}
    assert bearer_challenge(HttpFacts(status=403, headers=vault.headers)) is None


# --- refused ----------------------------------------------------------------------------------------------


async def test_firewalls_refuse_and_the_vault_and_registry_say_whom(
    tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    front = await front_end(tls, {"storage": "firewall", "key-vault": "firewall", "acr": "firewall"})
    try:
        results = await ask(
            ["storage-blob-http", "storage-file-http", "key-vault-http", "acr-http"], front.ports[0], context()
        )
    finally:
        await front.stop()
    by = {r.labels["entry"]: r for r in results}
    for entry in ("storage-blob-http", "storage-file-http"):
        r = by[entry]
        assert (r.status, r.reason) == (Status.FAIL, Verdict.HTTP_NETWORK_DENIED), r.detail
        assert "denied by the storage account's network rules or public network access is disabled" in r.detail
        assert "seen_address" not in r.labels, "storage never says which address it saw"
    kv, acr = by["key-vault-http"], by["acr-http"]
    assert (kv.reason, kv.labels["seen_address"]) == (Verdict.HTTP_NETWORK_DENIED, "127.0.0.1")
    assert "ForbiddenByFirewall" in kv.detail
    assert (acr.reason, acr.labels["seen_address"]) == (Verdict.HTTP_NETWORK_DENIED, "127.0.0.1")
    assert "client with IP '127.0.0.1' is not allowed access" in acr.detail

    findings = diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS))
    assert [(f.id, f.severity) for f in findings] == [("resource-network-denied", Severity.CRITICAL)] * 3
    titles = {f.title for f in findings}
    assert (
        f"Storage account {SA} refuses this machine (blob, file): its network rules, or public network access disabled"
        in titles
    )
    assert f"The key vault {KV} refuses this machine: its firewall; it saw 127.0.0.1" in titles
    commands = commands_of(findings)
    assert f"az storage account network-rule add --account-name {SA} --subnet <COMPUTE_SUBNET_ID>" in commands
    assert f"az keyvault network-rule add --name {KV} --ip-address 127.0.0.1" in commands
    assert f"az acr network-rule add --name {ACR} --ip-address 127.0.0.1" in commands
    assert any("--group-id blob" in c for c in commands) and any("--group-id file" in c for c in commands)
    assert_pastes(commands)


async def test_public_access_disabled(tls: ssl.SSLContext, context: Callable[[], ProbeContext]) -> None:
    front = await front_end(tls, {"storage": "public-access-disabled", "key-vault": "public-access-disabled"})
    try:
        results = await ask(["storage-blob-http", "key-vault-http"], front.ports[0], context())
    finally:
        await front.stop()
    blob, kv = results
    # Storage answers both alike: the judge does not pretend to tell them apart.
    assert blob.reason is Verdict.HTTP_NETWORK_DENIED
    assert (kv.status, kv.reason) == (Status.FAIL, Verdict.HTTP_PUBLIC_ACCESS_DISABLED)
    assert "ForbiddenByConnection" in kv.detail and "Public network access is disabled" in kv.detail
    ids = sorted(f.id for f in diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS)))
    assert ids == ["resource-network-denied", "resource-public-access-disabled"]


async def test_through_a_private_endpoint_the_resource_admits_whatever_its_state(
    tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    front = await front_end(tls, {"storage": "firewall", "key-vault": "public-access-disabled"}, ("127.0.0.1",))
    try:
        results = await ask(["storage-blob-http", "key-vault-http"], front.ports[0], context())
    finally:
        await front.stop()
    assert [r.reason for r in results] == [Verdict.HTTP_AUTH_REQUIRED] * 2


async def test_an_old_version_gets_storages_other_documented_answer(
    tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    front = await front_end(tls, {})
    try:
        (blob,) = await ask(["storage-blob-http"], front.ports[0], context(), request_headers={})
    finally:
        await front.stop()
    assert blob.http is not None and blob.http.status == 409
    # The service answered itself: the path works; nothing documented says what it means for access.
    assert (blob.status, blob.reason, blob.confidence) == (
        Status.PASS,
        Verdict.HTTP_SERVICE_ANSWERED,
        Confidence.UNCONFIRMED,
    )
    assert "PublicAccessNotPermitted" in blob.detail


# --- something else answered ------------------------------------------------------------------------------


def _app(handler: Callable[[web.Request], web.StreamResponse]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        return handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


# Zscaler's block page: "403, text/html, Server: Zscaler/5.6" (Ekultek/WhatWaf#178). Azure Firewall's
# application-rule refusal: 470, text/plain, "Action: Deny. Reason: No rule matched. Proceeding with default
# action." (public lab captures, research A4).
def zscaler() -> web.Response:
    page = "<html><title>Internet Security by Zscaler</title></html>"
    return web.Response(status=403, text=page, content_type="text/html", headers={"Server": "Zscaler/5.6"})


AZURE_FIREWALL = "Action: Deny. Reason: No rule matched. Proceeding with default action."


@pytest.mark.parametrize(
    ("answer", "reason", "status"),
    [
        (lambda r: zscaler(), Verdict.HTTP_INTERCEPTED, Status.FAIL),
        (lambda r: web.Response(status=470, text=AZURE_FIREWALL), Verdict.HTTP_INTERCEPTED, Status.FAIL),
        (
            lambda r: web.Response(status=403, text="no", headers={"Via": "1.1 corp-gw", "Server": "corp-gw"}),
            Verdict.HTTP_INTERCEPTED,
            Status.FAIL,
        ),
        (
            lambda r: web.Response(status=407, headers={"Proxy-Authenticate": "Basic"}),
            Reason.PROXY_AUTH_REQUIRED,
            Status.FAIL,
        ),
        (lambda r: web.Response(status=403, text="Forbidden"), Verdict.HTTP_INCONCLUSIVE, Status.WARN),
    ],
    ids=["zscaler", "azure-firewall-470", "gateway-via", "proxy-407", "bare-403"],
)
async def test_answers_without_the_services_marks(
    answer: Callable[[web.Request], web.StreamResponse],
    reason: Reason,
    status: Status,
    *,
    peers: WebPeers,
    tls: ssl.SSLContext,
    context: Callable[[], ProbeContext],
) -> None:
    port = await peers.app(_app(answer), tls)
    results = await ask(["storage-blob-http", "acr-http"], port, context())
    assert {(r.status, r.reason) for r in results} == {(status, reason)}, [r.detail for r in results]
    findings = diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS))
    expected = "resource-answer-inconclusive" if status is Status.WARN else "resource-request-intercepted"
    assert [f.id for f in findings] == [expected]
    if status is Status.FAIL:
        assert_pastes(commands_of(findings))


async def test_azures_refusal_relayed_by_a_proxy_keeps_its_meaning(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code>'
        "<Message>This request is not authorized to perform this operation.</Message></Error>"
    )
    headers = {"x-ms-error-code": "AuthorizationFailure", "x-ms-request-id": "abc", "Via": "1.1 corp-proxy (squid/5.7)"}
    port = await peers.app(
        _app(lambda r: web.Response(status=403, text=body, content_type="application/xml", headers=headers)), tls
    )
    (blob,) = await ask(["storage-blob-http"], port, context())
    assert blob.reason is Verdict.HTTP_NETWORK_DENIED
    assert (
        "came through a proxy (Via: 1.1 corp-proxy (squid/5.7)), so the storage account saw the proxy's address"
        in blob.detail
    )


# --- consequences, the registry's layers ------------------------------------------------------------------


async def test_a_tls_failure_of_the_http_check_is_the_tls_checks_consequence(
    context: Callable[[], ProbeContext],
) -> None:
    from tests.helpers.ports import free_port

    port = free_port()
    (blob,) = await ask(["storage-blob-http"], port, context())
    tls = CheckResult.model_validate(
        {
            **blob.model_dump(),
            "id": f"tls:{blob.target.host}:{port}",
            "target": {**blob.target.model_dump(), "protocol": "tls"},
        }
    )
    blob.labels.pop("consequence_of", None)
    apply_resource_answers([tls, blob])
    assert blob.labels["consequence_of"] == tls.id
    findings = diagnose(Evidence(results=[tls, blob], plan=PLAN, inputs=INPUTS))
    assert len(findings) == 1 and set(findings[0].evidence) == {tls.id, blob.id}


def test_the_registry_layer_path_is_named_not_invented() -> None:
    data = next(s for s in PLAN.checks if s.labels.get("resource") == "acr-data" and s.target.protocol is Protocol.TLS)
    absent = CheckResult(
        id=data.id,
        target=data.target,
        status=Status.SKIP,
        reason=Reason.SKIPPED_NOT_APPLICABLE,
        detail=f"Not applicable: {data.target.host} does not exist (NXDOMAIN from the configured resolver): x.",
        labels=dict(data.labels),
    )
    layers = registry_layer_path([absent])
    assert layers is not None and layers["probed"] is False and layers["path"] == "*.blob.core.windows.net"
    (finding,) = diagnose(Evidence(results=[absent], plan=PLAN, inputs=INPUTS, registry_layers=layers))
    assert finding.id == "registry-layers-unprobed" and finding.severity is Severity.INFO
    assert finding.remediation[0].commands == [f"az acr show-endpoints --name {ACR} --resource-group rg-ml"]
    present = absent.model_copy(update={"status": Status.PASS, "reason": Reason.OK, "detail": "ok"})
    layers = registry_layer_path([present])
    assert layers is not None and layers["probed"] is True and layers["host"] == data.target.host


async def test_a_network_security_perimeters_refusal_is_named(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    # The perimeter's wording, from a capture: AzureStorageExplorer#8979.
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code><Message>This request is not'
        " authorized by network security perimeter to perform this operation.</Message></Error>"
    )
    headers = {"x-ms-error-code": "AuthorizationFailure", "x-ms-request-id": "abc"}
    port = await peers.app(
        _app(lambda r: web.Response(status=403, text=body, content_type="application/xml", headers=headers)), tls
    )
    (blob,) = await ask(["storage-blob-http"], port, context())
    assert blob.reason is Verdict.HTTP_NETWORK_DENIED
    assert "a network security perimeter refuses this machine" in blob.detail
