"""Facts about this machine for the report's ``environment``: NICs, DNS config, hosts overrides,
proxy variables, who runs the probes, and whether inbound TCP 44224 could be accepted (Azure ML's
inbound port for compute with a public IP: AzureMachineLearning to TCP 44224,
learn.microsoft.com/azure/machine-learning/how-to-access-azureml-behind-firewall).

Every part is best-effort and bounded: a part that fails is None in the result and its one-line
reason goes to ``errors[<part>]``; nothing here raises or prints a traceback. The facts are
pydantic models; the report's ``environment["local"]`` is their JSON dump (docs/report-contract.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, computed_field, model_serializer

from checks.firewall import PortVerdict, iptables_verdict, nft_verdict
from checks.paths import HOSTS_FILE, RESOLV_CONF, SYSTEMD_RESOLVED_CONF
from probe import system
from probe.files import MAX_HOSTS_BYTES, read_text
from probe.redact import redact_url

INBOUND_PORT = 44224
# 127.0.0.53 is resolved's stub listener, 127.0.0.54 its "proxy" stub (systemd-resolved(8)).
RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
FIREWALL_TIMEOUT = 2.0
# Administrators run these from sbin, which an ordinary user's PATH often lacks.
_SBIN = ("/usr/sbin", "/sbin")


class _Facts(BaseModel):
    """A part of the local facts. Keys named in ``_SHOWN_WHEN_SET`` are left out of the dump while None:
    the report has only ever carried them when they say something."""

    model_config = ConfigDict(extra="forbid")
    _SHOWN_WHEN_SET: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for key in self._SHOWN_WHEN_SET:
            if isinstance(data, dict) and data.get(key) is None:
                data.pop(key, None)
        return data


class NicAddress(_Facts):
    family: str
    address: str
    netmask: str | None


class Nic(_Facts):
    up: bool | None
    mtu: int | None
    addresses: list[NicAddress]


class UpstreamDns(_Facts):
    """systemd-resolved's own list of upstream servers (its stub forwards to these)."""

    source: str
    nameservers: list[str]
    search: list[str]
    options: list[str]


class DnsConfig(_Facts):
    _SHOWN_WHEN_SET = ("upstream_error",)

    resolv_conf: str
    nameservers: list[str]
    search: list[str]
    options: list[str]
    systemd_resolved_stub: bool
    upstream: UpstreamDns | None = None
    # The servers the system resolver really asks: resolved's upstream ones behind its stub.
    effective_nameservers: list[str]
    effective_source: str
    upstream_error: str | None = None


class FirewallFacts(_Facts):
    drops: bool | None = Field(description="True: a rule drops the port; False: every tool's rules accept it.")
    verdicts: dict[str, PortVerdict] = Field(default_factory=dict, description="Per tool that answered.")
    notes: list[str] = Field(default_factory=list, description="Why a tool did not answer.")


class InboundFacts(_Facts):
    """Whether something listens on the inbound port, and what the local firewall would do to it."""

    _SHOWN_WHEN_SET = ("firewall",)

    port: int = INBOUND_PORT
    listening: bool | None = None
    listeners: list[str] = Field(default_factory=list)
    firewall_drops: bool | None = None
    firewall: FirewallFacts | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def firewall_status(self) -> Literal["drops", "accepts", "unknown"]:
        drops = self.firewall_drops
        return "drops" if drops is True else "accepts" if drops is False else "unknown"


