"""Publishing a run beside its report: the history file, node_exporter's textfile, a Pushgateway.

Unusable options are refused before probing (``check_monitoring_args``); after the report, a failure
to publish is one warning on stderr and never changes the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from probe.errors import UsageError
from probe.sanitize import printable
from probe.style import GENERIC, ReportStyle

if TYPE_CHECKING:
    from probe.model import Report

# node_exporter's textfile collector reads *.prom; write_atomic's temporary ends in .tmp.
TEXTFILE_NAME = "amlprobe.prom"


def add_monitoring_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("monitoring (a failure to publish is one line on stderr and never changes the exit code)")
    g.add_argument(
        "--textfile-dir",
        metavar="DIR",
        help="also write DIR/amlprobe.prom (atomically) for node_exporter's textfile collector "
        "(env AMLPROBE_TEXTFILE_DIR)",
    )
    g.add_argument(
        "--pushgateway",
        metavar="URL",
        help="also push the metrics to this Prometheus Pushgateway (job amlprobe, instance = host name; "
        "never through HTTP(S)_PROXY)",
    )
    g.add_argument(
        "--history",
        metavar="FILE",
        help="append a one-line summary of the run to FILE and report the checks whose status changed "
        "since the previous line",
    )


def check_output_target(option: str, path: str) -> None:
    """Refuse, before probing, a file the report could not replace (a device, a FIFO, no directory)."""
    from probe.atomic import check_writable_target  # noqa: PLC0415 - per command (start-up)

    try:
        check_writable_target(path)
    except OSError as exc:
        raise UsageError(f"{option} '{printable(path, 200)}': {exc.strerror or exc}") from None


def check_monitoring_args(args: argparse.Namespace) -> None:
    """Refuse unusable publishing options before probing, not after a minute of work."""
    if getattr(args, "output", None):
        from probe.formats import check_output_name  # noqa: PLC0415 - per command (start-up)

        check_output_name("--output", args.output)
        check_output_target("--output", args.output)
    textfile_dir = getattr(args, "textfile_dir", None)
    if textfile_dir is not None:
        if not os.path.isdir(textfile_dir):
            raise UsageError(f"--textfile-dir {textfile_dir!r}: no such directory")
        check_output_target("--textfile-dir", os.path.join(textfile_dir, TEXTFILE_NAME))
    history = getattr(args, "history", None)
    if history is not None:
        if os.path.isdir(history):
            raise UsageError(f"--history {history!r}: is a directory")
        _check_parent_dir("--history", history)
        check_output_target("--history", history)  # a regular file, or nothing yet; never a dangling link
    url = getattr(args, "pushgateway", None)
    if url is not None:
        from urllib.parse import urlsplit  # noqa: PLC0415 - per command (start-up)

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(f"--pushgateway {url!r}: expected http(s)://host:port")


def _check_parent_dir(option: str, path: str) -> None:
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError(f"{option} {path!r}: its directory does not exist")


def _warn(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"amlprobe: warning: {printable(message, 2000)}", file=sys.stderr)


def read_history(report: Report, args: argparse.Namespace) -> bool:
    """Fill ``report.changes`` from the history, before the report is written; False: skip the history.

    The lock wait is bounded: a history locked past it is skipped, with a warning in the report.
    """
    from probe.history import changes_since, read_previous  # noqa: PLC0415 - per command (start-up)

    history = getattr(args, "history", None)
    if not history:
        return False
    try:
        report.changes = changes_since(read_previous(history), report)
    except OSError as exc:
        report.warnings.append(f"--history {history}: {exc.strerror or exc}: the history was skipped")
        return False
    return True


async def publish(
    report: Report, args: argparse.Namespace, *, append_history: bool, style: ReportStyle = GENERIC
) -> None:
    """After the report: history line, textfile and Pushgateway. Failures warn, never change the exit code."""
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.atomic import write_atomic  # noqa: PLC0415 - per command (start-up)
    from probe.history import append_entry, run_entry  # noqa: PLC0415 - per command (start-up)
    from probe.prometheus import PushError, push, render_prometheus  # noqa: PLC0415 - per command (start-up)

    history = getattr(args, "history", None)
    if history and append_history:
        try:
            append_entry(history, run_entry(report))
        except OSError as exc:
            _warn(f"--history {history!r}: {exc.strerror or exc}")
    textfile_dir = getattr(args, "textfile_dir", None)
    url = getattr(args, "pushgateway", None)
    if not textfile_dir and not url:
        return
    metrics = render_prometheus(report, label_keys=style.metric_labels)
    if textfile_dir:
        path = os.path.join(textfile_dir, TEXTFILE_NAME)
        try:
            write_atomic(path, metrics)
        except OSError as exc:
            _warn(f"--textfile-dir: {path}: {exc.strerror or exc}")
    if url:
        try:
            await push(url, metrics, instance=socket.gethostname() or "unknown")
        except PushError as exc:
            _warn(f"--pushgateway: {exc}")
