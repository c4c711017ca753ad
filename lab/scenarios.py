"""The lab's scenarios: each is a real fault made by real means (routes, listeners, zone data, CAs).

The agent is never told which scenario runs; it has to find the fault the way it would on a VM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.servers.smb import AES_256_GCM, AZURE_FILES_CIPHERS

# Resource kinds that can have a private endpoint (checks.inputs.PE_RESOURCES, grouped).
ALL_PRIVATE_ENDPOINTS = ("workspace", "notebooks", "storage", "key-vault", "acr")


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
    # Which resources have a private endpoint ("storage" covers every storage sub-resource).
    private_endpoints: tuple[str, ...] = ALL_PRIVATE_ENDPOINTS
    # The compute-instance name variant that exists; the others answer NXDOMAIN.
    live_ci_suffix: str = "instances.azureml.ms"
    # The custom DNS holds manual A records for the private-endpoint FQDNs (no CNAME).
    custom_dns_manual_records: bool = False
    # The compute instance reports its DNS suffix in /mnt/azmnt/.nbvm (the agent reads it).
    nbvm: bool = False
    # Whether the scenario is a healthy, documented set-up (tests: no warning, no critical finding).
    healthy: bool = False
    # How the workspace's resources treat a request that does not come through their private endpoint:
    # (kind, "firewall" | "public-access-disabled") for kinds storage, key-vault, acr (lab/servers/resources.py).
    resource_modes: tuple[tuple[str, str], ...] = ()
    # The SMB channel encryption the storage account's file service allows (cipher ids, in preference order).
    smb_ciphers: tuple[int, ...] = AZURE_FILES_CIPHERS
    # Resources reached over service endpoints: their public endpoints see the compute's private address.
    service_endpoints: tuple[str, ...] = ()
    # Which of the lab's workspace inputs (lab.peers.LAB_INPUTS keys) the check is given; None: all of them.
    inputs: tuple[str, ...] | None = None


def _refusing(kind: str, mode: str) -> dict[str, Any]:
    """A resource (storage, key-vault, acr) without a private endpoint that refuses the compute: every
    other resource keeps its private endpoint; ``mode`` is how it refuses (lab/servers/resources.py)."""
    return {
        "private_endpoints": tuple(k for k in ALL_PRIVATE_ENDPOINTS if k != kind),
        "resource_modes": ((kind, mode),),
    }


# Resource kinds whose private endpoints a "zone not linked" scenario affects (docs/requirements.md §3).
WORKSPACE_AND_STORAGE = ("workspace", "storage")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "healthy",
            "Everything a compute instance needs works; tundra UDP 5831 stays silent like the real service.",
            "All front ends and private endpoints listen; both resolvers serve the private zones. Of the"
            " compute-instance name variants only <ci>.<region>.instances.azureml.ms exists (the name in the ARM"
            " compute response and S1); the others answer NXDOMAIN, as names that do not exist do.",
            healthy=True,
        ),
        Scenario(
            "no-private-endpoint",
            "A workspace without any private endpoint (compute in a VNet, public workspace): run with no flag.",
            "No resource has a private endpoint: every name resolves publicly with no privatelink CNAME, and the"
            " instance's apps answer as <ci>-8787/<ci>-18881.<suffix> on 443 (responsible-ai-toolbox"
            " azure_nb_environment.py), not on the bare ports.",
            private_endpoints=(),
            healthy=True,
        ),
        Scenario(
            "hub-and-spoke",
            "Private DNS zones linked to the hub's DNS server only: Azure DNS asked from the spoke answers public.",
            "The custom DNS (in the hub) serves the private view; 168.63.129.16 serves the public view for every"
            " private-endpoint name (how-to-custom-dns: zone records reach only resolvers in linked VNets). The"
            " instance reports its suffix in .nbvm, and the live CI name is <ci>.<region>.instances.ml.azure.ms"
            " (how-to-custom-dns 03/2026).",
            azure_dns_public=ALL_PRIVATE_ENDPOINTS,
            live_ci_suffix="instances.ml.azure.ms",
            nbvm=True,
            healthy=True,
        ),
        Scenario(
            "manual-dns-records",
            "The custom DNS holds manual A records for the private endpoints (no CNAME), no private zones linked.",
            "The custom DNS answers each private-endpoint FQDN with an A record straight to its address, as"
            " how-to-custom-dns recommends for manual DNS; 168.63.129.16 (no zone linked) answers public.",
            custom_dns_manual_records=True,
            azure_dns_public=ALL_PRIVATE_ENDPOINTS,
            healthy=True,
        ),
        Scenario(
            "service-endpoints",
            "Workspace behind a private endpoint; storage and key vault on service endpoints (public addresses).",
            "Only the workspace and notebooks have private endpoints; storage and key vault resolve publicly"
            ' with no privatelink CNAME (how-to-secure-workspace-vnet: "either a private endpoint or service'
            ' endpoint").',
            private_endpoints=("workspace", "notebooks"),
            service_endpoints=("storage", "key-vault"),
            healthy=True,
        ),
        Scenario(
            "optional-blocked",
            "A firewall allows only what is required: RStudio, monitoring, ghcr.io and PKI over HTTP are blocked.",
            "ip rule: traffic to the addresses of situational hosts (required = false) and TCP 8787 to the private"
            " endpoints is routed to a neighbour that never answers.",
            drop_rules=("to {optional_range}", "to {pe_range} ipproto tcp dport 8787"),
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
            "healthy-websocket-unmarked",
            "Healthy; the front end refuses the anonymous upgrade with a bare HTML 403 and sends browsers to sign in.",
            "As healthy, but the upgrade gets 403 (text/html, no request id) and a plain GET a redirect to"
            " sign in: told apart from a block page only by the TLS session, which an Azure CA signed.",
            auth_answer="403-unmarked",
            healthy=True,
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
            "custom-dns-public-recursion",
            "The VNet's custom DNS resolves through the internet, without forwarders: public privatelink answers.",
            "The custom DNS serves the public view (privatelink CNAME to a public address) for every private-endpoint"
            " name, as a server recursing on the internet does; 168.63.129.16 in the VNet answers privately"
            " (how-to-custom-dns: conditional forwarders to 168.63.129.16 are what make private answers reach it).",
            custom_dns_public=ALL_PRIVATE_ENDPOINTS,
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
            drop_rules=(
                "to {aml_range}",
                "to {other_range}",
                "to {storage_range}",
                "to {optional_range}",
                "to {pe_range}",
            ),
            proxy=True,
        ),
        Scenario(
            "storage-firewall",
            "The storage account's firewall (selected networks) does not admit the compute's subnet.",
            "Storage has no private endpoint; its blob and file front ends answer every request 403"
            ' AuthorizationFailure ("This request is not authorized to perform this operation."), as Azure Storage'
            " answers a caller its network rules refuse (AzureStorageExplorer#8769, #9150). TCP, TLS and SMB"
            " NEGOTIATE still work.",
            **_refusing("storage", "firewall"),
        ),
        Scenario(
            "registry-firewall",
            "The container registry's firewall refuses the compute's egress address (docker-images workload).",
            "check --scenario compute-instance --scenario docker-images; the registry has no private endpoint (so no"
            " data endpoint: NXDOMAIN) and answers GET /v2/ 403 DENIED \"client with IP '<egress>' is not allowed"
            ' access" (docker/build-push-action#1214, Azure/acr#603), naming the NAT egress address the lab routes'
            " public traffic from.",
            **_refusing("acr", "firewall"),
            workloads=("compute-instance", "docker-images"),
        ),
        Scenario(
            "key-vault-public-access-disabled",
            "The key vault has public network access disabled and no private endpoint in this VNet.",
            'The key vault resolves publicly and answers 403 ForbiddenByConnection ("Public network access is disabled'
            ' and request is not from a trusted service nor via an approved private link.": microsoft/multimodal-ai'
            "#171, Azure/secrets-store-csi-driver-provider-azure#873).",
            **_refusing("key-vault", "public-access-disabled"),
        ),
        Scenario(
            "smb-aes256-only",
            "The file share allows only AES-256-GCM channel encryption (the 'Maximum security' cipher).",
            "The SMB responder agrees only AES-256-GCM and answers cipher 0 to an offer without it, as a server"
            " following [MS-SMB2] 3.3.5.4 does (Samba 4.17 with 'server smb3 encryption algorithms = AES-256-GCM'"
            " answers the same); Microsoft asks for AES-128-GCM to be enabled for mounts (AKS troubleshooting,"
            " minimum encryption).",
            smb_ciphers=(AES_256_GCM,),
        ),
        Scenario(
            "missing-inputs",
            "A healthy VNet checked with only the region given: the workspace's own checks cannot be planned.",
            "check --region eastus and nothing else: every row that needs the workspace id, name, storage account,"
            " key vault or instance name is skipped, so the verdict is unknown and the report lists the inputs to"
            " add (amlprobe lab --scenario missing-inputs --partial accepts the partial plan).",
            inputs=("region",),
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