class LocalFacts(_Facts):
    """The report's ``environment["local"]``; None for a part that could not be read (see ``errors``)."""

    nics: dict[str, Nic] | None = None
    dns: DnsConfig | None = None
    hosts_overrides: dict[str, list[str]] | None = None
    proxy: dict[str, str] | None = None
    # Who runs the probes: WireServer accepts TCP from root only (checks.judge.apply_wireserver_user).
    euid: int | None = None
    inbound_44224: InboundFacts = Field(default_factory=InboundFacts)
    errors: dict[str, str] = Field(default_factory=dict)

    def effective_nameservers(self) -> list[str]:
        return list(self.dns.effective_nameservers) if self.dns is not None else []


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return _one_line(f"{where}{exc.strerror}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def _read(path: Path) -> str:
    return read_text(path, MAX_HOSTS_BYTES)


# --- proxy -------------------------------------------------------------------------------------


def proxy_facts(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for base in PROXY_VARS:
        for name in (base, base.lower()):
            value = env.get(name, "")
            if value:
                # NO_PROXY is a host list, not a URL, but may still be pasted with credentials.
                out[name] = redact_url(value) if "@" in value else value
    return out


# --- NICs --------------------------------------------------------------------------------------


def _family(family: int) -> str:
    if family == socket.AF_INET:
        return "ipv4"
    if family == socket.AF_INET6:
        return "ipv6"
    if family == getattr(psutil, "AF_LINK", object()):
        return "link"
    return str(family)


def nic_facts() -> dict[str, Nic]:
    stats = psutil.net_if_stats()
    out: dict[str, Nic] = {}
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        st = stats.get(name)
        out[name] = Nic(
            up=st.isup if st else None,
            mtu=st.mtu if st else None,
            addresses=[NicAddress(family=_family(int(a.family)), address=a.address, netmask=a.netmask) for a in addrs],
        )
    return out


# --- DNS ---------------------------------------------------------------------------------------


def _as_fields(conf: system.ResolvConf) -> dict[str, list[str]]:
    return {"nameservers": conf.nameservers, "search": conf.search, "options": conf.options}


def parse_resolv_conf(text: str) -> dict[str, list[str]]:
    return _as_fields(system.parse_resolv_conf(text))


def _read_resolv_conf(path: Path) -> dict[str, list[str]]:
    """resolv.conf as the prober's resolver reads it (probe.system: the same bound and parser)."""
    return _as_fields(system.read_resolv_conf(str(path)))


def dns_facts(resolv_conf: Path, systemd_resolved_conf: Path) -> DnsConfig:
    local = _read_resolv_conf(resolv_conf)
    stub = bool(local["nameservers"]) and all(s in RESOLVED_STUBS for s in local["nameservers"])
    facts = DnsConfig(
        resolv_conf=str(resolv_conf),
        **local,
        systemd_resolved_stub=stub,
        effective_nameservers=local["nameservers"],
        effective_source=str(resolv_conf),
    )
    if stub:
        try:
            upstream = _read_resolv_conf(systemd_resolved_conf)
        except OSError as exc:
            facts.upstream_error = _error(exc)
        else:
            facts.upstream = UpstreamDns(source=str(systemd_resolved_conf), **upstream)
            facts.effective_nameservers = upstream["nameservers"]
            facts.effective_source = str(systemd_resolved_conf)
    return facts


# --- hosts file --------------------------------------------------------------------------------


def hosts_overrides(text: str, names: Iterable[str]) -> dict[str, list[str]]:
    """Addresses the hosts file gives each of ``names`` (exact, case-insensitive), in file order."""
    hosts = system.parse_hosts(text)
    out: dict[str, list[str]] = {}
    for name in names:
        # An IPv6 scope (fe80::1%eth0) names this machine's interface: the address is what is pinned.
        found = list(dict.fromkeys(a.split("%", 1)[0] for a in hosts.addresses(name)))
        if found:
            out[name] = found
    return out


# --- inbound listener and firewall -------------------------------------------------------------


# /proc/net/tcp{,6}: a header line, then one socket per line; field 2 is the local address as hex
# "ADDR:PORT", field 4 the state, 0A for LISTEN. ADDR is the kernel's 32-bit words printed as
# numbers, so each word's bytes come out in host order (Linux Documentation/networking/proc_net_tcp.rst,
# net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv6/tcp_ipv6.c get_tcp6_sock).
_TCP_TABLES = (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6))
_TCP_LISTEN = "0A"


def _proc_net_address(hex_addr: str, family: int) -> str:
    raw = bytes.fromhex(hex_addr)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw)


