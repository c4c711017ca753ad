"""The Azure ML plan through the command line: plan, check with workspace inputs, bad input."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import INPUTS, NOT_AZURE_ENV, WS
from tests.helpers.netns import python_in_netns, requires_netns, run_in_netns
from tests.helpers.report import validated

# `check` with workspace inputs probes the whole Azure ML plan, including the platform address
# 168.63.129.16: these tests therefore run it only inside a private network namespace, so that a
# mistake in a test can never send a packet off this machine.
pytestmark = requires_netns

# Never an Azure VM here, and never the machine's proxies or CA settings.
ENV = NOT_AZURE_ENV


def amlprobe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI inside a fresh network namespace (only lo, nothing routed), from ``cwd``."""
    return run_in_netns([f"cd {shlex.quote(str(cwd))}"], [sys.executable, "-m", "amlprobe", *args], env=ENV, timeout=60)


def test_plan_lists_rows_and_skips_without_network(tmp_path: Path) -> None:
    out = amlprobe("plan", *INPUTS, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"tls:{WS}.workspace.eastus.api.azureml.ms:443" in out.stdout
    assert "udp:eastus.tundra.azureml.ms:5831" in out.stdout
    assert "smb:labsa.file.core.windows.net:445" in out.stdout
    # No instance name was given: the instance rows are skipped, saying what they need.
    assert "instance_name" in out.stdout


def test_plan_json(tmp_path: Path) -> None:
    # A US Government region: eastus is a public-cloud region, refused with --cloud usgov.
    args = [*INPUTS, "--cloud", "usgov", "--region", "usgovvirginia"]
    out = amlprobe("plan", *args, "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    hosts = {c["target"]["host"] for c in plan["checks"]}
    assert "login.microsoftonline.us" in hosts
    assert f"{WS}.workspace.usgovvirginia.api.ml.azure.us" in hosts


def test_bad_config_file_exit_3(tmp_path: Path) -> None:
    cfg = tmp_path / "amlprobe.toml"
    cfg.write_text("region = 5\n")
    out = amlprobe("check", "--config", str(cfg), cwd=tmp_path)
    assert out.returncode == 3
    assert "amlprobe.toml" in out.stderr and "region" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_catalog_exit_3(tmp_path: Path) -> None:
    cat = tmp_path / "extra.toml"
    cat.write_text('[[endpoint]]\nid = "mine"\nhost = "x.example"\nports = ["a"]\n')
    out = amlprobe("check", *INPUTS, "--catalog", str(cat), cwd=tmp_path)
    assert out.returncode == 3
    assert "extra.toml" in out.stderr and "mine" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("region", ["east_us!", "eastus.example"])
def test_bad_region_exit_3(tmp_path: Path, region: str) -> None:
    out = amlprobe("check", "--region", region, "--dns-server", "127.0.0.1:9", cwd=tmp_path)
    assert out.returncode == 3
    assert "region" in out.stderr and len(out.stderr.strip().splitlines()) == 1


_FULL_PLAN = """
import asyncio, sys
from lab.servers.dns import DnsServer

async def main():
    async with DnsServer("127.0.0.1", 0, records={}) as dns:  # NXDOMAIN for every name
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "amlprobe", "check", *ARGS,
            "--dns-server", dns.server_spec, "--reference-dns", dns.server_spec, "--timeout", "0.5",
            "--format", "json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    sys.stdout.write(out.decode())
    sys.stderr.write(err.decode())
    sys.exit(proc.returncode)

asyncio.run(main())
"""


def test_full_plan_against_a_test_dns_server(tmp_path: Path) -> None:
    """Only workspace inputs and --dns-server: the whole plan runs and every row is classified."""
    code = _FULL_PLAN.replace("*ARGS", ", ".join(json.dumps(a) for a in INPUTS))
    proc = python_in_netns([f"cd {shlex.quote(str(tmp_path))}"], code, env=ENV, timeout=90)
    assert proc.returncode == 2, proc.stderr
    report = validated(proc.stdout)
    by_reason: dict[str, int] = {}
    for c in report.checks:
        by_reason[c.reason.value] = by_reason.get(c.reason.value, 0) + 1
    # Names fail as NXDOMAIN; rows without their inputs are skipped, saying which input they need.
    assert by_reason.get("dns_nxdomain", 0) > 20
    assert by_reason.get("skipped_missing_input", 0) > 0
    assert report.environment["inputs"]["sources"]["region"] == "flag"
    assert [f.id for f in report.findings if f.severity.value == "critical"]
    assert report.duration_ms < 30_000


def test_private_endpoint_per_resource_flag(tmp_path: Path) -> None:
    out = amlprobe("plan", *INPUTS, "--private-endpoint", "storage=no", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    expect = {e["resource"]: e["expect"] for e in json.loads(out.stdout)["dns_expectations"]}
    # Without a word the evidence decides; the flag fixes storage alone.
    assert expect == {"workspace": "evidence", "workspace-cert": "evidence", "storage-blob": "public",
                      "storage-file": "public"}  # fmt: skip
    out = amlprobe("plan", *INPUTS, "--no-private-endpoint", "--format", "json", cwd=tmp_path)
    assert {e["expect"] for e in json.loads(out.stdout)["dns_expectations"]} == {"public"}
    out = amlprobe("plan", *INPUTS, "--private-endpoint", "blob=no", cwd=tmp_path)
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1
    assert "unknown resource 'blob'" in out.stderr


def test_instance_domain_suffix_flag_probes_one_instance_name(tmp_path: Path) -> None:
    args = ["--instance-name", "ci1", "--instance-domain-suffix", "eastus.instances.azureml.ms", "--format", "json"]
    out = amlprobe("plan", *INPUTS, *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    hosts = {c["target"]["host"] for c in json.loads(out.stdout)["checks"] if "instances" in c["target"]["host"]}
    assert hosts == {
        "ci1.eastus.instances.azureml.ms",
        "ci1-8787.eastus.instances.azureml.ms",
        "ci1-18881.eastus.instances.azureml.ms",
    }


def test_no_network_at_all_is_one_finding(tmp_path: Path) -> None:
    """Issue 11: a machine with no route out and no resolver that answers. It used to print 52 to 76 findings,
    most of them unexplained-failure; one cause is one finding, and every failure is its evidence."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.53\n")
    env = {**ENV, "AMLPROBE_RESOLV_CONF": str(resolv), "AMLPROBE_NBVM_PATH": str(tmp_path / "no-nbvm")}
    args = ["check", *INPUTS, "--key-vault", "kv-lab", "--instance-name", "ci-lab", "--workspace-name", "ws-lab"]
    args += ["--dns-server", "10.0.0.53", "--reference-dns", "10.0.0.54", "--timeout", "1", "--format", "json"]
    # Only lo exists in the namespace: nothing is routed, so no packet can leave (every address is unreachable).
    out = run_in_netns([f"cd {shlex.quote(str(tmp_path))}"], [sys.executable, "-m", "amlprobe", *args], env=env)
    assert out.returncode == 2, out.stderr
    report = validated(out.stdout)
    assert [f.id for f in report.findings if f.severity.value != "info"] == ["network-unavailable"]
    (finding,) = [f for f in report.findings if f.id == "network-unavailable"]
    failed = {c.id for c in report.checks if c.status.value in ("fail", "warn")}
    assert len(failed) > 50 and failed <= set(finding.evidence)
    assert "unreachable" in finding.detail
    # Nothing passed: not even a reference resolver "agreeing" with a silence.
    assert report.summary.passed == 0
