"""One self-overwriting progress line on a terminal's stderr while the probes run."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from probe.model import CheckResult


class Progress:
    """One self-overwriting line on a terminal's stderr: "probing 37/52 ... 2 failed"."""

    INTERVAL = 0.1

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.done = self.failed = 0
        self.shown = False
        self._last = 0.0
        utf8 = (getattr(stream, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self._dots = "\u2026" if utf8 else "..."

    def update(self, result: CheckResult) -> None:
        self.done += 1
        if result.status.value == "fail":
            self.failed += 1
        now = time.monotonic()
        # Hundreds of checks can finish within milliseconds: redraw at most ten times a second.
        if now - self._last < self.INTERVAL and self.done < self.total:
            return
        self._last = now
        line = f"probing {self.done}/{self.total}"
        if self.failed:
            line += f" {self._dots} {self.failed} failed"
        self._write(f"\r\x1b[2K{line}")
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self._write("\r\x1b[2K")
            self.shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            pass


def progress_for(args: argparse.Namespace, total: int) -> Progress | None:
    """A progress line on a terminal's stderr, unless --quiet or stderr is not a terminal."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None
    return Progress(total, sys.stderr)
