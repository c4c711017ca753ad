"""TLS handshake prober: who answered, with what certificate, and whether this machine trusts it.

When verification fails the peer is dialled again without verification, only to read the
certificate it presents: "issued by 'Contoso Inspection CA'" tells a TLS-inspecting firewall
apart from an expired or misnamed certificate, which a bare "verify failed" cannot.
"""

from __future__ import annotations

import _ssl
import asyncio
import errno
import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography import x509

from probe.certinfo import cert_info, common_name, find_anchor, load_bundle, load_der, name_str
from probe.context import ProbeContext, ProbeSettings, make_result
from probe.dial import DialFailed, DialInfo, dial
from probe.files import MAX_CA_BUNDLE_BYTES, read_regular
from probe.model import CertInfo, CheckResult, CheckSpec, Confidence, Status, TlsFacts
from probe.reasons import Reason, classify_tls_error
from probe.tcp import endpoint
from probe.timing import Stopwatch, now, remaining, within

ALPN = ["http/1.1"]


def ca_bundle_in_use(settings: ProbeSettings) -> str | None:
    """The CA file (or directory) verification uses; None means the system default store."""
    if settings.ca_bundle:
        return settings.ca_bundle
    if settings.trust_env:
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            value = settings.env.get(var)
            if value:
                return value
    return None


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def read_pem_certificates(path: str) -> str:
    """The PEM certificates of a CA bundle file, read as a user-named file must be (probe.files).

    OpenSSL's ``cafile`` would open a FIFO and block; reading here first also drops comments in
    other encodings, which ``cadata`` would refuse. Raises OSError, or ssl.SSLError without any.
    """
    blocks = _PEM_CERT.findall(read_regular(path, MAX_CA_BUNDLE_BYTES))
    if not blocks:
        raise ssl.SSLError(f"no PEM certificate in {path}")
    return b"\n".join(blocks).decode("ascii")


def make_ssl_context(settings: ProbeSettings, *, verify: bool = True) -> ssl.SSLContext:
    """A client context trusting exactly the bundle in use, or, with verify=False, anything.

    The unverified context exists only to read what certificate a peer presents after a
    verified handshake failed; nothing is ever sent over it.
    """
    if verify:
        bundle = ca_bundle_in_use(settings)
        if bundle is None:
            ctx = ssl.create_default_context()
        elif os.path.isdir(bundle):
            ctx = ssl.create_default_context(capath=bundle)
        else:
            ctx = ssl.create_default_context(cadata=read_pem_certificates(bundle))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(ALPN)
    return ctx


@dataclass
class _Session:
    """What one completed handshake revealed."""

    version: str | None
    cipher: str | None
    alpn: str | None
    chain: list[x509.Certificate] = field(default_factory=list)
    verified_chain: list[x509.Certificate] = field(default_factory=list)


def _der_list(sslobj: Any, method: str) -> list[bytes]:
    """DER certificates from ``get_(un)verified_chain``: public on 3.13+, private on 3.10-3.12."""
    fn = getattr(sslobj, method, None)
    if fn is None:
        fn = getattr(getattr(sslobj, "_sslobj", None), method, None)
    if fn is None:
        return []
    try:
        items = fn() or []
    except (ssl.SSLError, ValueError, AttributeError):
        return []
    der_format = getattr(_ssl, "ENCODING_DER", 2)
    out: list[bytes] = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif hasattr(item, "public_bytes"):
            out.append(item.public_bytes(der_format))
    return out


def _read_session(sslobj: Any) -> _Session:
    cipher = sslobj.cipher()
    session = _Session(
        version=sslobj.version(),
        cipher=cipher[0] if cipher else None,
        alpn=sslobj.selected_alpn_protocol(),
    )
    try:
        chain = [load_der(d) for d in _der_list(sslobj, "get_unverified_chain")]
        if not chain:
            leaf = sslobj.getpeercert(binary_form=True)
            chain = [load_der(leaf)] if leaf else []
        session.chain = chain
        session.verified_chain = [load_der(d) for d in _der_list(sslobj, "get_verified_chain")]
    except ValueError:
        # A certificate cryptography cannot parse: report the session without it.
        pass
    return session


