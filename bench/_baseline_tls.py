"""The peer of bench_tls: the least an asyncio program does for N verified TLS handshakes.

    python bench/_baseline_tls.py CA.pem HOST:PORT [HOST:PORT ...]

One verified handshake per target (certificate chain and host name checked by OpenSSL), all at
once, then close. Prints how many succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys


async def one(host: str, port: int, ctx: ssl.SSLContext) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port, ssl=ctx)
    except (OSError, ssl.SSLError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


async def main(ca: str, targets: list[str]) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    pairs = [t.rsplit(":", 1) for t in targets]
    done = await asyncio.gather(*(one(h, int(p), ctx) for h, p in pairs))
    print(sum(done))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
