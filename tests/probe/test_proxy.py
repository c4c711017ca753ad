"""Proxy choice (probe.transport.proxyenv: env, --proxy, NO_PROXY) and CONNECT tunnels (probe.transport.tunnel)
through real proxies.

The peers are a real squid (two ports: open and Basic auth; CONNECT to one port denied), the
lab's ConnectProxy, and raw loopback servers that play broken proxies (silent, reset, not HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import psutil
import pytest
import trustme

from lab.servers.proxy import VIA, ConnectProxy
from probe.deadline import Deadline, now
from probe.errors import DialFailed, ProxyFailed
from probe.model import ProxyFacts
from probe.reasons import Reason
from probe.recorder import Connection, Phase
from probe.settings import ProbeSettings
from probe.transport.context import ProbeContext
from probe.transport.dial import dial
from probe.transport.proxyenv import ProxyChoice, choose_proxy, no_proxy_matches, parse_proxy_url
from probe.transport.tunnel import open_tunnel
from tests.helpers.ports import free_port
from tests.helpers.probes import probe_context
from tests.helpers.squid import Squid, requires_squid, run_squid
from tests.helpers.web import WebPeers, raw_reply

NAME = "app.lab.test"
HOSTS = {NAME: ["127.0.0.1"], "proxy.lab.test": ["127.0.0.1"]}


# --- NO_PROXY ----------------------------------------------------------------------------------

NO_PROXY_TABLE = [
    # (NO_PROXY, host, port, bypass)
    ("example.test", "example.test", 443, True),
    ("example.test", "a.example.test", 443, True),
    ("example.test", "a.b.example.test", 443, True),
    ("example.test", "notexample.test", 443, False),  # curl's rule; requests' endswith would match
    ("example.test", "example.test.evil", 443, False),
    ("example.test", "test", 443, False),
    (".example.test", "example.test", 443, True),  # curl ignores the leading dot
    (".example.test", "a.example.test", 443, True),
    ("*.example.test", "a.example.test", 443, True),
    ("*.example.test", "example.test", 443, True),
    ("EXAMPLE.test", "a.Example.TEST", 443, True),
    ("example.test.", "a.example.test", 443, True),
    ("example.test", "a.example.test.", 443, True),
    ("example.test", "other.test", 443, False),
    ("*", "anything.test", 443, True),
    ("*", "10.1.2.3", 443, True),
    ("a.test, *", "anything.test", 443, True),
    ("", "example.test", 443, False),
    ("a.test,,b.test", "b.test", 443, True),
    ("a.test b.test", "b.test", 443, True),
    ("  a.test ,\tb.test  ", "b.test", 443, True),
    ("a.test", "b.test", 443, False),
    ("example.test:8443", "example.test", 8443, True),
    ("example.test:8443", "example.test", 443, False),
    (".example.test:8443", "a.example.test", 8443, True),
    ("10.0.0.5", "10.0.0.5", 443, True),
    ("10.0.0.5", "10.0.0.6", 443, False),
    ("10.0.0.0/8", "10.1.2.3", 443, True),
    ("10.0.0.0/8", "11.1.2.3", 443, False),
    ("10.0.0.5:443", "10.0.0.5", 443, True),
    ("10.0.0.5:443", "10.0.0.5", 80, False),
    ("10.0.0.0/8", "ten.example.test", 443, False),  # names are never resolved to decide
    ("127.0.0.1", "localhost", 443, False),
    ("localhost", "127.0.0.1", 443, False),
    ("localhost,127.0.0.1", "localhost", 443, True),
    ("10.", "10.1.2.3", 443, False),  # no prefix matching of IPs without CIDR
    ("::1", "::1", 443, True),
    ("::1", "[::1]", 443, True),
    ("[::1]", "::1", 443, True),
    ("fd00::/8", "fd12::1", 443, True),
    ("[fd00::]/8", "fd12::1", 443, True),
    ("fd00::/8", "fe80::1", 443, False),
    ("[::1]:443", "::1", 443, True),
    ("[::1]:443", "::1", 80, False),
    ("not/valid, 10.0.0.0/33", "10.0.0.1", 443, False),
]


@pytest.mark.parametrize(("no_proxy", "host", "port", "bypass"), NO_PROXY_TABLE)
def test_no_proxy_table(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert no_proxy_matches(no_proxy, host, port) is bypass


# --- choosing a proxy --------------------------------------------------------------------------


def settings(env: dict[str, str], proxy: str | None = None, trust_env: bool = True) -> ProbeSettings:
    return ProbeSettings(env=env, proxy=proxy, trust_env=trust_env)


def chosen(env: dict[str, str], *, tls: bool, host: str = NAME, port: int = 443, **kw: object) -> str | None:
    choice = choose_proxy(settings(env, **kw), host, port, tls=tls)  # type: ignore[arg-type]
    return None if choice is None else f"{choice.source}={choice.host}"


@pytest.mark.parametrize(
    ("env", "tls", "expected"),
    [
        ({"https_proxy": "a", "HTTPS_PROXY": "b"}, True, "https_proxy=a"),
        ({"HTTPS_PROXY": "b"}, True, "HTTPS_PROXY=b"),
        ({"https_proxy": "", "HTTPS_PROXY": "b"}, True, "HTTPS_PROXY=b"),  # empty counts as unset
        ({"http_proxy": "a"}, True, None),  # http_proxy is for plain HTTP only
        ({"http_proxy": "a", "all_proxy": "c"}, True, "all_proxy=c"),
        ({"http_proxy": "a"}, False, "http_proxy=a"),
        ({"HTTP_PROXY": "b"}, False, None),  # never the uppercase one (CGI "httpoxy")
        ({"HTTP_PROXY": "b", "ALL_PROXY": "d"}, False, "ALL_PROXY=d"),
        ({"https_proxy": "a"}, False, None),
        ({"all_proxy": "c", "ALL_PROXY": "d"}, True, "all_proxy=c"),
        ({"ALL_PROXY": "d"}, True, "ALL_PROXY=d"),
        ({}, True, None),
    ],
)
def test_environment_precedence(env: dict[str, str], tls: bool, expected: str | None) -> None:
    assert chosen(env, tls=tls) == expected


def test_explicit_proxy_wins_over_environment() -> None:
    assert chosen({"HTTPS_PROXY": "envproxy"}, tls=True, proxy="http://cli:3128") == "--proxy=cli"
    assert chosen({"http_proxy": "envproxy"}, tls=False, proxy="cli:3128") == "--proxy=cli"


def test_explicit_proxy_is_still_subject_to_no_proxy() -> None:
    assert chosen({"NO_PROXY": "lab.test"}, tls=True, proxy="http://cli:3128") is None
    assert chosen({"NO_PROXY": "other.test"}, tls=True, proxy="http://cli:3128") == "--proxy=cli"


def test_lowercase_no_proxy_wins() -> None:
    env = {"HTTPS_PROXY": "p", "no_proxy": "other.test", "NO_PROXY": NAME}
    assert chosen(env, tls=True) == "HTTPS_PROXY=p"


def test_untrusted_environment_is_ignored_entirely() -> None:
    env = {"HTTPS_PROXY": "p", "NO_PROXY": "*"}
    assert chosen(env, tls=True, trust_env=False) is None
    # --proxy still applies, and the environment's NO_PROXY does not.
    assert chosen(env, tls=True, proxy="cli", trust_env=False) == "--proxy=cli"


@pytest.mark.parametrize(
    ("url", "host", "port", "redacted"),
    [
        ("proxy.corp.test:3128", "proxy.corp.test", 3128, "http://proxy.corp.test:3128"),
        ("http://proxy.corp.test", "proxy.corp.test", 80, "http://proxy.corp.test:80"),
        ("HTTP://Proxy.Corp.Test:8080/", "proxy.corp.test", 8080, "http://proxy.corp.test:8080"),
        ("http://[::1]:3128", "::1", 3128, "http://[::1]:3128"),
        ("http://bob:s3cret@proxy.test:8080", "proxy.test", 8080, "http://bob:****@proxy.test:8080"),
        # A lone user name is often a token: hidden like a password (probe.redact.redact_url).
        ("http://bob@proxy.test:8080", "proxy.test", 8080, "http://****@proxy.test:8080"),
    ],
)
def test_proxy_url_parsing(url: str, host: str, port: int, redacted: str) -> None:
    choice = parse_proxy_url(url, "HTTPS_PROXY")
    assert (choice.host, choice.port, choice.redacted_url, choice.problem) == (host, port, redacted, None)


def test_credentials_are_percent_decoded_and_never_shown() -> None:
    choice = parse_proxy_url("http://corp%5Cbob:p%40ss%3Aword@proxy.test:8080", "--proxy")
    assert (choice.username, choice.password) == ("corp\\bob", "p@ss:word")
    assert "p@ss" not in choice.redacted_url
    assert "word" not in choice.redacted_url
    assert choice.redacted_url == "http://corp%5Cbob:****@proxy.test:8080"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("socks5://proxy.test:1080", "unsupported proxy scheme socks5"),
        ("https://proxy.test:443", "unsupported proxy scheme https"),
        ("http://proxy.test:notaport", "invalid proxy URL"),
        ("http://:3128", "no host name"),
    ],
)
def test_unusable_proxy_urls_carry_a_problem(url: str, problem: str) -> None:
    choice = parse_proxy_url(url, "HTTPS_PROXY")
    assert choice.problem is not None
    assert problem.lower() in choice.problem.lower()


async def test_unsupported_scheme_fails_the_tunnel_instead_of_going_direct() -> None:
    ctx = probe_context(hosts=HOSTS, env={"HTTPS_PROXY": "socks5://proxy.lab.test:1080"})
    conn = Connection()
    with pytest.raises(DialFailed) as info:
        await dial(ctx, deadline(ctx), conn, NAME, 443, tls=True)
    assert info.value.reason is Reason.PROXY_REFUSED
    assert "unsupported proxy scheme socks5" in info.value.detail.lower()
    assert conn.route == "proxy"


# --- tunnels through real proxies -------------------------------------------------------------


@pytest.fixture(scope="module")
def squid() -> Iterator[Squid]:
    with run_squid({NAME: "127.0.0.1"}) as s:
        yield s


@pytest.fixture
async def peers() -> AsyncIterator[WebPeers]:
    p = WebPeers()
    yield p
    await p.close()


@pytest.fixture
def tls_port(start_tls_server: Callable[..., Awaitable[int]], tls_ca: trustme.CA) -> Callable[[], Awaitable[int]]:
    async def start() -> int:
        return await start_tls_server(tls_ca.issue_cert(NAME, "127.0.0.1"))

    return start


def deadline(ctx: ProbeContext) -> Deadline:
    return Deadline.after(ctx.settings.timeout)


def context(tls_ca_file: str, env: dict[str, str] | None = None, timeout: float = 1.0) -> ProbeContext:
    return probe_context(timeout=timeout, hosts=HOSTS, ca_bundle=tls_ca_file, env=env or {})


async def tunnel(ctx: ProbeContext, proxy_url: str, host: str, port: int) -> tuple[ProxyFacts, ProxyChoice]:
    choice = parse_proxy_url(proxy_url, "--proxy")
    sock, facts = await open_tunnel(ctx.resolver, choice, host, port, deadline(ctx))
    try:
        _reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx.tls.get(), server_hostname=NAME)
        assert writer.get_extra_info("ssl_object").version().startswith("TLS")
        writer.close()
        # Closing TLS sends close_notify and waits for the peer: a writer left closing when the test's
        # loop ends is collected later, and a later test's leak check would count its socket.
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    except BaseException:
        sock.close()
        raise
    return facts, choice


async def expect_failure(ctx: ProbeContext, proxy_url: str, host: str, port: int) -> ProxyFailed:
    choice = parse_proxy_url(proxy_url, "HTTPS_PROXY")
    with pytest.raises(ProxyFailed) as info:
        await open_tunnel(ctx.resolver, choice, host, port, deadline(ctx))
    return info.value


@requires_squid
async def test_squid_tunnel_carries_tls(squid: Squid, tls_port: Callable[[], Awaitable[int]], tls_ca_file: str) -> None:
    port = await tls_port()
    facts, _ = await tunnel(context(tls_ca_file), squid.url, NAME, port)
    assert facts.connect_status == 200
    assert facts.source == "--proxy"
    # Squid logs a tunnel once it is closed.
    for _ in range(40):
        if any(f"CONNECT {NAME}:{port}" in line and "TCP_TUNNEL/200" in line for line in squid.access_log()):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"squid logged no tunnel to {NAME}:{port}: {squid.access_log()}")


@requires_squid
async def test_squid_without_credentials_is_407(
    squid: Squid, tls_port: Callable[[], Awaitable[int]], tls_ca_file: str
) -> None:
    port = await tls_port()
    failed = await expect_failure(context(tls_ca_file), squid.auth_url(), NAME, port)
    assert failed.reason is Reason.PROXY_AUTH_REQUIRED
    assert failed.facts.connect_status == 407
    assert "no credentials are configured" in failed.detail
    assert "Basic" in failed.detail


@requires_squid
async def test_squid_with_wrong_credentials_is_407_naming_the_user(
    squid: Squid, tls_port: Callable[[], Awaitable[int]], tls_ca_file: str
) -> None:
    port = await tls_port()
    failed = await expect_failure(context(tls_ca_file), squid.auth_url("probe", "wrong"), NAME, port)
    assert failed.reason is Reason.PROXY_AUTH_REQUIRED
    assert "user 'probe'" in failed.detail
    assert "wrong" not in failed.detail
    assert "wrong" not in failed.facts.url


@requires_squid
async def test_squid_with_credentials_tunnels(
    squid: Squid, tls_port: Callable[[], Awaitable[int]], tls_ca_file: str
) -> None:
    port = await tls_port()
    facts, _ = await tunnel(context(tls_ca_file), squid.auth_url(squid.user, squid.password), NAME, port)
    assert facts.connect_status == 200
    assert facts.url == f"http://{squid.user}:****@127.0.0.1:{squid.auth_port}"


@requires_squid
async def test_squid_denied_port_is_connect_rejected_with_server_and_via(squid: Squid, tls_ca_file: str) -> None:
    failed = await expect_failure(context(tls_ca_file), squid.url, "127.0.0.1", squid.deny_port)
    assert failed.reason is Reason.PROXY_CONNECT_REJECTED
    assert failed.facts.connect_status == 403
    assert failed.facts.server is not None and failed.facts.server.startswith("squid")
    assert failed.facts.via is not None and "amlprobe-test-squid" in failed.facts.via
    assert "403 Forbidden" in failed.detail


@requires_squid
async def test_squid_cannot_reach_upstream_is_connect_rejected_503(squid: Squid, tls_ca_file: str) -> None:
    failed = await expect_failure(context(tls_ca_file), squid.url, "127.0.0.1", free_port())
    assert failed.reason is Reason.PROXY_CONNECT_REJECTED
    assert failed.facts.connect_status == 503


@requires_squid
async def test_dial_uses_the_environment_proxy_and_no_proxy_bypasses_it(
    squid: Squid, tls_port: Callable[[], Awaitable[int]], tls_ca_file: str
) -> None:
    port = await tls_port()
    ctx = context(tls_ca_file, env={"HTTPS_PROXY": squid.url})
    info = Connection()
    sock = await dial(ctx, deadline(ctx), info, NAME, port, tls=True)
    sock.close()
    assert info.route == "proxy"
    assert info.proxy is not None and info.proxy.source == "HTTPS_PROXY"
    assert Phase.PROXY_CONNECT in info.phases

    ctx = context(tls_ca_file, env={"HTTPS_PROXY": squid.url, "NO_PROXY": ".lab.test"})
    info = Connection()
    sock = await dial(ctx, deadline(ctx), info, NAME, port, tls=True)
    sock.close()
    assert info.route == "direct"
    assert info.proxy is None
    assert info.peer == f"127.0.0.1:{port}"


async def test_nothing_listening_on_the_proxy_port_is_proxy_refused(tls_ca_file: str) -> None:
    dead = free_port()
    failed = await expect_failure(context(tls_ca_file), f"http://127.0.0.1:{dead}", NAME, 443)
    assert failed.reason is Reason.PROXY_REFUSED
    assert f"Proxy 127.0.0.1:{dead} refused the connection" in failed.detail
    assert failed.attempts and "refused" in failed.attempts[0]
    assert failed.facts.connect_status is None


async def test_proxy_name_that_does_not_resolve_is_proxy_refused(tls_ca_file: str) -> None:
    failed = await expect_failure(context(tls_ca_file), "http://missing.lab.test:3128", NAME, 443)
    assert failed.reason is Reason.PROXY_REFUSED
    assert "missing.lab.test did not resolve (dns_nxdomain)" in failed.detail


async def test_silent_proxy_is_proxy_timeout(
    start_silent_server: Callable[..., Awaitable[int]], tls_ca_file: str
) -> None:
    port = await start_silent_server()
    ctx = context(tls_ca_file, timeout=0.4)
    t0 = now()
    failed = await expect_failure(ctx, f"http://127.0.0.1:{port}", NAME, 443)
    assert failed.reason is Reason.PROXY_TIMEOUT
    assert now() - t0 < 3.0


async def test_proxy_resetting_during_connect_is_proxy_reset(
    start_reset_server: Callable[..., Awaitable[int]], tls_ca_file: str
) -> None:
    port = await start_reset_server()
    failed = await expect_failure(context(tls_ca_file), f"http://127.0.0.1:{port}", NAME, 443)
    assert failed.reason is Reason.PROXY_RESET


async def test_proxy_closing_without_answer_is_proxy_reset(peers: WebPeers, tls_ca_file: str) -> None:
    port = await peers.raw(raw_reply(b""))
    failed = await expect_failure(context(tls_ca_file), f"http://127.0.0.1:{port}", NAME, 443)
    assert failed.reason is Reason.PROXY_RESET
    assert "closed the connection during CONNECT" in failed.detail


async def test_proxy_answering_something_else_than_http_is_connect_rejected(peers: WebPeers, tls_ca_file: str) -> None:
    port = await peers.raw(raw_reply(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    failed = await expect_failure(context(tls_ca_file), f"http://127.0.0.1:{port}", NAME, 443)
    assert failed.reason is Reason.PROXY_CONNECT_REJECTED
    assert "not HTTP" in failed.detail


# --- the lab's ConnectProxy -------------------------------------------------------------------


async def test_lab_proxy_tunnels_and_says_via(tls_port: Callable[[], Awaitable[int]], tls_ca_file: str) -> None:
    port = await tls_port()
    async with ConnectProxy(hosts={NAME: "127.0.0.1"}) as proxy:
        facts, _ = await tunnel(context(tls_ca_file), proxy.url, NAME, port)
        assert proxy.log == [f"{NAME}:{port} -> 200"]
    assert facts.via == VIA


async def test_lab_proxy_basic_auth(tls_port: Callable[[], Awaitable[int]], tls_ca_file: str) -> None:
    port = await tls_port()
    async with ConnectProxy(hosts={NAME: "127.0.0.1"}, auth=("alice", "pw")) as proxy:
        host, pport = proxy.address
        failed = await expect_failure(context(tls_ca_file), proxy.url, NAME, port)
        assert failed.reason is Reason.PROXY_AUTH_REQUIRED
        assert failed.facts.via == VIA
        failed = await expect_failure(context(tls_ca_file), f"http://alice:nope@{host}:{pport}", NAME, port)
        assert failed.reason is Reason.PROXY_AUTH_REQUIRED
        facts, _ = await tunnel(context(tls_ca_file), f"http://alice:pw@{host}:{pport}", NAME, port)
        assert facts.connect_status == 200


async def test_lab_proxy_deny_is_403(tls_port: Callable[[], Awaitable[int]], tls_ca_file: str) -> None:
    port = await tls_port()
    async with ConnectProxy(hosts={NAME: "127.0.0.1"}, deny=lambda host, p: p == port) as proxy:
        failed = await expect_failure(context(tls_ca_file), proxy.url, NAME, port)
    assert failed.reason is Reason.PROXY_CONNECT_REJECTED
    assert failed.facts.connect_status == 403
    assert failed.facts.via == VIA


async def test_lab_proxy_resolves_only_through_its_inputs(
    tls_port: Callable[[], Awaitable[int]], tls_ca_file: str
) -> None:
    port = await tls_port()
    asked: list[str] = []

    async def resolve(name: str) -> list[str]:
        asked.append(name)
        return ["127.0.0.1"] if name == "via-callback.lab.test" else []

    async with ConnectProxy(resolve=resolve) as proxy:
        failed = await expect_failure(context(tls_ca_file), proxy.url, NAME, port)
        assert failed.reason is Reason.PROXY_CONNECT_REJECTED
        assert failed.facts.connect_status == 502
        await tunnel(context(tls_ca_file), proxy.url, "via-callback.lab.test", port)
    assert asked == [NAME, "via-callback.lab.test"]
    async with ConnectProxy() as proxy:
        # No map and no callback: names are refused, never looked up on the machine.
        failed = await expect_failure(context(tls_ca_file), proxy.url, NAME, port)
        assert failed.facts.connect_status == 502
        await tunnel(context(tls_ca_file), proxy.url, "127.0.0.1", port)


async def test_tunnel_keeps_bytes_the_server_sends_first(peers: WebPeers, tls_ca_file: str) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"BANNER 220 ready\r\n")
        await writer.drain()
        await reader.read()

    port = await peers.raw(banner)
    ctx = context(tls_ca_file)
    async with ConnectProxy() as proxy:
        for _ in range(5):
            choice = parse_proxy_url(proxy.url, "--proxy")
            sock, _facts = await open_tunnel(ctx.resolver, choice, "127.0.0.1", port, deadline(ctx))
            try:
                loop = asyncio.get_running_loop()
                got = b""
                while not got.endswith(b"\r\n"):
                    got += await asyncio.wait_for(loop.sock_recv(sock, 100), 1.0)
            finally:
                sock.close()
            assert got == b"BANNER 220 ready\r\n"


@contextlib.contextmanager
def no_unclosed_sockets() -> Iterator[None]:
    """Fail if a socket is closed only by the garbage collector (CPython warns when it does)."""
    gc.collect()  # what earlier tests left for the collector is not this block's leak
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    unclosed = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert not unclosed


async def test_failed_tunnels_leak_no_socket(
    peers: WebPeers, start_silent_server: Callable[..., Awaitable[int]], tls_ca_file: str
) -> None:
    silent = await start_silent_server()
    garbage = await peers.raw(raw_reply(b"garbage\r\n\r\n"))
    ctx = context(tls_ca_file, timeout=0.2)
    me = psutil.Process()
    async with ConnectProxy(auth=("a", "b"), deny=lambda host, port: True) as proxy:
        host, pport = proxy.address
        urls = [
            proxy.url,
            f"http://a:b@{host}:{pport}",
            f"http://127.0.0.1:{silent}",
            f"http://127.0.0.1:{garbage}",
            f"http://127.0.0.1:{free_port()}",
        ]
        await expect_failure(ctx, urls[0], "127.0.0.1", 1)  # warm up lazily created loop resources
        before = me.num_fds()
        with no_unclosed_sockets():
            for url in urls * 2:
                await expect_failure(ctx, url, "127.0.0.1", 1)
        await asyncio.sleep(0.05)
        assert me.num_fds() <= before


async def test_cancelled_tunnel_closes_its_socket(
    start_silent_server: Callable[..., Awaitable[int]], tls_ca_file: str
) -> None:
    port = await start_silent_server()
    ctx = context(tls_ca_file, timeout=5.0)
    choice = parse_proxy_url(f"http://127.0.0.1:{port}", "--proxy")
    with no_unclosed_sockets():
        task = asyncio.ensure_future(open_tunnel(ctx.resolver, choice, NAME, 443, deadline(ctx)))
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.wait([task])
        assert task.cancelled()
        del task  # its traceback would keep a leaked socket alive past the check


async def test_lab_proxy_connects_upstream_from_its_source_address(peers: WebPeers, tls_ca_file: str) -> None:
    seen: list[str] = []

    async def record_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        await reader.read()

    port = await peers.raw(record_peer, host="127.0.0.1")
    ctx = context(tls_ca_file)
    async with ConnectProxy(source="127.0.0.2") as proxy:
        choice = parse_proxy_url(proxy.url, "--proxy")
        sock, _facts = await open_tunnel(ctx.resolver, choice, "127.0.0.1", port, deadline(ctx))
        sock.close()
        for _ in range(20):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen == ["127.0.0.2"]
