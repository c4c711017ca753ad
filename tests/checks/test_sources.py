"""Merging inputs: precedence, provenance, and one-line errors for bad files and values."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from checks.addresses import AZURE_DNS
from checks.cli import add_workspace_arguments
from checks.discovery import Discovery, ImdsFacts
from checks.inputs import DEFAULT_SCENARIOS
from checks.sources import ENV_VARS, FIELDS, InputError, find_config_json, gather_inputs, load_config_file

SUB_A = "8d10da13-8125-4ba9-a717-bf7490507b3d"
SUB_B = "0b6f7a2e-3c1d-4e5f-9a8b-7c6d5e4f3a2b"
WS_ID = "11111111-2222-3333-4444-555555555555"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def six_layers(tmp_path: Path) -> dict[str, object]:
    """The same field (region) set by every source, each with its own value."""
    toml = write(tmp_path / "amlprobe.toml", 'region = "config-region"\n')
    cfg_json = write(tmp_path / "cfg" / "config.json", json.dumps({"resource_group": "rg-json"}))
    discovery = Discovery(
        values={"region": "discovered-region", "resource_group": "rg-discovered"},
        sources={
            "region": "discovered:env AZUREML_SERVICE_ENDPOINT",
            "resource_group": "discovered:env CI_RESOURCE_GROUP",
        },
        imds=ImdsFacts(region="imds-region", resource_group="rg-imds", subscription_id=SUB_B),
        azure_vm=True,
    )
    return {
        "flags": {"region": "flag-region"},
        "config_path": toml,
        "env": {"AMLPROBE_REGION": "env-region"},
        "config_json_paths": [cfg_json],
        "discovery": discovery,
    }


def test_precedence_flag_config_env_configjson_discovery_imds(tmp_path: Path) -> None:
    layers = six_layers(tmp_path)
    toml = layers["config_path"]
    cfg_json = layers["config_json_paths"][0]  # type: ignore[index]

    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.region, got.sources["region"]) == ("flag-region", "flag")

    layers["flags"] = {"region": None}
    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.region, got.sources["region"]) == ("config-region", f"config:{toml}")

    layers["config_path"] = None
    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.region, got.sources["region"]) == ("env-region", "env:AMLPROBE_REGION")

    layers["env"] = {}
    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.region, got.sources["region"]) == ("discovered-region", "discovered:env AZUREML_SERVICE_ENDPOINT")
    # config.json beats discovery for the fields it has.
    assert (got.resource_group, got.sources["resource_group"]) == ("rg-json", f"config.json:{cfg_json}")

    layers["config_json_paths"] = []
    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.resource_group, got.sources["resource_group"]) == ("rg-discovered", "discovered:env CI_RESOURCE_GROUP")

    layers["discovery"] = Discovery(
        imds=ImdsFacts(region="imds-region", resource_group="rg-imds", subscription_id=SUB_B)
    )
    got = gather_inputs(**layers)  # type: ignore[arg-type]
    assert (got.region, got.sources["region"]) == ("imds-region", "imds")
    assert (got.resource_group, got.subscription_id) == ("rg-imds", SUB_B)
    assert got.sources["subscription_id"] == "imds"


def test_every_field_has_a_provenance(tmp_path: Path) -> None:
    got = gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[])
    assert set(got.sources) == set(FIELDS)
    assert set(got.sources.values()) == {"default"}
    assert got.cloud == "public" and got.scenarios == list(DEFAULT_SCENARIOS) and got.reference_dns == [AZURE_DNS]


def test_imds_subscription_is_not_the_workspace_on_aml_compute() -> None:
    imds = ImdsFacts(
        region="westeurope", subscription_id=SUB_B, resource_group="batch-rg", az_environment="AzureUSGovernmentCloud"
    )
    got = gather_inputs(
        flags={},
        config_path=None,
        env={},
        config_json_paths=[],
        discovery=Discovery(aml_compute="compute-instance", imds=imds, azure_vm=True),
    )
    assert got.region == "westeurope" and got.cloud == "usgov"
    assert got.sources["cloud"] == "imds"
    assert got.subscription_id is None and got.resource_group is None
    assert got.sources["subscription_id"] == "default"


def test_malformed_discovered_values_are_ignored() -> None:
    discovery = Discovery(
        values={"subscription_id": "not-a-guid", "workspace_name": "ws"},
        sources={"workspace_name": "discovered:env CI_WORKSPACE"},
    )
    got = gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[], discovery=discovery)
    assert got.subscription_id is None and got.workspace_name == "ws"


def test_toml_file_with_workspace_table(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "amlprobe.toml",
        f"""
cloud = "China"
region = "West Europe"
scenarios = ["compute-instance", "studio", "studio"]
private_endpoint = false
private_endpoints = {{ storage = true, acr = false }}
private_networks = ["10.1.2.3/8", "fd00::/8"]
reference_dns = ["168.63.129.16", "127.0.0.1:5353", "[::1]:53"]
partial = true

