"""Output formats: one registry, used by every command that prints a report (check, bundle, lab), and
``add_format_argument``, the one definition of ``--format`` (whose choices are a registry's keys).

Adding a format is one entry here (and its renderer). Renderers are imported when used: building
the command line must not load pydantic (``amlprobe --version``, bench/bench_startup.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.errors import UsageError
from probe.sanitize import printable
from probe.style import GENERIC, ReportStyle

if TYPE_CHECKING:
    from probe.diff import ReportDiff
    from probe.model import Report


@dataclass(frozen=True)
class RenderOptions:
    style: ReportStyle = GENERIC
    colour: bool = False


Renderer = Callable[["Report", RenderOptions], str]


def _json(report: Report, options: RenderOptions) -> str:
    from probe.render import render_json  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_json(report)


def _table(report: Report, options: RenderOptions) -> str:
    from probe.render import render_table  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_table(report, colour=options.colour, style=options.style)


def _prometheus(report: Report, options: RenderOptions) -> str:
    from probe.prometheus import render_prometheus  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_prometheus(report, label_keys=options.style.metric_labels)


FORMATS: dict[str, Renderer] = {"json": _json, "table": _table, "prometheus": _prometheus}


def _diff_json(diff: ReportDiff) -> str:
    from probe.diff import render_diff_json  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_diff_json(diff)


def _diff_table(diff: ReportDiff) -> str:
    from probe.diff import render_diff_table  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_diff_table(diff)


# What `amlprobe diff` prints: the comparison of two reports, not a report.
DIFF_FORMATS: dict[str, Callable[[ReportDiff], str]] = {"json": _diff_json, "table": _diff_table}
FORMAT_NOTES = {"prometheus": "prometheus: text exposition format"}


def add_format_argument(
    p: argparse.ArgumentParser, formats: Mapping[str, Any] = FORMATS, default: str | None = None
) -> None:
    """``--format``, its choices the keys of ``formats`` (a report's, a plan's, a diff's renderers)."""
    when = f"default {default}" if default else "default: table on a terminal, else json"
    notes = "".join(f"; {FORMAT_NOTES[name]}" for name in sorted(formats) if name in FORMAT_NOTES)
    p.add_argument("--format", choices=sorted(formats), default=default, help=f"output format ({when}){notes}")


def chosen_format(args: argparse.Namespace) -> str:
    """--format, else a table for a person at a terminal and JSON for a pipe or a file."""
    fmt: str | None = getattr(args, "format", None)
    return fmt or ("table" if sys.stdout.isatty() and not getattr(args, "output", None) else "json")


def emit(report: Report, args: argparse.Namespace, style: ReportStyle = GENERIC) -> None:
    """Print (or atomically write, with --output) the report in the chosen format."""
    from probe.atomic import write_atomic  # noqa: PLC0415 - a renderer loads when used (start-up)
    from probe.interrupt import INTERRUPT  # noqa: PLC0415 - a renderer loads when used (start-up)
    from probe.model import OverallStatus  # noqa: PLC0415 - a renderer loads when used (start-up)

    if INTERRUPT.requested and not report.interrupted:  # a signal after the probes had finished
        report.interrupted, report.status = True, OverallStatus.UNKNOWN
    fmt = chosen_format(args)
    colour = (
        fmt == "table"
        and sys.stdout.isatty()
        and not args.output
        and not getattr(args, "no_color", False)
        and "NO_COLOR" not in os.environ
    )
    text = FORMATS[fmt](report, RenderOptions(style=style, colour=colour))
    if args.output:
        try:
            write_atomic(args.output, text)
        except OSError as exc:
            raise UsageError(f"--output '{printable(args.output, 200)}': {exc.strerror or exc}") from None
        return
    write_stdout(text)


def write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        # A closed pipe or a hung-up terminal (SIGHUP): nowhere to write. Keep the interpreter
        # from failing again on its final flush; the exit code still tells.
        _detach_stdout()
        if isinstance(exc, BrokenPipeError):
            raise
        raise UsageError(f"cannot write the report to standard output: {exc.strerror or exc}") from None


def _detach_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
