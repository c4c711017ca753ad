"""The Azure ML plugin for the generic CLI: workspace flags, `plan`, `lab`, and the full-plan `check`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from checks.scenarios import SCENARIOS

T = TypeVar("T")

# The rest is imported by the command that needs it: loading this plugin must stay cheap.
if TYPE_CHECKING:
    from checks.inputs import Inputs
    from probe.model import CheckResult, Finding
    from probe.plugin import PlannedRun
    from probe.settings import ProbeSettings

# Inputs fields settable by a flag of the same name (dashes for underscores).
_STRING_FLAGS = (
    "region",
    "subscription_id",
    "resource_group",
    "workspace_id",
    "workspace_name",
    "storage_account",
    "key_vault",
    "container_registry",
    "instance_name",
    "instance_domain_suffix",
)


def add_workspace_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Azure ML workspace (used when no --target is given)")
    for name in _STRING_FLAGS:
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)
    g.add_argument("--cloud", choices=("public", "usgov", "china"), default=None)
    g.add_argument(
        "--scenario",
        dest="scenarios",
        action="append",
        choices=SCENARIOS,
        default=None,
        help="what the compute does (repeatable; default compute-instance)",
    )
    g.add_argument("--config", type=Path, default=None, help="TOML file of inputs (see README)")
    g.add_argument("--catalog", type=Path, action="append", default=[], help="extra catalog TOML (repeatable)")
    g.add_argument(
        "--reference-dns",
        action="append",
        default=None,
        metavar="IP[:PORT]",
        help="resolver to compare answers with (default Azure DNS 168.63.129.16)",
    )
    g.add_argument(
        "--private-network",
        dest="private_networks",
        action="append",
        default=None,
        metavar="CIDR",
        help="also count this range as private (repeatable)",
    )
    g.add_argument(
        "--no-private-endpoint",
        dest="private_endpoint",
        action="store_const",
        const=False,
        default=None,
        help="no resource has a private endpoint: expect public answers (default: decided per resource"
        " from DNS: a privatelink CNAME or a private answer means a private endpoint)",
    )
    g.add_argument(
        "--private-endpoint",
        dest="private_endpoints",
        action="append",
        default=None,
        metavar="RESOURCE=yes|no",
        help="override the DNS evidence for one resource (repeatable): workspace, notebooks, storage,"
        " storage-blob, storage-file, storage-queue, storage-table, storage-dfs, key-vault, acr",
    )


def _flags(args: argparse.Namespace) -> dict[str, object]:
    names = (
        *_STRING_FLAGS,
        "cloud",
        "scenarios",
        "reference_dns",
        "private_networks",
        "private_endpoint",
        "private_endpoints",
    )
    return {n: getattr(args, n, None) for n in names}


async def resolve_inputs(args: argparse.Namespace, *, use_imds: bool) -> tuple[Inputs, dict[str, Any]]:
    """Bad input raises InputError, a UsageError: the CLI prints it as one line and exits 3."""
    from checks.discovery import discover  # noqa: PLC0415 - per command (start-up)
    from checks.sources import gather_inputs  # noqa: PLC0415 - per command (start-up)

    env = dict(os.environ)
    discovery = await discover(env, use_imds=use_imds)
    inputs = gather_inputs(flags=_flags(args), config_path=args.config, env=env, discovery=discovery)
    return inputs, discovery.as_environment()


def load_plan(args: argparse.Namespace, inputs: Inputs) -> Any:
    """CatalogError and InputError are UsageErrors: one line on stderr, exit 3."""
    from checks.catalog import load_catalog  # noqa: PLC0415 - per command (start-up)
    from checks.plan import build_plan  # noqa: PLC0415 - per command (start-up)

    return build_plan(load_catalog(inputs.cloud, extra_files=list(args.catalog)), inputs)


def skipped_results(plan: Any) -> list[CheckResult]:
    from probe.model import CheckResult, Confidence, Protocol, Status, Target  # noqa: PLC0415 - per command (start-up)
    from probe.reasons import Reason  # noqa: PLC0415 - per command (start-up)

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
                labels={**row.labels, **({"needs": needs} if needs else {})},
            )
        )
    return out


class AzureMLPlugin:
    def add_check_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_workspace_arguments(parser)

    def add_commands(self, subparsers: Any) -> None:
        from lab.args import add_lab_arguments, cmd_lab  # noqa: PLC0415 - checks -> lab, removed by issue 12b

        plan = subparsers.add_parser("plan", help="print what `check` would probe, without touching the network")
        add_workspace_arguments(plan)
        plan.add_argument("--format", choices=("json", "table"), default="table")
        plan.set_defaults(handler=cmd_plan)
        lab = subparsers.add_parser("lab", help="run the real check inside a simulated Azure ML VNet")
        add_lab_arguments(lab)
        lab.set_defaults(handler=cmd_lab)

    async def plan_run(self, args: argparse.Namespace, settings: ProbeSettings) -> PlannedRun:
        from checks.localfacts import gather_local_facts  # noqa: PLC0415 - per command (start-up)
        from probe.importer import preload  # noqa: PLC0415 - per command (start-up)
        from probe.plugin import PlannedRun  # noqa: PLC0415 - per command (start-up)

        # The judgement is needed once the probes are done: the import thread loads it while they
        # run, after the probers, off the path to the first probe.
        preload(["checks.expect"], later=True)

        inputs, discovered = await resolve_inputs(args, use_imds=True)
        plan = load_plan(args, inputs)
        names = sorted({s.target.host for s in plan.checks})
        facts = gather_local_facts(
            resolv_conf=Path(settings.paths.resolv_conf),
            hosts_file=Path(settings.paths.hosts),
            systemd_resolved_conf=Path(settings.paths.resolved_conf),
            env=settings.env,
            names=names,
        )
        environment: dict[str, Any] = {
            "inputs": {
                "values": inputs.model_dump(exclude={"sources"}, mode="json"),
                "sources": inputs.sources,
            },
            "discovery": discovered,
            "local": facts,
            "plan": {
                "cloud": plan.cloud,
                "scenarios": plan.scenarios,
                "probes": len(plan.checks),
                "skipped": len(plan.skipped),
            },
        }

        def finish(results: list[CheckResult]) -> tuple[list[CheckResult], list[Finding]]:
            from checks.expect import interpret  # noqa: PLC0415 - per command (start-up)

            return interpret(results, plan, inputs, environment)

        return PlannedRun(specs=plan.checks, preset=skipped_results(plan), environment=environment, finish=finish)


def _complete(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends, without an event loop (and without importing
    asyncio, a tenth of `plan`'s start-up): discovery without IMDS reads only local files.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError("discovery without IMDS waited for something")


def cmd_plan(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415 - per command (start-up)

    from checks.plan import render_plan_table  # noqa: PLC0415 - per command (start-up)

    inputs, _ = _complete(resolve_inputs(args, use_imds=False))
    plan = load_plan(args, inputs)
    if args.format == "json":
        sys.stdout.write(json.dumps(plan.model_dump(mode="json"), indent=2) + "\n")
    else:
        sys.stdout.write(render_plan_table(plan))
    return 0


PLUGIN = AzureMLPlugin()
