"""Remedies are pasted into a shell: a hostile value, from any input source, must never run.

Two fences, both tested here. Validation (checks.validate) refuses a value that breaks Azure's
naming rules with exit 3 and one line, whichever source it came from. And each remedy quotes
every value it inserts, so even a value that slipped past validation reaches the command as one
literal argument: every remedy is pasted into a real ``bash`` (with recording stand-ins for
``az`` and ``sudo``) and no hostile command may run.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checks import remedies
from checks.catalog import load_catalog
from checks.diagnosis import RULES, Evidence, diagnose
from checks.discovery import Discovery
from checks.inputs import SCENARIOS, Inputs
from checks.plan import Plan, build_plan
from checks.remedies import PLACEHOLDERS, RemedyContext
from checks.sources import gather_inputs
from checks.verdicts import Verdict
from probe.model import CheckResult, HttpFacts, Protocol, Status
from probe.reasons import Reason
from tests.helpers.cli import NOT_AZURE_ENV
from tests.helpers.netns import requires_netns, run_in_netns
from tests.helpers.remedies import assert_explained, assert_pastes
from tests.helpers.report import made_up_result

# Each tries a different way out of a shell word; each would create a file named pwn* if it ran.
HOSTILE = [
    "rg;touch pwn1;x$(touch pwn2)`touch pwn3`",
    "rg' ; touch pwn4 ; '",
    'rg" ; touch pwn5 ; "',
    "rg\ntouch pwn6",
    "<rg>;touch pwn7",
    "rg&&touch pwn8||touch pwn9",
    "$(touch${IFS}pwn10)",
    "rg|touch pwn11",
    "-rg >pwn12",
    "rg{kind}{0}$(touch pwn13)",
]
SOURCES = ["flag", "config", "env", "config.json", "discovery"]


def _inputs_from(source: str, value: str, tmp_path: Path) -> Inputs:
    """Inputs whose resource group and region came from ``source``, exactly as the CLI gathers them."""
    flags: dict[str, object] = {}
    env: dict[str, str] = {}
    config: Path | None = None
    config_json: list[Path] = []
    discovery: Discovery | None = None
    if source == "flag":
        flags = {"resource_group": value, "region": value}
    elif source == "config":
        config = tmp_path / "amlprobe.toml"
        config.write_text(f"region = {json.dumps(value)}\n[workspace]\nresource_group = {json.dumps(value)}\n")
    elif source == "env":
        env = {"AMLPROBE_RESOURCE_GROUP": value, "AMLPROBE_REGION": value}
    elif source == "config.json":
        config_json = [tmp_path / "config.json"]
        config_json[0].write_text(json.dumps({"resource_group": value}))
    else:
        discovery = Discovery()
        discovery.set("resource_group", value, "env CI_RESOURCE_GROUP")
    inputs = gather_inputs(
        flags=flags, config_path=config, env=env, config_json_paths=config_json, discovery=discovery, cwd=tmp_path
    )
    assert inputs.resource_group is not None and inputs.resource_group.strip() == value.strip()
    return inputs


def _facts(inputs: Inputs, value: str) -> RemedyContext:
    """What the remedies may fill in, every value of it ``value``: the resource group and region as the CLI
    gathered them, a forwarder zone, a storage name to send past a proxy."""
    return RemedyContext(
        resource_group=inputs.resource_group,
        region=inputs.region,
        forwarders={value: (value,)},
        bypass_hosts=(f"{value}.blob.core.windows.net",),
    )


def _every_remedy(ctx: RemedyContext, value: str) -> list[str]:
    """Every command of every public remedy in checks.remedies, each fed ``value`` wherever it takes one."""
    by_param: dict[str, object] = {
        "ctx": ctx,
        "tag": value,
        "proto": "Tcp",
        "port": value,
        "zones": [value, "privatelink.api.azureml.ms"],
        "names": [value, "ws.api.azureml.ms"],
        "hosts": [value, "ws.api.azureml.ms"],
        # Issue 10's remedies: resource names, the address a service saw, private-endpoint groups and zones.
        "kind": "storage",
        "name": value,
        "account": value,
        "vault": value,
        "registry": value,
        "seen": value,
        "groups": [value, "blob"],  # as many as "zones", which private_endpoint_fix pairs them with
        "tundra_ip": value,
        "why": value,
        "servers": [value, "10.0.0.4"],  # the configured resolvers (--dns-server, resolv.conf)
    }
    commands: list[str] = []
    for name, fn in vars(remedies).items():
        if name.startswith("_") or not inspect.isfunction(fn) or not fn.__module__.startswith("checks.remedies."):
            continue
        params = inspect.signature(fn).parameters
        args: dict[str, object] = {}
        for param in params.values():
            if param.name == "ports":  # a rule's own constant ("8787 18881"), or a list of them
                args["ports"] = [value, "80"] if str(param.annotation).startswith("list") else "443"
            else:
                assert param.name in by_param, f"{name} takes {param.name}: give this test a hostile value for it"
                args[param.name] = by_param[param.name]
        commands += fn(**args).commands
    return commands


def _paste(commands: list[str], workdir: Path) -> Path:
    """Paste ``commands`` into bash, as a person would, with az and sudo replaced by recorders."""
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    log = workdir / "argv.log"
    for tool in ("az", "sudo"):
        stub = bindir / tool
        stub.write_text(f'#!/bin/sh\nprintf "%s\\0" "$0" "$@" >> {shlex.quote(str(log))}\nprintf "\\n" >> {log}\n')
        stub.chmod(0o755)
    run = workdir / f"run{len(list(workdir.glob('run*')))}"
    run.mkdir()
    subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input="\n".join(commands) + "\n",
        cwd=run,
        env={"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(workdir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return run


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_every_remedy_pastes_hostile_values_as_data(source: str, value: str, tmp_path: Path) -> None:
    inputs = _inputs_from(source, value, tmp_path)
    commands = _every_remedy(_facts(inputs, value), value)
    assert commands
    assert all("\n" not in c and "\r" not in c for c in commands), "a command must stay one line"
    # As printed: a <placeholder> makes the shell refuse the line, and nothing else runs either.
    run = _paste(commands, tmp_path)
    assert sorted(p.name for p in run.iterdir()) == []
    # With the placeholders filled in, as a person would, az runs, and still nothing else does.
    filled = [re.sub(r"<(NSG_NAME|VNET_NAME_OR_ID)>", r"my-\1", c) for c in commands]
    run = _paste(filled, tmp_path)
    assert sorted(p.name for p in run.iterdir()) == []
    assert not list(tmp_path.glob("**/pwn*"))
    # The resource group reached az as one argument, whole.
    calls = [line.split("\0") for line in (tmp_path / "argv.log").read_text().splitlines() if line]
    groups = [c[c.index("--resource-group") + 1] for c in calls if "--resource-group" in c]
    assert groups and all(g == value.strip().replace("\n", "\\n") for g in groups)


def test_known_values_paste_unchanged() -> None:
    inputs = Inputs.model_validate({"resource_group": "rg-ml", "region": "eastus"})
    ctx = RemedyContext(resource_group=inputs.resource_group, region=inputs.region)
    (command,) = remedies.nsg_fix(ctx, "Storage", "Tcp", "445").commands
    assert command.startswith("az network nsg rule create --resource-group rg-ml --nsg-name <NSG_NAME> ")
    assert "--destination-address-prefixes Storage.eastus --destination-port-ranges 445" in command
    (sed,) = remedies.hosts_fix(["ws.api.azureml.ms"]).commands
    assert sed == "sudo sed -i.bak -E '/\\s(ws\\.api\\.azureml\\.ms)(\\s|$)/d' /etc/hosts"


# --- validation: exit 3 and one line, from every source -----------------------------------------

ENV = NOT_AZURE_ENV
ATTACK = "rg;touch pwn1;x$(touch pwn2)`touch pwn3`"


@requires_netns
@pytest.mark.parametrize("source", SOURCES)
def test_a_hostile_resource_group_is_refused_with_exit_3(source: str, tmp_path: Path) -> None:
    args = ["plan", "--region", "eastus"]
    env = dict(ENV)
    if source == "flag":
        args += ["--resource-group", ATTACK]
    elif source == "config":
        (tmp_path / "c.toml").write_text(f"resource_group = {json.dumps(ATTACK)}\n")
        args += ["--config", str(tmp_path / "c.toml")]
    elif source == "env":
        env["AMLPROBE_RESOURCE_GROUP"] = ATTACK
    elif source == "config.json":
        (tmp_path / ".azureml").mkdir()
        (tmp_path / ".azureml" / "config.json").write_text(json.dumps({"resource_group": ATTACK}))
    else:
        env["CI_RESOURCE_GROUP"] = ATTACK  # what a compute instance's discovery reads
    out = run_in_netns([f"cd {shlex.quote(str(tmp_path))}"], [sys.executable, "-m", "amlprobe", *args], env=env)
    assert out.returncode == 3, out.stdout
    (line,) = out.stderr.splitlines()
    assert "field 'resource_group'" in line and "is not valid" in line
    assert not list(tmp_path.glob("pwn*"))


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("resource_group", ["rg-ml", "RG_(prod).eu", "Ressourcengruppe-ä", "a" * 90], ["rg.", "a" * 91, "rg ml", ""]),
        ("key_vault", ["kv-ml", "a1b", "k" * 24], ["1kv", "kv-", "k--v", "k" * 25, "kv_ml"]),
        ("instance_name", ["ci-alice", "Ci1"], ["1ci", "ci", "c" * 25, "ci_alice"]),
        ("subscription_id", ["00000000-0000-0000-0000-000000000000"], ["sub-1"]),
    ],
)
def test_naming_rules(field: str, good: list[str], bad: list[str]) -> None:
    from checks.validate import RULES

    pattern = RULES[field][0]
    assert [g for g in good if not pattern.fullmatch(g)] == []
    assert [b for b in bad if pattern.fullmatch(b)] == []


# --- every remedy every rule can produce pastes: bash -n, placeholders <LIKE_THIS> and explained ------------


def _catalog_plan() -> tuple[Plan, Inputs]:
    inputs = Inputs.model_validate(
        {
            "region": "eastus",
            "workspace_id": "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37",
            "workspace_name": "ws-ml",
            "storage_account": "stml",
            "key_vault": "kv-ml",
            "container_registry": "crmlprod",
            "instance_name": "ci-alice",
            "resource_group": "rg-ml",
            "scenarios": list(SCENARIOS),
        }
    )
    return build_plan(load_catalog("public"), inputs), inputs


def _passing(plan: Plan) -> list[CheckResult]:
    return [made_up_result(s, Status.PASS, Reason.OK, "ok", addresses=["10.0.1.5"]) for s in plan.checks]


def _catalog_context() -> RemedyContext:
    """What the remedies fill in for a workspace with every scenario: the catalog's forwarder zones, its hosts."""
    plan, inputs = _catalog_plan()
    return Evidence(results=_passing(plan), plan=plan, inputs=inputs).remedies


