"""How a knowledge layer (such as ``checks``) plugs into the generic CLI without the engine knowing it.

The engine runs whatever a plugin plans and hands the results back to it for interpretation.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:  # only annotations here: loading the plugins must stay cheap (``--version``)
    from probe.model import CheckResult, CheckSpec, Finding
    from probe.settings import ProbeSettings

# Modules tried at start-up; a missing one is simply not loaded.
PLUGIN_MODULES = ("checks.cli",)

FinishFn: TypeAlias = "Callable[[list[CheckResult]], tuple[list[CheckResult], list[Finding]]]"


@dataclass
class PlannedRun:
    specs: list[CheckSpec]
    # Results known without probing (e.g. rows skipped for want of an input), reported as they are.
    preset: list[CheckResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    # Interprets the raw results: expectations, then the diagnosis. None: report them as they are.
    finish: FinishFn | None = None


class Plugin(Protocol):
    def add_check_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def add_commands(self, subparsers: Any) -> None: ...

    async def plan_run(self, args: argparse.Namespace, settings: ProbeSettings) -> PlannedRun: ...


def load_plugins() -> list[Plugin]:
    plugins: list[Plugin] = []
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        plugins.append(module.PLUGIN)
    return plugins
