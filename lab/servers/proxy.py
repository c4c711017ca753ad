"""A small HTTP CONNECT proxy for tests and the lab: tunnels, Basic auth, deny rules.

It answers the way corporate proxies do when they refuse: 407 with Proxy-Authenticate, 403 for
a denied destination, 502 when the upstream cannot be reached or resolved, 504 on an upstream
timeout, always with a Via header naming it. Names are resolved only through the ``resolve``
callback (the lab's own DNS) or the static ``hosts`` map, never the machine's resolver.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Mapping

from lab.servers.base import LabServer, abort_connection, close_stream_server

VIA = "1.1 amlprobe-lab-proxy"
_HEAD_LIMIT = 64 * 1024

Resolve = Callable[[str], Awaitable[list[str]]]
Deny = Callable[[str, int], bool]
# host, port -> the (address, port) to tunnel to instead: a TLS-inspecting engine behind the proxy.
Divert = Callable[[str, int], "tuple[str, int] | None"]


class _Refusal(Exception):
    def __init__(self, status: int, phrase: str, extra: str = "") -> None:
        super().__init__(f"{status} {phrase}")
        self.status = status
        self.phrase = phrase
        self.extra = extra


class ConnectProxy(LabServer):
    """``async with ConnectProxy(...) as proxy:`` serves on ``proxy.address`` until the block ends."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: tuple[str, str] | None = None,
        deny: Deny | None = None,
        resolve: Resolve | None = None,
        hosts: Mapping[str, str | list[str]] | None = None,
        connect_timeout: float = 5.0,
        source: str | None = None,
        divert: Divert | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._auth = auth
        self._deny = deny
        self._resolve = resolve
        self._hosts = {k.rstrip(".").lower(): [v] if isinstance(v, str) else list(v) for k, v in (hosts or {}).items()}
        self._connect_timeout = connect_timeout
        # The local address upstream connections come from (the proxy's own address in the lab).
        self._source = source
        # Corporate proxies decrypt chosen destinations and tunnel the rest untouched: SSL inspection rules
        # "decrypt, not decrypt, or block ... based on ... URL categories" (Zscaler ZIA,
        # pulumi.com/registry/packages/zia/api-docs/sslinspectionrule).
        self._divert = divert
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # "host:port -> status" for every CONNECT seen, so tests can tell the proxy was used.
        self.log: list[str] = []

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("proxy not started")
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is None:
            return
        await close_stream_server(self._server, self._writers, abort=True)
        self._server = None

    async def _addresses(self, name: str) -> list[str]:
        bare = name.strip("[]")
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(bare))]
        key = bare.rstrip(".").lower()
        if key in self._hosts:
            return self._hosts[key]
        if self._resolve is not None:
            return await self._resolve(key)
        return []

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self._auth is None:
            return True
        scheme, _, token = headers.get("proxy-authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, password) == self._auth

    async def _upstream(self, name: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            addresses = await self._addresses(name)
        except Exception as exc:  # whatever the resolver callback raises, the client gets a 502
            raise _Refusal(502, "Bad Gateway", f"cannot resolve {name}: {exc}") from None
        if not addresses:
            raise _Refusal(502, "Bad Gateway", f"cannot resolve {name}")
        last: BaseException | None = None
        for address in addresses:
            try:
                local = None if self._source is None else (self._source, 0)
                connecting = asyncio.open_connection(address, port, local_addr=local)
                return await asyncio.wait_for(connecting, self._connect_timeout)
            except asyncio.TimeoutError:  # not the builtin TimeoutError on 3.10
                last = TimeoutError(f"{address}:{port} timed out")
            except OSError as exc:
                last = exc
        if isinstance(last, TimeoutError):
            raise _Refusal(504, "Gateway Timeout", str(last))
        raise _Refusal(502, "Bad Gateway", f"cannot connect to {name}:{port}: {last}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _HEAD_LIMIT:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        authority = rest.partition(" ")[0]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        try:
            if method != "CONNECT":
                raise _Refusal(405, "Method Not Allowed", "this proxy only tunnels (CONNECT)")
            name, sep, port_text = authority.rpartition(":")
            if not sep or not port_text.isdigit() or not name:
                raise _Refusal(400, "Bad Request", f"bad CONNECT target {authority!r}")
            port = int(port_text)
            if not self._authorized(headers):
                raise _Refusal(407, "Proxy Authentication Required")
            if self._deny is not None and self._deny(name.strip("[]"), port):
                raise _Refusal(403, "Forbidden", f"CONNECT to {authority} is denied by policy")
            diverted = self._divert(name.strip("[]"), port) if self._divert is not None else None
            if diverted is not None:
                up_reader, up_writer = await self._upstream(*diverted)
            else:
                up_reader, up_writer = await self._upstream(name, port)
        except _Refusal as refusal:
            self.log.append(f"{authority} -> {refusal.status}")
            await self._refuse(writer, refusal)
            return
        self.log.append(f"{authority} -> 200")
        self._writers.add(up_writer)
        try:
            writer.write(f"HTTP/1.1 200 Connection established\r\nVia: {VIA}\r\n\r\n".encode("latin-1"))
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, refusal: _Refusal) -> None:
        body = (refusal.extra or refusal.phrase).encode() + b"\n"
        lines = [
            f"HTTP/1.1 {refusal.status} {refusal.phrase}",
            "Server: amlprobe-lab-proxy",
            f"Via: {VIA}",
            "Content-Type: text/plain",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if refusal.status == 407:
            lines.append('Proxy-Authenticate: Basic realm="amlprobe-lab"')
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        abort_connection(writer.transport)
