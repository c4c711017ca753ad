"""Shared peers for prober tests: a test CA, TLS servers and misbehaving TCP servers on loopback.

Fixtures that start servers return async factories, so one test can run several peers; every
server they start is closed at teardown.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trustme

from lab.servers.base import abort_connection
from probe.transport.context import ProbeContext
from tests.helpers.ports import free_port
from tests.helpers.probes import probe_context, server_ssl_context

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def make_probe_context() -> Callable[..., ProbeContext]:
    return probe_context


# --- certificates ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The CA the probe is told to trust (via ca_bundle or the environment)."""
    return trustme.CA(organization_name="amlprobe tests", organization_unit_name="Trusted Test Root")


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("trusted-ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def inspection_ca() -> trustme.CA:
    """A CA the probe does not trust, named like a TLS-inspecting firewall's."""
    return trustme.CA(organization_name="Contoso", organization_unit_name="Contoso Inspection CA")


@pytest.fixture(scope="session")
def inspection_ca_file(inspection_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inspection-ca") / "ca.pem"
    inspection_ca.cert_pem.write_to_path(str(path))
    return str(path)


# --- servers -----------------------------------------------------------------------------------


class _Servers:
    def __init__(self) -> None:
        self.servers: list[asyncio.AbstractServer] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, handler: Handler, host: str, ssl_ctx: ssl.SSLContext | None = None) -> int:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            try:
                await handler(reader, writer)
            except (OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(tracked, host, 0, ssl=ssl_ctx)
        self.servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        for writer in self.writers:
            abort_connection(writer.transport)
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()


@pytest.fixture
async def _servers() -> AsyncIterator[_Servers]:
    servers = _Servers()
    yield servers
    await servers.close()


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Hold the connection until the client goes away.
    await reader.read()


@pytest.fixture
def start_tls_server(_servers: _Servers, tmp_path: Path) -> Callable[..., Awaitable[int]]:
    """``await start_tls_server(cert, host="127.0.0.1") -> port``; cert is a trustme leaf or PEMs."""

    async def start(cert: trustme.LeafCert | tuple[bytes, bytes], host: str = "127.0.0.1") -> int:
        sub = tmp_path / f"server{len(_servers.servers)}"
        sub.mkdir()
        return await _servers.start(_drain, host, server_ssl_context(cert, sub))

    return start


@pytest.fixture
def start_silent_server(_servers: _Servers) -> Callable[..., Awaitable[int]]:
    """A TCP server that accepts and never sends a byte (a peer that does not speak TLS/SMB/...)."""

    async def start(host: str = "127.0.0.1") -> int:
        return await _servers.start(_drain, host)

    return start


@pytest.fixture
def start_reset_server(_servers: _Servers) -> Callable[..., Awaitable[int]]:
    """A TCP server that accepts, reads the client's first bytes, then answers with a RST."""

    async def rst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout turns close() into an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        abort_connection(writer.transport)

    async def start(host: str = "127.0.0.1") -> int:
        return await _servers.start(rst, host)

    return start


@pytest.fixture
def start_plain_server(_servers: _Servers) -> Callable[..., Awaitable[int]]:
    """A TCP server that answers whatever it gets with ``reply`` and closes (e.g. HTTP on a TLS port)."""

    async def start(reply: bytes, host: str = "127.0.0.1") -> int:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(reply)
            await writer.drain()

        return await _servers.start(answer, host)

    return start


# --- plain sockets -----------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def full_backlog() -> Iterator[Callable[..., int]]:
    """``full_backlog(host="127.0.0.1", port=0) -> port``: a listener whose accept queue is full.

    Linux drops further SYNs silently while the queue is full, which is a real "no answer"
    without a namespace.
    """
    held: list[socket.socket] = []

    def make(host: str = "127.0.0.1", port: int = 0) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        held.append(listener)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((host, port))
        listener.listen(0)
        bound: int = listener.getsockname()[1]
        # backlog 0 still queues one connection; once it is queued the next SYN finds the queue full.
        filler = socket.socket(family, socket.SOCK_STREAM)
        held.append(filler)
        filler.settimeout(2.0)
        filler.connect((host, bound))
        return bound

    yield make
    for s in held:
        s.close()


@pytest.fixture
def start_connect_proxy(_servers: _Servers) -> Callable[..., Awaitable[int]]:
    """``await start_connect_proxy(hosts) -> port``: an HTTP proxy that only does CONNECT.

    ``hosts`` maps the names clients ask for to loopback addresses (the proxy resolves, not the
    client); anything else gets 502, as a real proxy answers a name it cannot resolve.
    """

    async def start(hosts: dict[str, str], host: str = "127.0.0.1") -> int:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            method, authority, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            name, _, port = authority.rpartition(":")
            address = hosts.get(name.strip("[]"))
            if method != "CONNECT" or address is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nServer: test-proxy\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(address, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\nVia: 1.1 test-proxy\r\n\r\n")
            await writer.drain()
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        return await _servers.start(tunnel, host)

    return start
