"""UDP peers for the lab: one that answers every datagram, one that never answers.

The silent one is the case nmap calls open|filtered: a service that ignores what it gets (as
Azure ML's tundra endpoint does for an arbitrary payload) looks exactly like a firewall that
drops it, so a prober must not call it either open or blocked.

Run standalone (e.g. inside a lab namespace)::

    python -m lab.servers.udp --listen 10.0.0.9:5831 --mode echo|sink
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys
from abc import ABC, abstractmethod
from typing import cast

from lab.servers.base import LabServer


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: _UdpServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not declared a DatagramTransport subclass on every Python version, but always one.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._server.received += 1
        reply = self._server.reply(data)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error about an earlier reply; a server has nothing to do about it.
        pass


class _UdpServer(LabServer, ABC):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        # Datagrams received so far.
        self.received = 0
        self._transport: asyncio.DatagramTransport | None = None

    @abstractmethod
    def reply(self, data: bytes) -> bytes | None:
        """What to send back for ``data``; None: stay silent."""

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(self.host, self.port))
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class UdpEcho(_UdpServer):
    """Sends every datagram straight back: an open UDP port."""

    def reply(self, data: bytes) -> bytes | None:
        return data

    async def __aenter__(self) -> UdpEcho:
        await self.start()
        return self


class UdpSink(_UdpServer):
    """Bound and receiving, never answering: a silent service."""

    def reply(self, data: bytes) -> bytes | None:
        return None

    async def __aenter__(self) -> UdpSink:
        await self.start()
        return self


def _listen(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    return host, int(port)


async def _serve_forever(server: _UdpServer) -> None:
    async with server:
        print(f"udp {type(server).__name__} listening on {server.host}:{server.port}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.servers.udp", description="A UDP echo or sink.", allow_abbrev=False
    )
    parser.add_argument("--listen", default="127.0.0.1:5831", help="host:port ([v6]:port) to serve on")
    parser.add_argument("--mode", choices=("echo", "sink"), default="echo")
    args = parser.parse_args(argv)
    host, port = _listen(args.listen)
    server: _UdpServer = UdpEcho(host, port) if args.mode == "echo" else UdpSink(host, port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
