"""Benchmark: parallel vs serial runs, and the lab's start/stop cost. Loopback and namespaces only.

    python bench/bench_runner.py            # prints medians and ratios from one run

Inside a private network namespace: 50 TCP targets, 20 of them dropped by a route to nowhere,
run with the default concurrency and with concurrency 1; then the lab's phases, from its own
timing marks (AMLPROBE_LAB_TIMING=1).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.netns import DROP_SETUP, drop_route, python_in_netns  # noqa: E402

RUNS = 5

_CODE = """
import asyncio, json, socket, time
from probe.transport.context import ProbeContext
from probe.settings import ProbeSettings
from probe.model import CheckSpec, Protocol, Target
from probe.transport.resolve import SharedResolver
from probe.runner import run_checks

async def main():
    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(256)
    port = listener.getsockname()[1]
    specs = [CheckSpec(id=f"drop{i}", target=Target(host=f"192.0.2.{i + 1}", port=443, protocol=Protocol.TCP))
             for i in range(DROPPED)]
    specs += [CheckSpec(id=f"ok{i}", target=Target(host="127.0.0.1", port=port, protocol=Protocol.TCP))
              for i in range(ANSWERING)]
    timings = []
    for _ in range(RUNS):
        ctx = ProbeContext(settings=ProbeSettings(timeout=TIMEOUT, env={}), resolver=SharedResolver(None))
        t0 = time.perf_counter()
        await run_checks(specs, ctx, concurrency=CONCURRENCY)
        timings.append(time.perf_counter() - t0)
    print(json.dumps(timings))

asyncio.run(main())
"""


def run_set(dropped: int, answering: int, timeout: float, concurrency: int, runs: int) -> list[float]:
    code = (
        _CODE.replace("DROPPED", str(dropped))
        .replace("ANSWERING", str(answering))
        .replace("TIMEOUT", str(timeout))
        .replace("CONCURRENCY", str(concurrency))
        .replace("RUNS", str(runs))
    )
    proc = python_in_netns(DROP_SETUP + drop_route("192.0.2.0/24"), code, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def lab_phases(runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-m", "amlprobe", "lab", "--scenario", "udp-5831-rejected", "--format", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "AMLPROBE_LAB_TIMING": "1"},
            cwd=ROOT,
            check=False,
        )
        line = next(x for x in proc.stderr.splitlines() if x.startswith("amlprobe lab timing"))
        for name, ms in re.findall(r"([a-z ]+?) (\d+) ms", line.split(":", 1)[1]):
            samples.setdefault(name.strip(), []).append(float(ms))
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    timeout = 1.0
    parallel = run_set(20, 30, timeout, 64, RUNS)
    serial = run_set(5, 5, timeout, 1, 1)
    print(
        f"50 targets (20 dropped), timeout {timeout:g} s, concurrency 64: median {statistics.median(parallel):.3f} s"
        f" over {RUNS} runs"
    )
    print(f"10 targets (5 dropped), concurrency 1 (serial): {serial[0]:.3f} s")
    print(
        f"ratio serial-per-dropped-target / parallel-run: {(serial[0] / 5 * 20) / statistics.median(parallel):.1f}x"
        " (what 20 dropped targets would cost serially vs. in parallel)"
    )
    phases = lab_phases(RUNS)
    print(
        "lab (udp-5831-rejected), medians since the lab command started: "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in phases.items())
    )


if __name__ == "__main__":
    main()
