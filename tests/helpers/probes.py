"""Pieces for prober tests: a ProbeContext that never consults the machine, and certificates trustme cannot make."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from probe.model import AddressRecord, DnsFacts
from probe.reasons import Reason
from probe.settings import ProbeSettings
from probe.transport.context import ProbeContext
from probe.transport.resolve import Resolution, SharedResolver

# --- probe context with a fixed resolver -------------------------------------------------------


async def no_lookup(name: str) -> Resolution:
    """A resolver for probes of IP literals only: any name lookup fails the test."""
    raise AssertionError(f"unexpected DNS lookup of {name}")


def no_lookup_context(timeout: float, lookup: Callable[[str], Awaitable[Resolution]] = no_lookup) -> ProbeContext:
    """A ProbeContext with no environment and ``lookup`` (by default: none allowed)."""
    return ProbeContext(settings=ProbeSettings(timeout=timeout, env={}), resolver=SharedResolver(lookup))


def fixed_lookup(hosts: dict[str, list[str]]) -> Callable[[str], Awaitable[Resolution]]:
    """A resolver input that answers from ``hosts`` and says NXDOMAIN for anything else."""

    async def lookup(name: str) -> Resolution:
        addresses = hosts.get(name)
        if not addresses:
            facts = DnsFacts(query=name, rcode="NXDOMAIN", server="fixed")
            return Resolution(Reason.DNS_NXDOMAIN, f"{name} does not exist (fixed test resolver).", facts, 0.1)
        records = [AddressRecord(address=a, family="ipv6" if ":" in a else "ipv4", ttl=60) for a in addresses]
        facts = DnsFacts(query=name, rcode="NOERROR", server="fixed", records=records, transport="udp")
        return Resolution(Reason.OK, f"{name} resolved (fixed test resolver).", facts, 0.1)

    return lookup


def probe_context(
    *,
    timeout: float = 1.0,
    hosts: dict[str, list[str]] | None = None,
    ca_bundle: str | None = None,
    env: dict[str, str] | None = None,
    trust_env: bool = True,
) -> ProbeContext:
    """A ProbeContext that never consults the machine: no proxy, no environment, fixed names."""
    settings = ProbeSettings(
        timeout=timeout,
        dns_servers=["127.0.0.1:1"],
        ca_bundle=ca_bundle,
        proxy=None,
        trust_env=trust_env,
        env=dict(env or {}),
    )
    return ProbeContext(settings=settings, resolver=SharedResolver(fixed_lookup(hosts or {})))


def self_signed_pem(common_name: str, sans: list[str]) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of a self-signed leaf, which trustme cannot make."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(timezone.utc) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(cert: trustme.LeafCert | tuple[bytes, bytes], tmp: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_alpn_protocols(["http/1.1"])
    if isinstance(cert, trustme.LeafCert):
        cert.configure_cert(ctx)
    else:
        cert_pem, key_pem = cert
        (tmp / "cert.pem").write_bytes(cert_pem)
        (tmp / "key.pem").write_bytes(key_pem)
        ctx.load_cert_chain(str(tmp / "cert.pem"), str(tmp / "key.pem"))
    return ctx
