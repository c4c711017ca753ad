"""``amlprobe lab``: build a simulated Azure ML VNet in a private namespace and run the real check in it.

The agent runs exactly as a user runs ``amlprobe check``: same parser, same plan, same probers,
pointed at the lab's resolver, CA bundle and workspace inputs. The lab never special-cases it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab import topology as topo
from lab.netns import NamespaceUnavailable, enter_private_network, ip_batch
from lab.peers import LAB_INPUTS, Peers, nbvm_suffix
from lab.scenarios import DEFAULT_SCENARIO, SCENARIOS, Scenario
from probe import invocation
from probe.errors import UsageError
from probe.formats import check_output_name

# The plan (pydantic, the catalog) loads after the peers' process is forked (cmd_lab), beside it.
if TYPE_CHECKING:
    from checks.plan import Plan

# ``amlprobe check ...`` parsed, ready to run in this process: (argv) -> run.
PrepareCheck = Callable[[Sequence[str]], Callable[[], Awaitable[int]]]

# The fault the healthy run's closing hint suggests.
HINT_SCENARIO = "nsg-blocks-443"
# Variables that would let the host's own setup leak into the lab's run.
_HOST_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def lab_plan(scenarios: Sequence[str] = (), scenario: Scenario | None = None) -> Plan:
    """The plan the agent will make: the lab's inputs, plus the .nbvm suffix when the scenario has one."""
    from checks.catalog import load_catalog  # noqa: PLC0415 - after the fork (cmd_lab)
    from checks.inputs import Inputs  # noqa: PLC0415 - after the fork (cmd_lab)
    from checks.plan import build_plan  # noqa: PLC0415 - after the fork (cmd_lab)

    values: dict[str, object] = {**LAB_INPUTS}
    if scenarios:
        values["scenarios"] = list(scenarios)
    if scenario is not None and scenario.nbvm:
        values["instance_domain_suffix"] = nbvm_suffix(scenario)
    inputs = Inputs.model_validate(values)
    return build_plan(load_catalog(inputs.cloud), inputs)


def check_argv(scenario: Scenario, workdir: Path, args: argparse.Namespace) -> list[str]:
    argv = ["check", "--dns-server", topo.CUSTOM_DNS, "--reference-dns", topo.AZURE_DNS]
    argv += ["--ca-bundle", str(workdir / "ca-bundle.pem"), "--timeout", str(args.timeout)]
    for key, value in LAB_INPUTS.items():
        if scenario.inputs is None or key in scenario.inputs:
            argv += [f"--{key.replace('_', '-')}", value]
    if getattr(args, "partial", False):
        argv.append("--partial")
    for workload in scenario.workloads:
        argv += ["--scenario", workload]
    if args.format:
        argv += ["--format", args.format]
    if args.output:
        argv += ["--output", args.output]
    argv += ["--color", args.color]
    if args.verbose:
        argv.append("--verbose")
    return argv


def lab_environment(scenario: Scenario, workdir: Path) -> dict[str, str]:
    # The host's own amlprobe settings (AMLPROBE_TEXTFILE_DIR, AMLPROBE_INSTANCE_DOMAIN_SUFFIX, ...)
    # would publish the lab's run as the host's, or plan for another workspace.
    env = {k: v for k, v in os.environ.items() if k not in _HOST_ENV and not k.startswith("AMLPROBE_")}
    env["AMLPROBE_RESOLV_CONF"] = str(workdir / "resolv.conf")
    env["AMLPROBE_HOSTS_FILE"] = str(workdir / "hosts")
    # The lab is never an Azure VM, whatever machine hosts it: IMDS stays silent.
    env["AMLPROBE_DMI_PATH"] = str(workdir / "no-dmi")
    # A compute instance reports itself in /mnt/azmnt/.nbvm; the host's own file never leaks in.
    env["AMLPROBE_NBVM_PATH"] = str(workdir / (".nbvm" if scenario.nbvm else "no-nbvm"))
    if scenario.proxy or scenario.strip_websocket:
        env["HTTPS_PROXY"] = f"http://{topo.PROXY}:{topo.PROXY_PORT}"
    return env


# What the check loads on its way to the first probe and while probing (its planner, the engine, the
# resolver, the probers, certificate parsing, the judgement). The lab's process imports them while the
# peers start in the other one, so that the two cores share the lab's start.
CHECK_MODULES = (
    "checks.run",
    "probe.execution",
    "probe.runner",
    "probe.monitoring",
    "probe.progress",
    "probe.transport.lookup",
    "probe.registry",
    "probe.probers.tlscerts",
    "checks.interpret",
)


