"""The simulated VNet's peers: the lab's workspace, its files, its certificates, and the servers that
answer the agent, served by a child process in the lab's namespaces (``Peers``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import select
import signal
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import topology as topo
from lab.args import LAB_TIMEOUT
from lab.scenarios import Scenario
from probe.errors import UsageError

# The certificates (cryptography) and the servers (aiohttp, dnspython) load in the peers' process,
# after the fork (Peers): the lab's own process does not wait for them.
if TYPE_CHECKING:
    from lab.ca import LabCA, Profile

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


def nbvm_suffix(scenario: Scenario) -> str:
    """The instance's DNS suffix as it reports it in /mnt/azmnt/.nbvm ("domainsuffix")."""
    return f"{LAB_INPUTS['region']}.{scenario.live_ci_suffix}"


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
    from lab.ca import INSPECTION, MICROSOFT_G2, issuer_for  # noqa: PLC0415 - in the peers' process (Peers)

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
    from lab.ca import INSPECTION, MICROSOFT_G2, LabCA, issuer_for  # noqa: PLC0415 - in the peers' process (Peers)
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
    from lab.ca import INSPECTION  # noqa: PLC0415 - the peers load when the lab starts
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

    resolve = _resolver_for_proxy()  # the gateway's and the proxy's: the lab's DNS only
    if scenario.strip_websocket:
        gateway_tls = _server_context(cas[INSPECTION.key], inspected, workdir, "gateway")
        servers.append(
            InspectingGateway(
                topo.PROXY,
                topo.GATEWAY_PORT,
                gateway_tls,
                resolve=resolve,
                trust=str(workdir / "ca-bundle.pem"),
            )
        )
    if scenario.proxy or scenario.strip_websocket:
        proxy = ConnectProxy(
            topo.PROXY, topo.PROXY_PORT, resolve=resolve, source=topo.PROXY, divert=divert
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


# How long the peers may take to start, and to stop once told to.
PEERS_START_TIMEOUT = 60.0
PEERS_STOP_TIMEOUT = 10.0


class Peers:
    """The simulated VNet's peers (lab_servers), served by a child process in the lab's namespaces.

    The child is forked as soon as the namespace exists, before any thread does, and before the lab's
    own process loads the plan: while this process plans, lays out the VNet and loads the check, the
    child loads the peers (aiohttp, dnspython, cryptography), on a machine's second core. ``start``
    hands it the layout (a file in the lab's directory, then one byte on the lifeline) once the
    namespace's network is configured; the child then issues the certificates, starts every server
    and says "ready". It serves until the lifeline (a pipe whose only writer is this process) closes,
    so it never outlives the lab, even when the lab is killed; closed before ``start``, the child
    exits without serving. It ignores SIGINT and SIGHUP: the lab's own process decides when to stop.
    """

    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        ready_r, ready_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; what it serves is tested through the lab's reports
            os.close(ready_r)
            os.close(lifeline_w)
            _serve_peers(scenario, workdir, ready_w, lifeline_r)
        os.close(ready_w)
        os.close(lifeline_r)
        self.pid, self._ready, self._lifeline, self._workdir = pid, ready_r, lifeline_w, workdir

    def start(self, layout: topo.Layout) -> None:
        """Hand the child the VNet to serve; call once the namespace's addresses are configured."""
        (self._workdir / _LAYOUT_FILE).write_bytes(pickle.dumps(layout))
        # A child that failed while loading has closed its end: wait_ready reports what it said.
        with contextlib.suppress(BrokenPipeError):
            os.write(self._lifeline, _GO)

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


# The layout's file in the lab's directory, and the lifeline's one byte that says it is there.
_LAYOUT_FILE = "layout.pickle"
_GO = b"L"


def _load_peers() -> None:  # pragma: no cover - runs in the child (Peers)
    """Import what the peers need while the lab's process plans (the first imports are the slow part)."""
    import lab.ca  # noqa: PLC0415 - the peers' process loads its modules here
    import lab.servers.dns  # noqa: PLC0415 - the peers' process loads its modules here
    import lab.servers.proxy  # noqa: PLC0415 - the peers' process loads its modules here
    import lab.servers.smb  # noqa: PLC0415 - the peers' process loads its modules here
    import lab.servers.udp  # noqa: PLC0415 - the peers' process loads its modules here

    with _without_system_trust():
        import lab.servers.web  # noqa: F401, PLC0415 - the peers' process loads its modules here


def _serve_peers(  # pragma: no cover - runs in the child (Peers)
    scenario: Scenario, workdir: Path, ready: int, lifeline: int
) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _load_peers()
        if os.read(lifeline, 1) == _GO:  # nothing (EOF): the lab stopped before its network was made
            layout = pickle.loads((workdir / _LAYOUT_FILE).read_bytes())  # the lab's process wrote it
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

        loop.add_reader(lifeline, on_close)  # readable only at EOF: its one byte (_GO) was read
        os.write(ready, b"ready")
        await closed
