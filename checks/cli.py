"""The Azure ML part of the command line: workspace flags, the inputs and plan they make, and `plan`.

Cheap to import (argparse and the scenario names only): the composition root (amlprobe.cli) builds
the parser from it at every start. ``check``'s planner is checks.run."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from checks.addresses import AZURE_DNS
from checks.scenarios import SCENARIOS
from probe.formats import add_format_argument

T = TypeVar("T")

# The rest is imported by the command that needs it: building the command line must stay cheap.
if TYPE_CHECKING:
    from checks.discovery import Discovery
    from checks.inputs import Inputs
    from checks.plan import Plan

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
    # Each also from the variable AMLPROBE_<NAME> (checks.sources.ENV_VARS) or the --config key <name>.
    for name in _STRING_FLAGS:
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=f"env AMLPROBE_{name.upper()}")
    g.add_argument("--cloud", choices=("public", "usgov", "china"), default=None, help="env AMLPROBE_CLOUD")
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
        help=f"resolver to compare answers with (default Azure DNS {AZURE_DNS})",
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
    g.add_argument(
        "--partial",
        action="store_const",
        const=True,
        default=None,
        help="accept a partial plan: checks skipped for a missing input do not make the verdict unknown"
        " (the report still lists the inputs to add)",
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
        "partial",
    )
    return {n: getattr(args, n, None) for n in names}


async def resolve_inputs(args: argparse.Namespace, *, use_imds: bool) -> tuple[Inputs, Discovery]:
    """Bad input raises InputError, a UsageError: the CLI prints it as one line and exits 3."""
    from checks.discovery import discover  # noqa: PLC0415 - per command (start-up)
    from checks.sources import gather_inputs  # noqa: PLC0415 - per command (start-up)

    env = dict(os.environ)
    discovery = await discover(env, use_imds=use_imds)
    inputs = gather_inputs(flags=_flags(args), config_path=args.config, env=env, discovery=discovery)
    return inputs, discovery


def load_plan(args: argparse.Namespace, inputs: Inputs) -> Plan:
    """CatalogError and InputError are UsageErrors: one line on stderr, exit 3."""
    from checks.catalog import load_catalog  # noqa: PLC0415 - per command (start-up)
    from checks.plan import build_plan  # noqa: PLC0415 - per command (start-up)

    return build_plan(load_catalog(inputs.cloud, extra_files=list(args.catalog)), inputs)


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


def _plan_json(plan: Plan) -> str:
    import json  # noqa: PLC0415 - per command (start-up)

    return json.dumps(plan.model_dump(mode="json"), indent=2) + "\n"


def _plan_table(plan: Plan) -> str:
    from checks.plan_table import render_plan_table  # noqa: PLC0415 - per command (start-up)

    return render_plan_table(plan)


# What `amlprobe plan` prints: the plan, not a report.
PLAN_FORMATS: dict[str, Callable[[Plan], str]] = {"json": _plan_json, "table": _plan_table}


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    add_workspace_arguments(p)
    add_format_argument(p, PLAN_FORMATS, default="table")


def cmd_plan(args: argparse.Namespace) -> int:
    inputs, _ = _complete(resolve_inputs(args, use_imds=False))
    plan = load_plan(args, inputs)
    sys.stdout.write(PLAN_FORMATS[args.format](plan))
    return 0