def run_inside(scenario: Scenario, workdir: Path, args: argparse.Namespace, prepare: PrepareCheck) -> int:
    """In the lab's namespace: fork the peers, make the VNet while they load, then run the check."""
    env = lab_environment(scenario, workdir)  # before the clear: it keeps the rest of this environment
    os.environ.clear()
    os.environ.update(env)
    marks = args.timing
    peers = Peers(scenario, workdir)
    try:
        plan = lab_plan(scenario.workloads, scenario=scenario)
        layout = topo.build_layout(plan, scenario)
        try:
            ip_batch(topo.network_commands(layout, scenario))
        except NamespaceUnavailable as exc:
            raise UsageError(str(exc)) from None
        peers.start(layout)
        marks.append(("network", time.perf_counter()))
        check = prepare(check_argv(scenario, workdir, args))
        for module in CHECK_MODULES:
            importlib.import_module(module)
        marks.append(("check loaded", time.perf_counter()))
        peers.wait_ready()
        marks.append(("servers up", time.perf_counter()))
        code = asyncio.run(_check_then_keep(check, workdir, args))
    finally:
        peers.stop()
    marks.append(("servers down", time.perf_counter()))
    return code


async def _check_then_keep(check: Callable[[], Awaitable[int]], workdir: Path, args: argparse.Namespace) -> int:
    code = await check()
    args.timing.append(("check done", time.perf_counter()))
    if args.keep:
        await _keep_running(workdir, args.program)
    return code


async def _keep_running(workdir: Path, program: str) -> None:
    pid = os.getpid()
    bundle = shlex.quote(str(workdir / "ca-bundle.pem"))
    # One command that enters the lab and runs the check inside it: a check pasted on its own, outside
    # the lab's namespace, would ask the real network about a real Microsoft name.
    enter = f"nsenter --target {pid} --user --net --preserve-credentials"
    print(
        f"amlprobe lab: the lab stays up (pid {pid}). In another shell, from this directory, check inside it with\n"
        f"  {enter} {program} check --dns-server {topo.CUSTOM_DNS} --ca-bundle {bundle}"
        " --target tls://login.microsoftonline.com\n"
        f"(a shell inside it: {enter})\n"
        "Ctrl-C (or SIGTERM) here stops it and removes everything.",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def describe_scenarios(program: str = "amlprobe") -> str:
    lines = [f"Lab scenarios ({program} lab --scenario NAME):", ""]
    for s in SCENARIOS.values():
        lines += [f"  {s.name}", f"      {s.summary}", f"      made by: {s.mechanism}", ""]
    return "\n".join(lines)


def cmd_lab(args: argparse.Namespace, prepare: PrepareCheck) -> int:
    """Build the scenario's VNet in a private namespace and run ``amlprobe check`` in it (``prepare`` parses
    that command line; the composition root supplies it, so the lab runs exactly what a user runs)."""
    # The hints name this program as it was run: right after the quick start that is .venv/bin/amlprobe,
    # not an `amlprobe` the shell would not find.
    args.program = invocation.command()
    if args.list:
        sys.stdout.write(describe_scenarios(args.program))
        return 0
    name = args.scenario or DEFAULT_SCENARIO
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise UsageError(f"unknown lab scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if args.output:
        check_output_name("--output", args.output)
        args.output = os.path.abspath(args.output)
    args.timing = [("start", time.perf_counter())]
    show_timing = bool(os.environ.get("AMLPROBE_LAB_TIMING"))
    try:
        enter_private_network()
    except NamespaceUnavailable as exc:
        raise UsageError(str(exc)) from None
    args.timing.append(("namespace", time.perf_counter()))
    with tempfile.TemporaryDirectory(prefix="amlprobe-lab-") as tmp:
        code = run_inside(scenario, Path(tmp), args, prepare)
    if args.scenario is None:
        print(
            f"\nThat was the healthy lab. Now break something: {args.program} lab --scenario {HINT_SCENARIO}\n"
            f"(all scenarios: {args.program} lab --list)",
            file=sys.stderr,
        )
    args.timing.append(("exit", time.perf_counter()))
    if show_timing:
        t0 = args.timing[0][1]
        steps = ", ".join(f"{name} {(t - t0) * 1000:.0f} ms" for name, t in args.timing[1:])
        print(f"amlprobe lab timing (since the lab command started): {steps}", file=sys.stderr)
    return code
