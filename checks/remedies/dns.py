"""Remedies for name resolution: private DNS zone links, conditional forwarders to Azure DNS, hosts-file pins."""

from __future__ import annotations

import re

from checks.addresses import AZURE_DNS
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


def resolver_check(servers: list[str], name: str) -> Remediation:
    """Ask each configured resolver directly, once, with a short timeout: silence, a refusal or an answer."""
    shown = servers or ["<DNS_SERVER_IP>"]
    return remedy(
        kind="verify",
        text="Ask the resolver directly (dig, from dnsutils): no answer within 2 s means it is down or unreachable"
        " from here; 'connection refused' means nothing serves DNS on that address.",
        commands=[f"dig @{quote(s)} {quote(name)} +time=2 +tries=1" for s in shown],
    )


def dns_path_fix(ctx: RemedyContext, servers: list[str]) -> Remediation:
    """Allow DNS (UDP and TCP 53) from the compute subnet to the resolver's address."""
    shown = " ".join(quote(s) for s in servers) if servers else "<DNS_SERVER_IP>"
    return remedy(
        kind="nsg_rule",
        text="If the resolver runs (another VM in the VNet or a peered one, a DNS Private Resolver), let the compute"
        " reach it: allow UDP and TCP 53 to its address in the compute subnet's NSG, and on any firewall or route in"
        " between.",
        commands=[
            f"az network nsg rule create --resource-group {resource_group_arg(ctx)} --nsg-name <NSG_NAME>"
            " --name AllowOut-DNS-53 --priority 190 --direction Outbound --access Allow --protocol '*'"
            f" --source-address-prefixes VirtualNetwork --destination-address-prefixes {shown}"
            " --destination-port-ranges 53"
        ],
    )


def vnet_dns_servers_fix(ctx: RemedyContext) -> Remediation:
    """Show, and if need be change, the DNS servers the VNet hands its VMs."""
    rg = resource_group_arg(ctx)
    return remedy(
        kind="dns_servers",
        text="The VNet's DNS servers setting is what the compute's DHCP lease gives it. Show it; if the server it"
        " names cannot be made to answer, point the VNet at one that does (VMs take a new setting with a new DHCP"
        " lease: restart the compute instance).",
        commands=[
            f"az network vnet show --resource-group {rg} --name <VNET_NAME> --query dhcpOptions.dnsServers"
            " --output tsv",
            f"az network vnet update --resource-group {rg} --name <VNET_NAME> --dns-servers <DNS_SERVER_IP>",
        ],
    )


def local_resolver_check() -> Remediation:
    """What this machine itself is told to ask: resolv.conf, and systemd-resolved's upstream servers."""
    return remedy(
        kind="verify",
        text="See which resolver this machine asks: /etc/resolv.conf, and behind systemd-resolved's stub"
        " (127.0.0.53) the servers it forwards to.",
        commands=["cat /etc/resolv.conf", "resolvectl status"],
    )
