"""Certificate authorities for the lab, named like the real ones each host uses, and a TLS-inspecting
firewall's.

Every lab CA keeps an extra OU saying it is a lab CA. The names are those in public captures of the
real chains (docs/real-world-azure.md Q2a-c; the source of each is next to it), so the
agent's issuer rule meets what a healthy workspace really shows: Microsoft hosts under Microsoft's and
DigiCert's CAs, an Azure CA whose organisation holds a comma ("DigiCert, Inc."), and third-party hosts
under GlobalSign, Sectigo, Amazon, Google Trust Services and DigiCert.

EC P-256 keys keep generation in the low milliseconds, so the lab starts fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LAB_OU = "amlprobe lab - not a real CA"


def _name(cn: str, org: str, *, country: str | None = "US", ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, LAB_OU))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Profile:
    """The names of a real chain: its root and the intermediate that issues the leaves."""

    key: str
    root_cn: str
    root_org: str
    issuing_cn: str
    issuing_org: str
    country: str = "US"
    issuing_ou: str | None = None
    source: str = ""


# --- Microsoft-operated hosts --------------------------------------------------------------------
# Azure's own issuing CAs, under DigiCert Global Root G2 (learn.microsoft.com/azure/security/fundamentals/
# azure-ca-details; *.azureedge.net shows "Microsoft Azure RSA TLS Issuing CA 04" (NetAppDocs/ontap#2025),
# dotnet.microsoft.com "Microsoft Azure RSA TLS Issuing CA 03" (curl/curl#14154)).
AZURE_03 = Profile(
    "azure-03",
    "DigiCert Global Root G2",
    "DigiCert Inc",
    "Microsoft Azure RSA TLS Issuing CA 03",
    "Microsoft Corporation",
    source="curl/curl#14154",
)
AZURE_04 = Profile(
    "azure-04",
    "DigiCert Global Root G2",
    "DigiCert Inc",
    "Microsoft Azure RSA TLS Issuing CA 04",
    "Microsoft Corporation",
    source="NetAppDocs/ontap#2025",
)
# An Azure CA whose organisation has a comma: Azure Front Door / App Service managed certificates,
# "Issuer: C=US, O=DigiCert, Inc., CN=GeoTrust Global TLS RSA4096 SHA256 2022 CA1" (azure-ca-details lists it;
# real-world-azure.md Q2a, Q2b).
GEOTRUST_2022 = Profile(
    "geotrust-2022",
    "DigiCert Global Root CA",
    "DigiCert Inc",
    "GeoTrust Global TLS RSA4096 SHA256 2022 CA1",
    "DigiCert, Inc.",
    source="azure-ca-details; real-world-azure.md Q2b",
)
# login.microsoftonline.com: "O = DigiCert Inc, CN = DigiCert SHA2 Secure Server CA" (Azure/azure-cli#20921).
DIGICERT_SHA2 = Profile(
    "digicert-sha2",
    "DigiCert Global Root CA",
    "DigiCert Inc",
    "DigiCert SHA2 Secure Server CA",
    "DigiCert Inc",
    source="Azure/azure-cli#20921",
)
# The 2025-26 rotation: "Microsoft TLS G2 RSA CA OCSP NN" under the self-signed "Microsoft TLS RSA Root G2",
# which distro bundles lag on (Azure/azhpc-images PR #539, microsoft/azurelinux#18553).
MICROSOFT_G2 = Profile(
    "microsoft-g2",
    "Microsoft TLS RSA Root G2",
    "Microsoft Corporation",
    "Microsoft TLS G2 RSA CA OCSP 04",
    "Microsoft Corporation",
    source="Azure/azhpc-images PR #539",
)

# --- third-party hosts ---------------------------------------------------------------------------
# pypi.org: "C=BE, O=GlobalSign nv-sa, CN=GlobalSign Atlas R3 DV TLS CA 2025 Q4" (pypi/support#11897);
# files.pythonhosted.org: "GlobalSign Atlas R3 DV TLS CA 2025 Q1" (pypi/support#6959).
GLOBALSIGN = Profile(
    "globalsign",
    "GlobalSign",
    "GlobalSign",
    "GlobalSign Atlas R3 DV TLS CA 2025 Q4",
    "GlobalSign nv-sa",
    country="BE",
    source="pypi/support#11897, #6959",
)
# github.com: "O = Sectigo Limited, CN = Sectigo ECC Domain Validation Secure Server CA" (gm3dmo/the-power#372).
SECTIGO = Profile(
    "sectigo",
    "USERTrust ECC Certification Authority",
    "The USERTRUST Network",
    "Sectigo ECC Domain Validation Secure Server CA",
    "Sectigo Limited",
    country="GB",
    source="gm3dmo/the-power#372",
)
# download.pytorch.org (CloudFront): "C=US; O=Amazon; OU=Server CA 1B; CN=Amazon" (spinalcordtoolbox#3107);
# cloud.r-project.org is on CloudFront too (inference, real-world-azure.md Q2a).
AMAZON = Profile(
    "amazon",
    "Amazon Root CA 1",
    "Amazon",
    "Amazon",
    "Amazon",
    issuing_ou="Server CA 1B",
    source="neuropoly/spinalcordtoolbox#3107",
)
# anaconda.com, repo.anaconda.com, conda.anaconda.org sit behind Cloudflare, whose Universal SSL uses Let's
# Encrypt or Google Trust Services (cloudflare/cloudflare-docs ssl/edge-certificates/troubleshooting/ca-faq.md).
GOOGLE_TRUST = Profile(
    "gts",
    "GTS Root R4",
    "Google Trust Services LLC",
    "WE1",
    "Google Trust Services",
    source="cloudflare-docs ca-faq; real-world-azure.md Q2a",
)
# raw.githubusercontent.com: "O = DigiCert Inc, CN = DigiCert TLS RSA SHA256 2020 CA1" (MichaIng/DietPi#6271);
# pkg-containers.githubusercontent.com: no capture found, taken to be its sibling's.
DIGICERT_2020 = Profile(
    "digicert-2020",
    "DigiCert Global Root CA",
    "DigiCert Inc",
    "DigiCert TLS RSA SHA256 2020 CA1",
    "DigiCert Inc",
    source="MichaIng/DietPi#6271",
)
# ghcr.io: "C=US; O=DigiCert Inc; CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1" (Michsior14/docker-mods#11).
DIGICERT_G2_2020 = Profile(
    "digicert-g2-2020",
    "DigiCert Global Root G2",
    "DigiCert Inc",
    "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
    "DigiCert Inc",
    source="Michsior14/docker-mods#11",
)

# --- the middlebox -------------------------------------------------------------------------------
INSPECTION = Profile(
    "inspection",
    "Contoso Firewall Root CA",
    "Contoso Ltd",
    "Contoso Firewall TLS Inspection CA",
    "Contoso Ltd",
)

THIRD_PARTY_ISSUERS: dict[str, Profile] = {
    "pypi.org": GLOBALSIGN,
    "files.pythonhosted.org": GLOBALSIGN,
    "github.com": SECTIGO,
    "raw.githubusercontent.com": DIGICERT_2020,
    "pkg-containers.githubusercontent.com": DIGICERT_2020,
    "ghcr.io": DIGICERT_G2_2020,
    "download.pytorch.org": AMAZON,
    "pytorch.org": AMAZON,
    "cloud.r-project.org": AMAZON,
    "anaconda.com": GOOGLE_TRUST,
    "repo.anaconda.com": GOOGLE_TRUST,
    "conda.anaconda.org": GOOGLE_TRUST,
}
MICROSOFT_ISSUERS: dict[str, Profile] = {
    "login.microsoftonline.com": DIGICERT_SHA2,
    # An Azure Front Door host (packages scenario): Front Door managed certificates are GeoTrust 2022 CA1.
    "automlresources-prod-d0eaehh7g8andvav.b02.azurefd.net": GEOTRUST_2022,
    # Which default-plan host really uses GeoTrust 2022 CA1 is unverified; the lab signs graph.windows.net
    # with it so that every default run meets the escaped comma ("O=DigiCert\, Inc.").
    "graph.windows.net": GEOTRUST_2022,
}


def issuer_for(host: str, operator: str | None) -> Profile:
    """The profile a host's certificate comes from: its captured issuer, else an Azure issuing CA."""
    host = host.lower()
    if host in THIRD_PARTY_ISSUERS:
        return THIRD_PARTY_ISSUERS[host]
    if host in MICROSOFT_ISSUERS:
        return MICROSOFT_ISSUERS[host]
    if operator == "third-party":
        # No capture for this host (a user catalog row): a public CA that is neither Azure's nor the inspector's.
        return GOOGLE_TRUST
    # Azure spreads hosts over its issuing CAs; pick one of two by a stable hash of the name.
    return (AZURE_03, AZURE_04)[zlib.crc32(host.encode()) % 2]


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes  # leaf first, then the intermediate: what a server presents


