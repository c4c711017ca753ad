"""Paste-able fixes: the Azure CLI command or configuration line that removes a cause.

One module per family (network, dns, trust, resources); checks.remedies.base holds the context a
remedy fills in and the quoting every inserted value goes through. A diagnosis rule lists the
remedies it offers beside its logic (checks.diagnosis), and docs/troubleshooting.md shows them.
"""

from checks.remedies.base import PLACEHOLDERS, RemedyContext
from checks.remedies.dns import (
    dns_forwarder_fix,
    dns_link_fix,
    dns_path_fix,
    hosts_fix,
    local_resolver_check,
    resolver_check,
    verify_zone_links_fix,
    vnet_dns_servers_fix,
)
from checks.remedies.network import (
    egress_fix,
    firewall_fqdn_fix,
    local_route_check,
    nsg_fix,
    proxy_bypass_fix,
    subnet_egress_check,
    tls_bypass_fix,
    udp_outside_checks,
    websocket_desktop_check,
    wireserver_root_fix,
)
from checks.remedies.resources import (
    key_vault_network_rule_fix,
    key_vault_public_access_fix,
    private_endpoint_connection_check,
    private_endpoint_fix,
    registry_endpoints_check,
    registry_network_rule_fix,
    resource_access_check,
    smb_channel_encryption_fix,
    smb_settings_check,
    storage_network_rule_fix,
)
from checks.remedies.trust import G2_ROOT, ca_store_update_fix, g2_root_fix

__all__ = [
    "G2_ROOT",
    "PLACEHOLDERS",
    "RemedyContext",
    "ca_store_update_fix",
    "dns_forwarder_fix",
    "dns_link_fix",
    "dns_path_fix",
    "egress_fix",
    "firewall_fqdn_fix",
    "g2_root_fix",
    "hosts_fix",
    "key_vault_network_rule_fix",
    "key_vault_public_access_fix",
    "local_resolver_check",
    "local_route_check",
    "nsg_fix",
    "private_endpoint_connection_check",
    "private_endpoint_fix",
    "proxy_bypass_fix",
    "registry_endpoints_check",
    "registry_network_rule_fix",
    "resolver_check",
    "resource_access_check",
    "smb_channel_encryption_fix",
    "smb_settings_check",
    "storage_network_rule_fix",
    "subnet_egress_check",
    "tls_bypass_fix",
    "udp_outside_checks",
    "verify_zone_links_fix",
    "vnet_dns_servers_fix",
    "websocket_desktop_check",
    "wireserver_root_fix",
]
