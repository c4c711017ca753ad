"""Lay out a VNet for a plan: private endpoints in 10.0.1.0/24, "public" front ends in the
documentation ranges, two resolvers (the VNet's custom DNS and Azure DNS), and a proxy.

The names come from the agent's plan, but what exists and how it resolves follows the real Azure,
not the plan (each rule cites its source):

* Only the scenario's private-endpoint resources resolve privately. Their public name has a CNAME
  into ``privatelink.*`` whatever resolver is asked ("the DNS CNAME resource record for the storage
  account is updated to an alias in a subdomain with the prefix privatelink", storage-private-endpoints
  #dns-changes-for-private-endpoints); only a resolver in a VNet linked to the private zone gets the
  private A record, everyone else the public one (how-to-custom-dns: records "are only returned to
  devices resolving domains using the default Azure DNS Virtual Server IP address" from a linked VNet).
  Without a private endpoint a name has no privatelink CNAME and a public address. For the workspace's
  own names (<workspace id>.workspace.<region>.api.azureml.ms, its .cert. twin, the notebooks host)
  that is an inference, not a capture: no public source shows them answered without a private
  endpoint (MLflow tracking URIs of the azureml://<id>.workspace.<region>.api.azureml.ms form suggest
  the name exists publicly).
* Names that do not exist answer NXDOMAIN: of the compute-instance name variants only the scenario's
  live one exists (sources disagree on which: real-world-azure.md Q3, so scenarios cover both);
  a registry's data endpoint exists only with a private endpoint or dedicated data endpoints
  (container-registry-endpoint-reference).
* The compute instance's apps 8787/18881 listen only behind the workspace private endpoint; without
  one they are reached as <ci>-<port>.<suffix> on 443 (microsoft/responsible-ai-toolbox
  azure_nb_environment.py), and the public front end does not serve the bare ports.
* WireServer (168.63.129.16) answers 80 and 32526, not 443 (what-is-ip-address-168-63-129-16: "The
  VM Agent requires outbound communication over ports 80/tcp and 32526/tcp").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from checks.addresses import AZURE_DNS as AZURE_DNS  # noqa: PLC0414 (the lab's Azure DNS is the real address)
from checks.addresses import is_ip
from lab.scenarios import Scenario

# The peers' process reads a Layout without the plan's models (pydantic): see lab.peers.Peers.
if TYPE_CHECKING:
    from checks.plan import Plan

CUSTOM_DNS = "10.0.0.4"
PROXY = "10.0.0.10"
COMPUTE = "10.0.0.5"  # the compute's NIC: what a private endpoint or a service endpoint sees
NAT_EGRESS = "198.51.100.254"  # the VNet's public egress (NAT gateway): what a public endpoint sees
PROXY_PORT = 3128
GATEWAY_PORT = 8443  # the proxy's TLS-inspecting engine (websocket-stripped scenario)
PE_RANGE = "10.0.1.0/24"
AML_RANGE = "192.0.2.0/24"  # AzureMachineLearning front ends
OTHER_RANGE = "198.51.100.0/24"  # Entra ID, ARM, Front Door and other service tags
STORAGE_RANGE = "203.0.113.0/25"  # Storage, Batch and everything else public and required
OPTIONAL_RANGE = "203.0.113.128/25"  # hosts only situational rows (required = false) need
APP_PORTS = frozenset({8787, 18881})  # compute-instance apps, behind the workspace private endpoint
DROP_TABLE = 50
# The neighbour nobody owns: routes via it are silent drops.
DROP_LINK = "amlplab0"
DROP_PEER = "amlplab1"
DROP_NET = "10.255.255.1/30"
DROP_GW = "10.255.255.2"

Records = dict[str, list[tuple[str, str, int]]]


def _hosts(net: str) -> Iterator[str]:
    return (str(ip) for ip in ipaddress.ip_network(net).hosts())


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
    # Hosts behind a private endpoint: address -> resource; the apps' ports listen on the workspace's.
    pe_addresses: dict[str, str] = field(default_factory=dict)
    # Hosts of the workspace's resources asked anonymously over HTTPS: host -> kind (the catalog's judge).
    resource_kinds: dict[str, str] = field(default_factory=dict)
    # Every planned host's resource label (storage-blob, key-vault, ...), where it has one.
    resource_label: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)  # planned names that do not exist (NXDOMAIN)
    operators: dict[str, str] = field(default_factory=dict)  # host -> the catalog's operator label

    def local_addresses(self) -> list[str]:
        every = {CUSTOM_DNS, AZURE_DNS, PROXY, COMPUTE, NAT_EGRESS}
        every |= {*self.addresses.values(), *self.public_addresses.values()}
        return sorted(every, key=ipaddress.ip_address)

    def source_for(self, address: str, scenario: Scenario) -> str:
        """The caller's address a service at ``address`` sees (see the module's docstring)."""
        if address in self.pe_addresses:
            return COMPUTE
        if scenario.service_endpoints and any(
            self.addresses.get(h) == address and label.startswith(scenario.service_endpoints)
            for h, label in self.resource_label.items()
        ):
            return COMPUTE
        return NAT_EGRESS

    def front_end_addresses(self) -> list[str]:
        """Where HTTPS (443) listens: every service address, never WireServer or the resolvers."""
        every = {*self.addresses.values(), *self.public_addresses.values()} - {AZURE_DNS, CUSTOM_DNS, PROXY}
        return sorted(every, key=ipaddress.ip_address)

    def app_addresses(self) -> list[str]:
        """Where the compute instance's apps (8787, 18881) listen: the workspace private endpoint only."""
        return sorted({a for a, r in self.pe_addresses.items() if r == "workspace"}, key=ipaddress.ip_address)