async def _handshake(sock: socket.socket, server_name: str, ctx: ssl.SSLContext, deadline: float) -> _Session:
    """TLS over the connected ``sock``; the socket is consumed (closed) whatever happens."""
    try:
        # asyncio's own handshake timeout raises ConnectionAbortedError, which would read as a
        # reset; give it slack so ``within`` fires first and the outcome is a plain timeout.
        _, writer = await within(
            asyncio.open_connection(
                sock=sock,
                ssl=ctx,
                server_hostname=server_name,
                ssl_handshake_timeout=remaining(deadline) + 5.0,
            ),
            deadline,
        )
    except BaseException:
        sock.close()
        raise
    try:
        return _read_session(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        try:
            await within(writer.wait_closed(), min(deadline, now() + 0.5))
        except (OSError, TimeoutError, ssl.SSLError):
            writer.transport.abort()


def _version_label(version: str | None) -> str:
    return version.replace("TLSv", "TLS ") if version else "TLS"


def _short(name: x509.Name) -> str:
    cn = common_name(name)
    return f"CN={cn}" if cn else name_str(name)


def _day(info: CertInfo) -> str:
    return info.not_after.date().isoformat() if info.not_after else "?"


def _fill_facts(facts: TlsFacts, session: _Session, bundle: str | None) -> None:
    facts.version = session.version
    facts.cipher = session.cipher
    facts.alpn = session.alpn
    if session.chain:
        facts.leaf = cert_info(session.chain[0])
        facts.chain = [cert_info(c) for c in session.chain]
    if not facts.verified:
        return
    anchor: x509.Certificate | None = None
    if bundle is not None and os.path.isfile(bundle):
        anchor = find_anchor(session.chain, load_bundle(bundle))
    if anchor is None and session.verified_chain:
        # OpenSSL's own verified chain ends at the anchor it used (works for the system store).
        anchor = session.verified_chain[-1]
    facts.trust_anchor = name_str(anchor.subject) if anchor is not None else None


def _verify_detail(reason: Reason, exc: ssl.SSLCertVerificationError, host: str, session: _Session | None) -> str:
    message = exc.verify_message or str(exc)
    leaf = session.chain[0] if session and session.chain else None
    if leaf is None:
        return f"Certificate of {host} failed verification ({message}); the presented certificate could not be read."
    info = cert_info(leaf)
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


def _ok_detail(facts: TlsFacts, session: _Session) -> str:
    head = f"{_version_label(facts.version)} {facts.cipher or ''}".strip()
    if facts.leaf is None or not session.chain:
        return f"{head}, certificate verified."
    leaf = session.chain[0]
    return (
        f"{head}, leaf {_short(leaf.subject)} issued by {_short(leaf.issuer)}, "
        f"expires {_day(facts.leaf)} ({facts.leaf.days_left} days)."
    )


def _confidence(reason: Reason) -> Confidence:
    if reason in (Reason.TCP_TIMEOUT, Reason.TLS_TIMEOUT, Reason.PROXY_TIMEOUT, Reason.DNS_TIMEOUT):
        return Confidence.LIKELY
    return Confidence.CONFIRMED


def where_to(info: DialInfo, target: str) -> str:
    """'host:port', or 'host:port through proxy URL', for a sentence about the connection."""
    if info.route == "proxy":
        return f"{target} through proxy {info.peer}"
    return info.peer or target


def _ssl_message(exc: BaseException) -> str:
    # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)": the source line is noise.
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc)) or type(exc).__name__