[workspace]
subscription_id = "{SUB_A.upper()}"
workspace_id = "{WS_ID}"
workspace_name = "ws-ml"
resource_group = "rg-ml"
storage_account = "stml"
key_vault = "kv-ml"
container_registry = "crml"
instance_name = "ci-alice"
instance_domain_suffix = "WestEurope.instances.azureml.ms"
""",
    )
    got = gather_inputs(flags={}, config_path=toml, env={}, config_json_paths=[])
    assert got.cloud == "china"
    assert got.region == "westeurope"
    assert got.scenarios == ["compute-instance", "studio"]
    assert got.private_endpoint is False and got.private_endpoints == {"storage": True, "acr": False}
    # Per resource wins over the global word; "storage" covers every storage sub-resource.
    assert got.private_endpoint_for("storage-blob") == (True, "private_endpoints")
    assert got.private_endpoint_for("workspace") == (False, "private_endpoint")
    assert got.instance_domain_suffix == "westeurope.instances.azureml.ms"
    assert got.private_networks == ["10.0.0.0/8", "fd00::/8"]
    assert got.reference_dns == ["168.63.129.16", "127.0.0.1:5353", "[::1]:53"]
    assert got.partial is True
    assert got.subscription_id == SUB_A
    assert (got.workspace_id, got.workspace_name, got.resource_group) == (WS_ID, "ws-ml", "rg-ml")
    assert (got.storage_account, got.key_vault, got.container_registry, got.instance_name) == (
        "stml",
        "kv-ml",
        "crml",
        "ci-alice",
    )
    assert {got.sources[f] for f in FIELDS} == {f"config:{toml}"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("region = 5\n", "field 'region': expected a string, got int"),
        ("regoin = 'x'\n", "field 'regoin': unknown field (did you mean 'region'?)"),
        ('cloud = "azure"\n', "field 'cloud': expected one of public, usgov, china, got 'azure'"),
        ('scenarios = "studio"\n', "field 'scenarios': expected a list of strings"),
        ('scenarios = ["studio", "notebooks"]\n', "field 'scenarios': unknown scenario 'notebooks'"),
        ("scenarios = []\n", "field 'scenarios': expected at least one scenario"),
        ('private_endpoint = "maybe"\n', "field 'private_endpoint': expected true or false, got 'maybe'"),
        (
            "private_endpoints = { blob = true }\n",
            "field 'private_endpoints': unknown resource 'blob' (known: workspace, notebooks, storage,",
        ),
        ("private_endpoints = { acr = 'no' }\n", "field 'private_endpoints': expected true or false, got 'no'"),
        (
            'private_networks = ["10.0.0.0/33"]\n',
            "field 'private_networks': expected an IP network like 10.0.0.0/8, got '10.0.0.0/33'",
        ),
        (
            'reference_dns = ["dns.example"]\n',
            "field 'reference_dns': expected an IP address, ip:port or [ipv6]:port, got 'dns.example'",
        ),
        ('subscription_id = "1234"\n', "field 'subscription_id': expected a GUID, got '1234'"),
        ('workspace_name = "   "\n', "field 'workspace_name': expected a non-empty string"),
        ("workspace = 3\n", "field 'workspace': expected a table"),
        ('region = "a"\n[workspace]\nregion = "b"\n', "field 'region': given both at top level and in [workspace]"),
        ("[workspace]\nname = 'ws'\n", "field 'name': unknown field"),
    ],
)
def test_bad_config_values_name_source_and_field(tmp_path: Path, text: str, message: str) -> None:
    toml = write(tmp_path / "amlprobe.toml", text)
    with pytest.raises(InputError) as info:
        gather_inputs(flags={}, config_path=toml, env={}, config_json_paths=[])
    assert str(info.value).startswith(f"config {toml}: {message}")
    assert "\n" not in str(info.value)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    toml = write(tmp_path / "amlprobe.toml", 'region = "westeurope"\nscenarios = [\n  "studio"\n  "x"\n')
    with pytest.raises(InputError) as info:
        load_config_file(toml)
    text = str(info.value)
    assert text.startswith(f"config {toml}: invalid TOML: ") and "line" in text and "\n" not in text


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^config .*missing\.toml: cannot read: No such file or directory$"):
        gather_inputs(flags={}, config_path=tmp_path / "missing.toml", env={}, config_json_paths=[])


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("AMLPROBE_SCENARIOS", "studio, vscode packages", ["studio", "vscode", "packages"]),
        ("AMLPROBE_PRIVATE_ENDPOINT", "YES", True),
        ("AMLPROBE_PRIVATE_ENDPOINT", "off", False),
        ("AMLPROBE_PRIVATE_ENDPOINTS", "storage=no, workspace=YES", {"storage": False, "workspace": True}),
        ("AMLPROBE_INSTANCE_DOMAIN_SUFFIX", "EastUS.instances.azureml.ms.", "eastus.instances.azureml.ms"),
        ("AMLPROBE_REFERENCE_DNS", "10.0.0.4,10.0.0.5", ["10.0.0.4", "10.0.0.5"]),
        ("AMLPROBE_WORKSPACE_ID", WS_ID.upper(), WS_ID),
        ("AMLPROBE_CLOUD", "USGov", "usgov"),
        ("AMLPROBE_PARTIAL", "yes", True),
    ],
)
def test_environment_variables(var: str, value: str, expected: object) -> None:
    field = var.removeprefix("AMLPROBE_").lower()
    got = gather_inputs(flags={}, config_path=None, env={var: value, "AMLPROBE_REGION": ""}, config_json_paths=[])
    assert getattr(got, field) == expected
    assert got.sources[field] == f"env:{var}"
    assert got.sources["region"] == "default"  # empty means unset


def test_env_var_names_cover_every_field() -> None:
    assert set(ENV_VARS) == set(FIELDS)
    assert ENV_VARS["workspace_id"] == "AMLPROBE_WORKSPACE_ID"


def test_bad_environment_value() -> None:
    with pytest.raises(InputError) as info:
        gather_inputs(flags={}, config_path=None, env={"AMLPROBE_PRIVATE_ENDPOINT": "sometimes"}, config_json_paths=[])
    assert str(info.value) == (
        "environment AMLPROBE_PRIVATE_ENDPOINT: field 'private_endpoint': expected true or false, got 'sometimes'"
    )


def test_flags() -> None:
    got = gather_inputs(
        flags={"scenarios": ["studio"], "private_endpoint": True, "reference_dns": "10.0.0.4", "region": None},
        config_path=None,
        env={},
        config_json_paths=[],
    )
    assert got.scenarios == ["studio"] and got.private_endpoint is True and got.reference_dns == ["10.0.0.4"]
    assert got.sources["private_endpoint"] == "flag" and got.sources["region"] == "default"
    with pytest.raises(InputError, match=r"^flags: field 'regions': unknown field \(did you mean 'region'\?\)$"):
        gather_inputs(flags={"regions": "x"}, config_path=None, env={}, config_json_paths=[])
    with pytest.raises(InputError, match=r"^flags: field 'workspace_id': expected a GUID, got 'abc'$"):
        gather_inputs(flags={"workspace_id": "abc"}, config_path=None, env={}, config_json_paths=[])


def test_config_json_search_order_like_the_sdk(tmp_path: Path) -> None:
    project = tmp_path / "repo" / "src" / "notebooks"
    project.mkdir(parents=True)
    here = write(project / "config.json", json.dumps({"workspace_name": "ws-here"}))
    dotted = write(
        tmp_path / "repo" / ".azureml" / "config.json",
        json.dumps({"subscription_id": SUB_A, "resource_group": "rg-dot", "workspace_name": "ws-dot"}),
    )
    assert find_config_json(project)[:2] == [dotted, here]

    got = gather_inputs(flags={}, config_path=None, env={}, cwd=project)
    assert (got.workspace_name, got.resource_group, got.subscription_id) == ("ws-dot", "rg-dot", SUB_A)
    assert got.sources["workspace_name"] == f"config.json:{dotted}"

    # Without the .azureml one, the nearest plain config.json is used, and only that one.
    dotted.unlink()
    got = gather_inputs(flags={}, config_path=None, env={}, cwd=project)
    assert got.workspace_name == "ws-here" and got.resource_group is None


def test_unrelated_config_json_is_skipped(tmp_path: Path) -> None:
    project = tmp_path / "app"
    write(project / "config.json", json.dumps({"eslint": True}))
    write(tmp_path / "config.json", "{not json")
    ours = write(tmp_path / ".azureml" / "config.json", json.dumps({"workspace_name": "ws-ml"}))
    got = gather_inputs(flags={}, config_path=None, env={}, cwd=project)
    assert got.workspace_name == "ws-ml" and got.sources["workspace_name"] == f"config.json:{ours}"
    ours.unlink()
    got = gather_inputs(flags={}, config_path=None, env={}, cwd=project)
    assert got.workspace_name is None


def test_explicit_config_json_errors(tmp_path: Path) -> None:
    bad_type = write(tmp_path / "a.json", json.dumps({"subscription_id": 42}))
    with pytest.raises(InputError) as info:
        gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[bad_type])
    assert str(info.value) == f"config.json {bad_type}: field 'subscription_id': expected a string, got int"

    not_json = write(tmp_path / "b.json", "{")
    with pytest.raises(InputError, match=r"^config\.json .*b\.json: invalid JSON: "):
        gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[not_json])

    with pytest.raises(InputError, match=r"^config\.json .*c\.json: cannot read: No such file or directory$"):
        gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[tmp_path / "c.json"])

    # Explicit paths: the first one is strongest, later ones fill gaps.
    first = write(tmp_path / "1.json", json.dumps({"workspace_name": "ws-1"}))
    second = write(tmp_path / "2.json", json.dumps({"workspace_name": "ws-2", "resource_group": "rg-2"}))
    got = gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[first, second])
    assert (got.workspace_name, got.resource_group) == ("ws-1", "rg-2")


def test_every_workspace_flag_names_its_variable_in_its_help() -> None:
    parser = argparse.ArgumentParser()
    add_workspace_arguments(parser)
    helps = {a.dest: a.help or "" for a in parser._actions}
    for name in ("region", "cloud", "workspace_id", "storage_account", "instance_domain_suffix"):
        assert f"env {ENV_VARS[name]}" in helps[name]
