"""Peers in a background thread, for tests that run the CLI as a subprocess and wait on it.

``ThreadedServer`` accepts on loopback and hands each connection to ``handle`` in its own thread:
a TLS server presenting a chosen certificate, a proxy answering a chosen head, a listener that
accepts and never says a word. ``close()`` stops it and every connection it holds.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from types import TracebackType


class ThreadedServer:
    def __init__(self, handle: Callable[[socket.socket], None], host: str = "127.0.0.1") -> None:
        self._handle = handle
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            self._handle(conn)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()


def hold(conn: socket.socket) -> None:
    """Accept and never answer (a peer that does not speak TLS): wait until the client leaves."""
    conn.settimeout(60)
    while conn.recv(4096):
        pass


def tls_holder(ctx: ssl.SSLContext) -> Callable[[socket.socket], None]:
    """Complete the TLS handshake with ``ctx``'s certificate, then hold the connection."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            while tls.recv(4096):
                pass

    return handle


def reply(data: bytes) -> Callable[[socket.socket], None]:
    """Read the request head, answer ``data``, close."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(10)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        conn.sendall(data)
        conn.close()

    return handle
