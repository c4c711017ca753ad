"""X.509 certificates (DER) -> CertInfo, and finding the trusted root a presented chain leads to.

The stdlib can only describe a certificate it verified; a peer whose certificate failed
verification is exactly the one worth describing, so parsing goes through ``cryptography``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from probe.facts import CertInfo
from probe.files import MAX_CA_BUNDLE_BYTES, read_regular
from probe.transport.tlsconfig import PEM_CERT


def name_str(name: x509.Name) -> str:
    """RFC 4514 form, most specific first ("CN=host,O=Org"), as openssl and browsers show it."""
    return name.rfc4514_string()


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    value = attrs[0].value if attrs else None
    return value if isinstance(value, str) else None


def common_name(name: x509.Name) -> str | None:
    return _attribute(name, NameOID.COMMON_NAME)


def organization(name: x509.Name) -> str | None:
    return _attribute(name, NameOID.ORGANIZATION_NAME)


def _not_before(cert: x509.Certificate) -> datetime:
    # cryptography < 42 only has the naive-UTC accessors.
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc
    return cert.not_valid_before.replace(tzinfo=timezone.utc)


def _not_after(cert: x509.Certificate) -> datetime:
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=timezone.utc)


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(ext.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return names


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key signed ``cert`` (names alone can collide)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# Parse each certificate once: a run meets the same few certificates over and over.
@functools.lru_cache(maxsize=256)
def load_der(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def cert_info(cert: x509.Certificate, *, at: datetime | None = None) -> CertInfo:
    moment = at or datetime.now(timezone.utc)
    not_after = _not_after(cert)
    return CertInfo(
        subject=name_str(cert.subject),
        issuer=name_str(cert.issuer),
        issuer_common_name=common_name(cert.issuer),
        issuer_organization=organization(cert.issuer),
        sans=_sans(cert),
        serial=format(cert.serial_number, "X"),
        not_before=_not_before(cert),
        not_after=not_after,
        # Floor, so "0 days" means it expires within the next 24 hours, and negatives count days past.
        days_left=int((not_after - moment).total_seconds() // 86400),
        sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        self_signed=issued_by(cert, cert),
    )


def load_bundle(path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; empty when it cannot be read or parsed."""
    try:
        stat = os.stat(path)
    except OSError:
        return []
    return list(_parse_bundle(path, stat.st_mtime_ns, stat.st_size))


# Every TLS check of a run consults the same bundle; parse it once per version of the file.
@functools.lru_cache(maxsize=8)
def _parse_bundle(path: str, mtime_ns: int, size: int) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(pem_certificates(read_regular(path, MAX_CA_BUNDLE_BYTES)))
    except (OSError, ValueError):
        return ()




def pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle that parses, one block at a time.

    A system bundle may hold a certificate that cryptography refuses or warns about (a serial number
    that is not positive, which RFC 5280 disallows: cryptography warns now and will refuse); parsing
    the bundle as one would lose every other certificate with it."""
    certs = []
    for block in PEM_CERT.findall(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return certs


def find_anchor(chain: list[x509.Certificate], roots: list[x509.Certificate]) -> x509.Certificate | None:
    """The root in ``roots`` the presented ``chain`` (leaf first) leads to, if any.

    A server may send the root itself, or stop below it; either way the anchor is the bundle
    certificate that is, or issued, the top of what was presented.
    """
    if not chain:
        return None
    top = chain[-1]
    for root in roots:
        if root == top:
            return root
    for root in roots:
        if issued_by(top, root):
            return root
    return None
