"""The http prober (probe.probers.http) against real peers: aiohttp services over HTTP and HTTPS, squid, broken servers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from lab.servers.proxy import VIA, ConnectProxy
from probe.errors import BadHttpResponse
from probe.model import CheckResult, CheckSpec, Confidence, Protocol, Status, Target
from probe.reasons import Reason
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from probe.transport.http1 import BODY_KEEP, BODY_LIMIT, find_head_end, parse_head, request_target
from tests.helpers.ports import free_port
from tests.helpers.probes import probe_context, server_ssl_context
from tests.helpers.squid import Squid, requires_squid, run_squid
from tests.helpers.web import GATEWAY_HEADERS, WebPeers, never_answer, raw_reply, reset_after_head, service_app

NAME = "app.lab.test"
HOSTS = {NAME: ["127.0.0.1"]}


def http_spec(port: int, *, tls: bool = True, path: str | None = None, host: str = NAME) -> CheckSpec:
    target = Target(host=host, port=port, protocol=Protocol.HTTP, path=path)
    return CheckSpec(id=f"http-{host}-{port}", target=target, tls=tls)


async def run(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    from probe.probers.http import probe_http

    return await run_prober(probe_http, spec, ctx)


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


# --- the response-head reader -------------------------------------------------------------------


def test_parse_head_reads_status_headers_and_folds() -> None:
    head = parse_head(
        b"HTTP/1.1 403 Forbidden\r\nServer: contoso-gw\r\nVia: 1.1 a\r\nvia: 1.1 b\r\nX-Long: first\r\n  second\r\n\r\n"
    )
    assert (head.version, head.status, head.reason) == ("1.1", 403, "Forbidden")
    assert head.get("SERVER") == "contoso-gw"
    assert head.get("via") == "1.1 a, 1.1 b"
    assert head.get("x-long") == "first second"
    facts = head.facts()
    assert (facts.status, facts.server, facts.via) == (403, "contoso-gw", "1.1 a, 1.1 b")


def test_parse_head_accepts_bare_lf_and_missing_reason() -> None:
    head = parse_head(b"HTTP/1.0 200\nServer: x\n\n")
    assert (head.status, head.reason, head.get("server")) == (200, "", "x")


@pytest.mark.parametrize(
    "data",
    [b"SSH-2.0-OpenSSH_9.2\r\n\r\n", b"HTTP/1.1 2000 Huh\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"],
)
def test_parse_head_rejects_what_is_not_http(data: bytes) -> None:
    with pytest.raises(BadHttpResponse):
        parse_head(data)


def test_find_head_end_and_request_target() -> None:
    assert find_head_end(b"HTTP/1.1 200 OK\r\n\r\nbody") == 19
    assert find_head_end(b"HTTP/1.1 200 OK\r\n") is None
    assert request_target(None) == "/"
    assert request_target("api/x?y=1") == "/api/x?y=1"
    assert request_target("/a b\r\nX: y") == "/a%20b%0D%0AX:%20y"


# --- direct ------------------------------------------------------------------------------------


async def test_https_answer_passes_with_facts(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), good_tls)
    result = await run(http_spec(port), context())
    assert (result.status, result.reason) == (Status.PASS, Reason.OK)
    assert result.http is not None and result.http.status == 200
    assert result.http.server == "test-origin"
    assert result.route == "direct"
    assert result.peer == f"127.0.0.1:{port}"
    assert result.addresses == ["127.0.0.1"]
    assert result.tls is not None and result.tls.verified and result.tls.version
    assert {"resolve", "connect", "tls_handshake", "http"} <= set(result.phases_ms)
    assert result.latency_ms is not None and result.latency_ms > 0


async def test_plain_http_and_ip_literal(peers: WebPeers, context: Callable[..., ProbeContext]) -> None:
    port = await peers.app(service_app())
    result = await run(http_spec(port, tls=False, host="127.0.0.1"), context())
    assert result.status is Status.PASS
    assert result.http is not None and result.http.status == 200
    assert result.tls is None
    assert result.dns is not None and result.dns.source == "literal"


async def test_a_gateway_403_still_passes_and_names_the_gateway(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), good_tls)
    result = await run(http_spec(port, path="/reject"), context())
    assert result.status is Status.PASS
    assert result.http is not None
    assert (result.http.status, result.http.reason_phrase) == (403, "Forbidden")
    assert (result.http.server, result.http.via) == (GATEWAY_HEADERS["Server"], GATEWAY_HEADERS["Via"])
    assert "contoso-gw" in result.detail


async def test_interim_1xx_answers_are_skipped(peers: WebPeers, context: Callable[..., ProbeContext]) -> None:
    reply = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\nServer: late\r\n\r\n"
    port = await peers.raw(raw_reply(reply))
    result = await run(http_spec(port, tls=False), context())
    assert result.http is not None and (result.http.status, result.http.server) == (204, "late")


async def test_untrusted_certificate_is_tls_untrusted(
    peers: WebPeers, inspection_ca: trustme.CA, tmp_path: Path, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), server_ssl_context(inspection_ca.issue_cert(NAME), tmp_path))
    result = await run(http_spec(port), context())
    assert (result.status, result.reason) == (Status.FAIL, Reason.TLS_UNTRUSTED)
    assert result.tls is not None and result.tls.verify_error


async def test_wrong_name_is_tls_hostname_mismatch(
    peers: WebPeers, tls_ca: trustme.CA, tmp_path: Path, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), server_ssl_context(tls_ca.issue_cert("other.lab.test"), tmp_path))
    result = await run(http_spec(port), context())
    assert result.reason is Reason.TLS_HOSTNAME_MISMATCH


async def test_silent_server_is_http_timeout_or_tls_timeout(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    plain = await peers.raw(never_answer)
    result = await run(http_spec(plain, tls=False), context(timeout=0.4))
    assert (result.reason, result.confidence) == (Reason.HTTP_TIMEOUT, Confidence.LIKELY)
    # TLS completes, then nothing answers the request.
    tls = await peers.raw(never_answer, good_tls)
    assert (await run(http_spec(tls), context(timeout=0.4))).reason is Reason.HTTP_TIMEOUT
    # Nothing answers the ClientHello.
    assert (await run(http_spec(plain), context(timeout=0.4))).reason is Reason.TLS_TIMEOUT


async def test_garbage_and_silent_close_are_http_bad_response(
    peers: WebPeers, context: Callable[..., ProbeContext]
) -> None:
    garbage = await peers.raw(raw_reply(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    result = await run(http_spec(garbage, tls=False), context())
    assert result.reason is Reason.HTTP_BAD_RESPONSE
    assert "not valid HTTP" in result.detail
    closed = await peers.raw(raw_reply(b""))
    result = await run(http_spec(closed, tls=False), context())
    assert result.reason is Reason.HTTP_BAD_RESPONSE
    assert "without answering" in result.detail


async def test_reset_after_the_request_is_tcp_reset(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.raw(reset_after_head)
    assert (await run(http_spec(port, tls=False), context())).reason is Reason.TCP_RESET
    port = await peers.raw(reset_after_head, good_tls)
    assert (await run(http_spec(port), context())).reason is Reason.TCP_RESET


async def test_dns_and_tcp_failures_come_from_dial(context: Callable[..., ProbeContext]) -> None:
    result = await run(http_spec(443, host="missing.lab.test"), context())
    assert result.reason is Reason.DNS_NXDOMAIN
    result = await run(http_spec(free_port()), context())
    assert result.reason is Reason.TCP_REFUSED
    assert result.route == "direct"


# --- through proxies ---------------------------------------------------------------------------


@requires_squid
async def test_https_through_squid(
    squid: Squid, peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), good_tls)
    result = await run(http_spec(port), context(env={"HTTPS_PROXY": squid.url}))
    assert (result.status, result.route) == (Status.PASS, "proxy")
    assert result.proxy is not None and (result.proxy.connect_status, result.proxy.source) == (200, "HTTPS_PROXY")
    assert result.http is not None and result.http.server == "test-origin"
    assert "through proxy" in result.detail
    assert result.addresses == []  # the proxy resolved the name, not us


@requires_squid
async def test_plain_http_through_squid_uses_http_proxy(
    squid: Squid, peers: WebPeers, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app())
    result = await run(http_spec(port, tls=False), context(env={"http_proxy": squid.url}))
    assert (result.status, result.route) == (Status.PASS, "proxy")
    assert result.proxy is not None and result.proxy.source == "http_proxy"


@requires_squid
async def test_squid_auth_and_deny(squid: Squid, context: Callable[..., ProbeContext]) -> None:
    result = await run(http_spec(443), context(env={"HTTPS_PROXY": squid.auth_url()}))
    assert (result.reason, result.route) == (Reason.PROXY_AUTH_REQUIRED, "proxy")
    assert result.proxy is not None and result.proxy.connect_status == 407
    result = await run(http_spec(squid.deny_port, tls=False), context(env={"http_proxy": squid.url}))
    assert result.reason is Reason.PROXY_CONNECT_REJECTED
    assert result.proxy is not None and result.proxy.connect_status == 403
    assert "CONNECT only to port 443" in result.detail


async def test_dead_proxy_is_proxy_refused_and_no_proxy_bypasses_it(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), good_tls)
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}"}
    result = await run(http_spec(port), context(env=env))
    assert (result.reason, result.route) == (Reason.PROXY_REFUSED, "proxy")
    result = await run(http_spec(port), context(env={**env, "NO_PROXY": "lab.test"}))
    assert (result.status, result.route) == (Status.PASS, "direct")


async def test_https_through_the_lab_proxy(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(service_app(), good_tls)
    async with ConnectProxy(hosts={NAME: "127.0.0.1"}) as proxy:
        ctx = context()
        ctx.settings.proxy = proxy.url
        result = await run(http_spec(port), ctx)
    assert (result.status, result.route) == (Status.PASS, "proxy")
    assert result.proxy is not None and (result.proxy.via, result.proxy.source) == (VIA, "--proxy")


# --- request headers, kept headers and the body ------------------------------------------------


def _echo_app() -> web.Application:
    """Answers with what it was sent, as a JSON error document with a vendor header: a service's answer shape."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = '{"error":{"code":"Echo","version":"' + request.headers.get("x-api-version", "") + '"}}'
        return web.Response(status=401, text=body, content_type="application/json", headers={"x-error-code": "Echo"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=403, headers={"Content-Type": "text/plain; charset=iso-8859-1"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in ("Zugriff ", "verweigert: ", "Stra\xdfe"):
            await response.write(part.encode("iso-8859-1"))
        await response.write_eof()
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        return web.Response(text="x" * (BODY_LIMIT * 2))

    app = web.Application()
    app.router.add_get("/", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/big", big)
    return app


async def test_request_headers_are_sent_and_asked_headers_kept(
    peers: WebPeers, good_tls: ssl.SSLContext, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(_echo_app(), good_tls)
    spec = http_spec(port).model_copy(
        update={"request_headers": {"x-api-version": "2023-01-03"}, "keep_headers": ["X-Error-Code"]}
    )
    result = await run(spec, context())
    assert result.status is Status.PASS and result.http is not None
    assert result.http.status == 401
    assert result.http.headers["x-error-code"] == "Echo"
    assert result.http.body == '{"error":{"code":"Echo","version":"2023-01-03"}}'
    assert result.http.body_truncated is False
    # Without being asked, a vendor header is not recorded.
    plain = await run(http_spec(port), context())
    assert plain.http is not None and "x-error-code" not in plain.http.headers


async def test_chunked_body_in_its_charset_and_a_bounded_big_body(
    peers: WebPeers, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.app(_echo_app())
    result = await run(http_spec(port, tls=False, path="/chunked"), context())
    assert result.http is not None and result.http.body == "Zugriff verweigert: Stra\xdfe"
    result = await run(http_spec(port, tls=False, path="/big"), context())
    assert result.http is not None and result.http.body is not None
    assert len(result.http.body) == BODY_KEEP and result.http.body_truncated is True


async def test_body_until_close_and_a_peer_that_stalls_mid_body(
    peers: WebPeers, context: Callable[..., ProbeContext]
) -> None:
    port = await peers.raw(raw_reply(b"HTTP/1.0 403 Forbidden\r\nServer: old\r\n\r\n<html>blocked</html>"))
    result = await run(http_spec(port, tls=False), context())
    assert result.http is not None and result.http.body == "<html>blocked</html>"

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        await reader.read()

    port = await peers.raw(stall)
    result = await run(http_spec(port, tls=False), context(timeout=0.5))
    # The head came: the answer stands, with the part of the body that arrived.
    assert (result.status, result.reason) == (Status.PASS, Reason.OK)
    assert result.http is not None and result.http.body == "partial" and result.http.body_truncated


def test_a_header_that_would_smuggle_a_line_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid request header"):
        CheckSpec.model_validate({**http_spec(443).model_dump(), "request_headers": {"x": "a\r\nHost: evil"}})
    with pytest.raises(ValueError, match="invalid request header"):
        CheckSpec.model_validate({**http_spec(443).model_dump(), "request_headers": {"bad name": "v"}})
