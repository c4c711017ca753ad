"""Each command imports what it needs, when it needs it (issue 13): read from ``python -X importtime``.

How long start-up takes is measured in bench/bench_startup.py; this checks what is loaded.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import INPUTS
from tests.helpers.cli import NOT_AZURE_ENV as ENV

ENGINE = ("asyncio", "aiohttp", "cryptography", "dns", "psutil")


def imported(*args: str, cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "amlprobe", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", proc.stderr, re.MULTILINE))


def top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_version_imports_neither_the_engine_nor_pydantic(tmp_path: Path) -> None:
    loaded = top(imported("--version", cwd=tmp_path))
    assert loaded.isdisjoint({*ENGINE, "pydantic", "pydantic_core"}), loaded & {*ENGINE, "pydantic"}


@pytest.mark.parametrize("args", [["schema"], ["plan", *INPUTS], ["plan", *INPUTS, "--format", "json"]])
def test_schema_and_plan_import_no_network_code(tmp_path: Path, args: list[str]) -> None:
    # plan promises not to touch the network: it needs neither an event loop nor a prober.
    loaded = imported(*args, cwd=tmp_path)
    assert top(loaded).isdisjoint(ENGINE), top(loaded) & set(ENGINE)
    network = ("probers", "transport", "registry")
    assert not {m for m in loaded if m.startswith("probe.") and m.split(".")[1] in network}
