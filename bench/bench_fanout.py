"""Rows "1,000 / 5,000 TCP targets, half silently dropped" and "1,000 targets under ulimit -n 64".

    python3 bench/bench_fanout.py [--runs 3] [--sizes 1000,5000]

Inside a private network namespace: hosts x 100 ports, half the hosts behind a route to a
neighbour nobody owns (a real silent drop), half on 127.0.0.x where every even port listens
(open) and every odd port refuses (closed). amlprobe (``check --timeout 1``, default settings
otherwise) and ``nmap -sT -Pn -n`` (default retries, and ``--max-retries 0``) scan the same
(host, port) pairs as fresh processes, interleaved run by run.

Prints, per size: medians of wall time, CPU and peak RSS, the ratios to nmap from the same runs,
whether every port state agrees with nmap's (open = pass, closed = tcp_refused, filtered =
tcp_timeout), and the kernel RTT amlprobe reports for the open ports against the RTT of a lone
connection (the truth on loopback). Then 1,000 targets under RLIMIT_NOFILE 64 (soft and hard):
every target must finish inside the default 60 s deadline with no tcp_error.

Goals (issue 13): 1,000 targets at most 1.0 x nmap (default retries) and 2 x nmap --max-retries 0;
5,000 grow linearly; peak RSS at most 60 MB at 1,000 and 100 MB at 5,000; the RTT within 1 ms.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Measured, clean_env, in_netns, load, median, prepare, ratio, run, say

PORTS = list(range(30000, 30100))
DROP_NET = "198.18.0.0/16"  # benchmarking range (RFC 2544), only ever routed inside the namespace
NETNS_SETUP = [
    "ip link add amlb0 type veth peer name amlb1",
    "ip link set amlb0 up",
    "ip link set amlb1 up",
    "ip addr add 10.255.254.1/30 dev amlb0",
    "ip neigh add 10.255.254.2 lladdr 02:00:00:00:00:98 dev amlb0 nud permanent",
    f"ip route add {DROP_NET} via 10.255.254.2 dev amlb0",
]
_STATE = {"ok": "open", "tcp_refused": "closed", "tcp_timeout": "filtered"}


def layout(size: int) -> tuple[list[str], list[str]]:
    """(answering hosts, dropped hosts) for ``size`` targets of 100 ports each."""
    hosts = size // len(PORTS)
    answering = [f"127.0.0.{i + 1}" for i in range(hosts // 2)]
    dropped = [f"198.18.0.{i + 1}" for i in range(hosts - hosts // 2)]
    return answering, dropped


def amlprobe_argv(py: str, hosts: list[str], report: Path) -> list[str]:
    listed = report.with_suffix(".targets")
    listed.write_text("".join(f"tcp://{h}:{p}\n" for h in hosts for p in PORTS))
    argv = [str(Path(py).parent / "amlprobe"), "check", "--no-env", "-q", "--timeout", "1"]
    return [*argv, "--format", "json", "--output", str(report), "--targets", str(listed)]


def nmap_argv(hosts: list[str], out: Path, retries: int | None) -> list[str]:
    argv = ["nmap", "-sT", "-Pn", "-n", "-p", f"{PORTS[0]}-{PORTS[-1]}", "-oX", str(out)]
    if retries is not None:
        argv += ["--max-retries", str(retries)]
    return argv + hosts


def amlprobe_states(report: dict[str, Any]) -> dict[tuple[str, int], str]:
    states = {}
    for check in report["checks"]:
        t = check["target"]
        states[(t["host"], t["port"])] = _STATE.get(check["reason"], check["reason"])
    return states


def _port_list(text: str) -> list[int]:
    ports: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        ports.extend(range(int(first), int(last or first) + 1))
    return ports


def nmap_states(xml_path: Path) -> dict[tuple[str, int], str]:
    """Every (host, port) nmap reports, including those it folds into <extraports>."""
    states = {}
    for host in ET.parse(xml_path).getroot().iter("host"):
        addr = host.find("address")
        assert addr is not None
        ip = addr.get("addr", "")
        for extra in host.iter("extraports"):
            for reasons in extra.iter("extrareasons"):
                for port in _port_list(reasons.get("ports", "")):
                    states[(ip, port)] = extra.get("state", "")
        for port_el in host.iter("port"):
            state = port_el.find("state")
            assert state is not None
            states[(ip, int(port_el.get("portid", "0")))] = state.get("state", "")
    return states


def lone_rtt_ms(host: str, port: int, samples: int = 20) -> float:
    """The kernel's RTT of single, unhurried connections: the truth the reported figures are held to."""
    offset = 8 + 15 * 4
    values = []
    for _ in range(samples):
        with socket.create_connection((host, port)) as s:
            raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            values.append(int.from_bytes(raw[offset : offset + 4], sys.byteorder) / 1000.0)
    return statistics.median(values)


def describe(name: str, ms: list[Measured]) -> str:
    return (
        f"{name:<28} wall {median([m.wall for m in ms]):6.3f} s  CPU {median([m.cpu for m in ms]):6.3f} s  "
        f"peak RSS {median([m.max_rss_kb for m in ms]) / 1024:5.0f} MB"
    )


