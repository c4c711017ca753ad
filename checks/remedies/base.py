"""What every remedy shares: the context it may fill in, quoting for the shell that runs it, and placeholders.

Values the agent cannot know from inside the VM (NSG name, VNet name) stay as placeholders, written
``<LIKE_THIS>`` (upper case, digits and underscores: one shell word, never a phrase); what it knows
(resource group, region, the forwarder zones of the plan) is filled in. Every placeholder a command
holds is explained in its remedy's text (``remedy`` appends the meaning from PLACEHOLDER_MEANINGS
when the text does not name it already).

Every value is shell-quoted where it is inserted (``quote``), even though checks.validate already
holds it to Azure's naming rules: a command is pasted into a shell, and a value that slipped
through must arrive as one literal argument, never as a command. A placeholder stays bare:
pasted unchanged, the shell refuses the redirection and runs nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.model import Remediation
from probe.sanitize import escape_controls

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")

# What the user fills in for each placeholder, as a remedy's text explains it. A remedy whose text does not
# name a placeholder of its commands gets this sentence appended (``remedy``).
PLACEHOLDER_MEANINGS: dict[str, str] = {
    "ADDRESS_SEEN": "the address the resource says it saw (its refusal names it)",
    "COMPUTE_SUBNET_CIDR": "the compute subnet's address range, e.g. 10.0.0.0/24",
    "COMPUTE_SUBNET_ID": "the compute subnet's resource id (az network vnet subnet show ... --query id --output tsv)",
    "CONNECTION_ID": "the private endpoint connection's id (the list above shows it)",
    "CONTAINER_REGISTRY": "the container registry's name",
    "DNS_SERVER_IP": "the address of a DNS server that answers (Azure DNS is 168.63.129.16)",
    "FIREWALL_NAME": "the Azure Firewall's name",
    "GROUP_ID": "the private endpoint's sub-resource (blob, file, vault, registry, ...)",
    "HOST": "a host name the finding lists",
    "KEY_VAULT": "the key vault's name",
    "NSG_NAME": "the name of the network security group on the compute subnet",
    "PE_SUBNET_ID": "the resource id of the subnet for private endpoints (az network vnet subnet show ... --query id"
    " --output tsv)",
    "PORT": "a port the finding lists",
    "PORTS": "the list of the finding's ports, separated by spaces",
    "PRIVATE_DNS_ZONE": "the private DNS zone of the sub-resource (privatelink.blob.core.windows.net, ...)",
    "REGION": "the workspace's region (az ml workspace show --query location)",
    "RESOURCE_GROUP": "the resource group that holds the resource the command changes",
    "RESOURCE_TYPE": "the resource's type (Microsoft.Storage/storageAccounts, ...)",
    "SERVICE_TAG": "the service tag the finding names",
    "STORAGE_ACCOUNT": "the storage account's name",
    "SUBNET_NAME": "the compute subnet's name",
    "TEST_VM": "a name for the test VM",
    "TEST_VM_IP": "the test VM's private IP address",
    "TUNDRA_IP": "the address the tundra name resolves to (nslookup <REGION>.tundra.azureml.ms)",
    "VNET_NAME": "the name of the VNet the compute runs in",
    "VNET_NAME_OR_ID": "the name (or resource id) of the VNet the compute and its DNS server use",
    "VNET_RESOURCE_GROUP": "the VNet's resource group",
    "ZONE": "a DNS zone the finding names",
}


@dataclass(frozen=True)
class RemedyContext:
    """What a remedy may fill in; anything unknown prints as its <PLACEHOLDER>.

    Built from validated inputs and the plan (checks.diagnosis.base.Evidence.remedies); ``PLACEHOLDERS``
    knows nothing, which is how docs/troubleshooting.md shows each command's shape.
    """

    resource_group: str | None = None
    region: str | None = None
    # The conditional-forwarder zones the plan names for each private DNS zone (None: a name without one).
    forwarders: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)
    # Private-endpoint and compute-instance names, to send past a proxy.
    bypass_hosts: tuple[str, ...] = ()


PLACEHOLDERS = RemedyContext()


def placeholders(text: str) -> list[str]:
    """The placeholders in ``text``, each once, in order, without their brackets."""
    return list(dict.fromkeys(m.group(0)[1:-1] for m in PLACEHOLDER.finditer(text)))


def remedy(kind: str, text: str, commands: list[str] | None = None) -> Remediation:
    """A remediation whose text explains every placeholder its commands hold."""
    commands = commands or []
    for name in placeholders(" ".join(commands)):
        if f"<{name}>" not in text:
            text += f" <{name}> is {PLACEHOLDER_MEANINGS[name]}."
    return Remediation(kind=kind, text=text, commands=commands)


# The catalog's ``fqdn`` is the name as Microsoft's docs write it, with their placeholders
# ("*.<region>.batch.azure.com", "<key vault>.vault.azure.net"); in a remedy they become ours.
_DOC_PLACEHOLDER = re.compile(r"<([a-z][a-z ]*)>")
_DOC_NAMES = {"region": "REGION", "storage": "STORAGE_ACCOUNT", "key vault": "KEY_VAULT", "acr": "CONTAINER_REGISTRY"}


def doc_name(fqdn: str, ctx: RemedyContext) -> str | None:
    """A documented name or wildcard for a remedy: the region filled in when known, the docs' other placeholders
    written <LIKE_THIS>; None for a plan's unexpanded template ("{storage_account}...")."""
    if "{" in fqdn:
        return None

    def sub(m: re.Match[str]) -> str:
        word = m.group(1)
        if word == "region" and ctx.region:
            return ctx.region
        return "<" + _DOC_NAMES.get(word, word.upper().replace(" ", "_")) + ">"

    return _DOC_PLACEHOLDER.sub(sub, fqdn)


def quote(value: str) -> str:
    """``value`` as one shell word; control characters are escaped first, so a line stays one line."""
    if PLACEHOLDER.fullmatch(value):
        return value
    return shlex.quote(escape_controls(value))


def powershell_quote(value: str) -> str:
    """``value`` as one PowerShell argument: bare when it is a plain name, else a literal '' string."""
    if PLACEHOLDER.fullmatch(value) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", value):
        return value
    return "'" + escape_controls(value).replace("'", "''") + "'"


def resource_group_arg(ctx: RemedyContext) -> str:
    return quote(ctx.resource_group or "<RESOURCE_GROUP>")


def resource_group_note(ctx: RemedyContext, what: str) -> str:
    """Explain <RESOURCE_GROUP> when the resource group is not known."""
    return "" if ctx.resource_group else f" <RESOURCE_GROUP> is {what}."
