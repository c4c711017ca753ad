"""SIGINT, SIGTERM and SIGHUP end a run the same way; a second signal exits at once. Real signals,
a real ``amlprobe check`` subprocess, loopback peers that hang (a listener that never answers TLS),
and a real second process holding the history's lock.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.history import LOCK_WAIT
from tests.helpers.cli import ENV
from tests.helpers.report import validated
from tests.helpers.threaded import ThreadedServer, hold


@pytest.fixture
def silent() -> Iterator[ThreadedServer]:
    with ThreadedServer(hold) as server:
        yield server


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "amlprobe", "check", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_json(port: int, history: Path) -> subprocess.CompletedProcess[str]:
    argv = ["check", "--target", f"tcp://127.0.0.1:{port}", "--format", "json", "--history", str(history)]
    return subprocess.run(
        [sys.executable, "-m", "amlprobe", *argv], capture_output=True, text=True, timeout=30, env=ENV, check=False
    )


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def locked_history(tmp_path: Path) -> Iterator[Path]:
    """A history file whose lock another process holds (a stuck reader, a hung second run)."""
    history = tmp_path / "history.jsonl"
    history.write_text("")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(history),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield history
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_signal_ends_the_run_with_an_interrupted_report(
    sig: signal.Signals, silent: ThreadedServer, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    proc = start("--target", f"tls://127.0.0.1:{silent.port}", "--timeout", "30", "--output", str(report), cwd=tmp_path)
    assert silent.accepted.wait(15), "the probe never connected"
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 3, err
    parsed = validated(report.read_text())
    assert parsed.interrupted and parsed.status.value == "unknown"
    assert [c.reason.value for c in parsed.checks] == ["interrupted"]
    assert temporaries(tmp_path) == []


def test_a_second_signal_exits_at_once(silent: ThreadedServer, locked_history: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = start(
        "--target", f"tls://127.0.0.1:{silent.port}", "--timeout", "30", "--output", str(report),
        "--history", str(locked_history), cwd=tmp_path,
    )  # fmt: skip
    assert silent.accepted.wait(15)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # now waiting, bounded, for the history's lock
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 1.0
    assert proc.returncode == 3
    assert "again: exiting now" in err
    assert temporaries(tmp_path) == []


def test_a_second_signal_during_the_write_removes_the_temporary_file(tmp_path: Path) -> None:
    # A disk so slow that fsync takes seconds: the temporary file exists while the signals land.
    script = textwrap.dedent(
        """
        import os, sys, time
        from probe.atomic import write_atomic
        from probe.interrupt import INTERRUPT
        INTERRUPT.install()
        real_fsync = os.fsync
        def slow_fsync(fd):
            if os.fsync is slow_fsync:  # the file's own fsync, not the directory's after it
                os.fsync = real_fsync
                print("writing", flush=True)
                time.sleep(float(sys.argv[2]))
            real_fsync(fd)
        os.fsync = slow_fsync
        write_atomic(sys.argv[1], "new report")
        print("written", INTERRUPT.requested, flush=True)
        """
    )
    target = tmp_path / "r.json"
    target.write_text("previous report")

    def run(signals: list[signal.Signals]) -> tuple[int, str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(target), "3"], env=ENV, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        assert len(temporaries(tmp_path)) == 1
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.1)
        out, _ = proc.communicate(timeout=15)
        return proc.returncode, out

    code, out = run([signal.SIGTERM])  # one signal: the write still completes, atomically
    assert (code, out.strip()) == (0, "written True")
    assert target.read_text() == "new report" and temporaries(tmp_path) == []
    target.write_text("previous report")
    code, out = run([signal.SIGTERM, signal.SIGHUP])  # a second: out at once, nothing left behind
    assert code == 3 and "written" not in out
    assert target.read_text() == "previous report" and temporaries(tmp_path) == []


def test_a_locked_history_is_skipped_with_a_warning_and_never_holds_the_report_back(
    locked_history: Path, tmp_path: Path
) -> None:
    with ThreadedServer(hold) as peer:
        started = time.monotonic()
        out = check_json(peer.port, locked_history)
    assert time.monotonic() - started < LOCK_WAIT * 2 + 5
    assert out.returncode == 0, out.stderr
    report = validated(out.stdout)
    (warning,) = report.warnings
    assert "locked by another process" in warning and "history was skipped" in warning
    assert locked_history.read_text() == ""  # skipped: no line appended behind the holder's back
    # Once the lock is free, the history works again.
    with ThreadedServer(hold) as peer:
        out = check_json(peer.port, tmp_path / "free.jsonl")
    assert out.returncode == 0 and validated(out.stdout).warnings == []
    assert json.loads((tmp_path / "free.jsonl").read_text())["status"] == "ok"