def has_private_endpoint(pe_resource: str | None, scenario: Scenario) -> bool:
    """``storage`` in the scenario covers every storage sub-resource (storage-blob, storage-file, ...)."""
    if not pe_resource:
        return False
    return any(pe_resource == r or pe_resource.startswith(r + "-") for r in scenario.private_endpoints)


def _exists(host: str, labels: dict[str, str], scenario: Scenario) -> bool:
    if labels.get("managed_network_only") == "true":
        return False  # the lab is a customer VNet, not an Azure ML managed network (how-to-custom-dns)
    if labels.get("variant_group") == "ci-host":
        # Only the live compute-instance name variant exists (and its <ci>-<port> names).
        return host.endswith("." + scenario.live_ci_suffix)
    if labels.get("resource") == "acr-data":
        return has_private_endpoint("acr", scenario)
    return True


def build_layout(plan: Plan, scenario: Scenario) -> Layout:
    from probe.model import Protocol  # noqa: PLC0415 - the plan's models, loaded with the plan

    layout = Layout()
    pe_pool, aml_pool = _hosts(PE_RANGE), _hosts(AML_RANGE)
    other_pool = (h for h in _hosts(OTHER_RANGE) if h != NAT_EGRESS)
    public_pool, optional_pool = _hosts(STORAGE_RANGE), _hosts(OPTIONAL_RANGE)
    next(pe_pool)  # 10.0.1.1 is the subnet's gateway in Azure; keep the layout familiar
    labels_of: dict[str, dict[str, str]] = {}
    optional: dict[str, bool] = {}
    for spec in plan.checks:
        labels_of.setdefault(spec.target.host, spec.labels)
        if "resource" in spec.labels:
            layout.resource_label.setdefault(spec.target.host, spec.labels["resource"])
        optional[spec.target.host] = optional.get(spec.target.host, True) and spec.required is False
    for host, labels in labels_of.items():
        if not _exists(host, labels, scenario):
            layout.absent.add(host)
    pe_ips: dict[str, str] = {}
    for exp in plan.dns_expectations:
        if exp.name in layout.addresses or exp.name in layout.absent:
            continue
        if exp.expect == "public" or not has_private_endpoint(exp.pe_resource, scenario):
            continue
        group = exp.pe_resource or exp.resource
        if group not in pe_ips:
            pe_ips[group] = next(pe_pool)
            layout.pe_addresses[pe_ips[group]] = group
        layout.addresses[exp.name] = pe_ips[group]
        layout.public_addresses[exp.name] = next(public_pool)
        layout.resource_of[exp.name] = exp.resource
        if exp.privatelink_name or exp.zone:
            layout.privatelink_names[exp.name] = exp.privatelink_name or privatelink_name(exp.name, exp.zone or "")
    for spec in plan.checks:
        host, proto = spec.target.host, spec.target.protocol
        if host in layout.absent:
            continue
        if host not in layout.addresses and not is_ip(host):
            tag = spec.labels.get("service_tag", "")
            pool = aml_pool if tag.startswith("AzureMachineLearning") else public_pool
            if tag.startswith(("AzureActiveDirectory", "AzureResourceManager", "AzureFrontDoor")):
                pool = other_pool
            if optional[host]:
                pool = optional_pool
            layout.addresses[host] = next(pool)
        port = spec.target.port
        if proto is Protocol.HTTP and "judge" in spec.labels:
            layout.resource_kinds[host] = spec.labels["judge"]
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
            layout.public_zone[host] = [("A", layout.public_addresses.get(host, address), 300)]
            continue
        layout.private_zone[host] = [("CNAME", pl, 300)]
        layout.private_zone[pl] = [("A", address, 10)]
        layout.public_zone[host] = [("CNAME", pl, 300)]
        layout.public_zone[pl] = [("A", layout.public_addresses[host], 60)]
    # The HTTPS front end owns 443 on every service address; a plain TCP check of 443 reaches it too.
    layout.tcp_ports.discard(443)
    return layout


