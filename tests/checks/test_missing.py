"""checks.missing: which inputs a plan lacked, which of them a required check needed, and where to find each."""

from __future__ import annotations

from typing import Any

from checks.catalog import load_catalog
from checks.inputs import Inputs
from checks.missing import missing_inputs
from checks.plan import build_plan

WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
FULL = {
    "region": "eastus",
    "workspace_id": WS,
    "workspace_name": "ws-ml",
    "storage_account": "stml",
    "key_vault": "kv-ml",
    "instance_name": "ci-alice",
}


def missing(**values: Any) -> dict[str, Any]:
    inputs = Inputs.model_validate(values)
    return {m.input: m for m in missing_inputs(build_plan(load_catalog("public"), inputs), inputs)}


def test_nothing_given_lists_every_input_with_its_flag_and_how_to_find_it() -> None:
    got = missing()
    required = [name for name, m in got.items() if m.required]
    assert required == ["region", "workspace_id", "workspace_name", "storage_account", "key_vault", "instance_name"]
    region = got["region"]
    assert (region.flag, region.env) == ("--region", "AMLPROBE_REGION")
    assert region.how[0] == (
        "az ml workspace show --name <WORKSPACE_NAME> --resource-group <RESOURCE_GROUP> --query location --output tsv"
    )
    assert all(m.how for m in got.values()) and all(m.checks for m in got.values())


def test_known_inputs_fill_the_hints_quoted() -> None:
    got = missing(region="eastus", workspace_name="ws-ml", resource_group="RG_(prod)")
    assert (
        got["workspace_id"]
        .how[0]
        .startswith(
            "az resource show --resource-group 'RG_(prod)' --name ws-ml --resource-type"
            " Microsoft.MachineLearningServices/workspaces --query properties.workspaceId"
        )
    )


def test_a_name_variant_that_runs_stands_for_the_one_skipped() -> None:
    # The instance's reported name needs its DNS suffix; the catalog's other names for it run without one.
    got = missing(**FULL)
    assert list(got) == ["instance_domain_suffix"] and got["instance_domain_suffix"].required is False
    assert "ci-https-reported" in got["instance_domain_suffix"].checks


def test_situational_rows_alone_do_not_make_an_input_required() -> None:
    got = missing(**{**FULL, "scenarios": ["compute-instance", "docker-images"]})
    assert got["container_registry"].required  # the docker-images workload needs the registry
    got = missing(**FULL)
    assert "container_registry" not in got or not got["container_registry"].required
