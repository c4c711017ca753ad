"""`amlprobe lab --keep` stays up to be explored, and leaves nothing behind when stopped."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import ENV
from tests.helpers.netns import requires_netns
from tests.helpers.report import validated

pytestmark = requires_netns


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    end = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen: {lines}")


def _private_tmp(tmp_path: Path) -> dict[str, str]:
    """An environment whose TMPDIR is ours alone, so leftovers are the lab's and nobody else's."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {**ENV, "TMPDIR": str(tmp)}


def _leftovers(env: dict[str, str]) -> list[str]:
    return glob.glob(os.path.join(env["TMPDIR"], "*"))


@pytest.mark.skipif(shutil.which("nsenter") is None or os.geteuid() != 0, reason="needs nsenter as root")
def test_keep_can_be_entered_then_stops_clean(tmp_path: Path) -> None:
    env = _private_tmp(tmp_path)
    # The report goes to a file: a pipe nobody reads would fill up and block the lab.
    proc = subprocess.Popen(
        [sys.executable, "-m", "amlprobe", "lab", "--keep", "--format", "json", "--output", str(tmp_path / "r.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = _wait_for_line(proc, "(a shell inside it:", 30)
        # The hint runs word for word, as one command that enters the lab first (pasted on its own, a
        # check would probe the real network); it names this program as it was run (python -m amlprobe).
        try_cmd = next(x for x in lines if "check --dns-server" in x).strip()
        assert shlex.split(try_cmd)[:1] == ["nsenter"]
        assert shlex.split(try_cmd)[-2:] == ["--target", "tls://login.microsoftonline.com"]
        out = subprocess.run(
            ["sh", "-c", f"{try_cmd} --format json"],
            capture_output=True,
            text=True,
            timeout=30,
            env=ENV,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        (check,) = validated(out.stdout).checks
        assert check.tls is not None and check.tls.verified
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode is not None
    assert _leftovers(env) == []


def test_interrupted_lab_writes_partial_report_and_cleans_up(tmp_path: Path) -> None:
    env = _private_tmp(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amlprobe",
            "lab",
            "--scenario",
            "nsg-blocks-443",
            "--timeout",
            "20",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "AMLPROBE_LAB_TIMING": "1"},
    )
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    report = validated(out)
    assert report.interrupted, err
    assert any(c.reason.value == "interrupted" for c in report.checks)
    assert _leftovers(env) == []


def test_an_interrupted_run_raises_nothing_from_the_checks_it_cut_off(tmp_path: Path) -> None:
    # Issue 11: Ctrl-C while the VNet's custom DNS stays silent. Azure DNS has answered by then; the custom DNS's
    # checks are cut off. The run is unknown and incomplete, and no finding rests on what the signal cut off
    # (it used to call a reference answer, compared with an interrupted one, a failure of its own).
    env = _private_tmp(tmp_path)
    argv = [sys.executable, "-m", "amlprobe", "lab", "--scenario", "dns-timeout", "--timeout", "20", "--format", "json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    report = validated(out)
    assert report.interrupted and report.incomplete and report.status.value == "unknown"
    configured = [c for c in report.checks if c.id.startswith("dns:") and not c.reason.value.startswith("skipped_")]
    assert configured and all(c.reason.value == "interrupted" for c in configured)
    answered = [c for c in report.checks if c.id.startswith("dns@reference:") and c.observed is not None]
    assert answered, "Azure DNS should have answered before the signal"
    assert all(c.status.value == "skip" and c.detail.startswith("Not judged") for c in answered)
    cut = {c.id for c in report.checks if c.reason.value == "interrupted"}
    assert [f.id for f in report.findings if set(f.evidence) & cut] == []
    assert [f.id for f in report.findings if f.severity.value != "info"] == []
    assert _leftovers(env) == []
