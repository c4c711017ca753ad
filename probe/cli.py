"""The command line's parts, and the engine's own ``amlprobe`` for ad-hoc targets (``python -m probe``).

Exit codes follow the monitoring-plugin convention: 0 ok, 1 warning, 2 critical, 3 unknown or bad
input (one line on stderr, never a traceback). SIGINT, SIGTERM and SIGHUP end a run with a report
marked interrupted and exit 3 (probe.interrupt).

Commands dispatch from one table of ``Command``s. The full command line (``amlprobe``) is the
composition root's (amlprobe.cli): it builds ``check`` and ``bundle`` with a knowledge layer's
planner, arguments and report style, and adds that layer's own commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from probe import __version__
from probe.defaults import IMPORT_THREAD
from probe.errors import UsageError
from probe.formats import DIFF_FORMATS, add_colour_argument, add_format_argument, chosen_format, emit, write_stdout
from probe.monitoring import check_monitoring_args, check_output_target, publish
from probe.options import add_engine_arguments, read_targets, settings_from_args
from probe.sanitize import printable
from probe.style import GENERIC, ReportStyle

# Everything else is imported by the command that needs it: `--version`, `plan` and `schema`
# must not pay for the engine (pydantic models, asyncio, aiohttp). See bench/bench_startup.py.
if TYPE_CHECKING:
    from probe.execution import PlannedRun, Planner
    from probe.model import Report
    from probe.settings import ProbeSettings

# Keyed by OverallStatus values.
EXIT_CODES = {
    "ok": 0,
    "warning": 1,
    "critical": 2,
    "unknown": 3,
}
EXIT_USAGE = 3

AddArguments = Callable[[argparse.ArgumentParser], None]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default exits 2, which means "critical" here
        raise UsageError(message)


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: tuple[AddArguments, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class Knowledge:
    """What a knowledge layer brings to ``check`` and ``bundle``: a plan when no --target is given, its
    arguments, and how its reports are worded."""

    planner: Planner | None = None
    arguments: tuple[AddArguments, ...] = ()
    style: ReportStyle = GENERIC


async def plan_check(args: argparse.Namespace, knowledge: Knowledge, settings: ProbeSettings) -> PlannedRun:
    from probe.execution import base_environment, plan_targets  # noqa: PLC0415 - per command (start-up)

    texts = list(args.target) + (read_targets(args.targets) if getattr(args, "targets", None) else [])
    if texts:
        return plan_targets(texts, settings, args)
    if knowledge.planner is None:
        raise UsageError("no --target or --targets given")
    planned = await knowledge.planner(args, settings)
    planned.environment = {**base_environment(settings, args), **planned.environment}
    return planned


async def run_check(args: argparse.Namespace, knowledge: Knowledge) -> tuple[Report, PlannedRun, ProbeSettings, bool]:
    """Plan, probe (with progress) and read the history; the caller emits, then ``publish``-es."""
    from probe.descriptors import raise_soft_limit  # noqa: PLC0415 - per command (start-up)
    from probe.execution import execute  # noqa: PLC0415 - per command (start-up)
    from probe.monitoring import read_history  # noqa: PLC0415 - per command (start-up)
    from probe.progress import progress_for  # noqa: PLC0415 - per command (start-up)

    # As servers do at start: the run's concurrency follows the descriptors actually available.
    raise_soft_limit()
    settings = settings_from_args(args)
    check_monitoring_args(args)
    planned = await plan_check(args, knowledge, settings)
    progress = progress_for(args, len(planned.specs))
    try:
        report = await execute(planned, settings, args, on_result=progress.update if progress else None)
    finally:
        if progress:
            progress.clear()
    return report, planned, settings, read_history(report, args)


async def cmd_check(args: argparse.Namespace, knowledge: Knowledge) -> int:
    report, _, _, append_history = await run_check(args, knowledge)
    # The report first: the history and the metrics never hold it back.
    emit(report, args, knowledge.style)
    await publish(report, args, append_history=append_history, style=knowledge.style)
    return EXIT_CODES[report.status.value]


async def cmd_bundle(args: argparse.Namespace, knowledge: Knowledge) -> int:
    import asyncio  # noqa: PLC0415 - per command (start-up)
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.bundle import default_bundle_path, write_bundle  # noqa: PLC0415 - per command (start-up)
    from probe.render import count, verdict_line  # noqa: PLC0415 - per command (start-up)

    out = args.out or default_bundle_path(socket.gethostname())
    check_output_target("--out", out)
    report, planned, settings, append_history = await run_check(args, knowledge)
    emit(report, args, knowledge.style)
    await publish(report, args, append_history=append_history, style=knowledge.style)
    try:
        # settings.paths: the same resolv.conf the run read (the lab's, when it points there).
        found = await asyncio.to_thread(
            write_bundle, out, report, planned, env=settings.env, paths=settings.paths, style=knowledge.style
        )
    except OSError as exc:
        raise UsageError(f"--out {out!r}: {exc.strerror or exc}") from None
    print(f"amlprobe: bundle written to {out} ({verdict_line(report, knowledge.style)})", file=sys.stderr)
    if found:
        print(f"amlprobe: redacted {count(len(found), 'secret')} (listed in REDACTIONS.txt):", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
    else:
        print("amlprobe: nothing needed redacting", file=sys.stderr)
    return EXIT_CODES[report.status.value]


def run_probing(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command that probes: from here on a signal ends the run with a report, not mid-write."""
    import asyncio  # noqa: PLC0415 - per command (start-up)

    from probe.interrupt import INTERRUPT  # noqa: PLC0415 - per command (start-up)

    INTERRUPT.install()
    return asyncio.run(coro)


