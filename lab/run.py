"""``amlprobe lab``: build a simulated Azure ML VNet in a private namespace and run the real check in it.

The agent runs exactly as a user runs ``amlprobe check``: same parser, same plan, same probers,
pointed at the lab's resolver, CA bundle and workspace inputs. The lab never special-cases it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import select
import shlex
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from checks.catalog import load_catalog
from checks.inputs import Inputs
from checks.plan import Plan, build_plan
from lab import topology as topo
from lab.args import LAB_TIMEOUT
from lab.ca import INSPECTION, MICROSOFT_G2, LabCA, Profile, issuer_for
from lab.netns import NamespaceUnavailable, enter_private_network, ip_batch
from lab.scenarios import DEFAULT_SCENARIO, SCENARIOS, Scenario
from probe import invocation
from probe.errors import UsageError
from probe.formats import check_output_name

# ``amlprobe check ...`` parsed, ready to run in this process: (argv) -> run.
PrepareCheck = Callable[[Sequence[str]], Callable[[], Awaitable[int]]]

# The lab's workspace: a compute instance in East US with a workspace private endpoint.
LAB_INPUTS: dict[str, str] = {
    "region": "eastus",
    "workspace_id": "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37",
    "workspace_name": "lab-ws",
    "storage_account": "amlprobelabsa",
    "key_vault": "amlprobe-lab-kv",
    "container_registry": "amlprobelabacr",
    "instance_name": "lab-ci",
}
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


def nbvm_suffix(scenario: Scenario) -> str:
    """The instance's DNS suffix as it reports it in /mnt/azmnt/.nbvm ("domainsuffix")."""
    return f"{LAB_INPUTS['region']}.{scenario.live_ci_suffix}"


def lab_plan(scenarios: Sequence[str] = (), scenario: Scenario | None = None) -> Plan:
    """The plan the agent will make: the lab's inputs, plus the .nbvm suffix when the scenario has one."""
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


