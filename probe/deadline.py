"""Deadlines: one absolute time per check, made once by the runner and handed down, so no step can
outlive the check's budget. Steps only read it (``remaining``, ``within``) or derive a shorter one
from it (``sooner``, ``share``); nothing below the runner starts a clock of its own.

Python 3.10 has no ``asyncio.timeout`` and its ``asyncio.TimeoutError`` is not the builtin
``TimeoutError``; ``Deadline.within`` hides both differences and always raises the builtin.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def now() -> float:
    """The running event loop's clock, the one every Deadline is expressed in."""
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class Deadline:
    """An absolute moment in event-loop time by which a piece of work must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now: made once per check (the runner) or per shared lookup."""
        return cls(now() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - now())

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0

    def sooner(self, seconds: float) -> Deadline:
        """This deadline moved ``seconds`` earlier: finish in time to report, not just in time."""
        return Deadline(self.at - seconds)

    def later(self, seconds: float) -> Deadline:
        """This deadline moved ``seconds`` later: a guard for whoever waits on a step that keeps it."""
        return Deadline(self.at + seconds)

    def share(self, parts: int) -> Deadline:
        """An equal share of what is left, for the first of ``parts`` attempts still to come."""
        return Deadline(now() + self.remaining() / max(1, parts))

    if sys.version_info >= (3, 11):

        async def within(self, aw: Awaitable[T]) -> T:
            """Await ``aw`` until this deadline; raise the builtin TimeoutError past it.

            asyncio.timeout_at cancels the awaiting task itself when the deadline passes; wait_for
            would wrap ``aw`` in a task of its own, a task per step of every probe.
            """
            left = self.remaining()
            try:
                async with asyncio.timeout_at(self.at):
                    return await aw
            except TimeoutError as exc:
                raise TimeoutError(f"no answer within {left:.3f}s") from exc

    else:  # pragma: no cover - exercised on 3.10 only

        async def within(self, aw: Awaitable[T]) -> T:
            """Await ``aw`` until this deadline; raise the builtin TimeoutError past it."""
            left = self.remaining()
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
