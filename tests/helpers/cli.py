"""The command line as a user runs it: ``python -m amlprobe`` in a subprocess, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys

# A clean environment: no proxy or CA variables from the machine running the tests.
ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith(("SSL_", "REQUESTS_"))}
# The same, never on an Azure VM whatever machine runs the tests (discovery asks no IMDS).
NOT_AZURE_ENV = {**ENV, "AMLPROBE_DMI_PATH": "/nonexistent/amlprobe-test-dmi"}
# The command, as argv's head.
AMLPROBE = [sys.executable, "-m", "amlprobe"]

# A workspace to plan for.
WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
INPUTS = ["--region", "eastus", "--workspace-id", WS, "--storage-account", "labsa"]


def amlprobe(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMLPROBE, *args], capture_output=True, text=True, timeout=timeout, env=ENV, check=False)
