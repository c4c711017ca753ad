"""The websocket prober: a real RFC 6455 upgrade with aiohttp's client.

Proxies and TLS-inspecting firewalls often pass plain HTTPS yet break the upgrade: they answer
200 or 403 themselves, or reset the connection once they see ``Upgrade: websocket``. So the
answer's status, Server and Via are kept: they name the box that refused.

Names are resolved once per run by the shared resolver, before aiohttp runs, so DNS faults are
classified as dns_* like everywhere else; aiohttp only ever sees those addresses. Proxying is
decided here too (aiohttp never reads the environment): wss:// goes through CONNECT; aiohttp
sends ws:// to the proxy as a forward request, which many proxies do not upgrade.

aiohttp sets up the connection (TCP, proxy tunnel, TLS) in one step, so the "connect" phase
covers all of it; "upgrade" is the wait for the answer to the upgrade request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import MultiMapping
from yarl import URL

from probe import __version__
from probe.context import ProbeContext, make_result
from probe.http import KEPT_HEADERS, request_target
from probe.model import CheckResult, CheckSpec, Confidence, DnsFacts, HttpFacts, ProxyFacts, Route, Status
from probe.proxy import ProxyChoice, proxy_authorization
from probe.reasons import Reason, classify_socket_error, classify_tls_error
from probe.tcp import endpoint
from probe.timing import Stopwatch, now, remaining, within

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult

# Closing is a courtesy once the upgrade is proven; never let a slow close eat the budget.
CLOSE_BUDGET = 1.0


class _PinnedResolver(AbstractResolver):
    """Hands aiohttp the addresses the shared resolver already found; knows no other name."""

    def __init__(self, addresses: Mapping[str, list[str]]) -> None:
        self._addresses = {k.rstrip(".").lower(): v for k, v in addresses.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found: list[ResolveResult] = []
        for addr in self._addresses.get(host.rstrip(".").lower(), []):
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            if family in (socket.AF_UNSPEC, fam):
                found.append({"hostname": host, "host": addr, "port": port, "family": fam, "proto": 0, "flags": 0})
        if not found:
            raise OSError(f"{host} was not resolved by the shared resolver")
        return found

    async def close(self) -> None:
        return None


class _Redirected(Exception):
    """Raised from the redirect trace: a redirect is the answer, not something to follow."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass
