"""What every lab server shares: start/stop, use as an async context manager, closing a stream server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType
from typing import TypeVar

S = TypeVar("S", bound="LabServer")


class LabServer:
    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: S) -> S:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def abort_connection(transport: asyncio.WriteTransport) -> None:
    """Drop a connection at once (a RST when SO_LINGER is 0), whatever state its TLS layer is in.

    Python 3.11.2 (Debian 12's python3) raises AttributeError from abort() on a TLS transport whose
    SSL protocol is already detached (asyncio/sslproto.py calls ``self._ssl_protocol._abort()`` on
    None); seen here with the tests' TLS servers, not with 3.11.7. The connection is gone then anyway."""
    if transport.is_closing():
        return
    with contextlib.suppress(AttributeError):
        transport.abort()


async def close_stream_server(
    server: asyncio.AbstractServer, writers: Iterable[asyncio.StreamWriter], *, abort: bool = False
) -> None:
    server.close()
    # Open connections first: on 3.12+ wait_closed() waits for every one of them.
    for writer in list(writers):
        if abort:
            abort_connection(writer.transport)
        else:
            writer.close()
    await server.wait_closed()
