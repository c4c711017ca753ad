"""The packaged catalog is valid and complete; user catalogs merge; every mistake is one precise line."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from checks import catalog as catalog_module
from checks.catalog import PLACEHOLDERS, CatalogError, Endpoint, load_catalog
from checks.inputs import SCENARIOS

CLOUDS = ("public", "usgov", "china")

GOOD_ENTRY = """
[[endpoint]]
id = "ok-one"
fqdn = "a.example.com"
host = "a.example.com"
protocol = "tls"
ports = [443]
purpose = "first entry"
required = true
scenarios = ["compute-instance"]
doc = "https://example.com/doc"
operator = "third-party"
"""


def _entry(**fields: object) -> str:
    base: dict[str, object] = {
        "id": "foo",
        "fqdn": "b.example.com",
        "host": "b.example.com",
        "protocol": "tcp",
        "ports": [443],
        "purpose": "x",
        "required": True,
        "scenarios": ["compute-instance"],
        "doc": "https://example.com/doc",
    }
    base.update(fields)
    lines = ["[[endpoint]]"]
    for key, value in base.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = f'"{value}"'
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the packaged data -------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_packaged_catalog_loads_and_is_well_formed(cloud: str) -> None:
    cat = load_catalog(cloud)
    assert cat.cloud == cloud
    assert cat.files == [f"checks/data/{cloud}.toml", "checks/data/common.toml"]
    assert len(cat.endpoints) > 40 and len(cat.private_dns) >= 14
    ids = [e.id for e in cat.endpoints] + [r.id for r in cat.private_dns]
    assert len(ids) == len(set(ids))
    for e in cat.endpoints:
        assert e.doc.startswith("https://learn.microsoft.com/"), e.id
        assert e.ports and all(1 <= p <= 65535 for p in e.ports), e.id
        assert e.scenarios and set(e.scenarios) <= set(SCENARIOS), e.id
        assert e.ref, f"{e.id}: every row names its place in requirements.md"
        if e.host is None:
            assert e.note, f"{e.id}: a row without a concrete host must say why"
        else:
            assert "*" not in e.host and "<" not in e.host
        if e.path is not None:
            assert e.protocol in ("websocket", "http")
    for r in cat.private_dns:
        assert r.doc.startswith("https://learn.microsoft.com/"), r.id
        assert set(r.scenarios) <= set(SCENARIOS), r.id
        if r.privatelink is not None:
            assert r.zone is not None and r.privatelink.endswith("." + r.zone), r.id
        if r.private_endpoint:
            assert r.forwarder_zones, r.id


# Documented compute-instance name variants per cloud (requirements.md §4, real-world-azure.md Q3):
# public azureml.ms / ml.azure.ms / azureml.net; US Gov azureml.us / azureml.ms / ml.azure.us; China
# azureml.cn / azureml.ms / ml.azure.ms (S4, sic) / ml.azure.cn (S4's earlier text and translations).
CI_VARIANTS = {"public": 3, "usgov": 3, "china": 4}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_variant_groups_hold_different_names(cloud: str) -> None:
    groups: dict[str, set[str]] = {}
    for e in load_catalog(cloud).endpoints:
        if e.variant_group and not e.preferred:
            groups.setdefault(e.variant_group, set()).add(e.host or e.fqdn)
    assert len(groups["ci-host"]) == CI_VARIANTS[cloud]
    assert all(len(hosts) >= 2 for hosts in groups.values()), groups


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_instance_reported_name_supersedes_the_variants(cloud: str) -> None:
    cat = load_catalog(cloud)
    preferred = [e for e in cat.endpoints if e.preferred]
    assert {e.host for e in preferred} == {"{instance_name}.{instance_domain_suffix}"}
    assert {e.protocol for e in preferred} == {"tls", "websocket", "tcp"}
    assert all(e.variant_group == "ci-host" for e in preferred)
    assert [r.id for r in cat.private_dns if r.preferred] == ["dns-ci-reported"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_instance_app_ports_travel_in_the_host_name_without_a_private_endpoint(cloud: str) -> None:
    # S1 tip: 8787/18881 only with a workspace private endpoint; else <ci>-<port>.<suffix> on 443.
    cat = load_catalog(cloud)
    app = [e for e in cat.endpoints if set(e.ports) & {8787, 18881}]
    assert app and all(e.port_in_host_name and e.protocol == "tcp" for e in app), [e.id for e in app]
    assert not any(e.port_in_host_name for e in cat.endpoints if not set(e.ports) & {8787, 18881})


@pytest.mark.parametrize("cloud", CLOUDS)
def test_names_no_source_confirms_are_not_probed(cloud: str) -> None:
    cat = load_catalog(cloud)
    by_id = {e.id: e for e in cat.endpoints}
    # WireServer: the current 168.63.129.16 page lists 80 and 32526 only.
    assert by_id["wireserver"].ports == [80, 32526]
    # The bare <region>.service.batch.* apex is a DNS zone, not the node-management host.
    assert by_id["batch-node-management"].host is None and by_id["batch-node-management"].note
    assert not any(r.resource == "batch" for r in cat.private_dns)
    if cloud == "public":
        # <wsid>.tundra.<region>.api.azureml.ms: no source names the label under the wildcard.
        assert by_id["tundra-api"].host is None
    # A registry's data endpoint exists only with a private endpoint or dedicated data endpoints.
    assert by_id["acr-data"].may_not_exist
    acr_data = next(r for r in cat.private_dns if r.resource == "acr-data")
    assert acr_data.may_not_exist and acr_data.pe_resource == "acr"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_workspace_endpoint_answers_for_its_cert_name_and_instances(cloud: str) -> None:
    for r in load_catalog(cloud).private_dns:
        if r.resource in ("workspace-cert", "compute-instance", "compute-instance-ssh"):
            assert r.pe_resource == "workspace", r.id


def test_every_public_outbound_row_of_requirements_is_covered() -> None:
    cat = load_catalog("public")
    rows = {int(n) for e in cat.endpoints for n in re.findall(r"#(\d+)", e.ref)}
    # §1b of requirements.md has rows 1-34; each must be in the catalog (probed or listed as skipped).
    assert set(range(1, 35)) <= rows, sorted(set(range(1, 35)) - rows)
    tags = {e.service_tag.split(".")[0] for e in cat.endpoints if e.service_tag}
    # §1a service tags.
    assert {
        "AzureActiveDirectory",
        "AzureMachineLearning",
        "BatchNodeManagement",
        "AzureResourceManager",
        "Storage",
        "AzureFrontDoor",
        "MicrosoftContainerRegistry",
        "AzureMonitor",
        "AzureKeyVault",
        "VirtualNetwork",
        "AzureContainerRegistry",
    } <= tags


@pytest.mark.parametrize("cloud", ["usgov", "china"])
def test_sovereign_batch_names_are_marked_inferred(cloud: str) -> None:
    cat = load_catalog(cloud)
    batch = {e.id: e for e in cat.endpoints if e.id.startswith("batch-account") or e.id == "batch-node-management"}
    assert batch and all(e.inferred for e in batch.values())
    suffix = "usgovcloudapi.net" if cloud == "usgov" else "chinacloudapi.cn"
    assert batch["batch-node-management"].fqdn == f"*.<region>.service.batch.{suffix}"


def test_every_pattern_uses_only_known_placeholders() -> None:
    for cloud in CLOUDS:
        cat = load_catalog(cloud)
        patterns = [e.host for e in cat.endpoints if e.host] + [r.name for r in cat.private_dns]
        for pattern in patterns:
            names = {n for _t, n, _s, _c in string.Formatter().parse(pattern) if n is not None}
            assert names <= set(PLACEHOLDERS), pattern


def test_packaged_data_is_parsed_once() -> None:
    load_catalog("public")
    before = catalog_module._packaged.cache_info().hits
    load_catalog("usgov")
    load_catalog("china")
    assert catalog_module._packaged.cache_info().hits == before + 2


def test_unknown_cloud() -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog("mars")
    assert str(err.value) == "unknown cloud 'mars' (known: public, usgov, china)"


# -- user catalogs -----------------------------------------------------------------------------


def test_user_catalog_adds_entries_for_its_clouds(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'clouds = ["public"]\n' + GOOD_ENTRY + _entry(id="corp-proxy", host="proxy.contoso.example")
    )
    cat = load_catalog("public", [path])
    assert cat.files[-1] == str(path)
    added = [e for e in cat.endpoints if e.id in ("ok-one", "corp-proxy")]
    assert [e.host for e in added] == ["a.example.com", "proxy.contoso.example"]
    assert isinstance(added[1], Endpoint) and added[1].protocol == "tcp"
    usgov = load_catalog("usgov", [path])
    assert not any(e.id == "ok-one" for e in usgov.endpoints)
    assert str(path) not in usgov.files


def test_user_catalog_without_clouds_applies_everywhere(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ENTRY)
    for cloud in CLOUDS:
        assert any(e.id == "ok-one" for e in load_catalog(cloud, [path]).endpoints)


def test_user_catalog_private_dns_entry(tmp_path: Path) -> None:
    text = """
