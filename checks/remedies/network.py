"""Remedies for the network path: NSG and firewall rules, proxy and TLS-inspection bypasses, the checks
only the desktop or Azure itself can run.
"""

from __future__ import annotations

import re

from checks.addresses import AZURE_DNS, is_ip
from checks.remedies.base import RemedyContext, quote, remedy, resource_group_arg, resource_group_note
from probe.model import Remediation

_PRIORITY = {"443": 200, "5831": 210, "445": 220, "8787 18881": 230, "443 445": 240, "80": 250}


def _rule_name(tag: str, proto: str, ports: str) -> str:
    # Letters and digits of the tag and the ports only: the name is one safe word whatever they hold.
    base = re.sub(r"[^A-Za-z0-9]", "", tag.split(".", maxsplit=1)[0]) or "Service"
    port_part = "-".join(p if re.fullmatch(r"<[A-Z_]+>", p) else re.sub(r"[^0-9]", "", p) for p in ports.split())
    return f"AllowOut-{base}-{proto}-{port_part or 'ports'}"


def nsg_fix(ctx: RemedyContext, tag: str, proto: str, ports: str) -> Remediation:
    region = ctx.region
    # Regional service tags (Storage.<REGION>, BatchNodeManagement.<REGION>) narrow the rule.
    dest = tag
    if region and tag in ("Storage", "BatchNodeManagement", "AzureKeyVault") and "." not in tag:
        dest = f"{tag}.{region}"
    return remedy(
        kind="nsg_rule",
        text=f"Allow outbound {proto.upper()} {ports} to service tag {dest} (NSG on the compute subnet; "
        "the same as a network rule on Azure Firewall).",
        commands=[
            f"az network nsg rule create --resource-group {resource_group_arg(ctx)} --nsg-name <NSG_NAME> "
            f"--name {_rule_name(dest, proto, ports)} --priority {_PRIORITY.get(ports, 260)} "
            f"--direction Outbound --access Allow --protocol {quote(proto)} --source-address-prefixes VirtualNetwork "
            f"--destination-address-prefixes {quote(dest)} --destination-port-ranges"
            f" {' '.join(quote(p) for p in ports.split())}"
        ],
    )


def firewall_fqdn_fix(
    ctx: RemedyContext, hosts: list[str], port: str, why: str = "no service tag covers them"
) -> Remediation:
    """FQDNs without a service tag: an NSG cannot name them, an FQDN-aware firewall can. Azure Firewall
    takes HTTP/HTTPS FQDNs in application rules and other ports in network rules with FQDNs (which need
    its DNS proxy): how-to-access-azureml-behind-firewall, firewall/fqdn-filtering-network-rules."""
    targets = " ".join(quote(h) for h in hosts)
    web = port in ("80", "443")
    # Values go in by f-string only: a str.format over them would read a "{" in a value as a field.
    command = (
        f"az network firewall {'application-rule' if web else 'network-rule'} create"
        f" --resource-group {resource_group_arg(ctx)} "
        f"--firewall-name <FIREWALL_NAME> --collection-name AllowAzureML-FQDN --name Allow-{quote(port)} "
        "--priority 300 --action Allow --source-addresses <COMPUTE_SUBNET_CIDR> "
    )
    if web:
        command += f"--protocols {'Http' if port == '80' else 'Https'}={port} --target-fqdns {targets}"
    else:
        command += f"--protocols TCP --destination-ports {quote(port)} --destination-fqdns {targets}"
    return remedy(
        kind="firewall_rule",
        text=f"Allow these names on port {port} at the firewall or proxy ({why}; the example is Azure Firewall).",
        commands=[command],
    )


def egress_fix(ctx: RemedyContext, tag: str, hosts: list[str], port: str) -> Remediation:
    """Open ``port`` to the endpoints: by their NSG service tag when they have one, else by name at the firewall."""
    return nsg_fix(ctx, tag, "Tcp", port) if tag else firewall_fqdn_fix(ctx, hosts, port)


def wireserver_root_fix(ports: list[str]) -> Remediation:
    return remedy(
        kind="verify",
        text="Nothing to fix. To test WireServer itself, run as root; the agent's rule is visible in the security"
        " table.",
        commands=[
            f"sudo iptables -t security -L OUTPUT -n -v | grep {AZURE_DNS}",
            "sudo amlprobe check " + " ".join(f"--target tcp://{AZURE_DNS}:{quote(p)}" for p in ports),
        ],
    )


def proxy_bypass_fix(ctx: RemedyContext) -> Remediation:
    entries = ",".join(ctx.bypass_hosts) if ctx.bypass_hosts else ".instances.azureml.ms,.api.azureml.ms"
    return remedy(
        kind="no_proxy",
        text="Send private-endpoint and compute-instance names direct (bypass the proxy), e.g. in /etc/environment"
        " and the PAC file.",
        commands=[f"export NO_PROXY={quote(entries)}", f"export no_proxy={quote(entries)}"],
    )


def tls_bypass_fix(hosts: list[str]) -> Remediation:
    return remedy(
        kind="tls_bypass",
        text="Exempt these hosts from TLS inspection (decryption bypass list on the firewall or proxy).",
        commands=[f"# bypass: {quote(h)}" for h in hosts],
    )


