"""Paste-able fixes: the Azure CLI command or configuration line that removes a cause.

Values the agent cannot know from inside the VM (NSG name, VNet name) stay as <placeholders>;
what it knows (resource group, region) is filled in.

Every value is shell-quoted where it is inserted (``_q``), even though checks.validate already
holds it to Azure's naming rules: a command is pasted into a shell, and a value that slipped
through must arrive as one literal argument, never as a command. A <placeholder> stays bare:
pasted unchanged, the shell refuses the redirection and runs nothing.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from probe.model import Remediation
from probe.sanitize import escape_controls

_PRIORITY = {"443": 200, "5831": 210, "445": 220, "8787 18881": 230, "443 445": 240, "80": 250}
_PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")


def _q(value: str) -> str:
    """``value`` as one shell word; control characters are escaped first, so a line stays one line."""
    if _PLACEHOLDER.fullmatch(value):
        return value
    return shlex.quote(escape_controls(value))


def _rg(facts: Any) -> str:
    return _q(str(getattr(facts.inputs, "resource_group", None) or "<resource-group>"))


def _rule_name(tag: str, proto: str, ports: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]", "", tag.split(".", maxsplit=1)[0]) or "Service"
    return f"AllowOut-{base}-{proto}-{ports.replace(' ', '-')}"


def nsg_fix(facts: Any, tag: str, proto: str, ports: str) -> Remediation:
    region = getattr(facts.inputs, "region", None)
    # Regional service tags (Storage.<region>, BatchNodeManagement.<region>) narrow the rule.
    dest = tag
    if region and tag in ("Storage", "BatchNodeManagement", "AzureKeyVault") and "." not in tag:
        dest = f"{tag}.{region}"
    return Remediation(
        kind="nsg_rule",
        text=f"Allow outbound {proto.upper()} {ports} to service tag {dest} (NSG on the compute subnet; "
        "the same as a network rule on Azure Firewall).",
        commands=[
            f"az network nsg rule create --resource-group {_rg(facts)} --nsg-name <nsg-name> "
            f"--name {_q(_rule_name(dest, proto, ports))} --priority {_PRIORITY.get(ports, 260)} "
            f"--direction Outbound --access Allow --protocol {_q(proto)} --source-address-prefixes VirtualNetwork "
            f"--destination-address-prefixes {_q(dest)} --destination-port-ranges {ports}"
        ],
    )


def dns_link_fix(facts: Any, zones: list[str]) -> Remediation:
    rg = _rg(facts)
    return Remediation(
        kind="dns_link",
        text="Link each private DNS zone to the VNet the compute (and its DNS server) uses.",
        commands=[
            f"az network private-dns link vnet create --resource-group {rg} --zone-name {_q(z)} "
            f"--name {_q(z.replace('.', '-'))}-link --virtual-network <vnet-name-or-id> "
            "--registration-enabled false"
            for z in zones
        ],
    )


def dns_forwarder_fix(facts: Any, zones: list[str] | None) -> Remediation:
    plan = getattr(facts, "plan", None)
    forwarders: list[str] = []
    for exp in getattr(plan, "dns_expectations", []) or []:
        if zones is None or exp.zone in zones:
            forwarders.extend(getattr(exp, "forwarder_zones", []) or [])
    forwarders = sorted(set(forwarders))
    shown = forwarders or ["<zone>"]
    return Remediation(
        kind="dns_forwarder",
        text="On the custom DNS server, forward these zones to Azure DNS (168.63.129.16); the server must run "
        "inside a VNet linked to the private DNS zones.",
        commands=[
            *(
                f"# Windows DNS: Add-DnsServerConditionalForwarderZone -Name {_q(z)} -MasterServers 168.63.129.16"
                for z in shown
            ),
            *(
                f'# BIND: zone "{_q(z)}" {{ type forward; forward only; forwarders {{ 168.63.129.16; }}; }};'
                for z in shown
            ),
        ],
    )


def hosts_fix(names: list[str]) -> Remediation:
    pattern = "|".join(re.escape(n) for n in names)
    script = "/\\s(" + pattern + ")(\\s|$)/d"
    return Remediation(
        kind="hosts_file",
        text="Remove the hosts-file pins so DNS answers (keep a backup).",
        commands=[f"sudo sed -i.bak -E {_q(script)} /etc/hosts"],
    )


def proxy_bypass_fix(facts: Any) -> Remediation:
    hosts = sorted(
        {r.target.host for r in facts.results if r.labels.get("resource") is not None or "instances." in r.target.host}
    )
    entries = ",".join(hosts) if hosts else ".instances.azureml.ms,.api.azureml.ms"
    return Remediation(
        kind="no_proxy",
        text="Send private-endpoint and compute-instance names direct (bypass the proxy), e.g. in /etc/environment"
        " and the PAC file.",
        commands=[f"export NO_PROXY={_q(entries)}", f"export no_proxy={_q(entries)}"],
    )


def tls_bypass_fix(hosts: list[str]) -> Remediation:
    return Remediation(
        kind="tls_bypass",
        text="Exempt these hosts from TLS inspection (decryption bypass list on the firewall or proxy).",
        commands=[f"# bypass: {_q(h)}" for h in hosts],
    )
