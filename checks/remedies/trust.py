"""Remedies for the trust store: Microsoft's roots that distribution bundles lack."""

from __future__ import annotations

from checks.remedies.base import remedy
from probe.model import Remediation

# Azure/azhpc-images PR #539 (install_ms_tls_root_g2): where Microsoft publishes the self-signed root, and
# the SHA-256 of its DER encoding, pinned.
G2_ROOT = "Microsoft TLS RSA Root G2"
_G2_URL = "http://www.microsoft.com/pkiops/certs/Microsoft%20TLS%20RSA%20Root%20G2.crt"
_G2_SHA256 = "6a170583db584151e1c454eeca2a64cc5d8e484a5bd1156e720b4458654ee9e5"


def g2_root_fix() -> Remediation:
    return remedy(
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
    return remedy(
        kind="trust_store",
        text="When another Microsoft root is missing: bring the OS trust store up to date (Debian/Ubuntu), then"
        " check again.",
        commands=["sudo apt-get update && sudo apt-get install -y --only-upgrade ca-certificates"],
    )
