"""Row "healthy lab, full compute-instance plan": amlprobe against blackbox_exporter, and the lab with dropped paths.

    python3 bench/bench_lab.py [--runs 5]

1. ``amlprobe lab`` (healthy, default settings) as a fresh process: builds the simulated VNet in a
   private namespace and runs the full plan in it. Goal: at most 0.7 s.
2. Inside a kept lab (``amlprobe lab --keep``, entered with nsenter), against its running peers:
   the same full-plan ``amlprobe check`` as a fresh process, and blackbox_exporter probing the
   same endpoints (TCP, TLS and DNS; it has no UDP prober), all at once. Goal: amlprobe at most
   blackbox_exporter's wall + 0.5 s.
3. ``amlprobe lab --scenario nsg-blocks-443`` (443 to the AzureMachineLearning range silently
   dropped) at the lab's timeout and at the check's default 5 s. Goal: at most 1.1 x the timeout.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, clean_env, load, median, prepare, run

LAB_TIMEOUT = 1.5


def lab_runs(amlprobe: str, out: Path, runs: int, *extra: str) -> tuple[list[float], list[dict]]:
    walls, reports = [], []
    for _ in range(runs):
        m = run([amlprobe, "lab", "--format", "json", "--output", str(out / "lab.json"), *extra], env=clean_env())
        if m.returncode not in (0, 1, 2):
            raise SystemExit(f"amlprobe lab {' '.join(extra)} failed: {m.stderr.decode()[-2000:]}")
        walls.append(m.wall)
        reports.append(json.loads((out / "lab.json").read_text()))
    return walls, reports


def inside_lab(py: str, amlprobe: str, out: Path, runs: int, *extra: str) -> dict:
    """Keep a lab up (``extra``: its options) and run bench/_lab_peer.py inside it."""
    scenario = [*extra[extra.index("--scenario") : extra.index("--scenario") + 2]] if "--scenario" in extra else []
    lab = subprocess.Popen(
        [amlprobe, "lab", "--keep", "--format", "json", "--output", str(out / "keep.json"), *scenario],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert lab.stderr is not None
    pid = workdir = None
    try:
        for line in lab.stderr:
            if m := re.search(r"the lab stays up \(pid (\d+)\)", line):
                pid = m.group(1)
            if m := re.search(r"--ca-bundle (\S+)/ca-bundle\.pem", line):
                workdir = m.group(1)
            if pid and workdir:
                break
        if not (pid and workdir):
            raise SystemExit("amlprobe lab --keep did not come up")
        proc = subprocess.run(
            ["nsenter", "--target", pid, "--user", "--net", "--preserve-credentials",
             py, str(ROOT / "bench" / "_lab_peer.py"), workdir, str(out), str(runs), *extra],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"bench/_lab_peer.py failed:\n{proc.stderr[-3000:]}")
        return json.loads((out / "lab-peer.json").read_text())  # type: ignore[no-any-return]
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    py = prepare({"prometheus-blackbox-exporter": "prometheus-blackbox-exporter", "nsenter": "util-linux"})
    amlprobe = str(Path(py).parent / "amlprobe")
    with tempfile.TemporaryDirectory(prefix="amlprobe-bench-") as tmp:
        out = Path(tmp)
        walls, reports = lab_runs(amlprobe, out, opts.runs)
        if any(r["status"] != "ok" for r in reports):
            raise SystemExit("the healthy lab did not report ok")
        peer = inside_lab(py, amlprobe, out, opts.runs)
        drop_walls, drop_reports = lab_runs(amlprobe, out, opts.runs, "--scenario", "nsg-blocks-443")
        drop5_walls, drop5_reports = lab_runs(amlprobe, out, max(1, opts.runs // 2), "--scenario", "nsg-blocks-443",
                                              "--timeout", "5")
        dropped_check = inside_lab(py, amlprobe, out, max(1, opts.runs // 2), "--scenario", "nsg-blocks-443",
                                   "--timeout", "5")["checks"]
    udp = [c for c in reports[-1]["checks"] if c["target"]["protocol"] == "udp" and c.get("udp")]
    print(f"Lab, full compute-instance plan ({reports[-1]['summary']['total']} checks), medians of {opts.runs} runs "
          f"({load()})")
    print(f"  amlprobe lab (fresh process: namespace, peers, check): wall {median(walls):.3f} s (goal: at most 0.7 s); "
          f"the check's own run {median([r['duration_ms'] for r in reports]):.0f} ms")
    for c in udp:
        print(f"    {c['id']}: {c['udp']['state']}, waited {c['udp']['wait_ms']:.0f} ms ({c['udp']['wait_basis']})")
    check_wall = median([c["wall"] for c in peer["checks"]])
    bb = median([b["probes_wall"] for b in peer["blackbox"]])
    bb_start = median([b["with_start"] for b in peer["blackbox"]])
    cpu = median([c["cpu"] for c in peer["checks"]])
    print(f"  inside the running lab: amlprobe check (fresh process, {peer['plan_checks']} probes): "
          f"wall {check_wall:.3f} s, CPU {cpu:.3f} s")
    print(f"  blackbox_exporter, {peer['probes']} probes {peer['kinds']} all at once: {bb:.3f} s "
          f"({bb_start:.3f} s with the exporter's own start)")
    print(f"  amlprobe - blackbox_exporter: {check_wall - bb:+.3f} s (goal: at most +0.5 s)")
    for label, ws, rs, timeout in (("lab timeout", drop_walls, drop_reports, LAB_TIMEOUT),
                                   ("--timeout 5", drop5_walls, drop5_reports, 5.0)):
        run_ms = median([r["duration_ms"] for r in rs])
        failed = rs[-1]["summary"]["failed"]
        print(f"  nsg-blocks-443 ({label} {timeout:g} s, {failed} failed): wall {median(ws):.3f} s "
              f"= {median(ws) / timeout:.2f} x the timeout (goal: at most 1.1); the check's own run "
              f"{run_ms / 1000:.3f} s = {run_ms / 1000 / timeout:.2f} x")

    wall5 = median([c["wall"] for c in dropped_check])
    run5 = median([c["run_ms"] for c in dropped_check]) / 1000
    print(f"  nsg-blocks-443 inside the running lab: amlprobe check --timeout 5 (fresh process, "
          f"{dropped_check[-1]['failed']} failed): wall {wall5:.3f} s = {wall5 / 5:.2f} x the timeout "
          f"(goal: at most 1.1); its run {run5:.3f} s")


if __name__ == "__main__":
    main()
