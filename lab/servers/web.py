"""The lab's HTTPS front ends, and the TLS-inspecting gateway of the websocket-stripped scenario.

``HttpsFrontEnd`` answers every catalog host on 443, each with the certificate of its own CA (chosen by
SNI, as a CDN or Azure's front ends do). The compute-instance hosts authenticate every request, as the
real front end does ("Only the creator can access a compute instance": MicrosoftDocs/azure-docs#52934,
MicrosoftLearning/DP100#20; the websocket endpoint answers 403 to unauthorised callers:
microsoft/vscode-tools-for-ai#885, #2077): an anonymous request, upgrade or not, never gets 101. The
exact answer is not published (real-world-azure.md Q1), so the lab plays each plausible one:
``login`` (302 to login.microsoftonline.com), ``401`` or ``403`` (with Azure request ids).

The workspace's resources (storage, key vault, registry) answer as lab/servers/resources.py documents, admitted
or refused as the scenario says (``resources``: host -> kind; ``resource_modes``: kind -> state); a request that
arrives on one of ``private_endpoints`` (addresses) is admitted whatever the state, as Azure admits traffic
through a private endpoint.

``InspectingGateway`` is the box behind a corporate proxy that decrypts chosen hosts (re-signing them
with its own CA) and forwards each request upstream the way Squid does by default: hop-by-hop headers
removed (RFC 9110 §7.6.1), so ``Upgrade: websocket`` never reaches the service ("Upgrade header dropped,
effectively blocking an upgrade attempt": squid-cache.org/Doc/config/http_upgrade_request_protocols), and
its own Via added to the answer (RFC 9110 §7.6.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver

from lab.servers.base import LabServer
from lab.servers.resources import check_modes, resource_answer

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult

LOGIN = "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
AUTH_ANSWERS = ("login", "401", "403", "403-unmarked")
# Squid's Via form, "1.1 <host> (squid/<version>)", as the real squid of tests/helpers/squid.py writes it.
GATEWAY_VIA = "1.1 contoso-proxy (squid/5.7)"
# RFC 9110 §7.6.1: never forwarded by a proxy (and whatever Connection names).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}

Resolve = Callable[[str], Awaitable[list[str]]]


def sni_context(contexts: Mapping[str, ssl.SSLContext], pick: Callable[[str], str], default: str) -> ssl.SSLContext:
    """A server context that hands each handshake the context of the server name's CA."""
    base = contexts[default]

    def choose(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name:
            sslobj.context = contexts[pick(server_name.lower())]

    base.sni_callback = choose
    return base


def _auth_answer(kind: str, host: str, *, upgrade: bool) -> web.Response:
    ids = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": str(uuid.uuid4())}
    if kind == "403-unmarked":
        # What users report, and all that is published: the websocket endpoint answers 403 while a browser
        # is sent to sign in (vscode-tools-for-ai#885, #2077; DP100#20). No header is known to mark it,
        # so this answer carries none: only the TLS session (an Azure CA) says who wrote it.
        if not upgrade:
            kind = "login"
        else:
            page = "<html><body>403 Forbidden</body></html>"
            return web.Response(status=403, text=page, content_type="text/html", headers={"Server": "amlprobe-lab"})
    if kind == "login":
        to = f"{LOGIN}?client_id=lab&response_type=code&redirect_uri=https%3A%2F%2F{host}%2F"
        return web.Response(status=302, headers={"Location": to, "Server": "amlprobe-lab"})
    if kind == "401":
        return web.Response(status=401, headers={"WWW-Authenticate": "Bearer", "Server": "amlprobe-lab", **ids})
    page = f"<html><body>Access to compute instance {host.split('.', 1)[0]} is not allowed.</body></html>"
    return web.Response(status=403, text=page, content_type="text/html", headers={"Server": "amlprobe-lab", **ids})


class HttpsFrontEnd(LabServer):
    def __init__(
        self,
        bind: Iterable[tuple[str, int]],
        ssl_context: ssl.SSLContext,
        *,
        authenticating_hosts: Iterable[str] = (),
        auth_answer: str = "login",
        resources: Mapping[str, str] | None = None,
        resource_modes: Mapping[str, str] | None = None,
        private_endpoints: Iterable[str] = (),
    ) -> None:
        if auth_answer not in AUTH_ANSWERS:
            raise ValueError(f"auth_answer must be one of {AUTH_ANSWERS}")
        check_modes(resource_modes or {})
        self.resources = {h.lower(): k for h, k in (resources or {}).items()}
        self.resource_modes = dict(resource_modes or {})
        self.private_endpoints = set(private_endpoints)
        self._bind = list(bind)
        self._ssl = ssl_context
        self.authenticating_hosts = {h.lower() for h in authenticating_hosts}
        self.auth_answer = auth_answer
        self._runner: web.AppRunner | None = None

    @property
    def ports(self) -> list[int]:
        """The bound ports (useful when binding port 0 in tests)."""
        return [a[1] for a in self._runner.addresses] if self._runner is not None else []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        if host in self.authenticating_hosts:
            upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
            return _auth_answer(self.auth_answer, host, upgrade=upgrade)
        kind = self.resources.get(host)
        if kind is not None:
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            local = str(sockname[0]) if sockname else ""
            mode = self.resource_modes.get(kind, "allow")
            return resource_answer(request, host, kind, mode, private_endpoint=local in self.private_endpoints)
        return web.Response(text=f"amlprobe lab front end for {host}\n", headers={"Server": "amlprobe-lab"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        for host, port in self._bind:
            await web.TCPSite(self._runner, host, port, ssl_context=self._ssl, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _LabResolver(AbstractResolver):
    """aiohttp resolves upstream names through the lab's DNS only, never the machine's."""

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found: list[ResolveResult] = []
        for addr in await self._resolve(host):
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            found.append({"hostname": host, "host": addr, "port": port, "family": fam, "proto": 0, "flags": 0})
        if not found:
            raise OSError(f"{host} does not resolve in the lab")
        return found

    async def close(self) -> None:
        return None


class InspectingGateway(LabServer):
    """Terminates TLS for diverted hosts with ``ssl_context`` and forwards each request upstream, Squid-like."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext, *, resolve: Resolve, trust: str) -> None:
        self._host, self._port = host, port
        self._ssl = ssl_context
        self._resolve = resolve
        self._trust = trust
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        named = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP | named}
        headers["Via"] = GATEWAY_VIA
        url = f"https://{request.host}{request.rel_url}"
        try:
            async with self._session.request(
                request.method, url, headers=headers, allow_redirects=False, auto_decompress=False
            ) as upstream:
                body = await upstream.read()
                kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
                kept["Via"] = ", ".join(filter(None, (upstream.headers.get("Via"), GATEWAY_VIA)))
                return web.Response(status=upstream.status, body=body, headers=kept)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return web.Response(status=502, text=f"upstream failed: {exc}\n", headers={"Via": GATEWAY_VIA})

    async def start(self) -> None:
        upstream_tls = ssl.create_default_context(cafile=self._trust)
        connector = aiohttp.TCPConnector(ssl=upstream_tls, resolver=_LabResolver(self._resolve), force_close=True)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None


class AcceptOnly(LabServer):
    """A TCP service that accepts and hangs up: enough for a connect probe of 8787/18881."""

    def __init__(self, bind: Iterable[tuple[str, int]]) -> None:
        self._bind = list(bind)
        self._servers: list[asyncio.base_events.Server] = []

    @staticmethod
    async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def start(self) -> None:
        for host, port in self._bind:
            self._servers.append(await asyncio.start_server(self._serve, host, port, reuse_address=True))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()
