"""The README's quick start, and every hint it prints, work word for word right after it.

The quick start is ``python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/amlprobe lab``:
the venv is not activated, so a hint that says ``amlprobe ...`` fails with "command not found". Here
the venv the tests run in stands for the fresh one (its ``bin/amlprobe`` is the same console script),
called by the same relative path, from a shell whose PATH does not have the venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.run import HINT_SCENARIO
from lab.scenarios import SCENARIOS
from tests.helpers.cli import ENV as CLEAN_ENV
from tests.helpers.netns import requires_netns
from tests.helpers.report import validated

pytestmark = requires_netns

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPT = BIN / "amlprobe"
# Not activated: PATH is the system's only.
ENV = {
    **CLEAN_ENV,
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
needs_venv = pytest.mark.skipif(not SCRIPT.exists(), reason="the tests do not run from a venv with amlprobe installed")


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` as a person pastes it into a shell."""
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120, check=False
    )


def quick_start_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    return re.search(r"```sh\n(python3 -m venv .*)\n```", section).group(1)  # type: ignore[union-attr]


def test_the_readme_quick_start_ends_in_the_venvs_amlprobe_lab() -> None:
    steps = quick_start_command().split(" && ")
    assert steps == ["python3 -m venv .venv", ".venv/bin/pip install -q .", ".venv/bin/amlprobe lab"]
    # The README shows the next step the lab prints, word for word.
    assert f".venv/bin/amlprobe lab --scenario {HINT_SCENARIO}" in (REPO / "README.md").read_text(encoding="utf-8")
    assert HINT_SCENARIO in SCENARIOS


@needs_venv
def test_every_hint_of_the_quick_start_runs_word_for_word() -> None:
    cwd = BIN.parent.parent  # the directory that holds the venv, as the clone holds .venv
    program = os.path.relpath(SCRIPT, cwd)  # .venv/bin/amlprobe
    assert shell("command -v amlprobe", cwd).returncode != 0, "the venv must not be on PATH here"

    first = shell(f"{program} lab", cwd)
    assert first.returncode == 0, first.stderr
    assert validated(first.stdout).status.value == "ok"
    hints = re.findall(r"(?:Now break something: |all scenarios: )([^\n)]+)", first.stderr)
    assert hints == [f"{program} lab --scenario {HINT_SCENARIO}", f"{program} lab --list"], first.stderr

    broken = shell(hints[0], cwd)
    assert broken.returncode == 2, broken.stderr
    assert "outbound-443-blocked" in {f.id for f in validated(broken.stdout).findings}
    listed = shell(hints[1], cwd)
    assert listed.returncode == 0 and f"Lab scenarios ({program} lab --scenario NAME):" in listed.stdout
    assert shell(f"{program} --version", cwd).stdout.startswith("amlprobe ")


def _lab(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m amlprobe lab`` with ``env`` over the clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab"],
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_lab_that_cannot_set_up_its_network_says_so_in_one_line(tmp_path: Path) -> None:
    # An `ip` that refuses (as an old iproute2 or a seccomp filter would): the real one, made to fail.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ip").write_text("#!/bin/sh\necho 'RTNETLINK answers: Operation not permitted' >&2\nexit 2\n")
    (fake / "ip").chmod(0o755)
    out = _lab({"PATH": f"{fake}:{ENV['PATH']}"})
    assert out.returncode == 3
    assert out.stderr == (
        "amlprobe: error: configuring the lab network failed: RTNETLINK answers: Operation not permitted\n"
    )


def test_peers_that_cannot_start_say_why_in_one_line(tmp_path: Path) -> None:
    # The peers' process imports aiohttp (its web servers); the lab's own process never does. An
    # aiohttp that cannot be imported fails the peers only, while the lab plans: one line, exit 3.
    fake = tmp_path / "shadow" / "aiohttp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no aiohttp here')\n")
    out = _lab({"PYTHONPATH": f"{tmp_path / 'shadow'}:{REPO}"})
    assert (out.returncode, out.stderr) == (
        3,
        "amlprobe: error: the lab's peers failed: ImportError: no aiohttp here\n",
    ), out


def test_the_lab_colours_by_the_same_flag(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab", "--format", "table", "--color", "always"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("\x1b[32mOK: ") and out.stdout.rstrip().splitlines()[-1].startswith("\x1b[32mOK: ")
