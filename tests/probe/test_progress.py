"""The live progress line: on a terminal's stderr only, cleared at the end, never in captured output."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from probe.model import CheckResult, Protocol, Status, Target
from probe.progress import Progress
from probe.reasons import Reason
from tests.helpers.cli import amlprobe, on_a_terminal
from tests.helpers.report import validated


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def _result(status: Status) -> CheckResult:
    target = Target(host="127.0.0.1", port=1, protocol=Protocol.TCP)
    return CheckResult(id="x", target=target, status=status, reason=Reason.OK, detail="d")


def test_progress_line_counts_and_clears() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    progress = Progress(3, stream)
    progress.INTERVAL = 0.0
    for status in (Status.PASS, Status.FAIL, Status.FAIL):
        progress.update(_result(status))
    progress.clear()
    text = raw.getvalue().decode()
    frames = text.split("\r\x1b[2K")
    assert frames == ["", "probing 1/3", "probing 2/3 \u2026 1 failed", "probing 3/3 \u2026 2 failed", ""]


def test_progress_shown_on_a_terminal() -> None:
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(4)]
    targets = [a for s in listeners for a in ("--target", f"tcp://127.0.0.1:{s.getsockname()[1]}")]
    try:
        code, stdout, tty = on_a_terminal(
            "check", *targets, "--target", "tcp://127.0.0.1:1", "--format", "json", terminal="stderr"
        )
    finally:
        for s in listeners:
            s.close()
    assert code == 2
    validated(stdout)
    assert "probing " in tty and "/5" in tty
    assert "1 failed" in tty
    assert tty.endswith("\r\x1b[2K")  # cleared at the end


def test_no_progress_with_quiet_or_without_a_terminal(listener: int) -> None:
    code, _, tty = on_a_terminal(
        "check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json", "-q", terminal="stderr"
    )
    assert code == 0 and tty == ""
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json")
    assert out.returncode == 0 and out.stderr == ""
