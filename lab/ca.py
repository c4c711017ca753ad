"""Certificate authorities for the lab: one that looks like Azure's chain, one like a TLS-inspecting firewall.

EC P-256 keys keep generation in the low milliseconds, so the lab starts fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LAB_OU = "amlprobe lab - not a real CA"


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _LAB_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


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
    def create(cls, *, root_cn: str, root_org: str, issuing_cn: str, issuing_org: str) -> LabCA:
        now = dt.datetime.now(dt.timezone.utc)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(root_cn, root_org)
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
            .subject_name(_name(issuing_cn, issuing_org))
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

    def issue(self, names: list[str], *, days: int = 90) -> Issued:
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


def azure_like_ca() -> LabCA:
    """Named like Azure's real chain (requirements.md §5) so the issuer check sees an Azure CA."""
    return LabCA.create(
        root_cn="DigiCert Global Root G2",
        root_org="DigiCert Inc",
        issuing_cn="Microsoft Azure RSA TLS Issuing CA 07",
        issuing_org="Microsoft Corporation",
    )


def inspection_ca() -> LabCA:
    """A TLS-inspecting firewall's CA: trusted by the machine, but not an Azure issuer."""
    return LabCA.create(
        root_cn="Contoso Firewall Root CA",
        root_org="Contoso Ltd",
        issuing_cn="Contoso Firewall TLS Inspection CA",
        issuing_org="Contoso Ltd",
    )
