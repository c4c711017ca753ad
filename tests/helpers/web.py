"""HTTP and websocket peers on loopback for the http and websocket prober tests.

One aiohttp app plays the service (``/ws`` upgrades, ``/`` answers 200) and the middleboxes
that break websockets: ``/reject`` answers 403 and ``/page`` 200 the way a gateway does
(``Server: contoso-gw``, ``Via: 1.1 contoso-proxy``), ``/redirect`` sends to a login page.
Authenticating services answer every anonymous request alike: ``/login`` (302 to another site),
``/unauthorized`` (401), ``/forbidden`` (403), each with a request id and no Via. ``/upgrade-forbidden``
refuses only the upgrade; ``/proxy-auth`` and ``/zscaler`` are what intercepting proxies answer
(407; a Zscaler block page, "403, text/html, Server: Zscaler/5.6", Ekultek/WhatWaf#178).
Raw asyncio servers do what aiohttp will not: reset after reading the request head.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from lab.servers.base import abort_connection

GATEWAY_HEADERS = {"Server": "contoso-gw", "Via": "1.1 contoso-proxy"}
# Never contacted: the prober must report the redirect, not follow it.
LOGIN_URL = "https://login.invalid/authorize"

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _ws(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def _root(request: web.Request) -> web.StreamResponse:
    return web.Response(text="hello\n", headers={"Server": "test-origin"})


async def _reject(request: web.Request) -> web.StreamResponse:
    return web.Response(status=403, text="blocked by policy\n", headers=GATEWAY_HEADERS)


async def _page(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>inspection portal</html>", content_type="text/html", headers=GATEWAY_HEADERS)


async def _redirect(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": LOGIN_URL, **GATEWAY_HEADERS})


REQUEST_ID = {"X-Request-Id": "7d3c2a9e-0000-4000-8000-000000000001"}


async def _login(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": LOGIN_URL, **REQUEST_ID})


async def _unauthorized(request: web.Request) -> web.StreamResponse:
    return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="service"', **REQUEST_ID})


async def _forbidden(request: web.Request) -> web.StreamResponse:
    return web.Response(status=403, text="not allowed\n", headers=REQUEST_ID)


async def _upgrade_forbidden(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return web.Response(status=403, text="no websockets here\n")
    return web.Response(text="hello\n")


async def _proxy_auth(request: web.Request) -> web.StreamResponse:
    return web.Response(status=407, headers={"Proxy-Authenticate": 'Basic realm="corp"'})


async def _zscaler(request: web.Request) -> web.StreamResponse:
    page = "<html><title>Internet Security by Zscaler</title></html>"
    return web.Response(status=403, text=page, content_type="text/html", headers={"Server": "Zscaler/5.6"})


async def _missing(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, text="not found\n")


def service_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ws", _ws)
    app.router.add_get("/", _root)
    app.router.add_get("/reject", _reject)
    app.router.add_get("/page", _page)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/login", _login)
    app.router.add_get("/unauthorized", _unauthorized)
    app.router.add_get("/forbidden", _forbidden)
    app.router.add_get("/upgrade-forbidden", _upgrade_forbidden)
    app.router.add_get("/proxy-auth", _proxy_auth)
    app.router.add_get("/zscaler", _zscaler)
    app.router.add_get("/missing", _missing)
    return app


async def reset_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request head, then answer with a TCP RST (SO_LINGER 0), as some firewalls do."""
    await reader.readuntil(b"\r\n\r\n")
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    abort_connection(writer.transport)


async def reset_on_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer a plain GET (302 to a login page) but reset a request that carries Upgrade: websocket."""
    head = await reader.readuntil(b"\r\n\r\n")
    if b"upgrade: websocket" in head.lower():
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        abort_connection(writer.transport)
        return
    writer.write(f"HTTP/1.1 302 Found\r\nLocation: {LOGIN_URL}\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


def raw_reply(data: bytes) -> RawHandler:
    """Answer the request head with ``data`` verbatim, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()

    return handler


class WebPeers:
    """Starts aiohttp apps and raw servers on loopback; ``close()`` stops them all."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []
        self._servers: list[asyncio.Server] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def app(self, app: web.Application, ssl_ctx: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        await web.SockSite(runner, sock, ssl_context=ssl_ctx).start()
        return port

    async def raw(self, handler: RawHandler, ssl_ctx: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            try:
                await handler(reader, writer)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, host, 0, ssl=ssl_ctx)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        for writer in self._writers:
            abort_connection(writer.transport)
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for runner in self._runners:
            await runner.cleanup()