# RFC 6455 §1.2's sample nonce: any 16 bytes in base64 make a valid Sec-WebSocket-Key for a one-off check.
# RFC 6455 §1.2's sample nonce: any 16 bytes in base64 make a valid Sec-WebSocket-Key for a one-off check.
_SAMPLE_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def websocket_desktop_check(hosts: list[str]) -> Remediation:
    """The same anonymous upgrade, run from the user's desktop: the browser's path is the one Jupyter needs."""
    return remedy(
        kind="client_check",
        text="Jupyter's websocket runs from the user's browser to the compute instance, through the desktop's"
        " proxy, and that path cannot be seen from the compute. Run this from the desktop (bash, or Git Bash /"
        " WSL on Windows; curl reads HTTPS_PROXY, a browser may use a PAC file instead). The path is open when"
        " it prints HTTP 101, or a 302 to login.microsoftonline.com, or a 401/403 carrying x-ms-request-id and"
        " no Via header. A 407, a Via header, a block page, HTTP 200, or an empty reply mean a proxy strips"
        " websockets.",
        commands=[
            "curl --http1.1 -sS -o /dev/null -D - -H 'Connection: Upgrade' -H 'Upgrade: websocket'"
            f" -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: {_SAMPLE_WS_KEY}' {quote(f'https://{h}/')}"
            for h in hosts
        ],
    )


def udp_outside_checks(ctx: RemedyContext, tundra_ip: str | None) -> Remediation:
    """Network Watcher's verdict on the 5-tuple, run from outside: the decisive check UDP silence cannot give."""
    rg = resource_group_arg(ctx)
    port = 5831
    known = tundra_ip is not None and is_ip(tundra_ip)
    remote = quote(tundra_ip) if known and tundra_ip else "<TUNDRA_IP>"
    text = (
        "Nothing answers on UDP 5831 when it works, so ask Azure from outside. A compute instance's VM is not in"
        " your subscription, so put a small test VM in the compute's subnet (same NSG and route table; the first"
        " command, without a public IP or an NSG of its own) and run the others against it; delete it after"
        " (az vm delete). <COMPUTE_SUBNET_ID> is the compute subnet's resource id (az network vnet subnet show ..."
        " --query id --output tsv), <TEST_VM> the test VM's name and <TEST_VM_IP> its private IP (az vm"
        f" list-ip-addresses --resource-group {rg} --name <TEST_VM>)."
    )
    if not known:
        text += " <TUNDRA_IP> is the address the tundra name resolves to (nslookup; it did not resolve here)."
    else:
        text += f" {tundra_ip} is the address the tundra name resolved to here."
    text += (
        " Network Watcher must be enabled in the region; Azure Firewall verdicts are not in these: read its"
        " AZFWNetworkRule logs for port 5831."
    ) + resource_group_note(ctx, "the resource group to create the test VM in")
    return remedy(
        kind="outside_check",
        text=text,
        commands=[
            f"az vm create --resource-group {rg} --name <TEST_VM> --image Ubuntu2204 --size Standard_B1s"
            ' --subnet <COMPUTE_SUBNET_ID> --public-ip-address "" --nsg "" --generate-ssh-keys',
            f"az network watcher test-ip-flow --resource-group {rg} --vm <TEST_VM> --direction Outbound --protocol UDP"
            f" --local '<TEST_VM_IP>:*' --remote {remote}:{port}",
            f"az network watcher run-configuration-diagnostic --resource-group {rg} --resource <TEST_VM>"
            " --resource-type virtualMachines --direction Outbound --protocol UDP --source <TEST_VM_IP>"
            f" --destination AzureMachineLearning --port {port}",
            f'az network nic list-effective-nsg --ids "$(az vm show --resource-group {rg} --name <TEST_VM>'
            " --query 'networkProfile.networkInterfaces[0].id' --output tsv)\"",
            f"az network watcher show-next-hop --resource-group {rg} --vm <TEST_VM> --source-ip <TEST_VM_IP>"
            f" --dest-ip {remote}",
        ],
    )


def local_route_check() -> Remediation:
    """This machine's own view: its addresses, its default route, the route it would take to WireServer."""
    return remedy(
        kind="verify",
        text="See whether this machine has an address and a default route at all (no packet is sent).",
        commands=["ip -brief address show", "ip route show default", f"ip route get {AZURE_DNS}"],
    )


def subnet_egress_check(ctx: RemedyContext) -> Remediation:
    """What the compute subnet's traffic goes through: its route table, NSG and NAT gateway."""
    return remedy(
        kind="verify",
        text="Show what the compute subnet's outbound traffic goes through: a route table (a UDR 0.0.0.0/0 to a"
        " firewall or appliance), an NSG and a NAT gateway.",
        commands=[
            f"az network vnet subnet show --resource-group {resource_group_arg(ctx)} --vnet-name <VNET_NAME>"
            ' --name <SUBNET_NAME> --query "{routeTable: routeTable.id, nsg: networkSecurityGroup.id, natGateway:'
            ' natGateway.id}" --output json'
        ],
    )
