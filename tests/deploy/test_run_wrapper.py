"""deploy/amlprobe-run, the periodic check's wrapper, against the real CLI, loopback peers and a syslog socket."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY, LOG_ERR, LOG_NOTICE, LOG_USER, LOG_WARNING, REPO, Syslog, base_env
from tests.helpers.ports import free_port, listening_socket

WRAPPER = DEPLOY / "amlprobe-run"


@pytest.fixture
def amlprobe_bin(tmp_path: Path) -> Path:
    """This tree's amlprobe CLI as one executable, the way the venv's console script is one."""
    launcher = tmp_path / "bin" / "amlprobe"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m amlprobe "$@"\n')
    launcher.chmod(0o755)
    return launcher


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    out = {"state": tmp_path / "state", "config": tmp_path / "etc"}
    out["config"].mkdir()
    return out


def run(
    amlprobe_bin: Path,
    dirs: dict[str, Path],
    syslog: Syslog,
    check_args: str | None,
    *extra: str,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = base_env(dirs["state"].parent)
    env.update(
        AMLPROBE_BIN=str(amlprobe_bin),
        AMLPROBE_STATE_DIR=str(dirs["state"]),
        AMLPROBE_CONFIG_DIR=str(dirs["config"]),
        AMLPROBE_SYSLOG_SOCKET=str(syslog.path),
        AMLPROBE_DEADLINE="10",
    )
    if check_args is not None:
        env["AMLPROBE_CHECK_ARGS"] = f"{check_args} --timeout 1 --no-env"
    env.update(env_extra or {})
    return subprocess.run(
        [str(WRAPPER), *extra],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=dirs["state"].parent,
    )


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # 3.10 does not read "Z"


def history(dirs: dict[str, Path]) -> list[dict[str, object]]:
    return [json.loads(line) for line in (dirs["state"] / "history.jsonl").read_text().splitlines()]


def test_status_changes_are_logged_once_at_their_priority(
    amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog
) -> None:
    up = listening_socket()
    ok = f"--target tcp://127.0.0.1:{up.getsockname()[1]}"
    down = f"--target tcp://127.0.0.1:{free_port()}"
    report = dirs["state"] / "report.json"
    try:
        first = run(amlprobe_bin, dirs, syslog, ok)
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"amlprobe: OK (0 findings, 0 of 1 checks failed) report={report}\n"
        msgs = syslog.messages()
        assert [(f, s) for f, s, _ in msgs] == [(LOG_USER, LOG_NOTICE)]
        assert "amlprobe: status none -> ok: 0 findings" in msgs[0][2]

        again = run(amlprobe_bin, dirs, syslog, ok)
        assert again.returncode == 0
        assert syslog.messages() == [], "an unchanged status is not logged again"

        broken = run(amlprobe_bin, dirs, syslog, down)
        assert broken.returncode == 2
        assert broken.stdout.startswith("amlprobe: CRITICAL (0 findings, 1 of 1 checks failed) report=")
        msgs = syslog.messages()
        assert [(f, s) for f, s, _ in msgs] == [(LOG_USER, LOG_ERR)]
        assert "status ok -> critical" in msgs[0][2]
        assert json.loads(report.read_text())["status"] == "critical"

        mended = run(amlprobe_bin, dirs, syslog, ok)
        assert mended.returncode == 0
        assert [(s, "status critical -> ok" in t) for _, s, t in syslog.messages()] == [(LOG_NOTICE, True)]
    finally:
        up.close()
    assert (dirs["state"] / "status").read_text() == "ok\n"
    # Every run appended to the history and refreshed the node_exporter textfile.
    assert [h["status"] for h in history(dirs)] == ["ok", "ok", "critical", "ok"]
    metrics = (dirs["state"] / "textfile" / "amlprobe.prom").read_text()
    assert 'amlprobe_run_status_info{status="ok"} 1' in metrics


def test_bad_input_is_unknown_and_keeps_the_last_report(
    amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog
) -> None:
    up = listening_socket()
    try:
        assert run(amlprobe_bin, dirs, syslog, f"--target tcp://127.0.0.1:{up.getsockname()[1]}").returncode == 0
    finally:
        up.close()
    syslog.messages()
    report = dirs["state"] / "report.json"
    before = report.stat()
    bad = run(amlprobe_bin, dirs, syslog, "--target nonsense://x")
    assert bad.returncode == 3
    assert bad.stdout.startswith("amlprobe: UNKNOWN (no report written: amlprobe: error: ")
    assert "amlprobe: error:" in bad.stderr, "amlprobe's own message is passed on"
    msgs = syslog.messages()
    assert [(s, "status ok -> unknown" in t) for _, s, t in msgs] == [(LOG_WARNING, True)]
    after = report.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert json.loads(report.read_text())["status"] == "ok"


def test_a_run_holding_the_lock_makes_the_next_one_skip(
    amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog
) -> None:
    dirs["state"].mkdir()
    with open(dirs["state"] / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        skipped = run(amlprobe_bin, dirs, syslog, f"--target tcp://127.0.0.1:{free_port()}")
        assert time.monotonic() - started < 10
    assert skipped.returncode == 0
    assert skipped.stdout == ""
    assert [(s, "still running" in t) for _, s, t in syslog.messages()] == [(LOG_WARNING, True)]
    assert not (dirs["state"] / "report.json").exists()


def test_env_file_is_parsed_not_sourced(
    amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog, tmp_path: Path
) -> None:
    up = listening_socket()
    port = up.getsockname()[1]
    pwned = tmp_path / "pwned"
    (dirs["config"] / "amlprobe.env").write_text(
        "# comment\n"
        f'AMLPROBE_CHECK_ARGS="--target tcp://127.0.0.1:{port} --timeout 1 --no-env"\n'
        f"AMLPROBE_HISTORY_MAX_LINES=$(touch {pwned})\n"
        "LD_PRELOAD=/nonexistent/evil.so\n"
        "CI_NAME=ci-from-env-file\n"
    )
    try:
        # The process environment wins: AMLPROBE_HISTORY_MAX_LINES from it, not the file's command.
        done = run(amlprobe_bin, dirs, syslog, None, env_extra={"AMLPROBE_HISTORY_MAX_LINES": "5"})
        assert done.returncode == 0, done.stderr
        assert "LD_PRELOAD" not in done.stderr and "evil.so" not in done.stderr
        # Without the override the file's value is taken literally, refused as a number, never run.
        refused = run(amlprobe_bin, dirs, syslog, None)
    finally:
        up.close()
    assert refused.returncode == 3
    assert not pwned.exists()
    assert [s for _, s, _ in syslog.messages()] == [LOG_NOTICE, LOG_ERR]


def test_the_cli_settings_in_the_env_file_reach_the_check(
    amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog
) -> None:
    # setup-compute-instance.sh AMLPROBE_TIMEOUT=2.5 keeps the setting in amlprobe.env; the wrapper
    # exports it and the CLI reads it (issue 11): no need to spell it inside AMLPROBE_CHECK_ARGS.
    with listening_socket() as up:
        (dirs["config"] / "amlprobe.env").write_text(
            f"AMLPROBE_CHECK_ARGS=--target tcp://127.0.0.1:{up.getsockname()[1]} --no-env\n"
            "AMLPROBE_TIMEOUT=2.5\nAMLPROBE_CONCURRENCY=2\n"
        )
        done = run(amlprobe_bin, dirs, syslog, None)
    assert done.returncode == 0, done.stderr
    settings = json.loads((dirs["state"] / "report.json").read_text())["environment"]["settings"]
    assert (settings["timeout_s"], settings["deadline_s"], settings["concurrency"]) == (2.5, 10.0, 2)


def test_history_is_trimmed_to_the_newest_lines(amlprobe_bin: Path, dirs: dict[str, Path], syslog: Syslog) -> None:
    up = listening_socket()
    target = f"--target tcp://127.0.0.1:{up.getsockname()[1]}"
    try:
        for _ in range(3):
            done = run(amlprobe_bin, dirs, syslog, target, "--quiet", env_extra={"AMLPROBE_HISTORY_MAX_LINES": "2"})
            assert done.returncode == 0
            assert done.stdout == ""
    finally:
        up.close()
    lines = history(dirs)
    assert len(lines) == 2
    report = json.loads((dirs["state"] / "report.json").read_text())
    assert when(str(lines[-1]["started_at"])) == when(report["started_at"])


def test_rejects_unknown_arguments(dirs: dict[str, Path], syslog: Syslog, amlprobe_bin: Path) -> None:
    for args in (["--bogus"], ["--splay", "soon"]):
        done = run(amlprobe_bin, dirs, syslog, None, *args)
        assert done.returncode == 3
        assert "amlprobe-run:" in done.stderr
    assert not os.path.exists(dirs["state"] / "report.json")