class _Trace:
    """What aiohttp's tracing signals revealed, to tell the phases apart."""

    watch: Stopwatch = field(default_factory=Stopwatch)
    connect_started: float | None = None
    connected: float | None = None
    sent: float | None = None
    answered: float | None = None
    status: int | None = None
    reason: str | None = None
    headers: MultiMapping[str] | None = None

    def config(self) -> aiohttp.TraceConfig:
        cfg = aiohttp.TraceConfig()

        async def create_start(_s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
            self.connect_started = self.watch.ms()

        async def create_end(_s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
            self.connected = self.watch.ms()

        async def headers_sent(_s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
            self.sent = self.watch.ms()

        async def request_end(_s: aiohttp.ClientSession, _c: SimpleNamespace, p: Any) -> None:
            self._answer(p.response)

        async def redirect(_s: aiohttp.ClientSession, _c: SimpleNamespace, p: Any) -> None:
            self._answer(p.response)
            raise _Redirected(p.response)

        cfg.on_connection_create_start.append(create_start)
        cfg.on_connection_create_end.append(create_end)
        cfg.on_request_headers_sent.append(headers_sent)
        cfg.on_request_end.append(request_end)
        cfg.on_request_redirect.append(redirect)
        return cfg

    def _answer(self, response: aiohttp.ClientResponse) -> None:
        self.answered = self.watch.ms()
        self.status = response.status
        self.reason = response.reason
        self.headers = response.headers

    def phases(self, resolve_ms: float | None) -> dict[str, float]:
        phases: dict[str, float] = {}
        if resolve_ms is not None:
            phases["resolve"] = resolve_ms
        if self.connect_started is not None and self.connected is not None:
            phases["connect"] = round(self.connected - self.connect_started, 3)
        if self.connected is not None and self.answered is not None:
            phases["upgrade"] = round(self.answered - self.connected, 3)
        return phases


def _header(headers: MultiMapping[str] | None, name: str) -> str | None:
    if headers is None:
        return None
    values = headers.getall(name, [])
    return ", ".join(values) if values else None


def _http_facts(
    status: int | None, reason: str | None, headers: MultiMapping[str] | None, *, upgraded: bool
) -> HttpFacts:
    kept = {k: v for k in KEPT_HEADERS if (v := _header(headers, k)) is not None}
    return HttpFacts(
        status=status,
        reason_phrase=reason or None,
        server=_header(headers, "server"),
        via=_header(headers, "via"),
        headers=kept,
        upgraded=upgraded,
    )


def _answered_by(facts: HttpFacts) -> str:
    parts = [f"Server: {facts.server}"] if facts.server else []
    if facts.via:
        parts.append(f"Via: {facts.via}")
    return f" ({'; '.join(parts)})" if parts else ""


def _confidence(reason: Reason) -> Confidence:
    return Confidence.LIKELY if reason.value.endswith("_timeout") else Confidence.CONFIRMED


async def probe_websocket(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """Upgrade ``wss://host:port/path`` (``ws://`` when not ``spec.tls``) to a websocket."""
    started = datetime.now(timezone.utc)
    deadline = ctx.deadline()
    total = Stopwatch()
    host, tls = spec.target.host, spec.tls
    port = spec.target.port or (443 if tls else 80)
    url = f"{'wss' if tls else 'ws'}://{endpoint(host.strip('[]'), port)}{request_target(spec.target.path)}"
    choice = ctx.proxy_for(host, port, tls=tls)
    route: Route = "direct" if choice is None else "proxy"
    proxy_facts = None if choice is None else ProxyFacts(url=choice.redacted_url, source=choice.source)
    trace = _Trace()
    resolve_ms: float | None = None
    dns: DnsFacts | None = None
    addresses: list[str] = []
    where = "direct" if choice is None else f"through proxy {choice.redacted_url}"

    def result(reason: Reason, detail: str, **extra: object) -> CheckResult:
        return make_result(
            spec,
            Status.PASS if reason is Reason.OK else Status.FAIL,
            reason,
            detail,
            confidence=_confidence(reason),
            started_at=started,
            addresses=addresses,
            route=route,
            phases_ms=trace.phases(resolve_ms),
            dns=dns,
            proxy=proxy_facts,
            **extra,
        )

    # Resolve what aiohttp will connect to: the target when direct, the proxy otherwise.
    name = host if choice is None else choice.host
    if choice is not None and choice.problem is not None:
        return result(Reason.PROXY_REFUSED, choice.problem)
    watch = Stopwatch()
    try:
        resolution = await within(ctx.resolver.resolve(name), deadline)
    except TimeoutError:
        resolve_ms = watch.ms()
        if choice is not None:
            return result(Reason.PROXY_REFUSED, f"Resolving the proxy name {name} did not finish in time.")
        return result(Reason.DNS_TIMEOUT, f"Resolving {name} did not finish in time.")
    if resolution.facts.source == "dns":
        resolve_ms = watch.ms()
    if choice is None:
        dns, addresses = resolution.facts, resolution.addresses
    if not resolution.ok:
        if choice is not None:
            detail = f"The proxy name {name} did not resolve ({resolution.reason.value}): {resolution.detail}"
            return result(Reason.PROXY_REFUSED, detail)
        return result(resolution.reason, resolution.detail)

    connector = aiohttp.TCPConnector(
        force_close=True,
        ssl=ctx.ssl_context() if tls else True,
        resolver=_PinnedResolver({name: resolution.addresses}),
        use_dns_cache=False,
    )
    timeout = aiohttp.ClientTimeout(total=max(remaining(deadline), 0.001))
    proxy_url = None if choice is None else URL.build(scheme="http", host=choice.host, port=choice.port)
    # Sent as a header rather than aiohttp's deprecated proxy_auth; None when no credentials.
    proxy_auth = None if choice is None else proxy_authorization(choice)
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, trace_configs=[trace.config()]
    )
    try:
        try:
            ws = await within(
                session.ws_connect(
                    URL(url),
                    proxy=proxy_url,
                    proxy_headers=None if proxy_auth is None else {"Proxy-Authorization": proxy_auth},
                    headers={"User-Agent": f"amlprobe/{__version__}"},
                    autoping=False,
                ),
                deadline,
            )
        except Exception as exc:
            reason, detail, http = _classify(exc, trace, url=url, where=where, choice=choice, proxy_facts=proxy_facts)
            return result(reason, detail, http=http)
        peername = ws.get_extra_info("peername")
        peer = endpoint(peername[0], peername[1]) if peername and choice is None else None
        if proxy_facts is not None:
            peer = proxy_facts.url
            # aiohttp tunnels only wss://; a ws:// upgrade went as a forward request.
            proxy_facts.connect_status = 200 if tls else None
        http = _http_facts(trace.status or 101, trace.reason, trace.headers, upgraded=True)
        latency = total.ms()
        # The upgrade is proven; if closing fails, session.close() below tears the connection down.
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
            await within(ws.close(), min(deadline, now() + CLOSE_BUDGET))
        detail = f"Websocket upgrade accepted (101) by {url} ({where}{f', {peer}' if choice is None and peer else ''})."
        return result(Reason.OK, detail, http=http, peer=peer, latency_ms=latency)
    finally:
        # Shielded: if closing outlasts its budget it finishes in the background, never half-done.
        with contextlib.suppress(TimeoutError):
            await within(asyncio.shield(session.close()), now() + CLOSE_BUDGET)


def _proxy_rejected(
    exc: aiohttp.ClientHttpProxyError, choice: ProxyChoice | None, facts: ProxyFacts | None, url: str
) -> tuple[Reason, str]:
    if facts is not None:
        facts.connect_status = exc.status
        facts.server = _header(exc.headers, "server")
        facts.via = _header(exc.headers, "via")
    where = "The proxy" if choice is None else f"Proxy {choice.endpoint} (from {choice.source})"
    status = f"{exc.status} {exc.message}".strip()
    if exc.status == 407:
        offered = exc.headers.getall("proxy-authenticate", []) if exc.headers is not None else []
        schemes = ", ".join(dict.fromkeys(v.split(None, 1)[0] for v in offered if v.strip())) or "nothing"
        if choice is None or choice.username is None:
            creds = "no credentials are configured"
        else:
            creds = f"it rejected the credentials of user '{choice.username}'"
        detail = f"{where} demands authentication for the tunnel to {url} ({status}); {creds}; it offers: {schemes}."
        return Reason.PROXY_AUTH_REQUIRED, detail
    answered = _answered_by(_http_facts(exc.status, exc.message, exc.headers, upgraded=False))
    return Reason.PROXY_CONNECT_REJECTED, f"{where} refused the tunnel to {url} with {status}{answered}."


def _classify(
    exc: Exception,
    trace: _Trace,
    *,
    url: str,
    where: str,
    choice: ProxyChoice | None,
    proxy_facts: ProxyFacts | None,
) -> tuple[Reason, str, HttpFacts | None]:
    """Map what ws_connect raised to a reason, a one-sentence detail and the HTTP answer seen."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return (*_proxy_rejected(exc, choice, proxy_facts, url), None)
    if isinstance(exc, (_Redirected, aiohttp.WSServerHandshakeError)):
        if trace.status is not None:
            http = _http_facts(trace.status, trace.reason, trace.headers, upgraded=False)
        else:
            assert isinstance(exc, aiohttp.WSServerHandshakeError)
            http = _http_facts(exc.status, None, exc.headers, upgraded=False)
        answer = f"HTTP {http.status} {http.reason_phrase or ''}".rstrip() + _answered_by(http)
        if isinstance(exc, _Redirected):
            to = f" to {http.headers['location']}" if "location" in http.headers else ""
            why = f"a redirect{to}, instead of 101"
        elif http.status == 101:
            why = f"but the handshake is invalid ({exc.message})"
        else:
            why = "instead of 101"
        return Reason.WS_UPGRADE_REJECTED, f"The websocket upgrade to {url} ({where}) got {answer}, {why}.", http
    if isinstance(exc, aiohttp.ClientResponseError):
        detail = f"The answer to the websocket upgrade at {url} ({where}) is not valid HTTP: {exc.message}."
        return Reason.HTTP_BAD_RESPONSE, detail, None
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        return classify_tls_error(cert_error), f"TLS with {url} ({where}) failed: {cert_error}.", None
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return classify_tls_error(exc.os_error), f"TLS with {url} ({where}) failed: {exc.os_error}.", None
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        reason = classify_socket_error(exc.os_error)
        what = "refused the connection" if reason is Reason.TCP_REFUSED else f"could not be reached ({reason.value})"
        ep = choice.endpoint if choice is not None else "the proxy"
        return Reason.PROXY_REFUSED, f"Proxy {ep} {what}: {exc.os_error}.", None
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):  # distinct classes on 3.10
        if trace.connected is None:
            phase = "setting up the connection (TCP, proxy tunnel or TLS)"
        else:
            phase = "waiting for the answer to the upgrade request"
        return Reason.WS_TIMEOUT, f"No answer from {url} ({where}) in time while {phase}.", None
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        reason = classify_tls_error(os_error) if isinstance(os_error, ssl.SSLError) else classify_socket_error(os_error)
        return reason, f"Connecting to {url} ({where}) failed: {os_error}.", None
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        if trace.connected is None and choice is not None:
            detail = f"Proxy {choice.endpoint} closed the connection during CONNECT for {url}: {exc}."
            return Reason.PROXY_RESET, detail, None
        if trace.connected is None:
            return Reason.TCP_RESET, f"The connection to {url} ({where}) was closed while being set up: {exc}.", None
        detail = f"The connection to {url} ({where}) was reset during the websocket upgrade: {exc}."
        return Reason.WS_RESET, detail, None
    raise exc
