"""Protocol name -> prober. Every prober has the one signature ``ProbeFn``."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

from probe.context import ProbeFn
from probe.model import Protocol

# module, function: imported on first use so `amlprobe schema` and `plan` stay fast.
_PROBERS: dict[Protocol, tuple[str, str]] = {
    Protocol.DNS: ("probe.dns", "probe_dns"),
    Protocol.TCP: ("probe.tcp", "probe_tcp"),
    Protocol.TLS: ("probe.tls", "probe_tls"),
    Protocol.UDP: ("probe.udp", "probe_udp"),
    Protocol.SMB: ("probe.smb", "probe_smb"),
    Protocol.WEBSOCKET: ("probe.websocket", "probe_websocket"),
    Protocol.HTTP: ("probe.http", "probe_http"),
}


def prober_for(protocol: Protocol) -> ProbeFn:
    module, name = _PROBERS[protocol]
    fn: ProbeFn = getattr(importlib.import_module(module), name)
    return fn


# One import at a time off the loop: two threads importing modules that import each other would
# trip the import system's deadlock detection.
_IMPORTING = threading.Lock()


def _import(module: str) -> ModuleType:
    with _IMPORTING:
        return importlib.import_module(module)


async def import_in_thread(module: str) -> ModuleType:
    """``module``, imported by a worker thread when it is not loaded yet.

    A first import of a prober's dependencies (aiohttp, cryptography, dnspython) takes tens of
    milliseconds; done on the event loop, it would stall every probe already waiting for an
    answer, and their latencies would count it.
    """
    loaded = sys.modules.get(module)
    if loaded is not None and not getattr(loaded.__spec__, "_initializing", False):
        return loaded
    return await asyncio.to_thread(_import, module)


def _import_in_order(modules: Sequence[str]) -> None:
    for module in modules:
        with _IMPORTING:
            importlib.import_module(module)


async def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` in this order in a worker thread; the run's probes start meanwhile."""
    missing = [m for m in modules if m not in sys.modules]
    if missing:
        await asyncio.to_thread(_import_in_order, missing)


def module_of(protocol: Protocol) -> str:
    return _PROBERS[protocol][0]


async def load_prober(protocol: Protocol) -> ProbeFn:
    """prober_for, importing the prober's module off the event loop."""
    module, name = _PROBERS[protocol]
    fn: ProbeFn = getattr(await import_in_thread(module), name)
    return fn