[[private_dns]]
id = "corp-app"
resource = "corp-app"
name = "app-{region}.contoso.example"
privatelink = "app-{region}.privatelink.contoso.example"
zone = "privatelink.contoso.example"
forwarder_zones = ["contoso.example"]
scenarios = ["compute-instance"]
doc = "https://example.com/doc"
"""
    cat = load_catalog("public", [_write(tmp_path, text)])
    assert cat.private_dns[-1].id == "corp-app" and cat.private_dns[-1].private_endpoint


# -- bad user catalogs: one precise line each ---------------------------------------------------


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError) as err:
        load_catalog("public", [path])
    message = str(err.value)
    assert "\n" not in message
    return message.replace(str(path), "my.toml")


def test_wrong_type(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + _entry(ports=[443, "8443"])) == (
        "my.toml: entry #2 (id 'foo'): field 'ports[1]': input should be a valid integer (got '8443')"
    )


def test_wrong_type_for_a_boolean(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(required="yes")) == (
        "my.toml: entry #1 (id 'foo'): field 'required': input should be a valid boolean (got 'yes')"
    )


def test_port_out_of_range(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(ports=[70000])) == (
        "my.toml: entry #1 (id 'foo'): field 'ports[0]': input should be less than or equal to 65535 (got 70000)"
    )


def test_unknown_protocol(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(protocol="ftp")) == (
        "my.toml: entry #1 (id 'foo'): field 'protocol': input should be 'tcp', 'tls', 'udp', 'smb',"
        " 'websocket' or 'http' (got 'ftp')"
    )


def test_unknown_field(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + GOOD_ENTRY.replace("ok-one", "ok-two") + _entry(colour="red")) == (
        "my.toml: entry #3 (id 'foo'): field 'colour': unknown field (allowed: id, scenarios, doc, ref,"
        " variant_group, inferred, may_not_exist, managed_network_only, preferred, note, fqdn, host, protocol, ports,"
        " path, service_tag, purpose, required, resource, port_in_host_name, headers, judge, operator)"
    )


def test_unknown_field_close_to_a_known_one(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(serivce_tag="Storage")) == (
        "my.toml: entry #1 (id 'foo'): field 'serivce_tag': unknown field (did you mean 'service_tag'?)"
    )


def test_missing_field(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + _entry(purpose=None)) == (
        "my.toml: entry #2 (id 'foo'): field 'purpose': missing required field"
    )


def test_operator_is_required_where_a_certificate_is_judged(tmp_path: Path) -> None:
    for protocol in ("tls", "websocket", "http"):
        assert _error(tmp_path, _entry(protocol=protocol)) == (
            "my.toml: entry #1 (id 'foo'): field 'operator': required for tls, websocket and http rows:"
            ' "microsoft" or "third-party"'
        )
    assert _error(tmp_path, _entry(protocol="tls", operator="github")).startswith(
        "my.toml: entry #1 (id 'foo'): field 'operator': input should be 'microsoft' or 'third-party'"
    )
    # A TCP row has no certificate to judge: no operator needed.
    path = _write(tmp_path, _entry(protocol="tcp"))
    assert [e.operator for e in load_catalog("public", [path]).endpoints if e.id == "foo"] == [None]


def test_every_packaged_third_party_host_is_marked() -> None:
    """The hosts whose real certificates come from public CAs other than Microsoft's (real-world-azure.md Q2a)."""
    third = {
        "pypi.org",
        "files.pythonhosted.org",
        "pytorch.org",
        "download.pytorch.org",
        "cloud.r-project.org",
        "anaconda.com",
        "repo.anaconda.com",
        "conda.anaconda.org",
        "github.com",
        "raw.githubusercontent.com",
        "ghcr.io",
        "pkg-containers.githubusercontent.com",
    }
    for cloud in CLOUDS:
        for e in load_catalog(cloud).endpoints:
            if e.protocol in ("tls", "websocket", "http") and e.host:
                assert e.operator == ("third-party" if e.host in third else "microsoft"), (cloud, e.id)