@pytest.mark.parametrize("context", ["placeholders", "catalog"])
def test_every_declared_remedy_of_every_rule_pastes(context: str) -> None:
    # The shapes docs/troubleshooting.md shows (nothing known), and the same with the catalog's values.
    ctx = PLACEHOLDERS if context == "placeholders" else _catalog_context()
    seen = 0
    for rule in RULES:
        for example in rule.remedies:
            shape = example(ctx)
            assert_explained(shape)
            if shape.commands:
                assert_pastes(shape.commands)
                seen += len(shape.commands)
    assert seen >= 40


def _failure_modes(plan: Plan) -> list[tuple[str, Callable[[CheckResult], bool], Reason]]:
    """Ways the catalog's checks fail, each making the rules produce their remedies with the catalog's values."""
    tcp_based = (Protocol.TCP, Protocol.TLS, Protocol.WEBSOCKET, Protocol.HTTP, Protocol.SMB)
    modes: list[tuple[str, Callable[[CheckResult], bool], Reason]] = []
    tags = sorted({s.labels.get("service_tag", "") for s in plan.checks})
    for tag in tags:
        for reason in (Reason.TCP_TIMEOUT, Reason.TCP_REFUSED):
            modes.append((f"tag {tag or '(none)'}", lambda r, t=tag: r.labels.get("service_tag", "") == t, reason))
    for spec in plan.checks:
        if spec.target.protocol in tcp_based:
            modes.append((spec.id, lambda r, i=spec.id: r.id == i, Reason.TCP_TIMEOUT))
    modes += [
        ("all dns", lambda r: r.target.protocol is Protocol.DNS and "@reference" not in r.id, Reason.DNS_TIMEOUT),
        ("all tcp", lambda r: r.target.protocol in tcp_based, Reason.TCP_TIMEOUT),
        ("udp", lambda r: r.target.protocol is Protocol.UDP, Reason.UDP_CLOSED),
        ("resources", lambda r: r.target.protocol is Protocol.HTTP, Verdict.HTTP_NETWORK_DENIED),
        ("vault", lambda r: ".vault." in r.target.host and r.target.protocol is Protocol.HTTP,
         Verdict.HTTP_PUBLIC_ACCESS_DISABLED),
        ("intercepted", lambda r: r.target.protocol is Protocol.HTTP, Verdict.HTTP_INTERCEPTED),
        ("nxdomain", lambda r: r.target.protocol is Protocol.DNS and "@reference" not in r.id, Reason.DNS_NXDOMAIN),
    ]  # fmt: skip
    return modes


def test_every_remedy_the_rules_produce_from_catalog_values_pastes() -> None:
    plan, inputs = _catalog_plan()
    commands: set[str] = set()
    rules: set[str] = set()
    for _name, pred, reason in _failure_modes(plan):
        results = _passing(plan)
        for r in results:
            if pred(r):
                r.status, r.reason, r.detail = Status.FAIL, reason, f"{reason.value} for {r.id}"
                if reason.value.startswith("http_"):
                    r.http = HttpFacts(status=403)
        for finding in diagnose(Evidence(results=results, plan=plan, inputs=inputs)):
            for remediation in finding.remediation:
                assert_explained(remediation)
                if remediation.commands:
                    rules.add(finding.id)
                    commands.update(remediation.commands)
    assert_pastes(sorted(commands))
    assert {"outbound-443-blocked", "outbound-unavailable", "situational-endpoints-blocked"} <= rules, rules
    assert {"resource-network-denied", "smb-445-blocked", "private-endpoint-unreachable"} <= rules, rules
