"""Facts about this machine for the report's ``environment``: NICs, DNS config, hosts overrides,
proxy variables, and whether inbound TCP 44224 (Azure ML's inbound port for compute with a public
IP, requirements §2) could be accepted.

Every part is best-effort and bounded: a part that fails is None in the result and its one-line
reason goes to ``errors[<part>]``; nothing here raises or prints a traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psutil

from probe import system
from probe.files import MAX_HOSTS_BYTES, read_text
from probe.redact import redact_url
from probe.system import SystemPaths

INBOUND_PORT = 44224
RESOLV_CONF = Path(SystemPaths().resolv_conf)
HOSTS_FILE = Path(SystemPaths().hosts)
# systemd-resolved writes the real upstream servers here while /etc/resolv.conf points at its stub.
SYSTEMD_RESOLVED_CONF = Path(SystemPaths().resolved_conf)
# 127.0.0.53 is resolved's stub listener, 127.0.0.54 its "proxy" stub (systemd-resolved(8)).
RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
FIREWALL_TIMEOUT = 2.0
# Administrators run these from sbin, which an ordinary user's PATH often lacks.
_SBIN = ("/usr/sbin", "/sbin")

Verdict = Literal["accept", "drop", "unknown"]


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


def nic_facts() -> dict[str, object]:
    stats = psutil.net_if_stats()
    out: dict[str, object] = {}
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        st = stats.get(name)
        out[name] = {
            "up": st.isup if st else None,
            "mtu": st.mtu if st else None,
            "addresses": [
                {"family": _family(int(a.family)), "address": a.address, "netmask": a.netmask} for a in addrs
            ],
        }
    return out


# --- DNS ---------------------------------------------------------------------------------------


def parse_resolv_conf(text: str) -> dict[str, list[str]]:
    conf = system.parse_resolv_conf(text)
    return {"nameservers": conf.nameservers, "search": conf.search, "options": conf.options}


def dns_facts(resolv_conf: Path, systemd_resolved_conf: Path) -> dict[str, object]:
    local = parse_resolv_conf(_read(resolv_conf))
    stub = bool(local["nameservers"]) and all(s in RESOLVED_STUBS for s in local["nameservers"])
    out: dict[str, object] = {
        "resolv_conf": str(resolv_conf),
        **local,
        "systemd_resolved_stub": stub,
        "upstream": None,
        "effective_nameservers": local["nameservers"],
        "effective_source": str(resolv_conf),
    }
    if stub:
        try:
            upstream = parse_resolv_conf(_read(systemd_resolved_conf))
        except OSError as exc:
            out["upstream_error"] = _error(exc)
        else:
            out["upstream"] = {"source": str(systemd_resolved_conf), **upstream}
            out["effective_nameservers"] = upstream["nameservers"]
            out["effective_source"] = str(systemd_resolved_conf)
    return out


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


# --- inbound listener --------------------------------------------------------------------------


def listeners(port: int) -> list[str]:
    """Local addresses with a TCP socket in LISTEN on ``port``; psutil.AccessDenied propagates."""
    found: list[str] = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            ip = conn.laddr.ip
            found.append(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    return sorted(set(found))


# --- firewall ----------------------------------------------------------------------------------
# The question asked of the rules: would a NEW inbound TCP connection to ``port``, arriving on a
# non-loopback interface from an unknown source, be accepted? Rules whose conditions cannot be
# decided without knowing the source (addresses, sets, rate limits, unknown matches) make the
# answer "unknown" if they could decide the packet's fate.

_YES, _NO, _MAYBE = "yes", "no", "maybe"


@dataclass
class _Rule:
    match: str  # _YES, _NO or _MAYBE
    verdict: str  # accept, drop, continue, return, unknown, jump:<chain>, goto:<chain>


@dataclass
class _Chain:
    rules: list[_Rule] = field(default_factory=list)
    policy: str | None = None  # base chains only: accept or drop


def _and(a: str, b: str) -> str:
    if _NO in (a, b):
        return _NO
    return _MAYBE if _MAYBE in (a, b) else _YES


def _in_ports(port: int, spec: str, range_sep: str) -> bool:
    for item in re.split(r"[,\s{}]+", spec):
        if not item:
            continue
        low, sep, high = item.partition(range_sep)
        try:
            if (int(low) <= port <= int(high)) if sep else int(low) == port:
                return True
        except ValueError:
            continue
    return False


def _evaluate(chains: Mapping[str, _Chain], name: str, depth: int = 0) -> str:
    """accept, drop, unknown, or return (the chain ended or said RETURN)."""
    chain = chains.get(name)
    if chain is None or depth > 16:
        return "unknown"
    for rule in chain.rules:
        if rule.match == _NO:
            continue
        outcome = rule.verdict
        if outcome.startswith(("jump:", "goto:")):
            kind, _, target = outcome.partition(":")
            outcome = _evaluate(chains, target, depth + 1)
            if outcome == "return" and kind == "jump":
                outcome = "continue"
        if outcome == "continue":
            continue
        return outcome if rule.match == _YES else "unknown"
    return "return"


def _base_verdict(chains: Mapping[str, _Chain], name: str) -> Verdict:
    outcome = _evaluate(chains, name)
    if outcome == "return":
        outcome = chains[name].policy or "unknown"
    return "accept" if outcome == "accept" else "drop" if outcome == "drop" else "unknown"


_IPT_NONTERMINAL = {"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "TRACE", "AUDIT", "CLASSIFY", "TCPMSS"}
_IPT_KNOWN_MODULES = {"tcp", "multiport", "conntrack", "state", "comment"}


def _iptables_target(jump: str, target: str, chain_names: set[str]) -> str:
    if target == "ACCEPT":
        return "accept"
    if target in ("DROP", "REJECT"):
        return "drop"
    if target == "RETURN":
        return "return"
    if target in chain_names:
        return f"{'goto' if jump in ('-g', '--goto') else 'jump'}:{target}"
    return "continue" if target in _IPT_NONTERMINAL else "unknown"


def _iptables_rule(args: list[str], port: int, chain_names: set[str]) -> _Rule:
    match, negate, i = _YES, False, 0
    while i < len(args):
        tok = args[i]
        val = args[i + 1] if i + 1 < len(args) else ""
        if tok == "!":
            negate, i = True, i + 1
            continue
        if tok in ("-j", "--jump", "-g", "--goto"):
            # Whatever follows are the target's own options (--reject-with, --log-prefix...).
            return _Rule(match, _iptables_target(tok, val, chain_names))
        step = 2
        if tok in ("-p", "--protocol"):
            m = _YES if (val.lower() in ("tcp", "6", "all", "0")) != negate else _NO
        elif tok in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            m = _YES if _in_ports(port, val, ":") != negate else _NO
        elif tok in ("--ctstate", "--state"):
            m = _YES if ("NEW" in val.upper().split(",")) != negate else _NO
        elif tok in ("-i", "--in-interface"):
            m = (_YES if negate else _NO) if val == "lo" else _MAYBE
        elif tok in ("-s", "--source", "-d", "--destination"):
            m = _YES if val in ("0.0.0.0/0", "::/0") and not negate else _MAYBE
        elif tok in ("-m", "--match"):
            m = _YES if val in _IPT_KNOWN_MODULES else _MAYBE
        elif tok == "--comment":
            m = _YES
        elif tok.startswith("-"):
            # An option we don't model (--sport, --match-set, --limit...): can't decide.
            m = _MAYBE
            step = 1 if not val or val.startswith("-") else 2
        else:
            m, step = _MAYBE, 1
        match = _and(match, m)
        negate = False
        i += step
    return _Rule(match, "continue")


def iptables_verdict(text: str, port: int) -> Verdict:
    """The fate of a new inbound TCP connection to ``port`` per ``iptables-save`` (filter table)."""
    chains: dict[str, _Chain] = {}
    rule_lines: list[tuple[str, list[str]]] = []
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table != "filter" or not line or line.startswith("#"):
            continue
        elif line.startswith(":"):
            name, policy = ([*line[1:].split(), "-"])[:2]
            chains[name] = _Chain(policy={"ACCEPT": "accept", "DROP": "drop"}.get(policy))
        elif line.startswith("-A "):
            parts = shlex.split(line)
            rule_lines.append((parts[1], parts[2:]))
    if "INPUT" not in chains:
        # No filter table at all filters nothing; a filter table without INPUT is not understood.
        return "accept" if table is None and not rule_lines else "unknown"
    names = set(chains)
    for chain, args in rule_lines:
        chains.setdefault(chain, _Chain()).rules.append(_iptables_rule(args, port, names))
    return _base_verdict(chains, "INPUT")


_NFT_TOKEN = re.compile(r'\{[^}]*\}|"[^"]*"|\S+')
_NFT_VERDICTS = {"accept": "accept", "drop": "drop", "reject": "drop", "return": "return", "continue": "continue"}
_NFT_OTHER_PROTOCOLS = {"udp", "icmp", "icmpv6", "sctp", "dccp", "udplite", "igmp", "esp", "ah"}


def _nft_value(toks: list[str], i: int) -> tuple[str, bool, int]:
    """The operand at ``toks[i]`` (after an optional ``!=``): value, negated, tokens used."""
    negate = i < len(toks) and toks[i] == "!="
    j = i + 1 if negate else i
    return (toks[j].strip('"') if j < len(toks) else ""), negate, (j - i) + 1


def _nft_rule(line: str, port: int) -> _Rule:
    toks = _NFT_TOKEN.findall(line)
    match, i = _YES, 0
    while i < len(toks):
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if tok in _NFT_VERDICTS:
            return _Rule(match, _NFT_VERDICTS[tok])  # "reject with ..." options follow
        if tok in ("jump", "goto"):
            return _Rule(match, f"{tok}:{nxt}")
        if tok in _NFT_OTHER_PROTOCOLS:
            return _Rule(_NO, "continue")
        if tok == "tcp" and nxt == "dport":
            value, negate, used = _nft_value(toks, i + 2)
            hit = _in_ports(port, value, "-")
            match = _and(match, _MAYBE if value.startswith("@") else (_YES if hit != negate else _NO))
            i += 2 + used
        elif (tok, nxt) in (("meta", "l4proto"), ("ip", "protocol"), ("ip6", "nexthdr"), ("ct", "state")):
            value, negate, used = _nft_value(toks, i + 2)
            items = set(re.split(r"[,\s{}]+", value.lower()))
            wanted = {"new"} if tok == "ct" else {"tcp", "6"}
            match = _and(match, _YES if bool(items & wanted) != negate else _NO)
            i += 2 + used
        elif tok in ("iif", "iifname"):
            value, negate, used = _nft_value(toks, i + 1)
            match = _and(match, (_YES if negate else _NO) if value == "lo" else _MAYBE)
            i += 1 + used
        elif tok == "counter":
            i += 5 if nxt == "packets" else 1
        elif tok == "comment":
            i += 2
        elif tok == "log":
            i += 1
            while i + 1 < len(toks) and toks[i] in ("prefix", "level", "flags", "group", "snaplen"):
                i += 2
        else:
            # Addresses, sets, marks, limits, fib...: undecidable for an unknown source.
            match = _and(match, _MAYBE)
            i += 1
    return _Rule(match, "continue")


def nft_verdict(text: str, port: int) -> Verdict:
    """The packet's fate over every ``hook input`` base chain of ``nft list ruleset``.

    Only ip, ip6 and inet tables see inbound IP traffic, and a drop in any base chain is final."""
    tables: list[dict[str, _Chain]] = []
    bases: list[tuple[dict[str, _Chain], str]] = []
    family: str | None = None
    chain: _Chain | None = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        before, depth = depth, depth + line.count("{") - line.count("}")
        if not line or line.startswith("#"):
            continue
        if before == 0 and line.startswith("table "):
            family = line.split()[1]
            tables.append({})
        elif before == 1:
            # Chains are what we read; sets, maps, flowtables... are skipped.
            is_chain = line.startswith("chain ") and family in ("ip", "ip6", "inet")
            chain = tables[-1].setdefault(line.split()[1], _Chain()) if is_chain and tables else None
        elif before == 2 and chain is not None and line != "}":
            if line.startswith("type ") and re.search(r"\bhook\s+input\b", line):
                bases.append((tables[-1], next(n for n, c in tables[-1].items() if c is chain)))
                chain.policy = "accept"
            if policy := re.search(r"\bpolicy\s+(accept|drop)\b", line):
                chain.policy = policy.group(1)
            if not line.startswith(("type ", "policy ", "comment ", "devices ")):
                chain.rules.append(_nft_rule(line, port))
        if depth <= 1:
            chain = None
    if not bases:
        # No input hook: nft filters nothing inbound. Text we could not parse at all is unknown.
        return "accept" if tables or not text.strip() else "unknown"
    results = [_base_verdict(chains, name) for chains, name in bases]
    if "drop" in results:
        return "drop"
    return "accept" if all(r == "accept" for r in results) else "unknown"


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


def firewall_facts(port: int, env: Mapping[str, str], timeout: float = FIREWALL_TIMEOUT) -> dict[str, object]:
    """Run iptables-save / nft (when installed and permitted) and judge the inbound port."""
    tools: list[tuple[str, list[str], Callable[[str, int], Verdict]]] = [
        ("iptables-save", ["-t", "filter"], iptables_verdict),
        ("nft", ["list", "ruleset"], nft_verdict),
    ]
    seen: dict[str, str] = {}
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
    return {"drops": drops, "verdicts": seen, "notes": notes}


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
) -> dict[str, object]:
    """A JSON-serialisable snapshot: nics, dns, hosts_overrides, proxy, euid, inbound_44224, errors."""
    errors: dict[str, str] = {}
    name_list = list(names)

    def part(key: str, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except Exception as exc:
            errors[key] = _error(exc)
            return None

    facts: dict[str, object] = {
        "nics": part("nics", nic_facts),
        "dns": part("dns", lambda: dns_facts(resolv_conf, systemd_resolved_conf)),
        "hosts_overrides": part("hosts_overrides", lambda: hosts_overrides(_read(hosts_file), name_list)),
        "proxy": part("proxy", lambda: proxy_facts(env)),
        # Who runs the probes: WireServer accepts TCP from root only (checks.expect.apply_wireserver_user).
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
    }

    inbound: dict[str, object] = {"port": inbound_port, "listening": None, "listeners": [], "firewall_drops": None}
    try:
        found = listeners(inbound_port)
        inbound["listening"], inbound["listeners"] = bool(found), found
    except psutil.AccessDenied:
        errors["inbound_listen"] = "listing TCP sockets needs more privileges (psutil.AccessDenied)"
    except Exception as exc:
        errors["inbound_listen"] = _error(exc)
    if check_firewall:
        try:
            fw = firewall_facts(inbound_port, env, firewall_timeout)
            inbound["firewall_drops"] = fw["drops"]
            inbound["firewall"] = fw
        except Exception as exc:
            errors["inbound_firewall"] = _error(exc)
    drops = inbound["firewall_drops"]
    inbound["firewall_status"] = "drops" if drops is True else "accepts" if drops is False else "unknown"
    facts["inbound_44224"] = inbound
    facts["errors"] = errors
    return facts