def test_missing_id(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(id=None)) == "my.toml: entry #1 (no id): field 'id': missing required field"


def test_duplicate_id_within_the_file(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + _entry(id="ok-one")) == (
        "my.toml: entry #2 (id 'ok-one'): field 'id': duplicate id, already defined at my.toml entry #1"
    )


def test_duplicate_id_of_a_packaged_entry(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(id="entra-id")) == (
        "my.toml: entry #1 (id 'entra-id'): field 'id': duplicate id, already defined at"
        " checks/data/public.toml entry #1"
    )


def test_preferred_needs_a_variant_group_and_ports_in_names_need_tcp(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + _entry(preferred=True)) == (
        "my.toml: entry #2 (id 'foo'): field 'preferred': only meaningful with a variant_group"
    )
    assert _error(tmp_path, GOOD_ENTRY + _entry(protocol="tls", port_in_host_name=True, operator="microsoft")) == (
        "my.toml: entry #2 (id 'foo'): field 'port_in_host_name': only for tcp rows with a host"
    )


def test_unknown_placeholder(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD_ENTRY + _entry(host="{bogus}.example.com")) == (
        "my.toml: entry #2 (id 'foo'): field 'host': unknown placeholder '{bogus}' (known: {region},"
        " {workspace_id}, {storage_account}, {key_vault}, {container_registry}, {instance_name},"
        " {instance_domain_suffix}, {notebooks_host})"
    )


