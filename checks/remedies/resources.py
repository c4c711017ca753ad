"""Remedies for the workspace's own resources (checks/resources.py judges their answers): their network
rules, public network access, private endpoints, the file share's SMB settings, the registry's endpoints.
"""

from __future__ import annotations

from checks.addresses import is_ip, is_private
from checks.remedies.base import RemedyContext, quote, remedy, resource_group_arg, resource_group_note
from probe.model import Remediation

# How to look up a resource's id, so a command needs no id pasted in (az ... show --query id).
_SHOW_ID = {
    "storage": "az storage account show --name {name} --query id --output tsv",
    "key-vault": "az keyvault show --name {name} --query id --output tsv",
    "acr": "az acr show --name {name} --query id --output tsv",
}
_SHOW_ANY_ID = (
    "az resource show --resource-group <RESOURCE_GROUP> --name {name} --resource-type <RESOURCE_TYPE> --query id"
    " --output tsv"
)
# How to see which of "firewall" and "public network access disabled" it is (the answer cannot tell for
# storage and the registry).
_SHOW_ACCESS = {
    "storage": "az storage account show --name {name}",
    "key-vault": "az keyvault show --name {name}",
    "acr": "az acr show --name {name}",
}
_SUBNET_ID_TEXT = (
    " <COMPUTE_SUBNET_ID> is the resource id of the compute's subnet: az network vnet subnet show --resource-group"
    " <VNET_RESOURCE_GROUP> --vnet-name <VNET_NAME> --name <SUBNET_NAME> --query id --output tsv."
)


def resource_access_check(kind: str, name: str) -> Remediation:
    """Show the resource's public network access and its network rules' default action: which of the two refuses."""
    return remedy(
        kind="verify",
        text="See which setting refuses: publicNetworkAccess Disabled means only private endpoints get in; Enabled"
        " with defaultAction Deny means the firewall admits only its listed networks.",
        commands=[
            _SHOW_ACCESS[kind].format(name=quote(name))
            + ' --query "{publicNetworkAccess: publicNetworkAccess, defaultAction: networkRuleSet.defaultAction}"'
            " --output json"
        ],
    )


def storage_network_rule_fix(account: str) -> Remediation:
    """Admit the compute subnet through the storage firewall (a virtual network rule over a service endpoint)."""
    return remedy(
        kind="resource_firewall",
        text="Admit the compute subnet in the storage account's network rules. The subnet needs the Microsoft.Storage"
        " service endpoint first (az network vnet subnet update --service-endpoints replaces the subnet's list:"
        " include the endpoints it already has). IP rules do not help here: they do not apply to requests from the"
        " same Azure region." + _SUBNET_ID_TEXT,
        commands=[f"az storage account network-rule add --account-name {quote(account)} --subnet <COMPUTE_SUBNET_ID>"],
    )


def key_vault_network_rule_fix(vault: str, seen: str | None) -> Remediation:
    """Admit this machine through the vault's firewall: the public address it saw, or the compute subnet."""
    commands = []
    text = "Admit this machine in the key vault's firewall"
    if seen is not None and not _is_private_address(seen):
        commands.append(f"az keyvault network-rule add --name {quote(vault)} --ip-address {quote(seen)}")
        text += f": the address the vault saw ({seen}), or the compute subnet"
    commands.append(f"az keyvault network-rule add --name {quote(vault)} --subnet <COMPUTE_SUBNET_ID>")
    return remedy(
        kind="resource_firewall",
        text=text + ". A subnet rule needs the Microsoft.KeyVault service endpoint on the subnet; private addresses"
        " cannot be IP rules." + _SUBNET_ID_TEXT,
        commands=commands,
    )


def registry_network_rule_fix(registry: str, seen: str | None) -> Remediation:
    """Admit the address the registry saw (its firewall takes IP rules only)."""
    if seen is None or _is_private_address(seen):
        return remedy(
            kind="resource_firewall",
            text="The registry's firewall takes public IP rules only; a private address reaches it only through a"
            " private endpoint (below).",
            commands=[],
        )
    return remedy(
        kind="resource_firewall",
        text=f"Admit the address the registry saw ({seen}, this machine's egress) in its firewall, if that address is"
        " fixed (a NAT gateway or firewall's public IP).",
        commands=[f"az acr network-rule add --name {quote(registry)} --ip-address {quote(seen)}"],
    )


