"""Modules imported by one worker thread, off the event loop, in the order the run will need them.

A first import of a prober's dependencies (dnspython, cryptography) takes tens of milliseconds;
done on the event loop, it would stall every probe already waiting for an answer, and their
latencies would count it. The runner starts the imports as the probes start (``preload``) and a
probe awaits the one it needs (``import_in_thread``). A leaf: of amlprobe it imports only the defaults.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import importlib
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from probe.defaults import IMPORT_THREAD


class _Importer:
    """One thread imports modules, one at a time: two threads importing modules that import each
    other would trip the import system's deadlock detection. What a waiting probe needs jumps the
    queue of what is merely expected (``preload``), which goes before what is needed only later.
    """

    URGENT, EXPECTED, LATER = 0, 1, 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: tuple[collections.deque[str], ...] = tuple(collections.deque() for _ in range(3))
        self._pending: dict[str, concurrent.futures.Future[ModuleType]] = {}
        self._working = False

    def request(self, module: str, priority: int) -> concurrent.futures.Future[ModuleType]:
        with self._lock:
            fut = self._pending.get(module)
            if fut is None:
                fut = self._pending[module] = concurrent.futures.Future()
                self._queues[priority].append(module)
            else:
                for level, queue in enumerate(self._queues):
                    if module in queue and priority < level:
                        queue.remove(module)
                        self._queues[priority].append(module)
            if not self._working:
                self._working = True
                threading.Thread(target=self._work, name=IMPORT_THREAD).start()
            return fut

    def _next(self) -> str | None:
        with self._lock:
            for queue in self._queues:
                if queue:
                    return queue.popleft()
            self._working = False
            return None

    def _work(self) -> None:
        while (module := self._next()) is not None:
            fut = self._pending[module]
            try:
                loaded = importlib.import_module(module)
            except BaseException as exc:  # handed to whoever waits for it
                with self._lock:
                    # Not remembered: a failure may be passing (no descriptor left to open a file).
                    del self._pending[module]
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    fut.set_exception(exc)
                continue
            with self._lock:
                del self._pending[module]
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                fut.set_result(loaded)


_IMPORTER = _Importer()


def _loaded(module: str) -> ModuleType | None:
    found = sys.modules.get(module)
    if found is None or getattr(found.__spec__, "_initializing", False):
        return None
    return found


async def import_in_thread(module: str) -> ModuleType:
    """``module``, imported by the worker thread when it is not loaded yet (first in line)."""
    loaded = _loaded(module)
    if loaded is not None:
        return loaded
    # Shielded: a probe cancelled while it waits must not cancel the import others wait for too.
    imported: ModuleType = await asyncio.shield(asyncio.wrap_future(_IMPORTER.request(module, _Importer.URGENT)))
    return imported


def preload(modules: Sequence[str], *, later: bool = False) -> None:
    """Start importing ``modules``, in this order, in the import thread; returns at once.

    ``later``: needed only once the probes are done (the knowledge layer's judgement): after everything else.
    """
    for module in modules:
        if _loaded(module) is None:
            _IMPORTER.request(module, _Importer.LATER if later else _Importer.EXPECTED)
