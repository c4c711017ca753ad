"""``amlprobe check`` without --target: plan the workspace's checks, then interpret what they found.

The planner the composition root hands the engine (probe.cli.Knowledge): it gathers the inputs
(flags, config, environment, what the machine says), builds the plan, reads the local facts, and
returns the checks with ``finish``, which judges the results and names root causes (checks.interpret).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.cli import load_plan, resolve_inputs
from checks.localfacts import gather_local_facts
from checks.missing import missing_inputs
from probe.execution import PlannedRun
from probe.importer import preload
from probe.model import CheckResult, Confidence, Protocol, Status, Target
from probe.reasons import Reason

if TYPE_CHECKING:
    from checks.plan import Plan
    from probe.model import Finding
    from probe.settings import ProbeSettings


def skipped_results(plan: Plan) -> list[CheckResult]:
    """The plan's rows that are not probed, as skipped checks that say what they need."""
    out = []
    for row in plan.skipped:
        needs = ", ".join(row.needs)
        detail = f"Not probed: needs {needs}." if row.needs else f"Not probed: {row.note}"
        out.append(
            CheckResult(
                id=row.id,
                target=Target(host=row.host, port=row.port, protocol=Protocol(row.protocol)),
                status=Status.SKIP,
                reason=Reason.SKIPPED_MISSING_INPUT if row.needs else Reason.SKIPPED_NOT_APPLICABLE,
                detail=detail,
                confidence=Confidence.CONFIRMED,
                required=row.required,
                labels={**row.labels, **({"needs": needs} if needs else {})},
            )
        )
    return out


async def plan_run(args: argparse.Namespace, settings: ProbeSettings) -> PlannedRun:
    # The judgement is needed once the probes are done: the import thread loads it while they
    # run, after the probers, off the path to the first probe.
    preload(["checks.interpret"], later=True)

    inputs, discovery = await resolve_inputs(args, use_imds=True)
    plan = load_plan(args, inputs)
    # The machine's files as the command line found them (probe.system.SystemPaths): the same
    # resolv.conf the prober's resolver and the bundle read.
    paths = settings.paths
    local = gather_local_facts(
        resolv_conf=Path(paths.resolv_conf),
        hosts_file=Path(paths.hosts),
        systemd_resolved_conf=Path(paths.resolved_conf),
        env=settings.env,
        names=sorted({s.target.host for s in plan.checks}),
    )
    environment: dict[str, Any] = {
        "inputs": {
            "values": inputs.model_dump(exclude={"sources"}, mode="json"),
            "sources": inputs.sources,
        },
        "discovery": discovery.model_dump(mode="json"),
        "local": local.model_dump(mode="json"),
        "plan": {
            "cloud": plan.cloud,
            "scenarios": plan.scenarios,
            "probes": len(plan.checks),
            "skipped": len(plan.skipped),
        },
    }

    def finish(results: list[CheckResult]) -> tuple[list[CheckResult], list[Finding], dict[str, Any]]:
        from checks.interpret import interpret  # noqa: PLC0415 - loaded in the import thread (preload above)

        return interpret(results, plan, inputs, local=local, dns_servers=settings.dns_servers)

    return PlannedRun(
        specs=plan.checks,
        preset=skipped_results(plan),
        environment=environment,
        finish=finish,
        warnings=list(plan.warnings),
        missing_inputs=missing_inputs(plan, inputs),
        partial=inputs.partial,
    )
