"""Row "1,000 TLS handshakes to a loopback server": amlprobe against a minimal asyncio script.

    python3 bench/bench_tls.py [--runs 5] [--targets 1000]

Inside a private network namespace, one server process (bench/_peers.py tls) answers on 1,000
ports of 127.0.0.1 with a certificate for 127.0.0.1 from a test CA; both programs make the same
verified handshakes to every port, all at once, as fresh processes. Prints medians of wall time
and CPU (user + system) and their ratios, run pair by pair. The goal (issue 13): at most
1.2 x the baseline in CPU and in wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, clean_env, in_netns, load, median, prepare, ratio, run

FIRST_PORT = 20000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--targets", type=int, default=1000)
    opts = ap.parse_args()
    py = prepare()
    in_netns([])
    ports = [FIRST_PORT + i for i in range(opts.targets)]
    targets = [f"127.0.0.1:{p}" for p in ports]
    with tempfile.TemporaryDirectory(prefix="amlprobe-bench-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [py, "-c", _MAKE_CERTS, str(work), "127.0.0.1"], check=True, cwd=ROOT / "bench", env=clean_env()
        )
        server = subprocess.Popen(
            [py, str(ROOT / "bench" / "_peers.py"), "tls", str(work / "cert.pem"), str(work / "key.pem"),
             *map(str, ports)],
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
            amlprobe = [
                str(Path(py).parent / "amlprobe"), "check", "--no-env", "-q", "--timeout", "5",
                "--ca-bundle", str(work / "ca.pem"), "--format", "json", "--output", str(work / "report.json"),
                "--targets", str(work / "targets.txt"),
            ]
            (work / "targets.txt").write_text("".join(f"tls://{t}\n" for t in targets))
            baseline = [py, str(ROOT / "bench" / "_baseline_tls.py"), str(work / "ca.pem"), *targets]
            ours, theirs = [], []
            for _ in range(opts.runs):
                a = run(amlprobe, env=clean_env(), cwd=work)
                b = run(baseline, env=clean_env(), cwd=work)
                report = json.loads((work / "report.json").read_text())
                passed = report["summary"]["passed"]
                if passed != len(targets) or int(b.stdout) != len(targets):
                    raise SystemExit(f"not every handshake succeeded: amlprobe {passed}, baseline {b.stdout!r}")
                ours.append(a)
                theirs.append(b)
        finally:
            server.terminate()
            server.wait()
    wall_a, wall_b = median([m.wall for m in ours]), median([m.wall for m in theirs])
    cpu_a, cpu_b = median([m.cpu for m in ours]), median([m.cpu for m in theirs])
    print(f"{len(targets)} TLS handshakes to a loopback server, medians of {opts.runs} runs ({load()})")
    rss = median([m.max_rss_kb for m in ours]) / 1024
    print(f"  amlprobe check:         wall {wall_a:.3f} s  CPU {cpu_a:.3f} s  peak RSS {rss:.0f} MB")
    rss_b = median([m.max_rss_kb for m in theirs]) / 1024
    print(f"  minimal asyncio script: wall {wall_b:.3f} s  CPU {cpu_b:.3f} s  peak RSS {rss_b:.0f} MB")
    print(f"  ratio: wall {ratio(wall_a, wall_b)}  CPU {ratio(cpu_a, cpu_b)}  (goal: at most 1.2 each)")


_MAKE_CERTS = """
import sys, trustme
from pathlib import Path
work = Path(sys.argv[1])
ca = trustme.CA()
cert = ca.issue_cert(*sys.argv[2:])
ca.cert_pem.write_to_path(str(work / "ca.pem"))
cert.private_key_pem.write_to_path(str(work / "key.pem"))
cert.cert_chain_pems[0].write_to_path(str(work / "cert.pem"))
for pem in cert.cert_chain_pems[1:]:
    pem.write_to_path(str(work / "cert.pem"), append=True)
"""


if __name__ == "__main__":
    main()
