"""Remedies for name resolution: private DNS zone links, conditional forwarders to Azure DNS, hosts-file pins."""

from __future__ import annotations

import re

from checks.inputs import AZURE_DNS
from checks.remedies.base import RemedyContext, powershell_quote, quote, remedy, resource_group_arg
from probe.model import Remediation


def verify_zone_links_fix(ctx: RemedyContext, zones: list[str]) -> Remediation:
    rg = resource_group_arg(ctx)
    return remedy(
        kind="verify",
        text="Nothing to fix. To confirm, list the VNets each private DNS zone is linked to: the DNS server's VNet"
        " should be among them.",
        commands=[
            f"az network private-dns link vnet list --resource-group {rg} --zone-name {quote(z)} "
            '--query "[].virtualNetwork.id" --output tsv'
            for z in zones
        ],
    )


def dns_link_fix(ctx: RemedyContext, zones: list[str]) -> Remediation:
    rg = resource_group_arg(ctx)
    return remedy(
        kind="dns_link",
        text="Link each private DNS zone to the VNet the compute (and its DNS server) uses.",
        commands=[
            f"az network private-dns link vnet create --resource-group {rg} --zone-name {quote(z)} "
            f"--name {quote(z.replace('.', '-'))}-link --virtual-network <VNET_NAME_OR_ID> "
            "--registration-enabled false"
            for z in zones
        ],
    )


def dns_forwarder_fix(ctx: RemedyContext, zones: list[str] | None) -> Remediation:
    """Conditional forwarders to Azure DNS for the plan's forwarder zones of ``zones`` (None: of every zone)."""
    forwarders = sorted({f for zone, fw in ctx.forwarders.items() if zones is None or zone in zones for f in fw})
    shown = forwarders or ["<ZONE>"]
    bind = f'zone "{shown[0]}" {{ type forward; forward only; forwarders {{ {AZURE_DNS}; }}; }};'
    return remedy(
        kind="dns_forwarder",
        text=f"On the custom DNS server, forward these zones to Azure DNS ({AZURE_DNS}); the server must run "
        "inside a VNet linked to the private DNS zones. The commands are for Windows DNS Server (PowerShell); "
        f"in BIND each zone is a named.conf statement like: {bind}",
        commands=[
            f"Add-DnsServerConditionalForwarderZone -Name {powershell_quote(z)} -MasterServers {AZURE_DNS}"
            for z in shown
        ],
    )


def hosts_fix(names: list[str]) -> Remediation:
    pattern = "|".join(re.escape(n) for n in names)
    script = "/\\s(" + pattern + ")(\\s|$)/d"
    return remedy(
        kind="hosts_file",
        text="Remove the hosts-file pins so DNS answers (keep a backup).",
        commands=[f"sudo sed -i.bak -E {quote(script)} /etc/hosts"],
    )
