"""The runner against real peers: parallel, bounded by timeout, deadline and concurrency."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest

from probe.model import CheckSpec, Protocol, Status, Target
from probe.reasons import Reason
from probe.runner import MAX_DEFAULT_CONCURRENCY, default_concurrency, run_checks
from tests.helpers.netns import DROP_SETUP, drop_route, python_in_netns, requires_netns
from tests.helpers.ports import free_port
from tests.helpers.probes import no_lookup_context


def _tcp(host: str, port: int, i: int = 0) -> CheckSpec:
    return CheckSpec(id=f"tcp:{host}:{port}#{i}", target=Target(host=host, port=port, protocol=Protocol.TCP))


def test_default_concurrency_fits_1024_descriptors() -> None:
    # One probe per free descriptor (issue 13: concurrency follows the descriptor budget; a probe
    # needing more meets EMFILE as back-pressure), never more than the process may still open.
    import resource

    from probe.descriptors import open_count

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        assert 512 <= default_concurrency() <= 1024 - open_count()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_default_concurrency_is_bounded_where_descriptors_abound() -> None:
    # A large descriptor budget (servers raise it to hundreds of thousands) does not put every target
    # in flight at once: memory stays bounded (issue 13: 100 MB at 5,000 targets).
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < MAX_DEFAULT_CONCURRENCY + 1024:
        pytest.skip(f"the hard descriptor limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_DEFAULT_CONCURRENCY + 1024, hard))
    try:
        assert default_concurrency() == MAX_DEFAULT_CONCURRENCY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_results_in_spec_order_and_recorded_as_they_complete() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    specs = [_tcp("127.0.0.1", port, 0), _tcp("127.0.0.1", free_port(), 1), _tcp("127.0.0.1", port, 2)]
    seen: list[str] = []
    outcome = await run_checks(specs, no_lookup_context(1.0), on_result=lambda r: seen.append(r.id))
    listener.close()
    assert [r.id for r in outcome.results] == [s.id for s in specs]
    assert sorted(seen) == sorted(s.id for s in specs)
    assert [r.status for r in outcome.results] == [Status.PASS, Status.FAIL, Status.PASS]
    assert outcome.results[1].reason is Reason.TCP_REFUSED
    assert not outcome.interrupted and not outcome.deadline_exceeded


_PARALLEL = """
import asyncio, json, socket, time
from probe.transport.context import ProbeContext
from probe.settings import ProbeSettings
from probe.model import CheckSpec, Protocol, Target
from probe.transport.resolve import SharedResolver
from probe.runner import run_checks

async def main():
    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(64)
    port = listener.getsockname()[1]
    specs = [CheckSpec(id=f"drop{i}", target=Target(host=f"192.0.2.{i + 1}", port=443, protocol=Protocol.TCP))
             for i in range(20)]
    specs += [CheckSpec(id=f"ok{i}", target=Target(host="127.0.0.1", port=port, protocol=Protocol.TCP))
              for i in range(30)]
    ctx = ProbeContext(settings=ProbeSettings(timeout=TIMEOUT, env={}), resolver=SharedResolver(None))
    t0 = time.perf_counter()
    out = await run_checks(specs, ctx, concurrency=CONCURRENCY, deadline_s=DEADLINE)
    print(json.dumps({"elapsed": time.perf_counter() - t0, "deadline": out.deadline_exceeded,
                      "reasons": [r.reason.value for r in out.results]}))

asyncio.run(main())
"""


def _run_parallel(timeout: float, concurrency: int, deadline: float) -> dict[str, object]:
    code = (
        _PARALLEL.replace("TIMEOUT", str(timeout))
        .replace("CONCURRENCY", str(concurrency))
        .replace("DEADLINE", str(deadline))
    )
    proc = python_in_netns(DROP_SETUP + drop_route("192.0.2.0/24"), code)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@requires_netns
def test_fifty_targets_twenty_silent_finish_near_one_timeout() -> None:
    out = _run_parallel(timeout=1.0, concurrency=64, deadline=60)
    reasons = out["reasons"]
    assert reasons[:20] == ["tcp_timeout"] * 20  # type: ignore[index]
    assert reasons[20:] == ["ok"] * 30  # type: ignore[index]
    # Serial would take 20 s; parallel takes about one timeout. The margin is wide on purpose.
    assert out["elapsed"] < 5.0  # type: ignore[operator]


@requires_netns
def test_concurrency_bound_serialises_waves() -> None:
    out = _run_parallel(timeout=0.5, concurrency=10, deadline=60)
    # 20 silent probes, 10 at a time: at least two waves of one timeout each.
    assert out["elapsed"] >= 0.9  # type: ignore[operator]


@requires_netns
def test_deadline_cuts_the_run_and_marks_unfinished_checks() -> None:
    out = _run_parallel(timeout=5.0, concurrency=64, deadline=0.8)
    assert out["deadline"] is True
    assert out["elapsed"] < 3.0  # type: ignore[operator]
    assert set(out["reasons"][:20]) == {"deadline_exceeded"}  # type: ignore[index]
    assert set(out["reasons"][20:]) == {"ok"}  # type: ignore[index]


async def test_stop_event_interrupts_and_keeps_finished_results(full_backlog: Callable[..., int]) -> None:
    import asyncio

    silent = full_backlog()  # a real silent drop: SYNs to a full accept queue get no answer
    stop = asyncio.Event()
    specs = [_tcp("127.0.0.1", free_port(), 0), _tcp("127.0.0.1", silent, 1)]
    asyncio.get_running_loop().call_later(0.4, stop.set)
    t0 = time.perf_counter()
    outcome = await run_checks(specs, no_lookup_context(10.0), stop=stop)
    assert time.perf_counter() - t0 < 3.0
    assert outcome.interrupted
    assert outcome.results[0].reason is Reason.TCP_REFUSED
    assert outcome.results[1].reason is Reason.INTERRUPTED
    assert outcome.results[1].status is Status.SKIP


@pytest.mark.parametrize("n", [1, 3])
async def test_empty_and_small_runs(n: int) -> None:
    outcome = await run_checks([_tcp("127.0.0.1", free_port(), i) for i in range(n)], no_lookup_context(1.0))
    assert len(outcome.results) == n
    assert all(r.reason is Reason.TCP_REFUSED for r in outcome.results)


async def test_a_prober_that_cannot_be_imported_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Probers' modules are imported in a worker thread while the run starts (issue 13); a failure
    # there must still be this check's result, not an unfinished check blamed on the deadline.
    from probe import runner

    monkeypatch.setattr(runner, "REGISTRY_MODULE", "probe.no_such_registry")
    outcome = await run_checks([_tcp("127.0.0.1", free_port())], no_lookup_context(1.0), deadline_s=10)
    assert not outcome.deadline_exceeded
    assert outcome.results[0].reason is Reason.INTERNAL_ERROR
    assert "ModuleNotFoundError" in outcome.results[0].detail
