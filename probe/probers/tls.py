"""The tls prober: who answered, with what certificate, and whether this machine trusts it.

When verification fails the peer is dialled again without verification, only to read the
certificate it presents: "issued by 'Contoso Inspection CA'" tells a TLS-inspecting firewall
apart from an expired or misnamed certificate, which a bare "verify failed" cannot. The handshake
itself is probe.transport.handshake's.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
from datetime import datetime, timezone

from cryptography import x509

from probe.deadline import Stopwatch
from probe.errors import DialFailed
from probe.facts import CertInfo, TlsFacts
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Connection, Phase, Recorder
from probe.transport.classify import classify_tls_error
from probe.transport.connect import endpoint
from probe.transport.context import ProbeContext
from probe.transport.dial import dial
from probe.transport.handshake import Session, handshake, handshake_failure_detail, where_to
from probe.transport.tlsconfig import ca_bundle_in_use
from probe.transport.x509 import cert_info, common_name, find_anchor, load_bundle, name_str


def _version_label(version: str | None) -> str:
    return version.replace("TLSv", "TLS ") if version else "TLS"


def _short(name: x509.Name) -> str:
    cn = common_name(name)
    return f"CN={cn}" if cn else name_str(name)


def _day(info: CertInfo) -> str:
    return info.not_after.date().isoformat() if info.not_after else "?"


def _fill_facts(facts: TlsFacts, session: Session, bundle: str | None) -> None:
    facts.version = session.version
    facts.cipher = session.cipher
    facts.alpn = session.alpn
    if session.chain:
        facts.chain = [_cert_info(c) for c in session.chain]
        facts.leaf = facts.chain[0]
    if not facts.verified:
        return
    anchor: x509.Certificate | None = None
    if session.verified_chain:
        # OpenSSL's own verified chain ends at the anchor it used: no second verification here.
        anchor = session.verified_chain[-1]
    elif bundle is not None and os.path.isfile(bundle):
        anchor = find_anchor(session.chain, load_bundle(bundle))
    facts.trust_anchor = name_str(anchor.subject) if anchor is not None else None


@functools.lru_cache(maxsize=256)
def _cert_info_cached(cert: x509.Certificate, minute: int) -> CertInfo:
    return cert_info(cert, at=datetime.fromtimestamp(minute * 60, timezone.utc))


def _cert_info(cert: x509.Certificate) -> CertInfo:
    """cert_info, once per certificate (and minute: days_left counts from the minute it was seen).

    A thousand handshakes with one server describe its certificate once.
    """
    return _cert_info_cached(cert, int(time.time() // 60))


def _verify_detail(reason: Reason, exc: ssl.SSLCertVerificationError, host: str, session: Session | None) -> str:
    message = exc.verify_message or str(exc)
    leaf = session.chain[0] if session and session.chain else None
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
    top = session.chain[-1] if session else leaf
    return f"Certificate issued by '{name_str(top.issuer)}' is not trusted ({message})."


def _ok_detail(facts: TlsFacts, session: Session) -> str:
    head = f"{_version_label(facts.version)} {facts.cipher or ''}".strip()
    if facts.leaf is None or not session.chain:
        return f"{head}, certificate verified."
    leaf = session.chain[0]
    return (
        f"{head}, leaf {_short(leaf.subject)} issued by {_short(leaf.issuer)}, "
        f"expires {_day(facts.leaf)} ({facts.leaf.days_left} days)."
    )


async def _fetch_presented(ctx: ProbeContext, rec: Recorder, host: str, port: int, server_name: str) -> Session | None:
    """Handshake again without verification, to see the certificate the peer presents."""
    try:
        sock = await dial(ctx, rec.deadline, Connection(), host, port, tls=True, allow_proxy=True)
        return await handshake(sock, server_name, ctx.tls.get(verify=False), rec.deadline)
    except (DialFailed, OSError, TimeoutError, ssl.SSLError, EOFError):
        return None


def _server_name(host: str) -> str:
    return host.strip("[]").rstrip(".")


async def probe_tls(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    """Does a verified TLS handshake with host:port succeed (through the proxy when one applies)?"""
    host = spec.target.host
    port = spec.target.port or 443
    server_name = _server_name(host)
    bundle = ca_bundle_in_use(ctx.settings)
    facts = TlsFacts(server_name=server_name, verified=False, ca_bundle=bundle)
    try:
        ssl_ctx = ctx.tls.get(verify=True)
    except (OSError, ssl.SSLError) as exc:
        detail = f"The CA bundle {bundle} could not be loaded ({exc}); nothing can be verified against it."
        return rec.result(Reason.TLS_UNTRUSTED, detail, tls=facts)

    try:
        sock = await dial(ctx, rec.deadline, rec.conn, host, port, tls=True, allow_proxy=True)
    except DialFailed as exc:
        return rec.failed(exc, tls=facts)

    watch = Stopwatch()
    try:
        session = await handshake(sock, server_name, ssl_ctx, rec.deadline)
    except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
        rec.conn.phases[Phase.TLS] = watch.ms()
        reason = classify_tls_error(exc)
        if not isinstance(exc, ssl.SSLCertVerificationError):
            where = where_to(rec.conn, endpoint(server_name, port))
            return rec.result(reason, handshake_failure_detail(reason, exc, where, watch.ms() / 1000), tls=facts)
        facts.verify_error = exc.verify_message or str(exc)
        presented = await _fetch_presented(ctx, rec, host, port, server_name)
        if presented is not None:
            _fill_facts(facts, presented, bundle)
            rec.conn.attempts.append("dialled again without verification to read the presented certificate")
        return rec.result(reason, _verify_detail(reason, exc, host, presented), tls=facts)

    rec.conn.phases[Phase.TLS] = session.handshake_ms if session.handshake_ms is not None else watch.ms()
    facts.verified = True
    _fill_facts(facts, session, bundle)
    return rec.result(Reason.OK, _ok_detail(facts, session), tls=facts, latency_ms=rec.elapsed_ms())
