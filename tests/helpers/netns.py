"""Run a command inside a throwaway user + network namespace, where no packet can leave.

Inside, only ``lo`` exists (brought up here); ``setup`` lines are ``ip`` commands that build the
topology a test needs, e.g. a route to nowhere for silent drops.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

# A veth pair with a permanent neighbour whose MAC nobody owns: packets routed there vanish,
# which is a real silent drop (the "dummy" link type is not available on every kernel).
DROP_SETUP = [
    "ip link add amlp0 type veth peer name amlp1",
    "ip link set amlp0 up",
    "ip link set amlp1 up",
    "ip addr add 10.255.255.1/30 dev amlp0",
    "ip neigh add 10.255.255.2 lladdr 02:00:00:00:00:99 dev amlp0 nud permanent",
]


def drop_route(cidr: str) -> list[str]:
    return [f"ip route add {cidr} via 10.255.255.2 dev amlp0"]


def netns_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


requires_netns = pytest.mark.skipif(not netns_available(), reason="user+network namespaces unavailable")


def run_in_netns(
    setup: list[str], argv: list[str], *, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = "set -e\nip link set lo up\n" + "\n".join(setup) + "\nexec " + shlex.join(argv) + "\n"
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def python_in_netns(setup: list[str], code: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` (with this interpreter) inside a fresh namespace."""
    return run_in_netns(setup, [sys.executable, "-c", code], **kw)  # type: ignore[arg-type]
