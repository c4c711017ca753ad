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
from typing import TYPE_CHECKING, Any, TextIO

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
    # Every check in the table, not only those that failed or warned.
    verbose: bool = False


Renderer = Callable[["Report", RenderOptions], str]


def _json(report: Report, options: RenderOptions) -> str:
    from probe.render import render_json  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_json(report)


def _table(report: Report, options: RenderOptions) -> str:
    from probe.render import render_table  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_table(report, colour=options.colour, style=options.style, verbose=options.verbose)


def _prometheus(report: Report, options: RenderOptions) -> str:
    from probe.prometheus import render_prometheus  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_prometheus(report, label_keys=options.style.metric_labels)


def _nagios(report: Report, options: RenderOptions) -> str:
    from probe.nagios import render_nagios  # noqa: PLC0415 - per format (start-up)

    return render_nagios(report)


FORMATS: dict[str, Renderer] = {"json": _json, "table": _table, "prometheus": _prometheus, "nagios": _nagios}


def _diff_json(diff: ReportDiff) -> str:
    from probe.diff import render_diff_json  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_diff_json(diff)


def _diff_table(diff: ReportDiff) -> str:
    from probe.diff import render_diff_table  # noqa: PLC0415 - a renderer loads when used (start-up)

    return render_diff_table(diff)


# What `amlprobe diff` prints: the comparison of two reports, not a report.
DIFF_FORMATS: dict[str, Callable[[ReportDiff], str]] = {"json": _diff_json, "table": _diff_table}
FORMAT_NOTES = {
    "prometheus": "prometheus: text exposition format",
    "nagios": "nagios: a monitoring plugin's status line and performance data (exit code 0-3)",
}


def add_format_argument(
    p: argparse.ArgumentParser, formats: Mapping[str, Any] = FORMATS, default: str | None = None
) -> None:
    """``--format``, its choices the keys of ``formats`` (a report's, a plan's, a diff's renderers)."""
    when = f"default {default}" if default else "default: table on a terminal, else json"
    notes = "".join(f"; {FORMAT_NOTES[name]}" for name in sorted(formats) if name in FORMAT_NOTES)
    p.add_argument("--format", choices=sorted(formats), default=default, help=f"output format ({when}){notes}")


COLOUR_CHOICES = ("auto", "always", "never")


def add_colour_argument(p: argparse.ArgumentParser) -> None:
    """``--color auto|always|never`` (every subcommand has it) and ``--no-color``, its older spelling of never."""
    p.add_argument(
        "--color",
        choices=COLOUR_CHOICES,
        default="auto",
        help="colour the report's table: auto (the default: only when standard output is a terminal, "
        "NO_COLOR is not set and TERM is not dumb), always or never",
    )
    p.add_argument("--no-color", dest="color", action="store_const", const="never", help="same as --color never")


def use_colour(args: argparse.Namespace, stream: TextIO | None) -> bool:
    """Whether to colour what goes to ``stream`` (None: a file). ``--color always``/``never`` decide;
    ``auto`` colours a terminal only, unless NO_COLOR is set and not empty (https://no-color.org: a
    command-line flag wins over it) or TERM is dumb."""
    when = getattr(args, "color", None) or "auto"
    if when != "auto":
        return bool(when == "always")
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb" or stream is None:
        return False
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


# Output format names of `az --output` (az's "-o table" habit): given as amlprobe's --output, a file name.
AZ_OUTPUT_NAMES = ("json", "jsonc", "none", "table", "tsv", "yaml", "yamlc")


def check_output_name(option: str, path: str, formats: Mapping[str, Any] = FORMATS) -> None:
    """Refuse ``--output table`` (a format's name, as `az` takes it): --format was meant. A file of that
    name is still one ``./`` away."""
    if path not in formats and path not in AZ_OUTPUT_NAMES:
        return
    if path in formats:
        meant = f"did you mean --format {path}?"
    else:
        meant = f"amlprobe has no {path} format (--format {'|'.join(sorted(formats))})."
    raise UsageError(
        f"{option} {path}: {meant} {option} names the file to write; for a file called {path}, write ./{path}"
    )


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
        report.interrupted, report.incomplete, report.status = True, True, OverallStatus.UNKNOWN
    fmt = chosen_format(args)
    colour = fmt == "table" and use_colour(args, None if args.output else sys.stdout)
    options = RenderOptions(style=style, colour=colour, verbose=bool(getattr(args, "verbose", False)))
    text = FORMATS[fmt](report, options)
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
