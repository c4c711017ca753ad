"""What the tls prober says about certificates: the facts of a presented chain, and its sentences.

Reading certificates needs cryptography (~25 ms to import). probe.registry imports every prober, so
the tls prober loads this module in the import thread when a handshake has something to describe,
and the first probes of other protocols never wait for it.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography import x509

from probe.facts import CertInfo, TlsFacts
from probe.reasons import Reason, ReasonCode
from probe.transport.handshake import Session
from probe.transport.x509 import cert_info, common_name, find_anchor, load_bundle, load_der, name_str


@dataclass
class Chain:
    """A handshake's certificates, parsed (each once: ``load_der`` is memoised by DER)."""

    presented: list[x509.Certificate] = field(default_factory=list)
    verified: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def of(cls, session: Session | None) -> Chain:
        if session is None:
            return cls()
        try:
            return cls([load_der(d) for d in session.chain], [load_der(d) for d in session.verified_chain])
        except ValueError:
            # A certificate cryptography cannot parse: report the session without its chain.
            return cls()


def _version_label(version: str | None) -> str:
    return version.replace("TLSv", "TLS ") if version else "TLS"


def _short(name: x509.Name) -> str:
    cn = common_name(name)
    return f"CN={cn}" if cn else name_str(name)


def _day(info: CertInfo) -> str:
    return info.not_after.date().isoformat() if info.not_after else "?"


def fill_facts(facts: TlsFacts, session: Session, chain: Chain, bundle: str | None) -> None:
    facts.version = session.version
    facts.cipher = session.cipher
    facts.alpn = session.alpn
    if chain.presented:
        facts.chain = [_cert_info(c) for c in chain.presented]
        facts.leaf = facts.chain[0]
    if not facts.verified:
        return
    anchor: x509.Certificate | None = None
    if chain.verified:
        # OpenSSL's own verified chain ends at the anchor it used: no second verification here.
        anchor = chain.verified[-1]
    elif bundle is not None and os.path.isfile(bundle):
        anchor = find_anchor(chain.presented, load_bundle(bundle))
    facts.trust_anchor = name_str(anchor.subject) if anchor is not None else None


@functools.lru_cache(maxsize=256)
def _cert_info_cached(cert: x509.Certificate, minute: int) -> CertInfo:
    return cert_info(cert, at=datetime.fromtimestamp(minute * 60, timezone.utc))


def _cert_info(cert: x509.Certificate) -> CertInfo:
    """cert_info, once per certificate (and minute: days_left counts from the minute it was seen).

    A thousand handshakes with one server describe its certificate once. Each result gets its own copy:
    a result's bounds (probe.model.bound_result) replace fields of the one they hold, and the count of
    what they cut belongs to that result. Shallow is enough: the bounds assign, they never change a
    field's value in place.
    """
    return _cert_info_cached(cert, int(time.time() // 60)).model_copy()


def leaf_info(der: bytes) -> CertInfo | None:
    """A server's leaf certificate from its DER form (an HTTP or websocket probe's own session), or None
    if it does not parse."""
    try:
        return _cert_info(load_der(der))
    except ValueError:
        return None


def verify_detail(reason: ReasonCode, exc: ssl.SSLCertVerificationError, host: str, chain: Chain) -> str:
    message = exc.verify_message or str(exc)
    leaf = chain.presented[0] if chain.presented else None
    if leaf is None:
        return f"Certificate of {host} failed verification ({message}); the presented certificate could not be read."
    info = _cert_info(leaf)
    if reason is Reason.TLS_HOSTNAME_MISMATCH:
        names = ", ".join(info.sans) if info.sans else "no SANs"
        return f"Certificate {_short(leaf.subject)} ({names}) does not name {host} ({message})."
    if reason is Reason.TLS_EXPIRED:
        if info.days_left is not None and info.days_left < 0:
            return (
                f"Certificate {_short(leaf.subject)} expired on {_day(info)} ({-info.days_left} days ago) ({message})."
            )
        start = info.not_before.date().isoformat() if info.not_before else "?"
        return f"Certificate {_short(leaf.subject)} is not valid before {start} ({message})."
    if info.self_signed:
        return f"Self-signed certificate {_short(leaf.subject)} is not trusted ({message})."
    top = chain.presented[-1]
    return f"Certificate issued by '{name_str(top.issuer)}' is not trusted ({message})."


def ok_detail(facts: TlsFacts, chain: Chain) -> str:
    head = f"{_version_label(facts.version)} {facts.cipher or ''}".strip()
    if facts.leaf is None or not chain.presented:
        return f"{head}, certificate verified."
    leaf = chain.presented[0]
    return (
        f"{head}, leaf {_short(leaf.subject)} issued by {_short(leaf.issuer)}, "
        f"expires {_day(facts.leaf)} ({facts.leaf.days_left} days)."
    )
