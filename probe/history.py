"""A run history: one compact JSON line per run, appended; the last line tells what changed.

Several cron runs may share the file. Each appends its line with one ``write`` on an
``O_APPEND`` descriptor, which the kernel places at the end in one piece, so lines never
interleave; an advisory lock orders amlprobe's own writers while one checks for a fragment.
A last line that is missing, empty or unreadable (a crashed writer, a hand edit) only means
"no previous run": the history never makes a run fail.

Every lock is taken with a bounded wait (LOCK_WAIT). A lock held longer (a stuck reader, a second
timer run hung on a dead NFS server) raises HistoryLocked: the caller skips the history and says
so, and the report is never held back. The file must be a regular file (probe.files): a FIFO
named as the history would block every open.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from typing import Any, BinaryIO

from probe.files import NotRegularFile, open_regular
from probe.model import Change, Report, Status

HISTORY_VERSION = 1
_BLOCK = 8192
# A line longer than this is not one amlprobe wrote (tens of bytes per check).
_MAX_LINE = 16 * 1024 * 1024
# A writer holds the lock for one small write; seconds of waiting mean the holder is stuck.
LOCK_WAIT = 2.0


class HistoryLocked(OSError):
    """Another process held the history's lock for longer than the bounded wait."""


def lock(fd: int, operation: int, path: str | os.PathLike[str], wait: float = LOCK_WAIT) -> None:
    """``flock(fd, operation)`` waiting at most ``wait`` seconds. Raises HistoryLocked."""
    deadline = time.monotonic() + wait
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HistoryLocked(
                    errno.EWOULDBLOCK, f"locked by another process for more than {wait:g} s", os.fspath(path)
                ) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)


def run_entry(report: Report) -> dict[str, Any]:
    """The compact summary of a run kept in the history."""
    return {
        "v": HISTORY_VERSION,
        "started_at": report.started_at.isoformat(),
        "status": report.status.value,
        "duration_ms": round(report.duration_ms, 1),
        "checks": {c.id: [c.status.value, c.reason.value] for c in report.checks},
        "findings": [[f.id, f.severity.value] for f in report.findings],
    }


def encode_entry(entry: dict[str, Any]) -> bytes:
    return (json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _last_line(path: str | os.PathLike[str], wait: float) -> bytes | None:
    """The last line, or None when there is none to read; HistoryLocked and NotRegularFile propagate."""
    try:
        fd = open_regular(path)
    except NotRegularFile:
        raise
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        # Wait (bounded) for a writer that is copying its line in, rather than read half of it.
        lock(fh.fileno(), fcntl.LOCK_SH, path, wait)
        try:
            return _scan_back(fh)
        except OSError:
            return None


def _scan_back(fh: BinaryIO) -> bytes | None:
    """Read blocks from the end until the last non-empty line is whole."""
    pos, buf = fh.seek(0, os.SEEK_END), b""
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        stripped = buf.rstrip(b"\r\n")
        cut = stripped.rfind(b"\n")
        if cut >= 0:
            return stripped[cut + 1 :]
        if len(buf) > _MAX_LINE:
            return None
    return buf.rstrip(b"\r\n")


def parse_entry(raw: bytes) -> dict[str, tuple[Status, str]] | None:
    """Check statuses from one history line; None when the line is not a usable entry."""
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    checks = entry.get("checks") if isinstance(entry, dict) else None
    if not isinstance(checks, dict):
        return None
    out: dict[str, tuple[Status, str]] = {}
    for check_id, pair in checks.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            return None
        try:
            out[check_id] = (Status(pair[0]), pair[1])
        except ValueError:
            return None
    return out


def read_previous(path: str | os.PathLike[str], wait: float = LOCK_WAIT) -> dict[str, tuple[Status, str]] | None:
    """The check statuses of the last run in the history, or None if there is none to compare with.

    Raises HistoryLocked (the lock stayed taken past ``wait``) or NotRegularFile.
    """
    raw = _last_line(path, wait)
    return None if not raw else parse_entry(raw)


def changes_since(previous: dict[str, tuple[Status, str]] | None, report: Report) -> list[Change]:
    """Checks whose status differs from the previous run's, including checks that appeared or went away."""
    if previous is None:
        return []
    changes: list[Change] = []
    current = {c.id for c in report.checks}
    for c in report.checks:
        before = previous.get(c.id)
        if before is None:
            changes.append(Change(id=c.id, before=None, after=c.status, reason_after=c.reason.value))
        elif before[0] is not c.status:
            changes.append(
                Change(id=c.id, before=before[0], after=c.status, reason_before=before[1], reason_after=c.reason.value)
            )
    for check_id, (status, reason) in previous.items():
        if check_id not in current:
            changes.append(Change(id=check_id, before=status, after=None, reason_before=reason))
    return changes


def append_entry(path: str | os.PathLike[str], entry: dict[str, Any], wait: float = LOCK_WAIT) -> None:
    """Append one line in a single write. Raises OSError (HistoryLocked, NotRegularFile, ...)."""
    data = encode_entry(entry)
    fd = open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # Another writer's line grows the file while it is copied in: without the lock, its
        # half-written last byte would look like a crashed writer's fragment.
        lock(fd, fcntl.LOCK_EX, path, wait)
        size = os.fstat(fd).st_size
        # A writer that died mid-line left a fragment: start on a fresh line rather than extend it.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal; the rest still belongs to this line
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)
