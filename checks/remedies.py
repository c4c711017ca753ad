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

from checks.addresses import is_ip, is_private
from probe.model import Remediation
from probe.sanitize import escape_controls

_PRIORITY = {"443": 200, "5831": 210, "445": 220, "8787 18881": 230, "443 445": 240, "80": 250}
_PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")


def _q(value: str) -> str:
    """``value`` as one shell word; control characters are escaped first, so a line stays one line."""
    if _PLACEHOLDER.fullmatch(value):
        return value
    return shlex.quote(escape_controls(value))


def _ps(value: str) -> str:
    """``value`` as one PowerShell argument: bare when it is a plain name, else a literal '' string."""
    if _PLACEHOLDER.fullmatch(value) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", value):
        return value
    return "'" + escape_controls(value).replace("'", "''") + "'"


def _rg(facts: Any) -> str:
    return _q(str(getattr(facts.inputs, "resource_group", None) or "<resource-group>"))


def _rule_name(tag: str, proto: str, ports: str) -> str:
    # Letters and digits of the tag only; proto and ports are the rule's own constants.
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
            f"--name {_rule_name(dest, proto, ports)} --priority {_PRIORITY.get(ports, 260)} "
            f"--direction Outbound --access Allow --protocol {_q(proto)} --source-address-prefixes VirtualNetwork "
            f"--destination-address-prefixes {_q(dest)} --destination-port-ranges {ports}"
        ],
    )


def firewall_fqdn_fix(facts: Any, hosts: list[str], port: str, why: str = "no service tag covers them") -> Remediation:
    """FQDNs without a service tag: an NSG cannot name them, an FQDN-aware firewall can. Azure Firewall
    takes HTTP/HTTPS FQDNs in application rules and other ports in network rules with FQDNs (which need
    its DNS proxy): how-to-access-azureml-behind-firewall, firewall/fqdn-filtering-network-rules."""
    targets = " ".join(_q(h) for h in hosts)
    web = port in ("80", "443")
    # Values go in by f-string only: a str.format over them would read a "{" in a value as a field.
    command = (
        f"az network firewall {'application-rule' if web else 'network-rule'} create --resource-group {_rg(facts)} "
        f"--firewall-name <firewall-name> --collection-name AllowAzureML-FQDN --name Allow-{_q(port)} "
        "--priority 300 --action Allow --source-addresses <compute-subnet-cidr> "
    )
    if web:
        command += f"--protocols {'Http' if port == '80' else 'Https'}={port} --target-fqdns {targets}"
    else:
        command += f"--protocols TCP --destination-ports {_q(port)} --destination-fqdns {targets}"
    return Remediation(
        kind="firewall_rule",
        text=f"Allow these names on port {port} at the firewall or proxy ({why}; the example is Azure Firewall).",
        commands=[command],
    )


def verify_zone_links_fix(facts: Any, zones: list[str]) -> Remediation:
    rg = _rg(facts)
    return Remediation(
        kind="verify",
        text="Nothing to fix. To confirm, list the VNets each private DNS zone is linked to: the DNS server's VNet"
        " should be among them.",
        commands=[
            f"az network private-dns link vnet list --resource-group {rg} --zone-name {_q(z)} "
            '--query "[].virtualNetwork.id" --output tsv'
            for z in zones
        ],
    )