def test_unknown_placeholder_in_private_dns(tmp_path: Path) -> None:
    text = """
[[private_dns]]
id = "corp"
resource = "corp"
name = "{region}.contoso.example"
zone = "privatelink.{zone}.example"
scenarios = ["compute-instance"]
doc = "https://example.com/doc"
"""
    assert _error(tmp_path, text).startswith(
        "my.toml: private_dns entry #1 (id 'corp'): field 'zone': unknown placeholder '{zone}' (known: {region},"
    )


def test_wildcard_host(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(host="*.example.com")) == (
        "my.toml: entry #1 (id 'foo'): field 'host': host '*.example.com' is a wildcard: give a concrete name,"
        " or leave host out and keep the wildcard in fqdn"
    )


def test_unknown_scenario(tmp_path: Path) -> None:
    assert _error(tmp_path, _entry(scenarios=["gaming"])) == (
        "my.toml: entry #1 (id 'foo'): field 'scenarios': unknown scenario 'gaming' (known: compute-instance,"
        " compute-cluster, serverless, no-public-ip, studio, vscode, packages, docker-images, kubernetes)"
    )


def test_several_problems_are_counted(tmp_path: Path) -> None:
    message = _error(tmp_path, _entry(protocol="ftp", ports=["x"], colour="red"))
    assert message.startswith("my.toml: entry #1 (id 'foo'): field 'protocol': ")
    assert message.endswith(" (and 2 more)")


def test_toml_syntax_error(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD_ENTRY + '[[endpoint]]\nid = "foo\n')
    assert message.startswith("my.toml: TOML syntax error: ")
    assert message.endswith("(at line 14, column 10)")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert _error(tmp_path, 'cloud = "public"\n' + GOOD_ENTRY) == (
        "my.toml: field 'cloud': unknown top-level key (allowed: clouds, endpoint, private_dns)"
    )


def test_bad_clouds(tmp_path: Path) -> None:
    assert _error(tmp_path, 'clouds = ["azure"]\n' + GOOD_ENTRY) == (
        "my.toml: field 'clouds': must be a non-empty list of public, usgov, china (got ['azure'])"
    )


def test_section_that_is_not_an_array_of_tables(tmp_path: Path) -> None:
    assert _error(tmp_path, 'endpoint = "x"\n') == (
        "my.toml: field 'endpoint': must be an array of tables ([[endpoint]])"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CatalogError) as err:
        load_catalog("public", [missing])
    assert str(err.value) == f"{missing}: cannot read: No such file or directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(CatalogError) as err:
        load_catalog("public", [path])
    assert str(err.value) == f"{path}: not UTF-8 text"
