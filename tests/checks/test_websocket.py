"""The Azure judgement of websocket answers, on what the real prober gets from real peers: the lab's
compute-instance front end (each plausible refusal: 302 to login.microsoftonline.com, 401, 403) and
aiohttp services that answer without Azure's marks or as a block page.

The old judgement called every non-101 answer "stripped" (CRITICAL); a healthy front end refuses an
anonymous upgrade, so these tests fail on a regression to it.
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
from checks.websocket import apply_websocket_answers
from lab.ca import AZURE_03, LabCA
from lab.servers.web import AUTH_ANSWERS, HttpsFrontEnd
from probe.model import CheckResult, CheckSpec, Confidence, Protocol, Status, Target
from probe.reasons import Reason
from probe.registry import PROBERS
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from tests.helpers.probes import probe_context, server_ssl_context
from tests.helpers.web import WebPeers

CI = "lab-ci.eastus.instances.azureml.ms"
INPUTS = Inputs(region="eastus", instance_name="lab-ci")
PLAN = build_plan(load_catalog("public"), INPUTS)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls(ca: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    return server_ssl_context(ca.issue_cert(CI), tmp_path)


@pytest.fixture
def context(ca: trustme.CA, tmp_path: Path) -> Callable[[], ProbeContext]:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return lambda: probe_context(hosts={CI: ["127.0.0.1"]}, ca_bundle=str(bundle))


@pytest.fixture
async def peers() -> AsyncIterator[WebPeers]:
    p = WebPeers()
    yield p
    await p.close()


async def upgrade(port: int, ctx: ProbeContext, operator: str = "microsoft") -> CheckResult:
    spec = CheckSpec(
        id=f"wss:{CI}:443",
        target=Target(host=CI, port=port, protocol=Protocol.WEBSOCKET, path="/"),
        labels={"operator": operator},
    )
    result = await run_prober(PROBERS[Protocol.WEBSOCKET], spec, ctx)
    apply_websocket_answers([result])
    return result


# The lab front end's answers that carry Azure's marks; "403-unmarked" is told apart only by the TLS
# session (the sealed tests below).
MARKED = tuple(a for a in AUTH_ANSWERS if a != "403-unmarked")


@pytest.mark.parametrize("answer", MARKED)
async def test_each_plausible_front_end_refusal_passes(
    answer: str, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    front = HttpsFrontEnd([("127.0.0.1", 0)], tls, authenticating_hosts=[CI], auth_answer=answer)
    async with front:
        result = await upgrade(front.ports[0], context())
    assert (result.status, result.reason) == (Status.PASS, Reason.WS_AUTH_REQUIRED)
    assert result.confidence is Confidence.LIKELY
    assert result.detail.startswith("Reached the Azure ML front end, which requires authentication")
    assert result.http is not None and result.http.plain_get is not None
    assert diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS)) == []


def _app(handler: Callable[[web.Request], web.StreamResponse]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        return handler(request)

    app = web.Application()
    app.router.add_get("/", handle)
    return app


def _wants_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def test_a_refusal_without_azures_marks_is_inconclusive_not_a_failure(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    port = await peers.app(_app(lambda r: web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})), tls)
    result = await upgrade(port, context())
    assert (result.status, result.reason, result.confidence) == (
        Status.WARN,
        Reason.WS_INCONCLUSIVE,
        Confidence.UNCONFIRMED,
    )
    (finding,) = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert (finding.id, finding.severity.value) == ("websocket-inconclusive", "warning")
    assert "cannot be seen from here" in finding.detail
    (check,) = finding.remediation
    assert check.kind == "client_check" and check.commands[0].startswith("curl --http1.1 ")
    assert check.commands[0].endswith(f" https://{CI}/")


async def test_the_azure_front_end_answering_otherwise_is_inconclusive(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    port = await peers.app(_app(lambda r: web.Response(status=404, headers={"x-ms-request-id": "abc"})), tls)
    result = await upgrade(port, context())
    assert result.reason is Reason.WS_INCONCLUSIVE
    assert "x-ms-request-id: abc" in result.detail


async def test_a_block_page_only_the_upgrade_gets_is_stripped(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    # A web filter's "Application Control Violation" page for the upgrade (FortiGate sends no Server header:
    # Ekultek/WhatWaf#513); the front end itself still redirects a plain GET to sign in.
    def answer(request: web.Request) -> web.StreamResponse:
        if _wants_upgrade(request):
            page = "<html><title>Application Control Violation</title></html>"
            return web.Response(status=403, text=page, content_type="text/html")
        return web.Response(status=302, headers={"Location": "https://login.microsoftonline.com/x"})

    port = await peers.app(_app(answer), tls)
    result = await upgrade(port, context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_INTERCEPTED)
    assert result.detail.startswith("A block page answered the upgrade")
    (finding,) = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert finding.id == "websocket-stripped" and finding.severity.value == "critical"
    assert [r.kind for r in finding.remediation] == ["tls_bypass", "client_check"]


@pytest.fixture(scope="module")
def azure_ca() -> LabCA:
    """A CA named like an Azure issuing CA (lab.ca): the session it signs is sealed to Microsoft."""
    return LabCA.like(AZURE_03)


@pytest.fixture
def sealed(azure_ca: LabCA, tmp_path: Path) -> tuple[ssl.SSLContext, Callable[[], ProbeContext]]:
    issued = azure_ca.issue([CI])
    (tmp_path / "azure.pem").write_bytes(issued.chain_pem)
    (tmp_path / "azure.key").write_bytes(issued.key_pem)
    (tmp_path / "azure-root.pem").write_bytes(azure_ca.root_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "azure.pem", tmp_path / "azure.key")
    bundle = str(tmp_path / "azure-root.pem")
    return server, lambda: probe_context(hosts={CI: ["127.0.0.1"]}, ca_bundle=bundle)


async def test_behind_tls_sealed_to_azure_the_block_page_is_the_front_ends_refusal(
    peers: WebPeers, sealed: tuple[ssl.SSLContext, Callable[[], ProbeContext]]
) -> None:
    # What users report: the websocket endpoint answers 403 while a browser is sent to sign in
    # (vscode-tools-for-ai#885, #2077; DP100#20), with no header published to recognise it by. The same
    # answer as the block-page test above, but over TLS only Microsoft could have terminated.
    def answer(request: web.Request) -> web.StreamResponse:
        if _wants_upgrade(request):
            return web.Response(status=403, text="<html>Forbidden</html>", content_type="text/html")
        return web.Response(status=302, headers={"Location": "https://login.microsoftonline.com/x"})

    server, context = sealed
    result = await upgrade(await peers.app(_app(answer), server), context())
    assert (result.status, result.reason, result.confidence) == (
        Status.PASS,
        Reason.WS_AUTH_REQUIRED,
        Confidence.UNCONFIRMED,
    )
    assert "Microsoft Azure RSA TLS Issuing CA 03" in result.detail
    assert diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS)) == []


async def test_the_lab_front_ends_unmarked_refusal_passes_only_when_sealed(
    sealed: tuple[ssl.SSLContext, Callable[[], ProbeContext]],
    tls: ssl.SSLContext,
    context: Callable[[], ProbeContext],
) -> None:
    server, sealed_context = sealed
    for ssl_context, ctx, expected in (
        (server, sealed_context, (Status.PASS, Reason.WS_AUTH_REQUIRED)),
        (tls, context, (Status.FAIL, Reason.WS_INTERCEPTED)),  # any CA: a block page, as before
    ):
        front = HttpsFrontEnd([("127.0.0.1", 0)], ssl_context, authenticating_hosts=[CI], auth_answer="403-unmarked")
        async with front:
            result = await upgrade(front.ports[0], ctx())
        assert (result.status, result.reason) == expected


async def test_behind_tls_sealed_to_azure_a_2xx_is_inconclusive_not_stripped(
    peers: WebPeers, sealed: tuple[ssl.SSLContext, Callable[[], ProbeContext]]
) -> None:
    server, context = sealed
    result = await upgrade(await peers.app(_app(lambda r: web.Response(status=200, text="sign in")), server), context())
    assert (result.status, result.reason) == (Status.WARN, Reason.WS_INCONCLUSIVE)
    (finding,) = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert finding.severity.value == "warning"


async def test_behind_tls_sealed_to_azure_a_via_header_still_counts(
    peers: WebPeers, sealed: tuple[ssl.SSLContext, Callable[[], ProbeContext]]
) -> None:
    server, context = sealed
    app = _app(lambda r: web.Response(status=403, headers={"Via": "1.1 corp-proxy"}))
    result = await upgrade(await peers.app(app, server), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_INTERCEPTED)


async def test_azure_marks_never_outweigh_a_via_header(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    headers = {"Location": "https://login.microsoftonline.com/x", "Via": "1.1 corp-proxy"}
    port = await peers.app(_app(lambda r: web.Response(status=302, headers=headers)), tls)
    result = await upgrade(port, context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_INTERCEPTED)
    (finding,) = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert finding.title == "Websocket upgrade stripped by Via: 1.1 corp-proxy: Jupyter will not work"


async def test_third_party_hosts_keep_the_generic_verdict(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    port = await peers.app(_app(lambda r: web.Response(status=401)), tls)
    result = await upgrade(port, context(), operator="third-party")
    assert (result.status, result.reason) == (Status.PASS, Reason.WS_AUTH_REQUIRED)


def test_the_desktop_recipe_pastes_into_bash() -> None:
    """Syntax-checked by bash itself (never run: it would leave the machine)."""
    import shlex
    import subprocess

    from checks.remedies import websocket_desktop_check

    (command,) = websocket_desktop_check([CI]).commands
    subprocess.run(["bash", "-n", "-c", command], check=True, timeout=10)
    words = shlex.split(command)
    assert words[:2] == ["curl", "--http1.1"] and words[-1] == f"https://{CI}/"
    assert "Upgrade: websocket" in words and "Sec-WebSocket-Version: 13" in words


async def test_azures_answer_relayed_with_via_is_likely_stripped_not_proven(
    peers: WebPeers, tls: ssl.SSLContext, context: Callable[[], ProbeContext]
) -> None:
    headers = {"x-ms-request-id": "abc", "Via": "1.1 corp-proxy (squid/5.7)"}
    port = await peers.app(_app(lambda r: web.Response(status=401, headers=headers)), tls)
    result = await upgrade(port, context())
    assert (result.status, result.reason, result.confidence) == (
        Status.FAIL,
        Reason.WS_INTERCEPTED,
        Confidence.LIKELY,
    )
    assert "relayed by a proxy that decrypts the connection" in result.detail
