"""Lay out a VNet for a plan: private endpoints in 10.0.1.0/24, "public" front ends in the
documentation ranges, two resolvers (the VNet's custom DNS and Azure DNS), and a proxy.

The zone data are built from the agent's own plan, so every host the agent probes exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from checks.plan import Plan
from lab.scenarios import Scenario
from probe.model import Protocol

CUSTOM_DNS = "10.0.0.4"
AZURE_DNS = "168.63.129.16"
PROXY = "10.0.0.10"
PROXY_PORT = 3128
GATEWAY_PORT = 8443  # the proxy's TLS-inspecting engine (websocket-stripped scenario)
PE_RANGE = "10.0.1.0/24"
AML_RANGE = "192.0.2.0/24"  # AzureMachineLearning front ends
OTHER_RANGE = "198.51.100.0/24"  # Entra ID, ARM, Front Door and other service tags
STORAGE_RANGE = "203.0.113.0/24"  # Storage, Batch and everything else public
DROP_TABLE = 50
# The neighbour nobody owns: routes via it are silent drops.
DROP_LINK = "amlplab0"
DROP_PEER = "amlplab1"
DROP_NET = "10.255.255.1/30"
DROP_GW = "10.255.255.2"

Records = dict[str, list[tuple[str, str, int]]]


def _hosts(net: str) -> Iterator[str]:
    return (str(ip) for ip in ipaddress.ip_network(net).hosts())


def pe_group(resource: str) -> str:
    """Which private endpoint serves a resource: the workspace PE also answers its cert FQDN and instances."""
    if resource.startswith("workspace") or "instance" in resource:
        return "workspace"
    return resource


def privatelink_name(name: str, zone: str) -> str:
    """E.g. ``sa.blob.core.windows.net`` in zone ``privatelink.blob.core.windows.net``:
    ``sa.privatelink.blob.core.windows.net``."""
    base = zone.removeprefix("privatelink.")
    if name.endswith("." + base):
        return name[: -len(base)] + zone
    return name.split(".", 1)[0] + "." + zone


@dataclass
class Layout:
    addresses: dict[str, str] = field(default_factory=dict)  # host -> final address (private view)
    public_addresses: dict[str, str] = field(default_factory=dict)  # PE host -> public address
    private_zone: Records = field(default_factory=dict)
    public_zone: Records = field(default_factory=dict)
    privatelink_names: dict[str, str] = field(default_factory=dict)  # host -> privatelink name
    resource_of: dict[str, str] = field(default_factory=dict)
    websocket_hosts: set[str] = field(default_factory=set)
    tcp_ports: set[int] = field(default_factory=set)
    udp_targets: set[tuple[str, int]] = field(default_factory=set)
    smb_ports: set[int] = field(default_factory=set)
    tls_hosts: set[str] = field(default_factory=set)
    operators: dict[str, str] = field(default_factory=dict)  # host -> the catalog's operator label

    def local_addresses(self) -> list[str]:
        every = {CUSTOM_DNS, AZURE_DNS, PROXY, *self.addresses.values(), *self.public_addresses.values()}
        return sorted(every, key=ipaddress.ip_address)


def build_layout(plan: Plan) -> Layout:
    layout = Layout()
    pe_pool, aml_pool = _hosts(PE_RANGE), _hosts(AML_RANGE)
    other_pool, public_pool = _hosts(OTHER_RANGE), _hosts(STORAGE_RANGE)
    next(pe_pool)  # 10.0.1.1 is the subnet's gateway in Azure; keep the layout familiar
    pe_ips: dict[str, str] = {}
    for exp in plan.dns_expectations:
        if exp.name in layout.addresses or exp.expect != "private":
            continue
        group = pe_group(exp.resource)
        if group not in pe_ips:
            pe_ips[group] = next(pe_pool)
        layout.addresses[exp.name] = pe_ips[group]
        layout.public_addresses[exp.name] = next(public_pool)
        layout.resource_of[exp.name] = exp.resource
        if exp.privatelink_name or exp.zone:
            layout.privatelink_names[exp.name] = exp.privatelink_name or privatelink_name(exp.name, exp.zone or "")
    for spec in plan.checks:
        host, proto = spec.target.host, spec.target.protocol
        if host not in layout.addresses:
            tag = spec.labels.get("service_tag", "")
            pool = aml_pool if tag.startswith("AzureMachineLearning") else public_pool
            if tag.startswith(("AzureActiveDirectory", "AzureResourceManager", "AzureFrontDoor")):
                pool = other_pool
            layout.addresses[host] = next(pool)
        port = spec.target.port
        if proto is Protocol.WEBSOCKET:
            layout.websocket_hosts.add(host)
        if proto in (Protocol.TLS, Protocol.WEBSOCKET, Protocol.HTTP):
            layout.tls_hosts.add(host)
            if "operator" in spec.labels:
                layout.operators.setdefault(host, spec.labels["operator"])
        elif proto is Protocol.TCP and port is not None:
            layout.tcp_ports.add(port)
        elif proto is Protocol.UDP and port is not None:
            layout.udp_targets.add((layout.addresses[host], port))
        elif proto is Protocol.SMB and port is not None:
            layout.smb_ports.add(port)
    for host, address in layout.addresses.items():
        pl = layout.privatelink_names.get(host)
        if pl is None:
            layout.private_zone[host] = [("A", address, 300)]
            layout.public_zone[host] = [("A", address, 300)]
            continue
        layout.private_zone[host] = [("CNAME", pl, 300)]
        layout.private_zone[pl] = [("A", address, 10)]
        layout.public_zone[host] = [("CNAME", pl, 300)]
        layout.public_zone[pl] = [("A", layout.public_addresses[host], 60)]
    # The HTTPS front end owns 443 on every address; a plain TCP check of 443 reaches it too.
    layout.tcp_ports.discard(443)
    return layout


def zone_for(layout: Layout, *, public_for: tuple[str, ...], drop_privatelink: bool) -> Records:
    """One resolver's view: the private zone, with chosen resources' records from the public view."""
    zone: Records = {}
    for host, records in layout.private_zone.items():
        zone[host] = list(records)
    for host, pl in layout.privatelink_names.items():
        if drop_privatelink:
            zone.pop(pl, None)
        elif layout.resource_of[host].startswith(public_for) and public_for:
            zone[pl] = list(layout.public_zone[pl])
    return zone


def network_commands(layout: Layout, scenario: Scenario) -> list[str]:
    """``ip -batch`` lines: addresses on lo, the drop link, and the scenario's policy rules."""
    cmds = ["link set lo up"]
    cmds += [f"addr add {a}/32 dev lo" for a in layout.local_addresses()]
    cmds += [
        f"link add {DROP_LINK} type veth peer name {DROP_PEER}",
        f"link set {DROP_LINK} up",
        f"link set {DROP_PEER} up",
        f"addr add {DROP_NET} dev {DROP_LINK}",
        f"neigh add {DROP_GW} lladdr 02:00:00:00:00:99 dev {DROP_LINK} nud permanent",
        f"route add default via {DROP_GW} dev {DROP_LINK} table {DROP_TABLE}",
    ]
    if scenario.drop_rules:
        ranges = {
            "aml_range": AML_RANGE,
            "other_range": OTHER_RANGE,
            "storage_range": STORAGE_RANGE,
            "pe_range": PE_RANGE,
        }
        # Local addresses are looked up in the "local" table first (rule 0); move that lookup
        # after the drop rules so a drop rule can catch traffic to an address on this host.
        cmds.append(f"rule add pref 100 from {PROXY} lookup local")
        for pref, selector in enumerate(scenario.drop_rules, start=200):
            cmds.append(f"rule add pref {pref} {selector.format(**ranges)} lookup {DROP_TABLE}")
        cmds += ["rule add pref 300 lookup local", "rule del pref 0"]
    return cmds
