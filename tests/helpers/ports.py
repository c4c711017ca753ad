"""Ports for test peers on loopback."""

from __future__ import annotations

import socket


def _released(host: str, kind: socket.SocketKind) -> int:
    """A port the kernel picked for ``kind`` on ``host``, bound then released: nothing has it now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on: connecting to it is refused."""
    return _released(host, socket.SOCK_STREAM)


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to: a datagram to it draws ICMP port unreachable."""
    return _released(host, socket.SOCK_DGRAM)


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket listening on loopback (the kernel completes handshakes): an 'ok' target for a check."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    s.listen(16)
    return s
