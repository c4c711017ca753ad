"""Run checks concurrently: bounded concurrency, per-probe timeout, whole-run deadline, interruption.

Results are recorded as they complete (``on_result``); whatever has not finished when the
deadline passes or a stop is requested is recorded as such, so a report can always be written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from probe import descriptors
from probe.deadline import Deadline, Stopwatch
from probe.descriptors import DescriptorsExhausted
from probe.importer import import_in_thread
from probe.importer import preload as preload_modules
from probe.model import CheckResult, CheckSpec, Protocol
from probe.probers import ProbeFn
from probe.reasons import Reason
from probe.recorder import Recorder
from probe.settings import ProbeSettings
from probe.transport.context import ProbeContext
from probe.transport.resolve import LookupFn, Resolution, SharedResolver

# The stub resolver (dnspython) and the map of probers (every prober and its libraries): imported in
# the import thread, in this order, while the first probes start: every probe of a name waits for the
# resolver, and every probe for its prober.
LOOKUP_MODULE = "probe.transport.lookup"
REGISTRY_MODULE = "probe.registry"

# Extra time a prober gets past its own timeout before the runner gives up on it: probers
# enforce their deadline themselves, this only catches a prober bug.
OVERRUN_GRACE = 0.5
# File descriptors kept free for the process itself (report file, history, a late import).
FD_RESERVE = 8
# Probes in flight by default, at most, whatever the descriptor budget: each holds about 5 KB while it
# waits (its task, its coroutines, its socket), and the memory goal is 100 MB at 5,000 targets
# (issue 13, bench/bench_fanout.py). A silent target holds its place for the whole timeout, so 2,048
# at once still finish 5,000 targets with half of them dropped in two timeouts. --concurrency raises it.
MAX_DEFAULT_CONCURRENCY = 2048
# Probes started per turn of the event loop.
LAUNCH_BATCH = 32
# At most this long the other probes wait for the UDP probes' names to resolve (see run_checks).
UDP_HEAD_START = 0.05
# Back-pressure: a probe that found no free descriptor waits for another probe to finish, and at
# most this long before it tries again anyway (descriptors may be freed outside the run, ENFILE).
RETRY_AFTER_MAX = 0.5


def default_concurrency() -> int:
    """One probe per file descriptor this process may still open, less a small reserve, and at most
    MAX_DEFAULT_CONCURRENCY.

    A probe holds one socket at a time except during happy eyeballs; when it needs more than
    there are, the kernel's EMFILE is back-pressure (see run_checks), never a result. Latencies
    stay honest at any concurrency: the connect RTT is the kernel's, not the event loop's.
    """
    return max(1, min(MAX_DEFAULT_CONCURRENCY, descriptors.free() - FD_RESERVE))


class _Released:
    """Wakes the probes waiting for a descriptor, one per finished probe, oldest first."""

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def wait(self, timeout: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(waiter, timeout)


@dataclass
class RunOutcome:
    results: list[CheckResult]
    started_at: datetime
    duration_ms: float
    interrupted: bool = False
    deadline_exceeded: bool = False


def probe_context(settings: ProbeSettings) -> ProbeContext:
    """The run's context: its settings, and one shared lookup per name through the stub resolver.

    The resolver's module (dnspython) is imported when the first name needs resolving (a run of IP
    literals never does), off the event loop.
    """

    made: list[LookupFn] = []  # one lookup for the run: it reads the hosts file and resolv.conf once

    async def lookup(name: str) -> Resolution:
        if not made:
            stub = await import_in_thread(LOOKUP_MODULE)
            make: Callable[[ProbeSettings], LookupFn] = stub.make_lookup
            made.append(make(settings))
        return await made[0](name)

    return ProbeContext(settings=settings, resolver=SharedResolver(lookup))


async def prober_for(protocol: Protocol) -> ProbeFn:
    """The prober of ``protocol`` (probe.registry.PROBERS), its module imported off the event loop."""
    registry = await import_in_thread(REGISTRY_MODULE)
    prober: ProbeFn = registry.PROBERS[protocol]
    return prober


def unprobed(spec: CheckSpec, reason: Reason, detail: str) -> CheckResult:
    """The result of a check that got no probe (or none that finished): nothing was seen."""
    return Recorder(spec, Deadline(0.0)).result(reason, detail)


async def run_prober(prober: ProbeFn, spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """``prober`` on ``spec`` with the check's one deadline, made now, and a fresh record.

    Raises TimeoutError when the prober overruns its deadline (probers keep it themselves; the
    grace only catches a prober bug).
    """
    rec = Recorder.start(spec, ctx.settings.timeout)
    return await rec.deadline.later(OVERRUN_GRACE).within(prober(spec, ctx, rec))


async def run_one(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """Run one prober with the check's deadline and record; a prober bug becomes an ``internal_error``
    result, never an exception.

    Raises DescriptorsExhausted when the prober could not get a socket: the caller retries.
    """
    try:
        # The deadline starts when the probe does, not while the prober's module was loading.
        return await run_prober(await prober_for(spec.target.protocol), spec, ctx)
    except (asyncio.CancelledError, DescriptorsExhausted):
        raise
    except TimeoutError:
        detail = f"The {spec.target.protocol.value} prober overran its {ctx.settings.timeout:g} s timeout."
    except Exception as exc:  # isolation: one broken prober must not sink the run
        # Out of descriptors somewhere no prober classifies (loading a CA file, ...): back-pressure too.
        descriptors.check(exc)
        detail = f"amlprobe failed on this check: {type(exc).__name__}: {exc}"
    return unprobed(spec, Reason.INTERNAL_ERROR, detail)


async def run_checks(
    specs: Sequence[CheckSpec],
    ctx: ProbeContext,
    *,
    concurrency: int | None = None,
    deadline_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> RunOutcome:
    """Run every spec; return results in spec order once all finished, the deadline passed, or ``stop`` was set."""
    started_at = datetime.now(timezone.utc)
    watch = Stopwatch()
    limit = asyncio.Semaphore(concurrency or default_concurrency())
    done: dict[str, CheckResult] = {}

    released = _Released()

    async def guarded(spec: CheckSpec) -> None:
        pause = 0.01
        while True:
            async with limit:
                try:
                    result = await run_one(spec, ctx)
                    break
                except DescriptorsExhausted:
                    pass
            # No socket to be had: wait for a finished probe to free one, then run it again.
            await released.wait(pause)
            pause = min(RETRY_AFTER_MAX, pause * 2)
        released.notify()
        done[spec.id] = result
        if on_result is not None:
            on_result(result)

    # UDP probes first: they wait at least UDP_WAIT_FLOOR for silence, so their DNS lookups and first
    # datagrams should not queue behind everything else. Results stay in spec order.
    starting = sorted(specs, key=lambda s: s.target.protocol is not Protocol.UDP)
    tasks: list[asyncio.Future[None]] = []
    # Importing the resolver and the probers (dnspython, cryptography, ...) takes a while: in the import
    # thread, so that the event loop keeps serving the probes already waiting.
    preload_modules([LOOKUP_MODULE, REGISTRY_MODULE])

    async def launch() -> None:
        # UDP probes get a head start: their names are looked up first (UDP is never proxied), and
        # the other probes start once those answers are in (or UDP_HEAD_START has passed), so the
        # UDP clock starts before the event loop gets busy with everything else.
        udp = [s for s in starting if s.target.protocol is Protocol.UDP]
        lookups = [t for t in (ctx.resolver.start(s.target.host) for s in udp) if t is not None]
        for i, spec in enumerate(starting, start=1):
            if i == len(udp) + 1 and lookups:
                await asyncio.wait(lookups, timeout=UDP_HEAD_START)
            tasks.append(asyncio.ensure_future(guarded(spec)))
            if i % LAUNCH_BATCH == 0:
                # Let the loop poll between batches, so that answers to the first probes are seen
                # (and timestamped) while later ones are still being started.
                await asyncio.sleep(0)
        await _gather_quietly(tasks)

    all_done: asyncio.Future[None] = asyncio.ensure_future(launch())
    waiters: set[asyncio.Future[Any]] = {all_done}
    stop_wait: asyncio.Future[Any] | None = None
    if stop is not None:
        stop_wait = asyncio.ensure_future(_wait_event(stop))
        waiters.add(stop_wait)
    run_deadline = Deadline.after(deadline_s) if deadline_s is not None else None
    timeout = None if run_deadline is None else run_deadline.remaining()
    finished, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)

    interrupted = stop_wait is not None and stop_wait in finished and all_done not in finished
    deadline_exceeded = not interrupted and all_done not in finished
    for waiter in waiters:
        waiter.cancel()
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    ctx.resolver.cancel()

    results: list[CheckResult] = []
    for spec in specs:
        result = done.get(spec.id)
        if result is None:
            if interrupted:
                result = unprobed(spec, Reason.INTERRUPTED, "Not finished: the run was interrupted.")
            else:
                detail = f"Not finished: the run's {deadline_s:g} s deadline passed first."
                result = unprobed(spec, Reason.DEADLINE_EXCEEDED, detail)
        results.append(result)
    return RunOutcome(
        results=results,
        started_at=started_at,
        duration_ms=watch.ms(),
        interrupted=interrupted,
        deadline_exceeded=deadline_exceeded,
    )


async def _gather_quietly(tasks: Sequence[asyncio.Future[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_event(event: asyncio.Event) -> None:
    await event.wait()
