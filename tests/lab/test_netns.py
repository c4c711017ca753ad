"""Without user namespaces and without root, the lab says so in one line and exits 3.

No kernel here can be made to refuse unshare(2), so this one case patches the system call's
wrapper; everything after it (the message, the exit code, no traceback) is the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys

from lab.topology import privatelink_name

_NO_NAMESPACES = """
import errno, os, sys
import lab.netns
lab.netns._unshare = lambda flags: errno.EPERM
os.getuid = lambda: 1000
from amlprobe.cli import main
sys.exit(main(["lab", "--format", "json"]))
"""


def test_no_namespaces_no_root_is_one_line_exit_3() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _NO_NAMESPACES],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "user namespaces or root" in lines[0]


def test_privatelink_names() -> None:
    assert privatelink_name("sa.blob.core.windows.net", "privatelink.blob.core.windows.net") == (
        "sa.privatelink.blob.core.windows.net"
    )
    assert privatelink_name("kv.vault.azure.net", "privatelink.vaultcore.azure.net") == (
        "kv.privatelink.vaultcore.azure.net"
    )
    assert privatelink_name("g.workspace.eastus.api.azureml.ms", "privatelink.api.azureml.ms") == (
        "g.workspace.eastus.privatelink.api.azureml.ms"
    )
