"""Deadlines: one absolute time per probe, passed down, so no step can outlive its budget.

Python 3.10 has no ``asyncio.timeout`` and its ``asyncio.TimeoutError`` is not the builtin
``TimeoutError``; ``within`` hides both differences and always raises the builtin.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def now() -> float:
    return asyncio.get_running_loop().time()


def remaining(deadline: float) -> float:
    return max(0.0, deadline - now())


if sys.version_info >= (3, 11):

    async def within(aw: Awaitable[T], deadline: float) -> T:
        """Await ``aw`` until ``deadline`` (loop time); raise the builtin TimeoutError past it.

        asyncio.timeout_at cancels the awaiting task itself when the deadline passes; wait_for
        would wrap ``aw`` in a task of its own, a task per step of every probe.
        """
        left = remaining(deadline)
        try:
            async with asyncio.timeout_at(deadline):
                return await aw
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {left:.3f}s") from exc

else:  # pragma: no cover - exercised on 3.10 only

    async def within(aw: Awaitable[T], deadline: float) -> T:
        """Await ``aw`` until ``deadline`` (loop time); raise the builtin TimeoutError past it."""
        left = remaining(deadline)
        try:
            return await asyncio.wait_for(aw, timeout=left if left > 0 else 0.000_001)
        except asyncio.TimeoutError as exc:  # distinct from TimeoutError on 3.10
            raise TimeoutError(f"no answer within {left:.3f}s") from exc


class Stopwatch:
    """Milliseconds since creation, for latency and per-phase timings."""

    __slots__ = ("_t0",)

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000.0, 3)

    def restart(self) -> float:
        elapsed = self.ms()
        self._t0 = time.perf_counter()
        return elapsed
