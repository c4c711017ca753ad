"""What every bench script shares: tools, an installed amlprobe, namespaces, and measuring a process.

Network safety: every target of every bench is 127.0.0.0/8 or an address inside a private network
namespace the bench creates itself (``unshare --user --map-root-user --net``), from which no packet
can leave. Nothing here consults the machine's resolver.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A venv with amlprobe installed the way users install it (pip install ., bytecode compiled):
# an editable install or PYTHONDONTWRITEBYTECODE would add start-up costs users never see.
VENV = ROOT / "bench" / ".venv"
_INSIDE = "AMLPROBE_BENCH_NETNS"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ensure_tools(tools: dict[str, str]) -> None:
    """Install the Debian packages providing ``tools`` (command -> package) that are missing."""
    missing = sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench: needs {', '.join(missing)}: run as root, or apt-get install -y {' '.join(missing)}")
    say(f"bench: installing {', '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def inside_netns() -> bool:
    return os.environ.get(_INSIDE) == "1"


def prepare(tools: dict[str, str] | None = None) -> str:
    """Install what the bench needs (outside the namespace, where the package sources are) and
    return the bench venv's interpreter."""
    if inside_netns():
        return str(VENV / "bin" / "python")
    ensure_tools(tools or {})
    return python()


def python() -> str:
    """The bench venv's interpreter, (re)installing amlprobe from this tree into it first."""
    exe = VENV / "bin" / "python"
    if not exe.exists():
        say(f"bench: creating {VENV.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "trustme"], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: installing amlprobe into {VENV} failed:\n{proc.stderr}")
    # The build leaves these in the tree.
    for leftover in (ROOT / "build", *ROOT.glob("*.egg-info")):
        shutil.rmtree(leftover, ignore_errors=True)
    return str(exe)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a bench runs a command in: no proxies, bytecode writable, nothing inherited that matters."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def in_netns(setup: Sequence[str]) -> None:
    """Re-run this script inside a fresh user + network namespace (only ``lo``, plus ``setup``).

    Returns in the child; the parent exits with the child's status.
    """
    if inside_netns():
        return
    script = "set -e\nip link set lo up\n" + "\n".join(setup) + "\nexec " + shlex.join([sys.executable, *sys.argv])
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script],
        env={**os.environ, _INSIDE: "1"},
        check=False,
    )
    raise SystemExit(proc.returncode)


@dataclass
class Measured:
    wall: float
    cpu: float
    max_rss_kb: int
    returncode: int
    stdout: bytes
    stderr: bytes


_WRAPPER = (
    "import json, os, resource, sys, time\n"
    "t = time.perf_counter(); pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "_, status, ru = os.wait4(pid, 0); wall = time.perf_counter() - t\n"
    "print(json.dumps({'wall': wall, 'cpu': ru.ru_utime + ru.ru_stime, 'rss': ru.ru_maxrss,"
    " 'rc': os.waitstatus_to_exitcode(status)}), file=sys.stderr)\n"
)


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    nofile: int | None = None,
    timeout: float = 600.0,
) -> Measured:
    """Run ``argv`` once and measure exactly that process: wall, CPU (user + system), peak RSS.

    ``nofile``: run it with RLIMIT_NOFILE soft = hard = nofile (as ``ulimit -n`` would).
    """
    prefix: list[str] = []
    if nofile is not None:
        prefix = ["prlimit", f"--nofile={nofile}:{nofile}", "--"]
    wrapper = [sys.executable, "-c", _WRAPPER, *prefix, *argv]
    proc = subprocess.run(wrapper, env=env, cwd=cwd, capture_output=True, timeout=timeout, check=False)
    *lines, last = proc.stderr.rstrip(b"\n").split(b"\n") or [b"{}"]
    facts = json.loads(last)
    return Measured(facts["wall"], facts["cpu"], facts["rss"], facts["rc"], proc.stdout, b"\n".join(lines))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} on {os.cpu_count()} cores"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"