def listeners(port: int, proc_net: Path = Path("/proc/net")) -> list[str]:
    """Local addresses with a TCP socket in LISTEN on ``port``, from the kernel's socket tables of this
    network namespace. (psutil.net_connections would also walk every process's descriptors to name
    owners this needs not: tens of milliseconds on a busy compute instance.) A table that cannot be
    read raises OSError; a missing tcp6 table (IPv6 disabled) is no listener."""
    found: list[str] = []
    for table, family in _TCP_TABLES:
        try:
            text = (proc_net / table).read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            if family == socket.AF_INET6:
                continue
            raise
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != _TCP_LISTEN:
                continue
            hex_addr, _, hex_port = fields[1].partition(":")
            try:
                if int(hex_port, 16) != port:
                    continue
                ip = _proc_net_address(hex_addr, family)
            except ValueError:
                continue
            found.append(f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}")
    return sorted(set(found))


def _which(tool: str, env: Mapping[str, str]) -> str | None:
    path = os.pathsep.join([env.get("PATH", os.defpath), *_SBIN])
    return shutil.which(tool, path=path)


def _run_bounded(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``argv`` for at most ``timeout`` seconds, killing its whole process group past that
    (a plain timeout would still wait for grandchildren holding the output pipes)."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


def firewall_facts(port: int, env: Mapping[str, str], timeout: float = FIREWALL_TIMEOUT) -> FirewallFacts:
    """Run iptables-save / nft (when installed and permitted) and judge the inbound port."""
    tools: list[tuple[str, list[str], Callable[[str, int], PortVerdict]]] = [
        ("iptables-save", ["-t", "filter"], iptables_verdict),
        ("nft", ["list", "ruleset"], nft_verdict),
    ]
    seen: dict[str, PortVerdict] = {}
    notes: list[str] = []
    for tool, argv, judge in tools:
        exe = _which(tool, env)
        if exe is None:
            notes.append(f"{tool}: not installed")
            continue
        try:
            code, out, err = _run_bounded([exe, *argv], timeout)
        except subprocess.TimeoutExpired:
            notes.append(f"{tool}: no answer within {timeout:g}s")
            continue
        except OSError as exc:
            notes.append(f"{tool}: {_error(exc)}")
            continue
        if code != 0:
            notes.append(_one_line(f"{tool}: exit {code}: {err.strip()[:200]}"))
            continue
        seen[tool] = judge(out, port)
    if not seen:
        drops: bool | None = None
    elif "drop" in seen.values():
        drops = True
    elif all(v == "accept" for v in seen.values()):
        drops = False
    else:
        drops = None
    return FirewallFacts(drops=drops, verdicts=seen, notes=notes)


# --- all together ------------------------------------------------------------------------------


def gather_local_facts(
    *,
    env: Mapping[str, str],
    names: Iterable[str],
    resolv_conf: Path = RESOLV_CONF,
    hosts_file: Path = HOSTS_FILE,
    systemd_resolved_conf: Path = SYSTEMD_RESOLVED_CONF,
    inbound_port: int = INBOUND_PORT,
    check_firewall: bool = True,
    firewall_timeout: float = FIREWALL_TIMEOUT,
) -> LocalFacts:
    """A snapshot of this machine: nics, dns, hosts_overrides, proxy, euid, inbound_44224, errors."""
    errors: dict[str, str] = {}
    name_list = list(names)

    def part(key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            errors[key] = _error(exc)
            return None

    facts = LocalFacts(
        nics=part("nics", nic_facts),
        dns=part("dns", lambda: dns_facts(resolv_conf, systemd_resolved_conf)),
        hosts_overrides=part("hosts_overrides", lambda: hosts_overrides(_read(hosts_file), name_list)),
        proxy=part("proxy", lambda: proxy_facts(env)),
        euid=os.geteuid() if hasattr(os, "geteuid") else None,
        inbound_44224=InboundFacts(port=inbound_port),
        errors=errors,
    )
    errors, inbound = facts.errors, facts.inbound_44224  # the model holds copies: record into them
    try:
        found = listeners(inbound_port)
        inbound.listening, inbound.listeners = bool(found), found
    except Exception as exc:
        errors["inbound_listen"] = _error(exc)
    if check_firewall:
        try:
            inbound.firewall = firewall_facts(inbound_port, env, firewall_timeout)
            inbound.firewall_drops = inbound.firewall.drops
        except Exception as exc:
            errors["inbound_firewall"] = _error(exc)
    return facts