def key_vault_public_access_fix(vault: str) -> Remediation:
    return remedy(
        kind="resource_firewall",
        text="Or, if the vault may be reached over its public endpoint from chosen networks: enable public network"
        " access with the firewall denying by default, then admit the compute subnet as above.",
        commands=[f"az keyvault update --name {quote(vault)} --public-network-access Enabled --default-action Deny"],
    )


def private_endpoint_fix(ctx: RemedyContext, kind: str, name: str, groups: list[str], zones: list[str]) -> Remediation:
    """Reach the resource through a private endpoint in the VNet, one per sub-resource (``groups``), each with
    the private DNS zone of the same index in ``zones``."""
    rg = resource_group_arg(ctx)
    show_id = _SHOW_ID.get(kind, _SHOW_ANY_ID).format(name=quote(name))
    commands = []
    for group, zone in zip(groups, zones, strict=True):
        endpoint = quote(f"{name}-{group}-pe")
        commands.append(
            f"az network private-endpoint create --resource-group {rg} --name {endpoint} --subnet <PE_SUBNET_ID>"
            f' --private-connection-resource-id "$({show_id})" --group-id {quote(group)} --connection-name {endpoint}'
        )
        commands.append(
            f"az network private-endpoint dns-zone-group create --resource-group {rg} --endpoint-name {endpoint}"
            f" --name default --private-dns-zone {quote(zone)} --zone-name {quote(zone.replace('.', '-'))}"
        )
    return remedy(
        kind="private_endpoint",
        text="Reach it through a private endpoint in the compute's VNet: traffic from the endpoint's VNet is admitted"
        " whatever the public settings say. The private DNS zone must exist, linked to the VNet; a zone name is looked"
        " up in the same resource group (give its resource id if it lives elsewhere). <PE_SUBNET_ID> is the resource"
        " id of the subnet for private endpoints (az network vnet subnet show ... --query id --output tsv)."
        + resource_group_note(ctx, "the resource group to create the private endpoint in"),
        commands=commands,
    )


def smb_channel_encryption_fix(account: str) -> Remediation:
    return remedy(
        kind="storage_setting",
        text="Allow AES-128-GCM next to AES-256-GCM in the file service's SMB channel encryption, as Microsoft asks"
        " for mounts to work (Azure Files troubleshooting, 'minimum encryption'). Linux clients offer AES-128-GCM"
        " first; with AES-256-GCM only, Azure Files agrees AES-128-GCM and then refuses the session (mount error"
        " 13). The value is one string with ';' between algorithms.",
        commands=[
            f"az storage account file-service-properties update --account-name {quote(account)} --channel-encryption"
            ' "AES-128-GCM;AES-256-GCM"'
        ],
    )


def smb_settings_check(account: str) -> Remediation:
    return remedy(
        kind="verify",
        text="Show the file service's SMB settings: versions, channel encryption, authentication methods.",
        commands=[
            f"az storage account file-service-properties show --account-name {quote(account)}"
            ' --query "protocolSettings.smb" --output json'
        ],
    )


def registry_endpoints_check(ctx: RemedyContext, registry: str) -> Remediation:
    return remedy(
        kind="verify",
        text="List the registry's endpoints: with a dedicated data endpoint (Premium, auto-enabled with a private"
        " endpoint) layers come from <CONTAINER_REGISTRY>.<REGION>.data.azurecr.io, which a firewall can name;"
        " without one from the registry's storage account, so the firewall must allow *.blob.core.windows.net on 443."
        + resource_group_note(ctx, "the registry's resource group"),
        commands=[f"az acr show-endpoints --name {quote(registry)} --resource-group {resource_group_arg(ctx)}"],
    )


def _is_private_address(address: str) -> bool:
    return is_ip(address) and is_private(address)


def private_endpoint_connection_check(kind: str, name: str) -> Remediation:
    """List the resource's private endpoint connections and their approval state."""
    show_id = _SHOW_ID.get(kind, _SHOW_ANY_ID).format(name=quote(name))
    return remedy(
        kind="verify",
        text="List the resource's private endpoint connections: the compute's must be Approved (approve it with az"
        " network private-endpoint-connection approve --id <CONNECTION_ID>, the id this lists).",
        commands=[
            f'az network private-endpoint-connection list --id "$({show_id})"'
            ' --query "[].{name: name, status: properties.privateLinkServiceConnectionState.status}" --output table'
        ],
    )
