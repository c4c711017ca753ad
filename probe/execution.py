"""Running a planned set of checks and building the report: the one place a Report is assembled.

A plan comes from ``--target`` URLs (``plan_targets``) or from a knowledge layer's planner, which
may also hand back ``finish``: it interprets the raw results (judges them, names root causes) and
says what the report's environment gains from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from probe.model import CheckResult, CheckSpec, Finding, MissingInput, Report
    from probe.settings import ProbeSettings

# results -> (judged results, findings, what the report's environment gains).
FinishFn: TypeAlias = "Callable[[list[CheckResult]], tuple[list[CheckResult], list[Finding], dict[str, Any]]]"


@dataclass
class PlannedRun:
    specs: list[CheckSpec]
    # Results known without probing (e.g. rows skipped for want of an input), reported as they are.
    preset: list[CheckResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    # Interprets the raw results: expectations, then the diagnosis. None: report them as they are.
    finish: FinishFn | None = None
    # Doubts about the inputs, taken as they are (the report's warnings).
    warnings: list[str] = field(default_factory=list)
    # Inputs the planner lacked: one that a required check needed leaves the run undecided (unknown)...
    missing_inputs: list[MissingInput] = field(default_factory=list)
    # ...unless the user accepted a partial plan.
    partial: bool = False


# What a knowledge layer offers ``check`` when no --target is given: args and settings -> a plan.
Planner: TypeAlias = "Callable[[argparse.Namespace, ProbeSettings], Awaitable[PlannedRun]]"


def base_environment(settings: ProbeSettings, args: argparse.Namespace) -> dict[str, Any]:
    import platform  # noqa: PLC0415 - per command (start-up)
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.redact import redact_url  # noqa: PLC0415 - per command (start-up)
    from probe.runner import default_concurrency  # noqa: PLC0415 - per command (start-up)

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "settings": {
            "timeout_s": settings.timeout,
            "deadline_s": args.deadline,
            "concurrency": args.concurrency or default_concurrency(),
            "dns_servers": settings.dns_servers or "system",
            "ca_bundle": settings.ca_bundle,
            "proxy": redact_url(settings.proxy) if settings.proxy else None,
        },
    }


def plan_targets(texts: list[str], settings: ProbeSettings, args: argparse.Namespace) -> PlannedRun:
    """The checks of ad-hoc target URLs, each once, in the order given."""
    from probe.targets import parse_target  # noqa: PLC0415 - per command (start-up)

    specs = list({s.id: s for s in (parse_target(t) for t in texts)}.values())
    return PlannedRun(specs=specs, environment=base_environment(settings, args))


async def execute(
    planned: PlannedRun,
    settings: ProbeSettings,
    args: argparse.Namespace,
    *,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run a planned set of checks and build the report (interpreted by the plan's ``finish``)."""
    import asyncio  # noqa: PLC0415 - per command (start-up)

    from probe.interrupt import INTERRUPT  # noqa: PLC0415 - per command (start-up)
    from probe.model import OverallStatus, Report, overall_status, summarize  # noqa: PLC0415 - per command (start-up)
    from probe.runner import probe_context, run_checks  # noqa: PLC0415 - per command (start-up)

    ctx = probe_context(settings)
    stop = asyncio.Event()
    if INTERRUPT.requested:  # a signal while the run was being planned
        stop.set()
    with INTERRUPT.on_loop(asyncio.get_running_loop(), stop.set):
        outcome = await run_checks(
            planned.specs,
            ctx,
            concurrency=args.concurrency,
            deadline_s=args.deadline,
            stop=stop,
            on_result=on_result,
        )
    checks: list[CheckResult] = list(planned.preset) + outcome.results
    findings: list[Finding] = []
    environment = planned.environment
    if planned.finish is not None:
        checks, findings, gained = planned.finish(checks)
        environment = {**environment, **gained}
    interrupted = outcome.interrupted or INTERRUPT.requested
    incomplete = interrupted or outcome.deadline_exceeded
    # A required check skipped for want of an input leaves the run undecided, unless a partial plan was accepted.
    undecided = incomplete or (any(m.required for m in planned.missing_inputs) and not planned.partial)
    return Report(
        # An interrupted run decided nothing: unknown (exit 3), whatever it saw before the signal.
        status=OverallStatus.UNKNOWN if interrupted else overall_status(checks, findings, incomplete=undecided),
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        interrupted=interrupted,
        deadline_exceeded=outcome.deadline_exceeded,
        incomplete=incomplete,
        missing_inputs=planned.missing_inputs,
        partial=planned.partial,
        environment=environment,
        summary=summarize(checks),
        checks=checks,
        findings=findings,
        warnings=list(planned.warnings),
    )
