"""Row "50 silent + 50 closed UDP ports, timeout 2 s": amlprobe against nmap -sU.

    python3 bench/bench_udp.py [--runs 5]

Inside a private network namespace: on 127.0.0.1, ports 40000-40049 are bound by a process that
reads and never answers (open|filtered), ports 40050-40099 are closed (the kernel answers ICMP
port unreachable). amlprobe (``check --timeout 2``) and ``nmap -sU -Pn -n`` (default retries, and
``--max-retries 0``) probe the same ports as fresh processes, interleaved run by run. Prints
medians, ratios, how long amlprobe waited on the silent ports and from what, and whether every
state agrees with nmap's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Measured, clean_env, in_netns, load, median, prepare, ratio, run, say
from bench_fanout import nmap_states

SILENT = list(range(40000, 40050))
CLOSED = list(range(40050, 40100))
_STATE = {"udp_open_filtered": "open|filtered", "udp_closed": "closed", "udp_open": "open", "udp_filtered": "filtered"}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    py = prepare({"nmap": "nmap"})
    in_netns([])
    ports = SILENT + CLOSED
    with tempfile.TemporaryDirectory(prefix="amlprobe-bench-") as tmp:
        work = Path(tmp)
        sink = subprocess.Popen(
            [py, str(ROOT / "bench" / "_peers.py"), "udp", *map(str, SILENT)], stdout=subprocess.PIPE, env=clean_env()
        )
        try:
            assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
            report = work / "report.json"
            ours_argv = [str(Path(py).parent / "amlprobe"), "check", "--no-env", "-q", "--timeout", "2"]
            ours_argv += ["--format", "json", "--output", str(report)]
            (work / "targets.txt").write_text("".join(f"udp://127.0.0.1:{p}\n" for p in ports))
            ours_argv += ["--targets", str(work / "targets.txt")]
            nmap = ["nmap", "-sU", "-Pn", "-n", "-p", f"{ports[0]}-{ports[-1]}", "127.0.0.1"]
            ours: list[Measured] = []
            default: list[Measured] = []
            zero: list[Measured] = []
            agree = True
            for i in range(opts.runs):
                ours.append(run(ours_argv, env=clean_env()))
                default.append(run([*nmap, "-oX", str(work / "nmap.xml")]))
                zero.append(run([*nmap, "--max-retries", "0", "-oX", str(work / "nmap0.xml")]))
                data = json.loads(report.read_text())
                mine = {(c["target"]["host"], c["target"]["port"]): _STATE.get(c["reason"], c["reason"])
                        for c in data["checks"]}
                theirs = nmap_states(work / "nmap.xml")
                if mine != theirs:
                    agree = False
                    diff = [k for k in mine if mine[k] != theirs.get(k)][:5]
                    say(f"run {i}: states differ from nmap's: {[(k, mine[k], theirs.get(k)) for k in diff]}")
        finally:
            sink.terminate()
            sink.wait()
    silent = [c for c in data["checks"] if c["reason"] == "udp_open_filtered"]
    waits = [c["udp"]["wait_ms"] for c in silent]
    print(f"{len(SILENT)} silent + {len(CLOSED)} closed UDP ports on 127.0.0.1, timeout 2 s, "
          f"medians of {opts.runs} runs ({load()})")
    for name, ms in (("amlprobe check", ours), ("nmap -sU", default), ("nmap -sU --max-retries 0", zero)):
        print(f"  {name:<26} wall {median([m.wall for m in ms]):6.3f} s  CPU {median([m.cpu for m in ms]):6.3f} s")
    wall = median([m.wall for m in ours])
    print(f"  ratio to nmap -sU: {ratio(wall, median([m.wall for m in default]))}; "
          f"to nmap -sU --max-retries 0: {ratio(wall, median([m.wall for m in zero]))}")
    print(f"  silent ports: waited median {statistics.median(waits):.0f} ms after the first datagram "
          f"(timeout 2000 ms), from: {silent[0]['udp']['wait_basis']}")
    print(f"  port states agree with nmap on all {len(ports)}: {'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()