def write_files(workdir: Path, cas: list[LabCA], scenario: Scenario | None = None) -> None:
    (workdir / "ca-bundle.pem").write_bytes(b"".join(ca.root_pem for ca in cas))
    if scenario is not None and scenario.nbvm:
        # The keys Microsoft's own code reads from it (responsible-ai-toolbox azure_nb_environment.py).
        nbvm = f"instance={LAB_INPUTS['instance_name']}\ndomainsuffix={nbvm_suffix(scenario)}\n"
        (workdir / ".nbvm").write_text(nbvm)
    (workdir / "resolv.conf").write_text(f"# amlprobe lab: the VNet's custom DNS\nnameserver {topo.CUSTOM_DNS}\n")
    (workdir / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")


def host_profiles(layout: topo.Layout, scenario: Scenario) -> dict[str, Profile]:
    """Which CA signs each host's certificate in this scenario."""
    out: dict[str, Profile] = {}
    for host in sorted(layout.tls_hosts):
        if scenario.inspection_ca:
            out[host] = INSPECTION
        elif scenario.g2_chain_suffixes and host.endswith(scenario.g2_chain_suffixes):
            out[host] = MICROSOFT_G2
        else:
            out[host] = issuer_for(host, layout.operators.get(host))
    return out


def _server_context(ca: LabCA, names: list[str], workdir: Path, key: str) -> ssl.SSLContext:
    issued = ca.issue(names or ["lab.invalid"])
    (workdir / f"{key}.pem").write_bytes(issued.chain_pem)
    (workdir / f"{key}.key").write_bytes(issued.key_pem)
    # A server context that asks no client certificate: create_default_context(CLIENT_AUTH) would
    # also load the system's whole CA store (tens of ms per context) only to verify client certificates.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(workdir / f"{key}.pem", workdir / f"{key}.key")
    return ctx


def server_tls(layout: topo.Layout, scenario: Scenario, workdir: Path) -> tuple[ssl.SSLContext, dict[str, LabCA]]:
    """One CA per issuer in use, each host's certificate picked by SNI; writes the CA bundle the agent trusts.

    The bundle holds every lab root except Microsoft TLS RSA Root G2 (the root distro bundles lag on,
    Azure/azhpc-images PR #539): hosts on that chain verify only where the root was added.
    """
    from lab.servers.web import sni_context  # noqa: PLC0415 - the peers load when the lab starts

    profiles = host_profiles(layout, scenario)
    used = {p.key: p for p in profiles.values()}
    default = issuer_for("lab.invalid", "microsoft")
    used.setdefault(default.key, default)
    if scenario.strip_websocket:
        used.setdefault(INSPECTION.key, INSPECTION)
    cas = {key: LabCA.like(p) for key, p in used.items()}
    write_files(workdir, [ca for key, ca in cas.items() if key != MICROSOFT_G2.key], scenario)
    contexts = {
        key: _server_context(ca, [h for h, p in profiles.items() if p.key == key], workdir, key)
        for key, ca in cas.items()
        if key != INSPECTION.key or scenario.inspection_ca
    }
    keys = {h: p.key for h, p in profiles.items()}
    return sni_context(contexts, lambda name: keys.get(name, default.key), default.key), cas


@contextlib.contextmanager
def _without_system_trust() -> Iterator[None]:
    """Import the web peers without loading the system CA store.

    aiohttp builds its two default client contexts when it is imported, and each loads the system CA
    store (about 20 ms apiece, two fifths of aiohttp's import). No lab peer uses them: the lab's hosts
    are signed by the lab's own CAs, the front ends are servers, and the gateway dials upstream with a
    context of its own (InspectingGateway). Only this process's environment changes, and only for
    the import; the check the lab runs reads the environment later, unchanged.
    """
    saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.environ["SSL_CERT_FILE"] = os.environ["SSL_CERT_DIR"] = os.devnull
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.asynccontextmanager
async def lab_servers(layout: topo.Layout, scenario: Scenario, workdir: Path) -> AsyncIterator[None]:
    """Start every peer of the simulated VNet; stop them all on exit, whatever happened."""
    from lab.servers.dns import DnsServer  # noqa: PLC0415 - the peers load when the lab starts
    from lab.servers.proxy import ConnectProxy  # noqa: PLC0415 - the peers load when the lab starts
    from lab.servers.smb import Smb2Responder  # noqa: PLC0415 - the peers load when the lab starts
    from lab.servers.udp import UdpSink  # noqa: PLC0415 - the peers load when the lab starts

    with _without_system_trust():
        from lab.servers.web import AcceptOnly, HttpsFrontEnd, InspectingGateway  # noqa: PLC0415 - the peers load when the lab starts

    tls, cas = server_tls(layout, scenario, workdir)
    custom_zone = topo.zone_for(
        layout,
        public_for=scenario.custom_dns_public,
        drop_privatelink=scenario.custom_dns_nxdomain_privatelink,
        manual_records=scenario.custom_dns_manual_records,
    )
    azure_zone = topo.zone_for(layout, public_for=scenario.azure_dns_public, drop_privatelink=False)
    servers: list[Any] = [
        DnsServer(topo.CUSTOM_DNS, 53, records=custom_zone, mode="silent" if scenario.custom_dns_silent else None),
        DnsServer(topo.AZURE_DNS, 53, records=azure_zone),
        HttpsFrontEnd(
            # Every service address, not 0.0.0.0: WireServer (168.63.129.16) has no 443 (S18, current page).
            [(a, 443) for a in layout.front_end_addresses()],
            tls,
            authenticating_hosts=layout.websocket_hosts,
            auth_answer=scenario.auth_answer,
            resources=layout.resource_kinds,
            resource_modes=dict(scenario.resource_modes),
            private_endpoints=layout.pe_addresses,
        ),
        AcceptOnly([("0.0.0.0", p) for p in sorted(layout.tcp_ports - topo.APP_PORTS)]),
        # The instance's apps listen behind the workspace private endpoint only (none without one).
        AcceptOnly([(a, p) for a in layout.app_addresses() for p in sorted(layout.tcp_ports & topo.APP_PORTS)]),
    ]
    servers += [Smb2Responder("0.0.0.0", p, ciphers=scenario.smb_ciphers) for p in sorted(layout.smb_ports)]
    if scenario.udp_listener:
        servers += [UdpSink(host, port) for host, port in sorted(layout.udp_targets)]
    inspected = sorted(layout.websocket_hosts) if scenario.strip_websocket else []

    def divert(host: str, port: int) -> tuple[str, int] | None:
        return (topo.PROXY, topo.GATEWAY_PORT) if host.lower() in inspected and port == 443 else None

    if scenario.strip_websocket:
        gateway_tls = _server_context(cas[INSPECTION.key], inspected, workdir, "gateway")
        servers.append(
            InspectingGateway(
                topo.PROXY,
                topo.GATEWAY_PORT,
                gateway_tls,
                resolve=_resolver_for_proxy(),
                trust=str(workdir / "ca-bundle.pem"),
            )
        )
    if scenario.proxy or scenario.strip_websocket:
        proxy = ConnectProxy(
            topo.PROXY, topo.PROXY_PORT, resolve=_resolver_for_proxy(), source=topo.PROXY, divert=divert
        )
        servers.append(proxy)
    started: list[Any] = []
    try:
        for server in servers:
            try:
                await server.start()
            except OSError as exc:
                raise UsageError(f"the lab's {type(server).__name__} could not start: {exc.strerror or exc}") from None
            started.append(server)
        yield
    finally:
        for server in reversed(started):
            with contextlib.suppress(Exception):
                await server.stop()


def _resolver_for_proxy() -> Any:
    from probe.deadline import Deadline  # noqa: PLC0415 - per command (start-up)
    from probe.settings import ProbeSettings  # noqa: PLC0415 - per command (start-up)
    from probe.transport.lookup import lookup  # noqa: PLC0415 - per command (start-up)

    settings = ProbeSettings(timeout=LAB_TIMEOUT, dns_servers=[topo.CUSTOM_DNS], env={}, trust_env=False)

    async def resolve(name: str) -> list[str]:
        return (await lookup(name, settings, Deadline.after(settings.timeout))).addresses

    return resolve


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
# How long the peers may take to start, and to stop once told to.
PEERS_START_TIMEOUT = 60.0
PEERS_STOP_TIMEOUT = 10.0


class Peers:
    """The simulated VNet's peers (lab_servers), served by a child process in the lab's namespaces.

    The child is forked once the namespace is made, before any thread exists; it serves until the
    lifeline (a pipe whose only writer is this process) closes, so it never outlives the lab, even
    when the lab is killed. It ignores SIGINT and SIGHUP: the lab's own process decides when to stop.
    Two processes, not one: the peers' start (aiohttp, dnspython, the lab's CAs) runs beside the
    check's own imports, and the peers' answers beside the probes, on a machine's second core.
    """

    def __init__(self, layout: topo.Layout, scenario: Scenario, workdir: Path) -> None:
        ready_r, ready_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; what it serves is tested through the lab's reports
            os.close(ready_r)
            os.close(lifeline_w)
            _serve_peers(layout, scenario, workdir, ready_w, lifeline_r)
        os.close(ready_w)
        os.close(lifeline_r)
        self.pid, self._ready, self._lifeline = pid, ready_r, lifeline_w

    def wait_ready(self) -> None:
        """Return once every peer listens; raise UsageError with the child's reason when one could not start."""
        readable, _, _ = select.select([self._ready], [], [], PEERS_START_TIMEOUT)
        said = os.read(self._ready, 4096).decode(errors="replace") if readable else ""
        if said != "ready":
            raise UsageError(said.removeprefix("error ") or "the lab's peers did not start")

    def stop(self) -> None:
        os.close(self._ready)
        os.close(self._lifeline)
        end = time.monotonic() + PEERS_STOP_TIMEOUT
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > end:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                return
            time.sleep(0.002)


def _serve_peers(  # pragma: no cover - runs in the child (Peers)
    layout: topo.Layout, scenario: Scenario, workdir: Path, ready: int, lifeline: int
) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        asyncio.run(_serve_until_closed(layout, scenario, workdir, ready, lifeline))
    except BaseException as exc:
        said = str(exc) if isinstance(exc, UsageError) else f"the lab's peers failed: {type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            os.write(ready, f"error {said}".encode())
        code = 1
    finally:
        # Nothing of the parent's (temporary directory, buffered output, atexit) is this process's to finish.
        os._exit(code)


async def _serve_until_closed(  # pragma: no cover - runs in the child (Peers)
    layout: topo.Layout, scenario: Scenario, workdir: Path, ready: int, lifeline: int
) -> None:
    async with lab_servers(layout, scenario, workdir):
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()

        def on_close() -> None:
            if not closed.done():
                closed.set_result(None)

        loop.add_reader(lifeline, on_close)  # readable only at EOF: nobody writes to it
        os.write(ready, b"ready")
        await closed


def run_inside(
    scenario: Scenario, layout: topo.Layout, workdir: Path, args: argparse.Namespace, prepare: PrepareCheck
) -> int:
    os.environ.clear()
    os.environ.update(lab_environment(scenario, workdir))
    check = prepare(check_argv(scenario, workdir, args))
    marks = args.timing
    marks.append(("parse", time.perf_counter()))
    peers = Peers(layout, scenario, workdir)
    try:
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
    print(
        f"amlprobe lab: the lab stays up (pid {pid}). In another shell, from this directory, enter it with\n"
        f"  nsenter --target {pid} --user --net --preserve-credentials\n"
        f"then try: {program} check --dns-server {topo.CUSTOM_DNS} --ca-bundle {bundle} "
        "--target tls://login.microsoftonline.com\n"
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
    plan = lab_plan(scenario.workloads, scenario=scenario)
    layout = topo.build_layout(plan, scenario)
    try:
        enter_private_network()
        ip_batch(topo.network_commands(layout, scenario))
    except NamespaceUnavailable as exc:
        raise UsageError(str(exc)) from None
    args.timing.append(("namespace", time.perf_counter()))
    with tempfile.TemporaryDirectory(prefix="amlprobe-lab-") as tmp:
        code = run_inside(scenario, layout, Path(tmp), args, prepare)
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