def handshake_failure_detail(reason: Reason, exc: BaseException, where: str, waited_s: float) -> str:
    """One sentence for a TLS handshake that failed for a reason other than certificate verification."""
    if reason is Reason.TLS_TIMEOUT:
        return (
            f"Connected to {where} but the TLS handshake did not finish within {waited_s:.1f} s: "
            "the peer accepts TCP and never answers the ClientHello."
        )
    if reason is Reason.TLS_RESET:
        if isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
            how = "reset the connection (RST)"
        else:
            how = f"closed the connection ({_ssl_message(exc) if str(exc) else 'EOF'})"
        return (
            f"Connected to {where} but the peer {how} during the TLS handshake: "
            "a firewall or proxy may be rejecting the server name, or the port does not speak TLS."
        )
    hint = ""
    if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER":
        hint = ": the peer answered with something that is not TLS (plain HTTP on this port?)"
    return f"TLS handshake with {where} failed ({_ssl_message(exc)}){hint}."


async def _fetch_presented(
    ctx: ProbeContext, host: str, port: int, server_name: str, deadline: float
) -> _Session | None:
    """Handshake again without verification, to see the certificate the peer presents."""
    try:
        sock, _ = await dial(ctx, host, port, deadline, tls=True, allow_proxy=True)
        return await _handshake(sock, server_name, ctx.ssl_context(verify=False), deadline)
    except (DialFailed, OSError, TimeoutError, ssl.SSLError, EOFError):
        return None


def _server_name(host: str) -> str:
    return host.strip("[]").rstrip(".")


async def probe_tls(spec: CheckSpec, ctx: ProbeContext) -> CheckResult:
    """Does a verified TLS handshake with host:port succeed (through the proxy when one applies)?"""
    started = datetime.now(timezone.utc)
    deadline = ctx.deadline()
    total = Stopwatch()
    host = spec.target.host
    port = spec.target.port or 443
    server_name = _server_name(host)
    bundle = ca_bundle_in_use(ctx.settings)
    facts = TlsFacts(server_name=server_name, verified=False, ca_bundle=bundle)

    def result(status: Status, reason: Reason, detail: str, info: DialInfo, **extra: object) -> CheckResult:
        return make_result(
            spec,
            status,
            reason,
            detail,
            confidence=_confidence(reason),
            started_at=started,
            **info.result_fields(),
            tls=facts,
            **extra,
        )

    try:
        ssl_ctx = ctx.ssl_context(verify=True)
    except (OSError, ssl.SSLError) as exc:
        detail = f"The CA bundle {bundle} could not be loaded ({exc}); nothing can be verified against it."
        return result(Status.FAIL, Reason.TLS_UNTRUSTED, detail, DialInfo())

    try:
        sock, info = await dial(ctx, host, port, deadline, tls=True, allow_proxy=True)
    except DialFailed as exc:
        return result(Status.FAIL, exc.reason, exc.detail, exc.info)

    watch = Stopwatch()
    try:
        session = await _handshake(sock, server_name, ssl_ctx, deadline)
    except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
        info.phases_ms["tls_handshake"] = watch.ms()
        reason = classify_tls_error(exc)
        if not isinstance(exc, ssl.SSLCertVerificationError):
            where = where_to(info, endpoint(server_name, port))
            return result(Status.FAIL, reason, handshake_failure_detail(reason, exc, where, watch.ms() / 1000), info)
        facts.verify_error = exc.verify_message or str(exc)
        presented = await _fetch_presented(ctx, host, port, server_name, deadline)
        if presented is not None:
            _fill_facts(facts, presented, bundle)
            info.attempts.append("dialled again without verification to read the presented certificate")
        return result(Status.FAIL, reason, _verify_detail(reason, exc, host, presented), info)

    info.phases_ms["tls_handshake"] = watch.ms()
    facts.verified = True
    _fill_facts(facts, session, bundle)
    return result(Status.PASS, Reason.OK, _ok_detail(facts, session), info, latency_ms=total.ms())
