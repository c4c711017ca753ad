"""The command line as a user runs it: ``python -m amlprobe`` in a subprocess, with a clean environment."""

from __future__ import annotations

import os
import select
import subprocess
import sys

# A clean environment: no proxy or CA variables from the machine running the tests, and none of its
# amlprobe settings (a reference DNS, an IMDS URL, a textfile directory: lab.run drops them likewise).
ENV = {
    k: v
    for k, v in os.environ.items()
    if "proxy" not in k.lower() and not k.startswith(("SSL_", "REQUESTS_", "AMLPROBE_"))
}
# The same, never on an Azure VM whatever machine runs the tests (discovery asks no IMDS).
NOT_AZURE_ENV = {**ENV, "AMLPROBE_DMI_PATH": "/nonexistent/amlprobe-test-dmi"}
# The command, as argv's head.
AMLPROBE = [sys.executable, "-m", "amlprobe"]

# A workspace to plan for.
WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
INPUTS = ["--region", "eastus", "--workspace-id", WS, "--storage-account", "labsa"]


def amlprobe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMLPROBE, *args], capture_output=True, text=True, timeout=timeout, env=ENV, check=False)


def _drain(fd: int, *, wait: float) -> str:
    """What a pseudo-terminal's master holds: read until the child closes its end (EIO), or until nothing
    more arrives within ``wait`` seconds."""
    chunks = []
    while select.select([fd], [], [], wait)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


def on_a_terminal(*args: str, terminal: str = "stdout", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run amlprobe with ``terminal`` ("stdout" or "stderr") on a pseudo-terminal and the other stream on
    a pipe; return (exit code, what the pipe got, what the terminal got)."""
    master, slave = os.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, terminal: slave}
    try:
        proc = subprocess.Popen([*AMLPROBE, *args], stdin=subprocess.DEVNULL, env=env or ENV, text=True, **streams)
        os.close(slave)
        if terminal == "stdout":  # the report: read it as it comes, or a long one would block the child
            tty = _drain(master, wait=60)
            piped = proc.communicate(timeout=60)[1]
        else:  # the progress line: a few bytes, read once the run is over
            piped = proc.communicate(timeout=60)[0]
            tty = _drain(master, wait=0.2)
    finally:
        os.close(master)
    return proc.returncode, piped, tty
