"""File descriptors: the soft limit is raised, and running out (EMFILE) is back-pressure, never a result.

The runs are real ``amlprobe check`` processes under a low RLIMIT_NOFILE, against real peers on
loopback: listening TCP ports (open), released ones (refused), closed UDP ports (ICMP), and
listeners whose accept queue is full, where a connection attempt holds its socket until the
timeout (so that more sockets are wanted at once than the limit allows).
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from probe import descriptors
from tests.helpers.cli import ENV
from tests.helpers.ports import closed_udp_port, free_port


def _limit(soft: int, hard: int) -> object:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _check(targets: list[str], out: Path, *, soft: int, hard: int, extra: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
    argv = [sys.executable, "-m", "amlprobe", "check", "--no-env", "-q", "--timeout", "1", "--format", "json"]
    argv += ["--output", str(out), *extra, *(a for t in targets for a in ("--target", t))]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        preexec_fn=_limit(soft, hard),
        check=False,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def peers(full_backlog: Callable[..., int]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Targets and the reason each must get: 60 open, 60 refused and 80 unanswered TCP ports, 30
    closed UDP ports."""
    listeners = []
    expected: dict[str, str] = {}
    for _ in range(80):
        expected[f"tcp://127.0.0.1:{full_backlog()}"] = "tcp_timeout"
    for _ in range(60):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        listeners.append(s)
        expected[f"tcp://127.0.0.1:{s.getsockname()[1]}"] = "ok"
    for _ in range(60):
        expected[f"tcp://127.0.0.1:{free_port()}"] = "tcp_refused"
    for _ in range(30):
        expected[f"udp://127.0.0.1:{closed_udp_port()}"] = "udp_closed"
    yield list(expected), expected
    for s in listeners:
        s.close()


def _reasons(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    found = {}
    for c in report["checks"]:
        t = c["target"]
        found[f"{t['protocol']}://{t['host']}:{t['port']}"] = c["reason"]
    return found


def test_running_out_of_descriptors_is_waited_out_not_reported(
    tmp_path: Path, peers: tuple[list[str], dict[str, str]]
) -> None:
    # 500 probes admitted at once with 64 descriptors in all: the 80 unanswered attempts alone want
    # more sockets than there are, and socket() fails with EMFILE. Before issue 13 those probes
    # were reported as tcp_error (or udp_filtered): a local limit blamed on the network.
    targets, expected = peers
    report = _check(targets, tmp_path / "r.json", soft=64, hard=64, extra=("--concurrency", "500"))
    assert not report["deadline_exceeded"]
    assert _reasons(report) == expected


def test_default_concurrency_fits_a_low_limit(tmp_path: Path, peers: tuple[list[str], dict[str, str]]) -> None:
    targets, expected = peers
    report = _check(targets, tmp_path / "r.json", soft=64, hard=64)
    assert 1 <= report["environment"]["settings"]["concurrency"] < 64
    assert _reasons(report) == expected


def test_the_soft_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    # The concurrency the report states follows the descriptors available after raising 64 to 1024.
    report = _check([f"tcp://127.0.0.1:{free_port()}"], tmp_path / "r.json", soft=64, hard=1024)
    assert report["environment"]["settings"]["concurrency"] > 64


def test_exhausted_is_recognised() -> None:
    import errno

    assert descriptors.exhausted(OSError(errno.EMFILE, "Too many open files"))
    assert descriptors.exhausted(OSError(errno.ENFILE, "Too many open files in system"))
    assert not descriptors.exhausted(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    with pytest.raises(descriptors.DescriptorsExhausted):
        descriptors.check(OSError(errno.EMFILE, "Too many open files"))
