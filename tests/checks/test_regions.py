"""checks.regions: a typed region is a region of its cloud, a typo gets "did you mean", a new one a warning."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from checks.catalog import load_catalog
from checks.inputs import InputError, Inputs
from checks.plan import build_plan
from checks.regions import check_region, region_names
from tests.helpers.cli import NOT_AZURE_ENV, WS
from tests.helpers.netns import requires_netns, run_in_netns
from tests.helpers.ports import free_port


def test_the_lists_are_names_and_no_name_is_in_two_of_them() -> None:
    names = region_names()
    assert len(names.clouds["public"]) == 57 + 16  # [S22]'s physical regions + special-purpose names
    everything = [n for cloud in names.clouds.values() for n in cloud] + [*names.geographies, *names.closed]
    assert all(re.fullmatch(r"[a-z0-9]+", n) for n in everything)
    assert len(everything) == len(set(everything))
    assert {"eastus", "westeurope", "swedencentral", "eastus2euap"} <= names.clouds["public"]
    assert names.clouds["usgov"] >= {"usgovvirginia", "usdodeast"} and "chinanorth3" in names.clouds["china"]


@pytest.mark.parametrize(
    ("name", "cloud", "error"),
    [
        ("eastuss", "public", "did you mean eastus?"),
        ("esatus", "public", "did you mean eastus?"),
        ("westeurpoe", "public", "did you mean westeurope?"),
        ("west-europe", "public", "did you mean westeurope? (region names are letters and digits only)"),
        ("europe", "public", "a geography, not a region"),
        ("germanycentral", "public", "a region of the closed Azure Germany cloud"),
        ("usgovvirginia", "public", "a region of the usgov cloud: add --cloud usgov"),
        ("usgovvirgina", "public", "did you mean usgovvirginia? (a region of the usgov cloud: add --cloud usgov)"),
        ("eastus", "china", "a region of the public cloud: add --cloud public"),
        ("chinaest2", "china", "did you mean chinaeast2?"),
    ],
)
def test_a_typo_is_refused_saying_what_was_meant(name: str, cloud: str, error: str) -> None:
    found = check_region(name, cloud)
    assert found.error is not None and found.error.startswith(error) and found.warning is None


@pytest.mark.parametrize(
    ("name", "cloud"),
    [("eastus", "public"), ("swedensouth", "public"), ("jioindiawest", "public"), ("usdodeast", "usgov")],
)
def test_a_listed_name_passes_quietly(name: str, cloud: str) -> None:
    assert check_region(name, cloud).error is None and check_region(name, cloud).warning is None


@pytest.mark.parametrize("name", ["westus4", "eastus3", "norwaysouth", "atlantiscentral"])
def test_an_unlisted_name_that_may_be_new_passes_with_a_warning(name: str) -> None:
    found = check_region(name, "public")
    assert found.error is None and found.warning is not None and "not in amlprobe's list" in found.warning


def _plan(region: str, source: str, cloud: str = "public") -> list[str]:
    inputs = Inputs.model_validate(
        {"region": region, "cloud": cloud, "workspace_id": WS, "sources": {"region": source}}
    )
    return build_plan(load_catalog(cloud), inputs).warnings


def test_the_plan_names_the_source_of_a_typo_and_keeps_a_warning() -> None:
    with pytest.raises(InputError, match=r"^env:AMLPROBE_REGION: field 'region': 'eastuss' is not a region name: did"):
        _plan("eastuss", "env:AMLPROBE_REGION")
    (warning,) = _plan("westus4", "flag")
    assert warning.startswith("flag: region 'westus4' is not in amlprobe's list of public regions")


def test_what_the_machine_says_is_taken_as_it_is() -> None:
    # IMDS and the compute's own files know their region better than a list from 2025.
    assert _plan("eastuss", "imds") == []
    assert _plan("westus9", "discovered:/mnt/azmnt/.nbvm") == []


# --- the command line -----------------------------------------------------------------------------


def amlprobe(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI inside a fresh network namespace (only lo), never an Azure VM."""
    return run_in_netns(
        [f"cd {shlex.quote(str(cwd))}"],
        [sys.executable, "-m", "amlprobe", *args],
        env={**NOT_AZURE_ENV, **(env or {})},
        timeout=60,
    )


@requires_netns
@pytest.mark.parametrize("command", ["plan", "check"])
def test_eastuss_is_one_line_and_exit_3(tmp_path: Path, command: str) -> None:
    extra = ["--dns-server", f"127.0.0.1:{free_port()}"] if command == "check" else []
    out = amlprobe(command, "--region", "eastuss", "--workspace-id", WS, *extra, cwd=tmp_path)
    assert out.returncode == 3, out.stdout[-300:]
    assert out.stderr == (
        "amlprobe: error: flag: field 'region': 'eastuss' is not a region name: did you mean eastus?\n"
    )


@requires_netns
def test_a_region_typo_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    out = amlprobe("plan", "--workspace-id", WS, cwd=tmp_path, env={"AMLPROBE_REGION": "West Europ"})
    assert out.returncode == 3
    assert out.stderr.startswith("amlprobe: error: env:AMLPROBE_REGION: field 'region': 'westeurop' is not a region")
    assert out.stderr.rstrip().endswith("did you mean westeurope?")


@requires_netns
def test_a_display_name_is_the_region(tmp_path: Path) -> None:
    out = amlprobe("plan", "--region", "East US 2", "--workspace-id", WS, "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["warnings"] == [] and f"tls:{WS}.workspace.eastus2.api.azureml.ms:443" in {
        c["id"] for c in plan["checks"]
    }


@requires_netns
def test_a_new_region_is_planned_with_a_warning(tmp_path: Path) -> None:
    out = amlprobe("plan", "--region", "westus4", "--workspace-id", WS, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "\nWarnings:\n  flag: region 'westus4' is not in amlprobe's list of public regions" in out.stdout
