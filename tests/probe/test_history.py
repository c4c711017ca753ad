"""The run history: one line per run, transitions from the last line, robust to a damaged file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from probe.history import append_entry, changes_since, read_previous, run_entry
from probe.model import CheckResult, OverallStatus, Protocol, Report, Status, Target
from probe.reasons import Reason
from tests.helpers.cli import ENV, amlprobe
from tests.helpers.report import validated


def _report(*checks: tuple[str, Status, Reason]) -> Report:
    return Report(
        status=OverallStatus.OK,
        started_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        duration_ms=10.0,
        checks=[
            CheckResult(
                id=cid, target=Target(host="127.0.0.1", port=1, protocol=Protocol.TCP), status=st, reason=r, detail="d"
            )
            for cid, st, r in checks
        ],
    )


def test_changes_cover_transitions_appearances_and_disappearances() -> None:
    previous = {
        "same": (Status.PASS, "ok"),
        "broke": (Status.PASS, "ok"),
        "gone": (Status.FAIL, "tcp_timeout"),
        "other-reason": (Status.FAIL, "tcp_timeout"),
    }
    report = _report(
        ("same", Status.PASS, Reason.OK),
        ("broke", Status.FAIL, Reason.TCP_REFUSED),
        ("new", Status.WARN, Reason.OK),
        ("other-reason", Status.FAIL, Reason.TCP_REFUSED),
    )
    got = [(c.id, c.before, c.after, c.reason_before, c.reason_after) for c in changes_since(previous, report)]
    assert got == [
        ("broke", Status.PASS, Status.FAIL, "ok", "tcp_refused"),
        ("new", None, Status.WARN, None, "ok"),
        ("gone", Status.FAIL, None, "tcp_timeout", None),
    ]
    assert changes_since(None, report) == []


def test_missing_empty_and_corrupt_last_lines_mean_no_previous_run(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    assert read_previous(path) is None
    path.write_bytes(b"")
    assert read_previous(path) is None
    path.write_bytes(b"\n\n")
    assert read_previous(path) is None
    good = json.dumps(run_entry(_report(("a", Status.PASS, Reason.OK))))
    for bad in (
        "{not json",
        '{"v":1}',
        '{"checks":{"a":["bogus","ok"]}}',
        '{"checks":{"a":"pass"}}',
        "[1,2]",
        "\x00\xff",
    ):
        path.write_text(f"{good}\n{bad}\n")
        assert read_previous(path) is None, bad
    path.write_text(f"{good}\n\n")  # blank lines after the last entry are not an entry
    assert read_previous(path) == {"a": (Status.PASS, "ok")}


def test_a_fragment_left_by_a_crashed_writer_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"v":1,"checks":{"a":["pa')  # no newline: a writer died mid-line
    assert read_previous(path) is None
    report = _report(("a", Status.FAIL, Reason.TCP_REFUSED))
    report.changes = changes_since(read_previous(path), report)
    append_entry(path, run_entry(report))
    assert report.changes == []
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["checks"] == {"a": ["fail", "tcp_refused"]}
    assert read_previous(path) == {"a": (Status.FAIL, "tcp_refused")}


def test_last_line_found_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    many = _report(*[(f"check-{i:05d}", Status.PASS, Reason.OK) for i in range(2000)])  # one ~60 KB line
    for _ in range(5):
        append_entry(path, run_entry(many))
    last = _report(*[(f"check-{i:05d}", Status.FAIL, Reason.TCP_TIMEOUT) for i in range(1500)])
    append_entry(path, run_entry(last))
    previous = read_previous(path)
    assert previous is not None and len(previous) == 1500
    assert set(previous.values()) == {(Status.FAIL, "tcp_timeout")}


_APPENDER = """
import sys
from probe.history import append_entry
n = int(sys.argv[2])
entry = {"v": 1, "writer": n, "checks": {f"c{i}": ["pass", "ok"] for i in range(400)}}
for _ in range(20):
    append_entry(sys.argv[1], entry)
"""


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(path), str(n)], env=ENV, cwd=Path.cwd())
        for n in range(6)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    entries = [json.loads(line) for line in lines[:-1]]  # every line is one whole entry
    assert len(entries) == 120
    assert sorted({e["writer"] for e in entries}) == list(range(6))


def _listen(port: int = 0) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def test_three_runs_report_the_transitions(tmp_path: Path) -> None:
    history = tmp_path / "runs.jsonl"
    steady = _listen()
    flapping = _listen()
    port = flapping.getsockname()[1]
    target = f"tcp:127.0.0.1:{port}"
    args = ["check", "--target", f"tcp://127.0.0.1:{port}", "--target", f"tcp://127.0.0.1:{steady.getsockname()[1]}"]
    args += ["--history", str(history), "--timeout", "1"]
    try:
        first = amlprobe(*args, "--format", "json")
        assert first.returncode == 0, first.stderr
        assert validated(first.stdout).changes == []  # nothing to compare with yet

        flapping.close()
        second = amlprobe(*args, "--format", "json")
        assert second.returncode == 2, second.stderr
        report = validated(second.stdout)
        assert [(c.id, c.before, c.after, c.reason_after) for c in report.changes] == [
            (target, Status.PASS, Status.FAIL, "tcp_refused")
        ]

        flapping = _listen(port)
        third = amlprobe(*args, "--format", "table")
        assert third.returncode == 0, third.stderr
        assert "Changes since the previous run" in third.stdout
        assert f"{target}: fail -> pass" in third.stdout
    finally:
        steady.close()
        flapping.close()
    lines = history.read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["ok", "critical", "ok"]
    assert json.loads(lines[1])["checks"][target] == ["fail", "tcp_refused"]


def test_unwritable_history_warns_and_keeps_the_exit_code(tmp_path: Path) -> None:
    with _listen() as s:
        out = amlprobe(
            "check",
            "--target",
            f"tcp://127.0.0.1:{s.getsockname()[1]}",
            "--format",
            "json",
            "--history",
            str(tmp_path / "missing-dir" / "h.jsonl"),
        )
    assert out.returncode == 3 and "--history" in out.stderr  # refused before probing: a usage error
    history = tmp_path / "h.jsonl"
    history.mkdir()
    with _listen() as s:
        out = amlprobe("check", "--target", f"tcp://127.0.0.1:{s.getsockname()[1]}", "--history", str(history))
    assert out.returncode == 3 and "is a directory" in out.stderr
