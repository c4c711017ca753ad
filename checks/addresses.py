"""What counts as a private address: RFC 1918, shared CGNAT space, IPv6 ULA, and the user's own ranges."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Azure DNS and WireServer: the platform's virtual IP, the same in every VNet and region
# (learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16).
AZURE_DNS = "168.63.129.16"

PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def parse_networks(cidrs: Iterable[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def is_private(address: str, extra: Iterable[IPNetwork] = ()) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in (*PRIVATE_NETWORKS, *extra))


def is_ip(host: str) -> bool:
    """True for an IP literal (IPv4 or IPv6), which needs no name resolution."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
