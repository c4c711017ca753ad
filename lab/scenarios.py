"""The lab's scenarios: each is a real fault made by real means (routes, listeners, zone data, CAs).

The agent is never told which scenario runs; it has to find the fault the way it would on a VM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    # How the fault is made, for `amlprobe lab --list` and for support engineers learning the tool.
    mechanism: str
    drop_rules: tuple[str, ...] = ()  # ip-rule selectors whose packets go to the drop table
    udp_listener: bool = True
    # HTTPS_PROXY is a corporate proxy that decrypts the compute-instance hosts and drops Upgrade (Squid's default).
    strip_websocket: bool = False
    inspection_ca: bool = False
    proxy: bool = False
    # What `amlprobe check --scenario` gets (the user's workload); empty: the check's default.
    workloads: tuple[str, ...] = ()
    # How the compute-instance front end refuses an anonymous request: "login" (302), "401" or "403".
    auth_answer: str = "login"
    # Hosts with these suffixes present Microsoft's G2 chain (leaf + intermediate) and the CA bundle lacks its root.
    g2_chain_suffixes: tuple[str, ...] = ()
    # resource kinds for which the custom DNS gives the public view / no privatelink records
    custom_dns_public: tuple[str, ...] = ()
    custom_dns_nxdomain_privatelink: bool = False
    azure_dns_public: tuple[str, ...] = ()
    custom_dns_silent: bool = False


# Resource kinds whose private endpoints a "zone not linked" scenario affects (requirements.md §3).
WORKSPACE_AND_STORAGE = ("workspace", "storage")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "healthy",
            "Everything a compute instance needs works; tundra UDP 5831 stays silent like the real service.",
            "All front ends and private endpoints listen; both resolvers serve the private zones.",
        ),
        Scenario(
            "nsg-blocks-443",
            "An NSG drops outbound TCP 443 to the AzureMachineLearning service tag's front ends.",
            "ip rule: TCP 443 to the AzureMachineLearning range is routed to a neighbour that never answers.",
            drop_rules=("to {aml_range} ipproto tcp dport 443",),
        ),
        Scenario(
            "udp-5831-rejected",
            "A firewall rejects UDP 5831 to tundra: compute instances cannot be created or updated.",
            "No socket listens on the tundra addresses' UDP 5831, so the kernel answers ICMP port unreachable.",
            udp_listener=False,
        ),
        Scenario(
            "smb-445-blocked",
            "Outbound TCP 445 is dropped: the workspace file share cannot be mounted.",
            "ip rule: every TCP 445 packet is routed to a neighbour that never answers.",
            drop_rules=("ipproto tcp dport 445",),
        ),
        Scenario(
            "healthy-websocket-401",
            "Healthy; the compute-instance front end refuses anonymous requests with 401 and Azure request ids.",
            "As healthy, but the instance front end answers 401 (WWW-Authenticate: Bearer, x-ms-request-id).",
            auth_answer="401",
        ),
        Scenario(
            "healthy-websocket-403",
            "Healthy; the compute-instance front end refuses anonymous requests with an HTML 403 and request ids.",
            "As healthy, but the instance front end answers 403 (text/html, x-ms-request-id, no Via).",
            auth_answer="403",
        ),
        Scenario(
            "packages-vscode",
            "Healthy, checked for the packages and vscode workloads: pypi, conda, PyTorch, CRAN, GitHub, VS Code.",
            "check --scenario packages --scenario vscode; each host shows its real issuer (GlobalSign, Sectigo,"
            " Amazon, Google Trust Services, DigiCert, Microsoft).",
            workloads=("packages", "vscode"),
        ),
        Scenario(
            "websocket-stripped",
            "A corporate proxy decrypts the compute-instance hosts and drops Upgrade: Jupyter will not work.",
            "HTTPS_PROXY is the lab proxy; it diverts the instance hosts to a TLS-inspecting gateway (Contoso CA,"
            " trusted) that forwards requests without Upgrade, as Squid does by default, and adds Via.",
            strip_websocket=True,
        ),
        Scenario(
            "private-dns-not-linked",
            "The privatelink zones for storage and the workspace are not linked to the VNet: public answers.",
            "Both resolvers serve the public view (privatelink CNAME to a public address) for those zones.",
            custom_dns_public=WORKSPACE_AND_STORAGE,
            azure_dns_public=WORKSPACE_AND_STORAGE,
        ),
        Scenario(
            "custom-dns-missing-forwarder",
            "The VNet's custom DNS has no conditional forwarder to 168.63.129.16: privatelink names fail.",
            "The custom DNS serves the public CNAMEs but NXDOMAIN for every privatelink.* name.",
            custom_dns_nxdomain_privatelink=True,
        ),
        Scenario(
            "tls-inspection",
            "A firewall re-signs TLS with its own CA, which the machine trusts: Microsoft and third-party hosts alike.",
            "Every front end presents a certificate from a second CA (Contoso) that is in the CA bundle.",
            inspection_ca=True,
        ),
        Scenario(
            "microsoft-root-missing",
            "The trust store lacks Microsoft TLS RSA Root G2: Microsoft's new chain cannot be verified.",
            "*.microsoft.com hosts present Microsoft TLS G2 RSA CA OCSP 04 (leaf + intermediate, no cross-signed"
            " bridge); the CA bundle lacks the self-signed root (Azure/azhpc-images PR #539).",
            g2_chain_suffixes=("microsoft.com",),
        ),
        Scenario(
            "proxy-required",
            "Only an HTTP proxy reaches the internet: 443 works through CONNECT, nothing else has a path.",
            "ip rule: all traffic to service addresses is dropped except from the proxy's own address; "
            "HTTPS_PROXY points at the lab's CONNECT proxy.",
            drop_rules=("to {aml_range}", "to {other_range}", "to {storage_range}", "to {pe_range}"),
            proxy=True,
        ),
        Scenario(
            "dns-timeout",
            "The VNet's custom DNS server does not answer at all.",
            "The custom DNS server receives queries and never replies.",
            custom_dns_silent=True,
        ),
    )
}

DEFAULT_SCENARIO = "healthy"
