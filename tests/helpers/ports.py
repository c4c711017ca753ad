"""Ports for test peers on loopback."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released: connecting to it is refused)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to (bound then released: a datagram to it draws ICMP port unreachable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket listening on loopback (the kernel completes handshakes): an 'ok' target for a check."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    s.listen(16)
    return s
