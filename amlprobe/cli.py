"""``amlprobe``: the command line. The only module that knows the engine, the Azure layer and the lab.

Every command is one entry of COMMANDS. ``check`` and ``bundle`` are the engine's, given the Azure
layer's planner, workspace flags and report wording; ``plan`` is the Azure layer's; ``lab`` runs the
real ``check`` (this same table) inside a simulated VNet. Everything heavy is imported by the command
that needs it: ``--version`` and ``plan`` stay cheap (bench/bench_startup.py, tests/probe/test_startup.py).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from checks import cli as azureml
from checks.style import AZURE_ML
from lab.args import add_lab_arguments
from probe import cli as engine
from probe.errors import UsageError

if TYPE_CHECKING:
    from probe.execution import PlannedRun
    from probe.settings import ProbeSettings

DESCRIPTION = "Connectivity diagnostics for Azure Machine Learning in a VNet."


async def _plan_workspace(args: argparse.Namespace, settings: ProbeSettings) -> PlannedRun:
    from checks.run import plan_run  # noqa: PLC0415 - per command (start-up)

    return await plan_run(args, settings)


AZURE = engine.Knowledge(
    planner=_plan_workspace,
    arguments=(azureml.add_workspace_arguments,),
    style=AZURE_ML,
)


def prepare_check(argv: Sequence[str]) -> Callable[[], Awaitable[int]]:
    """Parse ``amlprobe check ...`` now; run it later in this process and event loop (what the lab does
    inside its namespace, once its servers are up)."""
    args = build_parser().parse_args(argv)
    if args.command != "check":
        raise UsageError(f"expected a check command line, got {args.command!r}")
    return lambda: engine.cmd_check(args, AZURE)


def _with_verdicts(command: engine.Command) -> engine.Command:
    """``command`` with the Azure layer's reason codes (checks.verdicts) known to the report model: the
    reports ``diff`` reads carry them, and the schema ``schema`` prints lists them (probe.reasons.families).
    ``check`` and ``bundle`` load them with the judgement."""

    def run(args: argparse.Namespace) -> int:
        import checks.verdicts  # noqa: F401, PLC0415 - importing registers the family; per command (start-up)

        return command.run(args)

    return dataclasses.replace(command, run=run)


def _lab(args: argparse.Namespace) -> int:
    from lab.run import cmd_lab  # noqa: PLC0415 - per command (start-up)

    return cmd_lab(args, prepare_check)


COMMANDS: dict[str, engine.Command] = {
    "check": engine.check_command(AZURE),
    "bundle": engine.bundle_command(AZURE),
    "diff": _with_verdicts(engine.DIFF),
    "schema": _with_verdicts(engine.SCHEMA),
    "plan": engine.Command(
        help="print what `check` would probe, without touching the network",
        arguments=(azureml.add_plan_arguments,),
        run=azureml.cmd_plan,
    ),
    "lab": engine.Command(
        help="run the real check inside a simulated Azure ML VNet",
        arguments=(add_lab_arguments,),
        run=_lab,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    return engine.build_parser(COMMANDS, DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> int:
    return engine.main(argv, COMMANDS, DESCRIPTION)


def run() -> NoReturn:
    """The ``amlprobe`` console script: ``main``, then a quick exit (probe.cli.run_program)."""
    engine.run_program(main)


__all__ = ["COMMANDS", "build_parser", "main", "prepare_check", "run"]