def bench_size(py: str, size: int, runs: int, work: Path) -> dict[str, float]:
    answering, dropped = layout(size)
    hosts = answering + dropped
    report = work / f"report-{size}.json"
    ours: list[Measured] = []
    nmap_default: list[Measured] = []
    nmap_zero: list[Measured] = []
    agree = True
    for i in range(runs):
        a = run(amlprobe_argv(py, hosts, report), env=clean_env())
        if a.returncode not in (0, 1, 2):
            raise SystemExit(f"amlprobe failed ({a.returncode}): {a.stderr.decode()[-2000:]}")
        ours.append(a)
        n1 = run(nmap_argv(hosts, work / "nmap-default.xml", None))
        nmap_default.append(n1)
        n0 = run(nmap_argv(hosts, work / "nmap-zero.xml", 0))
        nmap_zero.append(n0)
        mine = amlprobe_states(json.loads(report.read_text()))
        theirs = nmap_states(work / "nmap-default.xml")
        if len(mine) != size or mine != theirs:
            agree = False
            diff = [k for k in mine if mine.get(k) != theirs.get(k)][:5]
            say(f"run {i}: states differ from nmap's, e.g. {[(k, mine.get(k), theirs.get(k)) for k in diff]}")
    last = json.loads(report.read_text())
    rtts = [c["rtt_ms"] for c in last["checks"] if c["reason"] == "ok" and c.get("rtt_ms") is not None]
    walls = [c["phases_ms"]["connect"] for c in last["checks"] if c["reason"] == "ok"]
    truth = lone_rtt_ms(answering[0], PORTS[0])
    worst = max(abs(r - truth) for r in rtts) if rtts else float("nan")
    print(f"{size} TCP targets ({len(answering)} hosts answering, {len(dropped)} dropped, 100 ports each), "
          f"timeout 1 s, medians of {runs} runs ({load()})")
    print("  " + describe("amlprobe check", ours))
    print("  " + describe("nmap -sT -Pn", nmap_default))
    print("  " + describe("nmap -sT -Pn --max-retries 0", nmap_zero))
    wall_a = median([m.wall for m in ours])
    w1, w0 = median([m.wall for m in nmap_default]), median([m.wall for m in nmap_zero])
    print(f"  ratio to nmap: {ratio(wall_a, w1)} (goal at 1,000: at most 1.0); "
          f"to nmap --max-retries 0: {ratio(wall_a, w0)} (goal: at most 2)")
    print(f"  port states agree with nmap on all {size}: {'yes' if agree else 'NO'}")
    print(f"  open ports: kernel RTT reported median {statistics.median(rtts):.3f} ms, worst off the lone-connection "
          f"RTT ({truth:.3f} ms) by {worst:.3f} ms (goal: within 1 ms); connect phase wall time median "
          f"{statistics.median(walls):.1f} ms, max {max(walls):.1f} ms")
    return {"wall": wall_a, "cpu": median([m.cpu for m in ours]), "rss_mb": median([m.max_rss_kb for m in ours]) / 1024}


def bench_low_nofile(py: str, work: Path) -> None:
    answering, dropped = layout(1000)
    report = work / "report-nofile.json"
    m = run(amlprobe_argv(py, answering + dropped, report), env=clean_env(), nofile=64)
    data = json.loads(report.read_text())
    reasons: dict[str, int] = {}
    for c in data["checks"]:
        reasons[c["reason"]] = reasons.get(c["reason"], 0) + 1
    print(f"1000 TCP targets under RLIMIT_NOFILE 64 (soft and hard), default 60 s deadline: wall {m.wall:.2f} s, "
          f"deadline exceeded: {data['deadline_exceeded']}, tcp_error: {reasons.get('tcp_error', 0)}, "
          f"concurrency {data['environment']['settings']['concurrency']}; reasons {reasons}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--skip-nofile", action="store_true")
    opts = ap.parse_args()
    py = prepare({"nmap": "nmap", "prlimit": "util-linux"})
    in_netns(NETNS_SETUP)
    with tempfile.TemporaryDirectory(prefix="amlprobe-bench-") as tmp:
        work = Path(tmp)
        open_ports = [str(p) for p in PORTS if p % 2 == 0]
        server = subprocess.Popen(
            [py, str(ROOT / "bench" / "_peers.py"), "tcp", *open_ports], stdout=subprocess.PIPE, env=clean_env()
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
            figures = {int(s): bench_size(py, int(s), opts.runs, work) for s in opts.sizes.split(",")}
            if 1000 in figures and 5000 in figures:
                a, b = figures[1000], figures[5000]
                print(
                    f"5,000 against 1,000 targets: wall x{b['wall'] / a['wall']:.2f}, CPU x{b['cpu'] / a['cpu']:.2f}, "
                    f"peak RSS x{b['rss_mb'] / a['rss_mb']:.2f} (5x the work)"
                )
            if not opts.skip_nofile:
                bench_low_nofile(py, work)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
