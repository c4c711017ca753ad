"""A UDP peer that answers with a crafted ICMP destination-unreachable, after a delay.

It plays the remote router or host of a real network: the ICMP error arrives while the prober is
already waiting, as it does across any real link (on plain loopback the kernel's own error is
queued before the prober even starts to wait). It needs a raw socket, so it runs inside a
network namespace where the test is root (tests/helpers/netns.py).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

PORT_UNREACHABLE = 3
NET_UNREACHABLE = 0
HOST_UNREACHABLE = 1
ADMIN_PROHIBITED = 13


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unreachable(code: int, src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """ICMP type 3 quoting the IPv4 + UDP headers of the datagram ``src`` sent to ``dst``."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp) + len(payload),
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(src[0]),
        socket.inet_aton(dst[0]),
    )
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    body = ip + udp + payload[:8]
    header = struct.pack("!BBHI", 3, code, 0, 0)
    return struct.pack("!BBHI", 3, code, inet_checksum(header + body), 0) + body


class DelayedUnreachable:
    """Bound on (host, port); answers each datagram with ICMP unreachable ``code`` after ``delay``."""

    def __init__(self, code: int, delay: float, host: str = "127.0.0.1") -> None:
        self.code = code
        self.delay = delay
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, 0))
        self.udp.settimeout(0.2)
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.address: tuple[str, int] = self.udp.getsockname()
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DelayedUnreachable:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.udp.close()
        self.raw.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.udp.recvfrom(65536)
            except TimeoutError:
                continue
            time.sleep(self.delay)
            self.raw.sendto(unreachable(self.code, src, self.address, data), (src[0], 0))
            self.answered += 1