def wireserver_root_fix(ports: list[str]) -> Remediation:
    return Remediation(
        kind="verify",
        text="Nothing to fix. To test WireServer itself, run as root; the agent's rule is visible in the security"
        " table.",
        commands=[
            "sudo iptables -t security -L OUTPUT -n -v | grep 168.63.129.16",
            "sudo amlprobe check " + " ".join(f"--target tcp://168.63.129.16:{_q(p)}" for p in ports),
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
    bind = f'zone "{shown[0]}" {{ type forward; forward only; forwarders {{ 168.63.129.16; }}; }};'
    return Remediation(
        kind="dns_forwarder",
        text="On the custom DNS server, forward these zones to Azure DNS (168.63.129.16); the server must run "
        "inside a VNet linked to the private DNS zones. The commands are for Windows DNS Server (PowerShell); "
        f"in BIND each zone is a named.conf statement like: {bind}",
        commands=[f"Add-DnsServerConditionalForwarderZone -Name {_ps(z)} -MasterServers 168.63.129.16" for z in shown],
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


# RFC 6455 §1.2's sample nonce: any 16 bytes in base64 make a valid Sec-WebSocket-Key for a one-off check.
_SAMPLE_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def websocket_desktop_check(hosts: list[str]) -> Remediation:
    """The same anonymous upgrade, run from the user's desktop: the browser's path is the one Jupyter needs."""
    return Remediation(
        kind="client_check",
        text="Jupyter's websocket runs from the user's browser to the compute instance, through the desktop's"
        " proxy, and that path cannot be seen from the compute. Run this from the desktop (bash, or Git Bash /"
        " WSL on Windows; curl reads HTTPS_PROXY, a browser may use a PAC file instead). The path is open when"
        " it prints HTTP 101, or a 302 to login.microsoftonline.com, or a 401/403 carrying x-ms-request-id and"
        " no Via header. A 407, a Via header, a block page, HTTP 200, or an empty reply mean a proxy strips"
        " websockets.",
        commands=[
            "curl --http1.1 -sS -o /dev/null -D - -H 'Connection: Upgrade' -H 'Upgrade: websocket'"
            f" -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: {_SAMPLE_WS_KEY}' {_q(f'https://{h}/')}"
            for h in hosts
        ],
    )


# Azure/azhpc-images PR #539 (install_ms_tls_root_g2): where Microsoft publishes the self-signed root, and
# the SHA-256 of its DER encoding, pinned.
G2_ROOT = "Microsoft TLS RSA Root G2"
_G2_URL = "http://www.microsoft.com/pkiops/certs/Microsoft%20TLS%20RSA%20Root%20G2.crt"
_G2_SHA256 = "6a170583db584151e1c454eeca2a64cc5d8e484a5bd1156e720b4458654ee9e5"


def g2_root_fix() -> Remediation:
    return Remediation(
        kind="trust_store",
        text=f"When the missing root is {G2_ROOT}: add the self-signed root to the OS trust store (Debian/Ubuntu;"
        " pinned by its SHA-256). Tools with their own bundle (pip, requests: certifi) need pointing at it, as the"
        " last line does.",
        commands=[
            f"curl -fsSL -o /tmp/Microsoft_TLS_RSA_Root_G2.der '{_G2_URL}'",
            f"echo '{_G2_SHA256}  /tmp/Microsoft_TLS_RSA_Root_G2.der' | sha256sum -c -",
            "sudo openssl x509 -inform DER -in /tmp/Microsoft_TLS_RSA_Root_G2.der"
            " -out /usr/local/share/ca-certificates/Microsoft_TLS_RSA_Root_G2.crt",
            "sudo update-ca-certificates",
            "export REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"
            " SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        ],
    )


def ca_store_update_fix() -> Remediation:
    return Remediation(
        kind="trust_store",
        text="When another Microsoft root is missing: bring the OS trust store up to date (Debian/Ubuntu), then"
        " check again.",
        commands=["sudo apt-get update && sudo apt-get install -y --only-upgrade ca-certificates"],
    )


# --- the workspace resources' own firewalls (checks/resources.py) -------------------------------------------

# How to look up a resource's id, so a command needs no id pasted in (az ... show --query id).
_SHOW_ID = {
    "storage": "az storage account show --name {name} --query id --output tsv",
    "key-vault": "az keyvault show --name {name} --query id --output tsv",
    "acr": "az acr show --name {name} --query id --output tsv",
}
_SHOW_ANY_ID = (
    "az resource show --resource-group <resource-group> --name {name} --resource-type <resource-type> --query id"
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
    " <compute-subnet-id> is the resource id of the compute's subnet: az network vnet subnet show --resource-group"
    " <vnet-resource-group> --vnet-name <vnet-name> --name <subnet-name> --query id --output tsv."
)


def resource_access_check(kind: str, name: str) -> Remediation:
    """Show the resource's public network access and its network rules' default action: which of the two refuses."""
    return Remediation(
        kind="verify",
        text="See which setting refuses: publicNetworkAccess Disabled means only private endpoints get in; Enabled"
        " with defaultAction Deny means the firewall admits only its listed networks.",
        commands=[
            _SHOW_ACCESS[kind].format(name=_q(name))
            + ' --query "{publicNetworkAccess: publicNetworkAccess, defaultAction: networkRuleSet.defaultAction}"'
            " --output json"
        ],
    )


def storage_network_rule_fix(account: str) -> Remediation:
    """Admit the compute subnet through the storage firewall (a virtual network rule over a service endpoint)."""
    return Remediation(
        kind="resource_firewall",
        text="Admit the compute subnet in the storage account's network rules. The subnet needs the Microsoft.Storage"
        " service endpoint first (az network vnet subnet update --service-endpoints replaces the subnet's list:"
        " include the endpoints it already has). IP rules do not help here: they do not apply to requests from the"
        " same Azure region." + _SUBNET_ID_TEXT,
        commands=[f"az storage account network-rule add --account-name {_q(account)} --subnet <compute-subnet-id>"],
    )


def key_vault_network_rule_fix(vault: str, seen: str | None) -> Remediation:
    """Admit this machine through the vault's firewall: the public address it saw, or the compute subnet."""
    commands = []
    text = "Admit this machine in the key vault's firewall"
    if seen is not None and not _is_private_address(seen):
        commands.append(f"az keyvault network-rule add --name {_q(vault)} --ip-address {_q(seen)}")
        text += f": the address the vault saw ({seen}), or the compute subnet"
    commands.append(f"az keyvault network-rule add --name {_q(vault)} --subnet <compute-subnet-id>")
    return Remediation(
        kind="resource_firewall",
        text=text + ". A subnet rule needs the Microsoft.KeyVault service endpoint on the subnet; private addresses"
        " cannot be IP rules." + _SUBNET_ID_TEXT,
        commands=commands,
    )


def registry_network_rule_fix(registry: str, seen: str | None) -> Remediation:
    """Admit the address the registry saw (its firewall takes IP rules only)."""
    if seen is None or _is_private_address(seen):
        return Remediation(
            kind="resource_firewall",
            text="The registry's firewall takes public IP rules only; a private address reaches it only through a"
            " private endpoint (below).",
            commands=[],
        )
    return Remediation(
        kind="resource_firewall",
        text=f"Admit the address the registry saw ({seen}, this machine's egress) in its firewall, if that address is"
        " fixed (a NAT gateway or firewall's public IP).",
        commands=[f"az acr network-rule add --name {_q(registry)} --ip-address {_q(seen)}"],
    )


def key_vault_public_access_fix(vault: str) -> Remediation:
    return Remediation(
        kind="resource_firewall",
        text="Or, if the vault may be reached over its public endpoint from chosen networks: enable public network"
        " access with the firewall denying by default, then admit the compute subnet as above.",
        commands=[f"az keyvault update --name {_q(vault)} --public-network-access Enabled --default-action Deny"],
    )


def _rg_note(facts: Any, what: str) -> str:
    """Explain <resource-group> when the resource group is not known."""
    return "" if getattr(facts.inputs, "resource_group", None) else f" <resource-group> is {what}."


def private_endpoint_fix(facts: Any, kind: str, name: str, groups: list[str], zones: list[str]) -> Remediation:
    """Reach the resource through a private endpoint in the VNet, one per sub-resource (``groups``), each with
    the private DNS zone of the same index in ``zones``."""
    rg = _rg(facts)
    show_id = _SHOW_ID.get(kind, _SHOW_ANY_ID).format(name=_q(name))
    commands = []
    for group, zone in zip(groups, zones, strict=True):
        endpoint = _q(f"{name}-{group}-pe")
        commands.append(
            f"az network private-endpoint create --resource-group {rg} --name {endpoint} --subnet <pe-subnet-id>"
            f' --private-connection-resource-id "$({show_id})" --group-id {_q(group)} --connection-name {endpoint}'
        )
        commands.append(
            f"az network private-endpoint dns-zone-group create --resource-group {rg} --endpoint-name {endpoint}"
            f" --name default --private-dns-zone {_q(zone)} --zone-name {_q(zone.replace('.', '-'))}"
        )
    return Remediation(
        kind="private_endpoint",
        text="Reach it through a private endpoint in the compute's VNet: traffic from the endpoint's VNet is admitted"
        " whatever the public settings say. The private DNS zone must exist, linked to the VNet; a zone name is looked"
        " up in the same resource group (give its resource id if it lives elsewhere). <pe-subnet-id> is the resource"
        " id of the subnet for private endpoints (az network vnet subnet show ... --query id --output tsv)."
        + _rg_note(facts, "the resource group to create the private endpoint in"),
        commands=commands,
    )


def smb_channel_encryption_fix(account: str) -> Remediation:
    return Remediation(
        kind="storage_setting",
        text="Allow AES-128-GCM next to AES-256-GCM in the file service's SMB channel encryption, as Microsoft asks"
        " for mounts to work (Azure Files troubleshooting, 'minimum encryption'). Linux clients offer AES-128-GCM"
        " first; with AES-256-GCM only, Azure Files agrees AES-128-GCM and then refuses the session (mount error"
        " 13). The value is one string with ';' between algorithms.",
        commands=[
            f"az storage account file-service-properties update --account-name {_q(account)} --channel-encryption"
            ' "AES-128-GCM;AES-256-GCM"'
        ],
    )


def smb_settings_check(account: str) -> Remediation:
    return Remediation(
        kind="verify",
        text="Show the file service's SMB settings: versions, channel encryption, authentication methods.",
        commands=[
            f"az storage account file-service-properties show --account-name {_q(account)}"
            ' --query "protocolSettings.smb" --output json'
        ],
    )


def registry_endpoints_check(facts: Any, registry: str) -> Remediation:
    return Remediation(
        kind="verify",
        text="List the registry's endpoints: with a dedicated data endpoint (Premium, auto-enabled with a private"
        " endpoint) layers come from <registry>.<region>.data.azurecr.io, which a firewall can name; without one"
        " from the registry's storage account, so the firewall must allow *.blob.core.windows.net on 443."
        + _rg_note(facts, "the registry's resource group"),
        commands=[f"az acr show-endpoints --name {_q(registry)} --resource-group {_rg(facts)}"],
    )


def udp_outside_checks(facts: Any, tundra_ip: str | None) -> Remediation:
    """Network Watcher's verdict on the 5-tuple, run from outside: the decisive check UDP silence cannot give."""
    rg = _rg(facts)
    port = 5831
    known = tundra_ip is not None and is_ip(tundra_ip)
    remote = _q(tundra_ip) if known and tundra_ip else "<tundra-ip>"
    text = (
        "Nothing answers on UDP 5831 when it works, so ask Azure from outside. A compute instance's VM is not in"
        " your subscription, so put a small test VM in the compute's subnet (same NSG and route table; the first"
        " command, without a public IP or an NSG of its own) and run the others against it; delete it after"
        " (az vm delete). <compute-subnet-id> is the compute subnet's resource id (az network vnet subnet show ..."
        " --query id --output tsv), <test-vm> the test VM's name and <test-vm-ip> its private IP (az vm"
        f" list-ip-addresses --resource-group {rg} --name <test-vm>)."
    )
    if not known:
        text += " <tundra-ip> is the address the tundra name resolves to (nslookup; it did not resolve here)."
    else:
        text += f" {tundra_ip} is the address the tundra name resolved to here."
    text += (
        " Network Watcher must be enabled in the region; Azure Firewall verdicts are not in these: read its"
        " AZFWNetworkRule logs for port 5831."
    ) + _rg_note(facts, "the resource group to create the test VM in")
    return Remediation(
        kind="outside_check",
        text=text,
        commands=[
            f"az vm create --resource-group {rg} --name <test-vm> --image Ubuntu2204 --size Standard_B1s"
            ' --subnet <compute-subnet-id> --public-ip-address "" --nsg "" --generate-ssh-keys',
            f"az network watcher test-ip-flow --resource-group {rg} --vm <test-vm> --direction Outbound --protocol UDP"
            f" --local '<test-vm-ip>:*' --remote {remote}:{port}",
            f"az network watcher run-configuration-diagnostic --resource-group {rg} --resource <test-vm>"
            " --resource-type virtualMachines --direction Outbound --protocol UDP --source <test-vm-ip>"
            f" --destination AzureMachineLearning --port {port}",
            f'az network nic list-effective-nsg --ids "$(az vm show --resource-group {rg} --name <test-vm>'
            " --query 'networkProfile.networkInterfaces[0].id' --output tsv)\"",
            f"az network watcher show-next-hop --resource-group {rg} --vm <test-vm> --source-ip <test-vm-ip>"
            f" --dest-ip {remote}",
        ],
    )


def _is_private_address(address: str) -> bool:
    return is_ip(address) and is_private(address)


def private_endpoint_connection_check(kind: str, name: str) -> Remediation:
    """List the resource's private endpoint connections and their approval state."""
    show_id = _SHOW_ID.get(kind, _SHOW_ANY_ID).format(name=_q(name))
    return Remediation(
        kind="verify",
        text="List the resource's private endpoint connections: the compute's must be Approved (approve it with az"
        " network private-endpoint-connection approve --id <connection-id>, the id this lists).",
        commands=[
            f'az network private-endpoint-connection list --id "$({show_id})"'
            ' --query "[].{name: name, status: properties.privateLinkServiceConnectionState.status}" --output table'
        ],
    )
