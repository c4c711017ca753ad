"""Peers the benches probe, each run as its own process so its CPU is not the prober's.

    python bench/_peers.py tcp  PORT [PORT ...]        accept and close (open ports)
    python bench/_peers.py tls  CERT KEY PORT [PORT ...]  TLS handshake, then close
    python bench/_peers.py udp  PORT [PORT ...]        read and never answer (open|filtered)

They listen on every address of the namespace they run in: benches start them only inside a
private network namespace (bench/_common.in_netns), where the only interface is ``lo``.
Each prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


def _listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(8192)
    sock.setblocking(False)
    return sock


async def serve_stream(ports: list[int], tls: ssl.SSLContext | None) -> None:
    servers = [
        await asyncio.start_server(_close, sock=_listener(p), ssl=tls, backlog=8192) for p in ports
    ]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


class _Sink(asyncio.DatagramProtocol):
    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        pass


async def serve_udp(ports: list[int]) -> None:
    loop = asyncio.get_running_loop()
    for p in ports:
        await loop.create_datagram_endpoint(_Sink, local_addr=("0.0.0.0", p))
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kind, rest = argv[0], argv[1:]
    if kind == "tcp":
        asyncio.run(serve_stream([int(p) for p in rest], None))
    elif kind == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(rest[0], rest[1])
        asyncio.run(serve_stream([int(p) for p in rest[2:]], ctx))
    elif kind == "udp":
        asyncio.run(serve_udp([int(p) for p in rest]))
    else:
        raise SystemExit(f"unknown peer {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
