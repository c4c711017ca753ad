"""Runs inside a kept lab's namespaces (nsenter): the full-plan check as a fresh process, and
blackbox_exporter probing the same endpoints, both against the lab's already-running peers.

    python bench/_lab_peer.py WORKDIR OUTDIR RUNS

WORKDIR is the lab's (resolver, hosts file and CA bundle); results go to OUTDIR/lab-peer.json.
blackbox_exporter gets the lab's resolv.conf and hosts file through a private mount namespace,
so its lookups go to the lab's DNS server like amlprobe's. It has no UDP prober: tundra's row
has no counterpart there.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from checks.plan import Plan
from lab import topology as topo
from lab.args import LAB_TIMEOUT
from lab.run import check_argv, lab_environment, lab_plan
from lab.scenarios import SCENARIOS
from probe.model import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import run

LISTEN = "127.0.0.1:9115"


def blackbox_probes(plan: Plan, ca_file: str, passed: set[str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(config, [(module, target)]): one probe per endpoint of the plan that amlprobe found working
    (``passed``: check ids) and blackbox_exporter can probe."""
    modules: dict[str, Any] = {
        "tcp": {"prober": "tcp", "timeout": f"{LAB_TIMEOUT}s", "tcp": {"preferred_ip_protocol": "ip4"}},
        "tls": {
            "prober": "tcp",
            "timeout": f"{LAB_TIMEOUT}s",
            "tcp": {"preferred_ip_protocol": "ip4", "tls": True, "tls_config": {"ca_file": ca_file}},
        },
    }
    probes: list[tuple[str, str]] = []
    names: set[str] = set()
    for spec in plan.checks:
        if spec.id not in passed:
            continue  # a row the healthy lab answers by design with NXDOMAIN or nothing (situational)
        proto, host, port = spec.target.protocol, spec.target.host, spec.target.port
        if proto in (Protocol.TLS, Protocol.WEBSOCKET, Protocol.HTTP) and (spec.tls or proto is Protocol.TLS):
            probes.append(("tls", f"{host}:{port or 443}"))
        elif proto in (Protocol.TCP, Protocol.SMB, Protocol.HTTP, Protocol.WEBSOCKET):
            probes.append(("tcp", f"{host}:{port}"))
        elif proto is Protocol.DNS and not spec.dns_servers:
            names.add(host)
    for i, name in enumerate(sorted(names)):
        modules[f"dns{i}"] = {
            "prober": "dns",
            "timeout": f"{LAB_TIMEOUT}s",
            "dns": {"query_name": name, "query_type": "A", "preferred_ip_protocol": "ip4"},
        }
        probes.append((f"dns{i}", topo.CUSTOM_DNS))
    return {"modules": modules}, list(dict.fromkeys(probes))


def fire(probes: list[tuple[str, str]]) -> tuple[float, int]:
    """Every probe at once; (wall seconds, how many succeeded)."""

    def one(probe: tuple[str, str]) -> bool:
        query = urllib.parse.urlencode({"module": probe[0], "target": probe[1]})
        with urllib.request.urlopen(f"http://{LISTEN}/probe?{query}", timeout=30) as resp:
            return b"\nprobe_success 1" in resp.read()

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(probes)) as pool:
        start = time.perf_counter()
        outcomes = list(pool.map(one, probes))
        wall = time.perf_counter() - start
    failed = [p for p, ok in zip(probes, outcomes, strict=True) if not ok]
    if failed:
        print(f"blackbox_exporter: failed {failed}", file=sys.stderr)
    return wall, sum(outcomes)


def wait_ready(proc: subprocess.Popen[bytes]) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < 10:
        if proc.poll() is not None:
            raise SystemExit(f"blackbox_exporter exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://{LISTEN}/-/healthy", timeout=1):
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.005)
    raise SystemExit("blackbox_exporter did not come up")


def main() -> None:
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("runs", type=int)
    ap.add_argument("--scenario", default="healthy")
    ap.add_argument("--timeout", type=float, default=LAB_TIMEOUT)
    opts = ap.parse_args()
    work, out = opts.workdir, opts.outdir
    plan = lab_plan()
    scenario = SCENARIOS[opts.scenario]

    # amlprobe: exactly the check the lab runs, as a fresh process, against the running lab.
    args = argparse.Namespace(
        timeout=opts.timeout, format="json", output=str(out / "check.json"), color="never", verbose=False
    )
    argv = [str(Path(sys.executable).parent / "amlprobe"), *check_argv(scenario, work, args)]
    env = lab_environment(scenario, work)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    checks: list[dict[str, float]] = []
    for _ in range(opts.runs):
        m = run(argv, env=env)
        report = json.loads((out / "check.json").read_text())
        if opts.scenario == "healthy" and report["status"] != "ok":
            raise SystemExit(f"the healthy check was not ok: {report['status']}")
        failed = report["summary"]["failed"]
        checks.append({"wall": m.wall, "cpu": m.cpu, "run_ms": report["duration_ms"], "failed": failed})
    if opts.scenario != "healthy":
        (out / "lab-peer.json").write_text(json.dumps({"checks": checks}))
        return
    passed = {c["id"] for c in report["checks"] if c["status"] == "pass"}
    config, probes = blackbox_probes(plan, str(work / "ca-bundle.pem"), passed)
    (out / "blackbox.yml").write_text(json.dumps(config))  # JSON is YAML

    mounts = (
        f"mount --bind {work / 'resolv.conf'} /etc/resolv.conf && mount --bind {work / 'hosts'} /etc/hosts && "
        f"exec prometheus-blackbox-exporter --config.file={out / 'blackbox.yml'} --web.listen-address={LISTEN} "
        "--log.level=error"
    )
    blackbox: list[dict[str, float]] = []
    for _ in range(opts.runs):
        start = time.perf_counter()
        proc = subprocess.Popen(["unshare", "--mount", "sh", "-c", mounts], stderr=subprocess.PIPE)
        try:
            ready = wait_ready(proc)
            wall, ok = fire(probes)
            if ok != len(probes):
                raise SystemExit(f"blackbox_exporter: only {ok} of {len(probes)} probes succeeded")
            blackbox.append({"probes_wall": wall, "with_start": time.perf_counter() - start, "ready": ready})
        finally:
            proc.terminate()
            proc.wait()
    kinds = sorted({m for m, _ in probes}, key=lambda m: (m.startswith("dns"), m))
    (out / "lab-peer.json").write_text(
        json.dumps(
            {
                "checks": checks,
                "blackbox": blackbox,
                "probes": len(probes),
                "kinds": {k: sum(1 for m, _ in probes if m == k) for k in kinds if not k.startswith("dns")}
                | {"dns": sum(1 for m, _ in probes if m.startswith("dns"))},
                "plan_checks": len(plan.checks),
            }
        )
    )


if __name__ == "__main__":
    main()