@dataclass
class LabCA:
    """A root and an intermediate; ``issue`` signs server certificates with the intermediate."""

    root: x509.Certificate
    intermediate: x509.Certificate
    _key: ec.EllipticCurvePrivateKey

    @property
    def root_pem(self) -> bytes:
        return _pem(self.root)

    @classmethod
    def create(
        cls,
        *,
        root_cn: str,
        root_org: str,
        issuing_cn: str,
        issuing_org: str,
        country: str = "US",
        issuing_ou: str | None = None,
    ) -> LabCA:
        now = dt.datetime.now(dt.timezone.utc)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(root_cn, root_org, country=country)
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(issuing_cn, issuing_org, country=country, ou=issuing_ou))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root=root, intermediate=intermediate, _key=key)

    @classmethod
    def like(cls, profile: Profile) -> LabCA:
        return cls.create(
            root_cn=profile.root_cn,
            root_org=profile.root_org,
            issuing_cn=profile.issuing_cn,
            issuing_org=profile.issuing_org,
            country=profile.country,
            issuing_ou=profile.issuing_ou,
        )

    def issue(self, names: Iterable[str], *, days: int = 90) -> Issued:
        names = sorted(set(names))
        now = dt.datetime.now(dt.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, min(names, key=len)[:64])]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Issued(cert_pem=_pem(cert), key_pem=key_pem, chain_pem=_pem(cert) + _pem(self.intermediate))


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def inspection_ca() -> LabCA:
    """A TLS-inspecting firewall's CA: trusted by the machine, but not an Azure issuer."""
    return LabCA.like(INSPECTION)
