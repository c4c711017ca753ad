"""The lab's layout follows the real Azure, not the plan: what exists, what resolves how, what listens."""

from __future__ import annotations

import ipaddress

from lab import topology as topo
from lab.run import lab_plan
from lab.scenarios import SCENARIOS

WS = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8c0e1a37"
WS_NAME = f"{WS}.workspace.eastus.api.azureml.ms"
LIVE = "lab-ci.eastus.instances.azureml.ms"


def layout(name: str) -> topo.Layout:
    scenario = SCENARIOS[name]
    return topo.build_layout(lab_plan(scenario=scenario), scenario)


def in_range(address: str, net: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(net)


def test_names_that_do_not_exist_are_absent_from_every_zone() -> None:
    lay = layout("healthy")
    assert lay.absent == {
        "lab-ci.eastus.instances.ml.azure.ms",
        "lab-ci-18881.eastus.instances.ml.azure.ms",
        "lab-ci-8787.eastus.instances.ml.azure.ms",
        "lab-ci.eastus.instances.azureml.net",
    }
    for zone in (
        topo.zone_for(lay, public_for=(), drop_privatelink=False),
        topo.zone_for(lay, public_for=("workspace",), drop_privatelink=False),
    ):
        assert not lay.absent & set(zone)
        assert LIVE in zone and "lab-ci-8787.eastus.instances.azureml.ms" in zone


def test_wireserver_has_no_https_and_the_apps_listen_behind_the_workspace_endpoint() -> None:
    lay = layout("healthy")
    assert topo.AZURE_DNS not in lay.front_end_addresses()
    assert lay.addresses[WS_NAME] in lay.front_end_addresses()
    (app,) = lay.app_addresses()
    assert app == lay.addresses[WS_NAME] == lay.addresses[LIVE]  # S4: the CI name resolves to the workspace PE
    assert {8787, 18881} <= lay.tcp_ports and 443 not in lay.tcp_ports


def test_without_private_endpoints_nothing_is_private_and_no_app_port_listens() -> None:
    lay = layout("no-private-endpoint")
    assert lay.privatelink_names == {} and lay.pe_addresses == {} and lay.app_addresses() == []
    assert not any(in_range(a, topo.PE_RANGE) for a in lay.addresses.values())
    zone = topo.zone_for(lay, public_for=(), drop_privatelink=False)
    assert zone[WS_NAME] == [("A", lay.addresses[WS_NAME], 300)]


def test_private_endpoint_views() -> None:
    lay = layout("healthy")
    pl = lay.privatelink_names[WS_NAME]
    assert pl == f"{WS}.workspace.eastus.privatelink.api.azureml.ms"
    private = topo.zone_for(lay, public_for=(), drop_privatelink=False)
    public = topo.zone_for(lay, public_for=("workspace",), drop_privatelink=False)
    manual = topo.zone_for(lay, public_for=(), drop_privatelink=False, manual_records=True)
    assert private[WS_NAME] == public[WS_NAME] == [("CNAME", pl, 300)]
    assert in_range(private[pl][0][1], topo.PE_RANGE) and not in_range(public[pl][0][1], topo.PE_RANGE)
    assert manual[WS_NAME] == [("A", lay.addresses[WS_NAME], 300)] and pl not in manual


def test_service_endpoints_keep_storage_public() -> None:
    lay = layout("service-endpoints")
    assert WS_NAME in lay.privatelink_names
    assert not any(".core.windows.net" in h or ".vault." in h for h in lay.privatelink_names)
    assert not in_range(lay.addresses["amlprobelabsa.blob.core.windows.net"], topo.PE_RANGE)


def test_situational_hosts_have_their_own_range() -> None:
    lay = layout("healthy")
    for host in ("ghcr.io", "crl.microsoft.com", "dc.services.visualstudio.com"):
        assert in_range(lay.addresses[host], topo.OPTIONAL_RANGE), host
    for host in ("mcr.microsoft.com", "graph.windows.net"):
        assert in_range(lay.addresses[host], topo.STORAGE_RANGE), host


def test_the_reporting_instance_plans_one_name() -> None:
    lay = layout("hub-and-spoke")
    ci = {h for h in lay.addresses if h.startswith("lab-ci")}
    assert ci == {
        "lab-ci.eastus.instances.ml.azure.ms",
        "lab-ci-8787.eastus.instances.ml.azure.ms",
        "lab-ci-18881.eastus.instances.ml.azure.ms",
    }


def test_each_service_sees_the_callers_address_it_would_in_azure() -> None:
    """Through a private endpoint or a service endpoint a service sees the compute's private address; over a public
    endpoint, the VNet's NAT egress (virtual-network-service-endpoints-overview; docker/build-push-action#1214)."""
    healthy, scenario = layout("healthy"), SCENARIOS["healthy"]
    vault = "amlprobe-lab-kv.vault.azure.net"
    assert healthy.resource_kinds[vault] == "key-vault"
    assert healthy.source_for(healthy.addresses[vault], scenario) == topo.COMPUTE
    assert healthy.source_for(healthy.public_addresses[vault], scenario) == topo.NAT_EGRESS
    assert healthy.source_for(healthy.addresses["login.microsoftonline.com"], scenario) == topo.NAT_EGRESS
    routes = [c for c in topo.network_commands(healthy, scenario) if c.startswith("route replace local")]
    assert len(routes) == len(healthy.front_end_addresses())
    assert (
        f"route replace local {healthy.addresses[vault]} dev lo table local proto kernel scope host src 10.0.0.5"
        in routes
    )
    endpoints, scenario = layout("service-endpoints"), SCENARIOS["service-endpoints"]
    assert endpoints.source_for(endpoints.addresses[vault], scenario) == topo.COMPUTE
    assert not in_range(endpoints.addresses[vault], topo.PE_RANGE)
    assert topo.NAT_EGRESS not in endpoints.addresses.values()


def test_resource_scenarios_keep_the_refused_resource_off_its_private_endpoint() -> None:
    """A refusal is only what a request on the public endpoint gets: Azure admits the private endpoint's traffic."""
    for name in ("storage-firewall", "registry-firewall", "key-vault-public-access-disabled"):
        scenario = SCENARIOS[name]
        refused = {kind for kind, _mode in scenario.resource_modes}
        assert refused and not refused & set(scenario.private_endpoints), name