def zone_for(
    layout: Layout, *, public_for: tuple[str, ...], drop_privatelink: bool, manual_records: bool = False
) -> Records:
    """One resolver's view: the private zone, with chosen resources' records from the public view.

    ``manual_records``: a custom DNS that holds an A record for each private-endpoint FQDN and no
    CNAME, as how-to-custom-dns recommends for manual DNS ("creating a unique zone for the entire FQDN,
    and creating the A record in the root of the zone").
    """
    zone: Records = {}
    for host, records in layout.private_zone.items():
        zone[host] = list(records)
    for host, pl in layout.privatelink_names.items():
        if manual_records:
            zone.pop(pl, None)
            zone[host] = [("A", layout.addresses[host], 300)]
        elif drop_privatelink:
            zone.pop(pl, None)
        elif public_for and layout.resource_of[host].startswith(public_for):
            zone[pl] = list(layout.public_zone[pl])
    return zone


def network_commands(layout: Layout, scenario: Scenario) -> list[str]:
    """``ip -batch`` lines: addresses on lo, the drop link, and the scenario's policy rules."""
    cmds = ["link set lo up"]
    cmds += [f"addr add {a}/32 dev lo" for a in layout.local_addresses()]
    # Each service address's local route names the caller's address its service sees (Layout.source_for).
    cmds += [
        f"route replace local {a} dev lo table local proto kernel scope host src {layout.source_for(a, scenario)}"
        for a in layout.front_end_addresses()
    ]
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
            "optional_range": OPTIONAL_RANGE,
            "pe_range": PE_RANGE,
        }
        # Local addresses are looked up in the "local" table first (rule 0); move that lookup
        # after the drop rules so a drop rule can catch traffic to an address on this host.
        cmds.append(f"rule add pref 100 from {PROXY} lookup local")
        for pref, selector in enumerate(scenario.drop_rules, start=200):
            cmds.append(f"rule add pref {pref} {selector.format(**ranges)} lookup {DROP_TABLE}")
        cmds += ["rule add pref 300 lookup local", "rule del pref 0"]
    return cmds
