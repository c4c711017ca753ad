"""Would a new inbound TCP connection to a port be accepted? An evaluator of iptables and nft rule sets.

The question asked of the rules: would a NEW inbound TCP connection to ``port``, arriving on a
non-loopback interface from an unknown source, be accepted? Rules whose conditions cannot be
decided without knowing the source (addresses, sets, rate limits, unknown matches) make the
answer "unknown" if they could decide the packet's fate.

Input is the text of ``iptables-save -t filter`` or ``nft list ruleset``; nothing here runs a tool
(checks.localfacts does) or knows what the port is for.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PortVerdict = Literal["accept", "drop", "unknown"]

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


def _base_verdict(chains: Mapping[str, _Chain], name: str) -> PortVerdict:
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


def iptables_verdict(text: str, port: int) -> PortVerdict:
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


def nft_verdict(text: str, port: int) -> PortVerdict:
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
