"""Resolve each name once per run; every probe that needs a name awaits the same lookup."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from probe.descriptors import DescriptorsExhausted
from probe.facts import AddressRecord, DnsFacts
from probe.reasons import Reason


@dataclass(frozen=True)
class Resolution:
    reason: Reason
    detail: str
    facts: DnsFacts
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK

    @property
    def addresses(self) -> list[str]:
        return [r.address for r in self.facts.records]


LookupFn = Callable[[str], Awaitable[Resolution]]


# Thousands of targets on a few addresses share one answer (the facts are never modified).
@functools.lru_cache(maxsize=4096)
def literal_resolution(host: str) -> Resolution | None:
    """An IP literal needs no lookup."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    family = "ipv6" if ip.version == 6 else "ipv4"
    facts = DnsFacts(query=host, records=[AddressRecord(address=str(ip), family=family)], source="literal")
    return Resolution(Reason.OK, "IP literal, no lookup.", facts, 0.0)


class SharedResolver:
    """Memoises lookups by name. ``lookup`` must never raise (it classifies its own failures)."""

    def __init__(self, lookup: LookupFn) -> None:
        self._lookup = lookup
        self._tasks: dict[str, asyncio.Task[Resolution]] = {}

    def start(self, host: str) -> asyncio.Task[Resolution] | None:
        """Start looking ``host`` up now, ahead of the probe that will ask for it (None: a literal)."""
        if literal_resolution(host) is not None:
            return None
        return self._task(host.rstrip(".").lower())

    def _task(self, key: str) -> asyncio.Task[Resolution]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._lookup(key))
            # Retrieved here too: a lookup started ahead may end before anyone awaits it.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._tasks[key] = task
        return task

    async def resolve(self, host: str) -> Resolution:
        literal = literal_resolution(host)
        if literal is not None:
            return literal
        key = host.rstrip(".").lower()
        task = self._task(key)
        # shield: one probe being cancelled must not cancel the lookup others are waiting on.
        try:
            return await asyncio.shield(task)
        except DescriptorsExhausted:
            # Not an answer: the next probe that needs the name asks again.
            if self._tasks.get(key) is task:
                del self._tasks[key]
            raise

    def cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()
