"""What every lab server shares: start/stop, use as an async context manager, closing a stream server."""

from __future__ import annotations

import asyncio
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


async def close_stream_server(
    server: asyncio.AbstractServer, writers: Iterable[asyncio.StreamWriter], *, abort: bool = False
) -> None:
    server.close()
    # Open connections first: on 3.12+ wait_closed() waits for every one of them.
    for writer in list(writers):
        if abort:
            writer.transport.abort()
        else:
            writer.close()
    await server.wait_closed()
