"""Row "amlprobe --version / plan / schema": start-up against ``python -c pass``.

    python3 bench/bench_startup.py [--runs 30] [--importtime]

hyperfine runs each command (installed as users install it: pip install ., bytecode compiled) with
warm-up; medians are printed with the goals of issue 13 (--version at most 0.08 s, plan and schema
at most 0.15 s). ``--importtime`` also lists each command's largest imports (python -X importtime).
No network: plan never asks IMDS, and the bench points the DMI tag at a file that does not exist.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_env, load, prepare

GOALS = {"--version": 0.08, "plan": 0.15, "schema": 0.15}


def importtime(py: str, args: list[str], env: dict[str, str]) -> list[tuple[int, str]]:
    argv = [py, "-X", "importtime", "-m", "amlprobe", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    rows = re.findall(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", proc.stderr, re.MULTILINE)
    return sorted(((int(us), name) for us, indent, name in rows if len(indent) <= 2), reverse=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--importtime", action="store_true")
    opts = ap.parse_args()
    py = prepare({"hyperfine": "hyperfine"})
    amlprobe = str(Path(py).parent / "amlprobe")
    env = clean_env(AMLPROBE_DMI_PATH="/nonexistent/amlprobe-bench-dmi")
    commands = {"python -c pass": [py, "-c", "pass"]} | {f"amlprobe {c}": [amlprobe, c] for c in GOALS}
    with tempfile.TemporaryDirectory(prefix="amlprobe-bench-") as tmp:
        out = Path(tmp) / "hyperfine.json"
        subprocess.run(
            ["hyperfine", "-N", "--warmup", "3", "--runs", str(opts.runs), "--export-json", str(out),
             *(" ".join(argv) for argv in commands.values())],
            check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL,
        )
        results = json.loads(out.read_text())["results"]
    print(f"Start-up, medians of {opts.runs} runs after 3 warm-ups ({load()})")
    base = results[0]["median"]
    for name, res in zip(commands, results, strict=True):
        goal = next((g for c, g in GOALS.items() if name.endswith(c)), None)
        verdict = f"  (goal: at most {goal:.2f} s: {'met' if res['median'] <= goal else 'NOT met'})" if goal else ""
        print(f"  {name:<18} {res['median']:.3f} s  (x{res['median'] / base:.1f} python -c pass){verdict}")
    if opts.importtime:
        for c in GOALS:
            top = importtime(py, [c], env)[:8]
            print(f"  largest imports of `amlprobe {c}`: " + ", ".join(f"{n} {us / 1000:.0f} ms" for us, n in top))


if __name__ == "__main__":
    main()