def check_command(knowledge: Knowledge) -> Command:
    return Command(
        help="probe the targets (or the plan) and print a health report",
        arguments=(add_engine_arguments, *knowledge.arguments),
        run=lambda args: run_probing(cmd_check(args, knowledge)),
    )


def _add_bundle_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        metavar="FILE.tar.gz",
        help="where to write the bundle (default amlprobe-bundle-<host>-<UTC time>.tar.gz here)",
    )


def bundle_command(knowledge: Knowledge) -> Command:
    return Command(
        help="run a check, then pack the report and this machine's network facts, redacted, for a support ticket",
        description="Runs exactly like `check` (same options, same report and exit code), then writes a "
        "tar.gz with the report, the plan, resolv.conf, routes, listening sockets and versions. Secrets "
        "(URL passwords, SAS signatures, keys, tokens) are redacted in every file; REDACTIONS.txt says "
        "where. Exit code: the check's, or 3 if the bundle could not be written.",
        arguments=(add_engine_arguments, *knowledge.arguments, _add_bundle_out),
        run=lambda args: run_probing(cmd_bundle(args, knowledge)),
    )


def _add_diff_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", metavar="OLD", help="the earlier JSON report")
    p.add_argument("new", metavar="NEW", help="the later JSON report")
    add_format_argument(p, DIFF_FORMATS)


def cmd_diff(args: argparse.Namespace) -> int:
    from probe.diff import diff_reports, load_report  # noqa: PLC0415 - per command (start-up)

    old = load_report(args.old, "old")  # a file that cannot be compared is a UsageError (exit 3)
    new = load_report(args.new, "new")
    diff = diff_reports(old, new)
    write_stdout(DIFF_FORMATS[chosen_format(args)](diff))
    return 1 if diff.changed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415 - per command (start-up)

    from probe.model import json_schema  # noqa: PLC0415 - per command (start-up)

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
    return 0


DIFF = Command(
    help="compare two JSON reports",
    description="Print the checks whose status or reason changed, the findings added or removed and "
    "the overall status change. Exit 0 when nothing changed, 1 when something did, 3 for a bad file.",
    arguments=(_add_diff_arguments,),
    run=cmd_diff,
)
SCHEMA = Command(help="print the report's JSON Schema", run=cmd_schema)


def build_parser(commands: Mapping[str, Command], description: str) -> argparse.ArgumentParser:
    # allow_abbrev=False: `--form` is not `--format`; an option is spelt out or refused.
    parser = _Parser(prog="amlprobe", description=description, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"amlprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in commands.items():
        p = sub.add_parser(name, help=command.help, description=command.description, allow_abbrev=False)
        for add in command.arguments:
            add(p)
        add_colour_argument(p)  # in every subcommand, whatever it prints
    return parser


def main(
    argv: Sequence[str] | None = None,
    commands: Mapping[str, Command] | None = None,
    description: str = "Connectivity diagnostics: probe targets and print a health report.",
) -> int:
    commands = ENGINE_COMMANDS if commands is None else commands
    try:
        parser = build_parser(commands, description)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return commands[args.command].run(args)
    except UsageError as exc:
        with contextlib.suppress(OSError):
            print(f"amlprobe: error: {printable(exc, 2000)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("amlprobe: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_USAGE


def run_program(main: Callable[[], int]) -> NoReturn:
    """Run ``main`` as the program (the console script, ``python -m``), then leave at once.

    When ``main`` returns, every report and file it wrote is closed and the exit code is known; what is
    left is the interpreter's teardown (freeing every module and object: about 20 ms of ``plan``'s
    start-up budget, bench/README.md), which nothing here needs. So: wait for the import thread
    (probe.importer) if it is still importing, as a normal exit would, so that no half-written bytecode
    is left; flush standard output and error; exit. Nothing of amlprobe registers atexit handlers.
    Under a profiler or a tracer (``python -m cProfile``, coverage) the exit is the normal one, so
    that they can write what they measured. Tests call ``main`` itself, never this.
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse's --version and --help
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    threading = sys.modules.get("threading")
    if threading is not None:
        for thread in threading.enumerate():
            if thread.name == IMPORT_THREAD and thread is not threading.current_thread():
                thread.join()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nowhere left to write
            stream.flush()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or coverage tool writes its data at the interpreter's exit
    os._exit(code)


# The engine alone: ad-hoc --target checks, bundles of them, report diffs, the schema.
ENGINE_COMMANDS: dict[str, Command] = {
    "check": check_command(Knowledge()),
    "bundle": bundle_command(Knowledge()),
    "diff": DIFF,
    "schema": SCHEMA,
}
