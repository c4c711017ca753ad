"""The lab's HTTPS front ends: one aiohttp server answering every catalog host, websockets included.

``strip_websocket_hosts`` makes the server behave like a proxy or firewall that does not pass
the upgrade: it answers the upgrade request with a plain HTTP status and names itself in
Server/Via, as such middleboxes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable

from aiohttp import WSMsgType, web

from lab.servers.base import LabServer

STRIPPER_SERVER = "contoso-webgw/2.4"
STRIPPER_VIA = "1.1 contoso-webproxy (Contoso Web Gateway)"


class HttpsFrontEnd(LabServer):
    def __init__(
        self,
        bind: Iterable[tuple[str, int]],
        ssl_context: ssl.SSLContext,
        *,
        websocket_hosts: Iterable[str] = (),
        strip_websocket_hosts: Iterable[str] = (),
    ) -> None:
        self._bind = list(bind)
        self._ssl = ssl_context
        self.websocket_hosts = {h.lower() for h in websocket_hosts}
        self.strip_websocket_hosts = {h.lower() for h in strip_websocket_hosts}
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        wants_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        if wants_ws and host in self.strip_websocket_hosts:
            return web.Response(
                status=403,
                text="websocket upgrades are not permitted by policy\n",
                headers={"Server": STRIPPER_SERVER, "Via": STRIPPER_VIA},
            )
        if wants_ws and host in self.websocket_hosts:
            ws = web.WebSocketResponse(heartbeat=None)
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
            return ws
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
