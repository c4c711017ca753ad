"""The websocket prober (probe.probers.websocket) against real peers: an aiohttp websocket service, authenticating services,
gateways and proxies that answer the upgrade themselves, servers that reset or stay silent, squid
and the lab proxy."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trustme

from lab.servers.proxy import ConnectProxy
from probe.model import CheckResult, CheckSpec, Confidence, Protocol, Status, Target
from probe.reasons import Reason
from probe.registry import PROBERS
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from tests.helpers.ports import free_port
from tests.helpers.probes import probe_context, server_ssl_context
from tests.helpers.squid import Squid, requires_squid, run_squid
from tests.helpers.web import (
    GATEWAY_HEADERS,
    LOGIN_URL,
    REQUEST_ID,
    WebPeers,
    never_answer,
    raw_reply,
    reset_after_head,
    reset_on_upgrade,
    service_app,
)

NAME = "app.lab.test"
HOSTS = {NAME: ["127.0.0.1"]}


def ws_spec(port: int, *, path: str = "/ws", tls: bool = True, host: str = NAME) -> CheckSpec:
    target = Target(host=host, port=port, protocol=Protocol.WEBSOCKET, path=path)
    return CheckSpec(id=f"ws-{host}-{port}", target=target, tls=tls, labels={"k": "v"})


async def run(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    return await run_prober(PROBERS[Protocol.WEBSOCKET], spec, ctx)


@pytest.fixture
async def peers() -> AsyncIterator[WebPeers]:
    p = WebPeers()
    yield p
    await p.close()


@pytest.fixture(scope="module")
def squid() -> Iterator[Squid]:
    with run_squid({NAME: "127.0.0.1"}) as s:
        yield s


@pytest.fixture
def good_tls(tls_ca: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    return server_ssl_context(tls_ca.issue_cert(NAME, "127.0.0.1"), tmp_path)


@pytest.fixture
def context(tls_ca_file: str) -> Callable[..., ProbeContext]:
    def make(env: dict[str, str] | None = None, timeout: float = 1.0) -> ProbeContext:
        return probe_context(timeout=timeout, hosts=HOSTS, ca_bundle=tls_ca_file, env=env or {})

    return make


@pytest.fixture
async def wss_port(peers: WebPeers, good_tls: ssl.SSLContext) -> int:
    return await peers.app(service_app(), good_tls)


# --- direct ------------------------------------------------------------------------------------


async def test_upgrade_accepted(wss_port: int, context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(wss_port), context())
    assert (result.status, result.reason) == (Status.PASS, Reason.OK)
    assert result.detail.startswith("Websocket upgrade accepted (101)")
    assert result.http is not None and (result.http.status, result.http.upgraded) == (101, True)
    assert result.route == "direct"
    assert result.peer == f"127.0.0.1:{wss_port}"
    assert result.addresses == ["127.0.0.1"]
    assert result.dns is not None and result.dns.query == NAME
    assert {"resolve", "connect", "upgrade"} <= set(result.phases_ms)
    assert result.labels == {"k": "v"}


async def test_plain_ws_to_an_ip_literal(peers: WebPeers, context: Callable[..., ProbeContext]) -> None:
    port = await peers.app(service_app())
    result = await run(ws_spec(port, tls=False, host="127.0.0.1"), context())
    assert result.status is Status.PASS
    assert result.dns is not None and result.dns.source == "literal"


# The old judgement called every non-101 answer ws_upgrade_rejected ("stripped"). An answer with a
# Via header is a middlebox's (RFC 9110 §7.6.3); an authenticating service's refusal proves the path.


@pytest.mark.parametrize(("path", "status"), [("/reject", 403), ("/page", 200), ("/redirect", 302)])
async def test_an_answer_with_via_is_a_middlebox(
    wss_port: int, context: Callable[..., ProbeContext], path: str, status: int
) -> None:
    result = await run(ws_spec(wss_port, path=path), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_INTERCEPTED)
    assert result.http is not None
    assert (result.http.status, result.http.upgraded) == (status, False)
    assert (result.http.server, result.http.via) == (GATEWAY_HEADERS["Server"], GATEWAY_HEADERS["Via"])
    assert f"HTTP {status}" in result.detail and "Via: 1.1 contoso-proxy" in result.detail
    # The differential probe asked the same URL without Upgrade and kept the answer.
    assert result.http.plain_get is not None and result.http.plain_get.status == status


@pytest.mark.parametrize(
    ("path", "status"),
    [("/login", 302), ("/unauthorized", 401), ("/forbidden", 403)],
)
async def test_an_authenticating_service_proves_the_path(
    wss_port: int, context: Callable[..., ProbeContext], path: str, status: int
) -> None:
    result = await run(ws_spec(wss_port, path=path), context())
    assert (result.status, result.reason) == (Status.PASS, Reason.WS_AUTH_REQUIRED)
    assert result.confidence is Confidence.LIKELY
    assert result.detail.startswith("Reached, authentication required")
    assert result.http is not None and result.http.status == status and result.http.via is None
    assert result.http.headers["x-request-id"] == REQUEST_ID["X-Request-Id"]
    assert result.http.plain_get is not None and result.http.plain_get.status == status
    if status == 302:
        # Reported, never followed: LOGIN_URL's name is unknown to the fixed resolver.
        assert result.http.headers.get("location") == LOGIN_URL
        assert LOGIN_URL in result.detail


async def test_a_refusal_only_the_upgrade_gets_is_inconclusive(
    wss_port: int, context: Callable[..., ProbeContext]
) -> None:
    result = await run(ws_spec(wss_port, path="/upgrade-forbidden"), context())
    assert (result.status, result.reason, result.confidence) == (
        Status.WARN,
        Reason.WS_INCONCLUSIVE,
        Confidence.UNCONFIRMED,
    )
    assert result.http is not None and result.http.status == 403
    assert result.http.plain_get is not None and result.http.plain_get.status == 200
    assert "a plain GET of the same URL got HTTP 200" in result.detail


@pytest.mark.parametrize(
    ("path", "reason", "words"),
    [
        ("/", Reason.WS_UPGRADE_IGNORED, "Upgrade header was removed or ignored"),
        ("/proxy-auth", Reason.WS_PROXY_AUTH_REQUIRED, "it offers: Basic"),
        ("/zscaler", Reason.WS_INTERCEPTED, "Server: Zscaler/5.6"),
        ("/missing", Reason.WS_UPGRADE_REJECTED, "HTTP 404"),
    ],
)
async def test_what_each_non_101_answer_means(
    wss_port: int, context: Callable[..., ProbeContext], path: str, reason: Reason, words: str
) -> None:
    result = await run(ws_spec(wss_port, path=path), context())
    assert (result.status, result.reason) == (Status.FAIL, reason)
    assert words in result.detail


async def test_reset_aimed_at_the_upgrade_is_ws_reset_with_the_plain_answer(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.raw(reset_on_upgrade, good_tls)
    result = await run(ws_spec(port), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_RESET)
    assert "reacted to the upgrade" in result.detail
    assert result.http is not None and result.http.plain_get is not None
    assert result.http.plain_get.status == 302


async def test_reset_on_the_upgrade_request_is_ws_reset(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.raw(reset_after_head, good_tls)
    result = await run(ws_spec(port), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.WS_RESET)
    plain = await peers.raw(reset_after_head)
    assert (await run(ws_spec(plain, tls=False), context())).reason is Reason.WS_RESET


async def test_no_answer_to_the_upgrade_is_ws_timeout(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.raw(never_answer, good_tls)
    result = await run(ws_spec(port), context(timeout=0.4))
    assert (result.reason, result.confidence) == (Reason.WS_TIMEOUT, Confidence.LIKELY)
    assert "upgrade request" in result.detail


async def test_untrusted_certificate_is_tls_untrusted(
    peers: WebPeers, inspection_ca: trustme.CA, tmp_path: Path, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), server_ssl_context(inspection_ca.issue_cert(NAME), tmp_path))
    result = await run(ws_spec(port), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.TLS_UNTRUSTED)


async def test_wrong_name_is_tls_hostname_mismatch(
    peers: WebPeers, tls_ca: trustme.CA, tmp_path: Path, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), server_ssl_context(tls_ca.issue_cert("other.lab.test"), tmp_path))
    assert (await run(ws_spec(port), context())).reason is Reason.TLS_HOSTNAME_MISMATCH


async def test_bad_http_answer_is_http_bad_response(peers: WebPeers, context: Callable[..., ProbeContext]) -> None:
    port = await peers.raw(raw_reply(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    assert (await run(ws_spec(port, tls=False), context())).reason is Reason.HTTP_BAD_RESPONSE


async def test_dns_failure_is_classified_before_aiohttp(context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(443, host="missing.lab.test"), context())
    assert (result.reason, result.route) == (Reason.DNS_NXDOMAIN, "direct")
    assert result.dns is not None and result.dns.rcode == "NXDOMAIN"


async def test_closed_port_is_tcp_refused(context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(free_port()), context())
    assert result.reason is Reason.TCP_REFUSED


# --- through proxies ---------------------------------------------------------------------------


@requires_squid
async def test_wss_through_squid(squid: Squid, wss_port: int, context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(wss_port), context(env={"HTTPS_PROXY": squid.url}))
    assert (result.status, result.route) == (Status.PASS, "proxy")
    assert result.proxy is not None
    assert (result.proxy.connect_status, result.proxy.source) == (200, "HTTPS_PROXY")
    assert result.peer == result.proxy.url
    assert result.addresses == []


@requires_squid
async def test_squid_auth(squid: Squid, wss_port: int, context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(wss_port), context(env={"HTTPS_PROXY": squid.auth_url()}))
    assert (result.reason, result.route) == (Reason.PROXY_AUTH_REQUIRED, "proxy")
    assert result.proxy is not None and result.proxy.connect_status == 407
    assert "Basic" in result.detail
    env = {"https_proxy": squid.auth_url(squid.user, squid.password)}
    result = await run(ws_spec(wss_port), context(env=env))
    assert result.status is Status.PASS
    assert result.proxy is not None and squid.password not in result.proxy.url


@requires_squid
async def test_squid_deny_is_connect_rejected_with_via(squid: Squid, context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(squid.deny_port), context(env={"HTTPS_PROXY": squid.url}))
    assert result.reason is Reason.PROXY_CONNECT_REJECTED
    assert result.proxy is not None and result.proxy.connect_status == 403
    assert result.proxy.via is not None and "amlprobe-test-squid" in result.proxy.via
    assert result.http is None


async def test_dead_proxy_is_proxy_refused_and_no_proxy_bypasses_it(
    wss_port: int, context: Callable[..., ProbeContext]
) -> None:
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}"}
    result = await run(ws_spec(wss_port), context(env=env))
    assert (result.reason, result.route) == (Reason.PROXY_REFUSED, "proxy")
    result = await run(ws_spec(wss_port), context(env={**env, "no_proxy": f"{NAME}:{wss_port}"}))
    assert (result.status, result.route) == (Status.PASS, "direct")


async def test_unsupported_proxy_scheme_is_proxy_refused(wss_port: int, context: Callable[..., ProbeContext]) -> None:
    result = await run(ws_spec(wss_port), context(env={"HTTPS_PROXY": "socks5://127.0.0.1:1080"}))
    assert result.reason is Reason.PROXY_REFUSED
    assert "socks5" in result.detail


async def test_wss_through_the_lab_proxy(wss_port: int, context: Callable[..., ProbeContext]) -> None:
    async with ConnectProxy(hosts={NAME: "127.0.0.1"}, deny=lambda host, port: port == 1) as proxy:
        ctx = context()
        ctx.settings.proxy = proxy.url
        result = await run(ws_spec(wss_port), ctx)
        assert proxy.log == [f"{NAME}:{wss_port} -> 200"]
        denied = await run(ws_spec(1), ctx)
    assert (result.status, result.route) == (Status.PASS, "proxy")
    assert denied.reason is Reason.PROXY_CONNECT_REJECTED
    assert denied.proxy is not None and denied.proxy.server == "amlprobe-lab-proxy"


# The websocket prober now dials like the tls and http probers (issue 14: it said a bare tcp_reset
# "...failed: ." where tls:// said tls_reset): a silent proxy is proxy_timeout, as for tls://.
async def test_silent_proxy_is_proxy_timeout_as_for_tls(
    peers: WebPeers, wss_port: int, context: Callable[..., ProbeContext]
) -> None:
    silent = await peers.raw(never_answer)
    result = await run(ws_spec(wss_port), context(env={"HTTPS_PROXY": f"http://127.0.0.1:{silent}"}, timeout=0.4))
    assert (result.reason, result.route) == (Reason.PROXY_TIMEOUT, "proxy")
    assert "did not answer CONNECT" in result.detail


async def test_proxy_that_accepts_connect_then_closes_is_classified_as_tls_does(
    peers: WebPeers, wss_port: int, context: Callable[..., ProbeContext]
) -> None:
    closing = await peers.raw(raw_reply(b"HTTP/1.1 200 Connection established\r\n\r\n"))
    proxy = f"http://127.0.0.1:{closing}"
    ctx = context(env={"HTTPS_PROXY": proxy, "http_proxy": proxy})
    wss = await run(ws_spec(wss_port), ctx)
    tls = await run_prober(
        PROBERS[Protocol.TLS], CheckSpec(id="tls", target=Target(host=NAME, port=wss_port, protocol=Protocol.TLS)), ctx
    )
    assert wss.reason is tls.reason is Reason.TLS_RESET
    assert (wss.route, wss.proxy is not None and wss.proxy.connect_status) == ("proxy", 200)
    assert f"through proxy {proxy}" in wss.detail and not wss.detail.endswith(": .")
    # ws:// through the same proxy: the tunnel opens, then closes on the upgrade request.
    plain = await run(ws_spec(wss_port, tls=False), ctx)
    assert plain.reason is Reason.WS_RESET
    assert f"through proxy {proxy}" in plain.detail
