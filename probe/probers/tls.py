"""The tls prober: who answered, with what certificate, and whether this machine trusts it.

When verification fails the peer is dialled again without verification, only to read the
certificate it presents: "issued by 'Contoso Inspection CA'" tells a TLS-inspecting firewall
apart from an expired or misnamed certificate, which a bare "verify failed" cannot. The handshake
itself is probe.transport.handshake's.
"""

from __future__ import annotations

import ssl

from probe.deadline import Stopwatch
from probe.errors import DialFailed
from probe.facts import TlsFacts
from probe.importer import import_in_thread, preload
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Connection, Phase, Recorder
from probe.transport.classify import classify_tls_error
from probe.transport.connect import endpoint
from probe.transport.context import ProbeContext
from probe.transport.dial import dial
from probe.transport.handshake import Session, handshake, handshake_failure_detail, where_to
from probe.transport.tlsconfig import ca_bundle_in_use

# Describes certificates with cryptography (~25 ms to import): loaded in the import thread while the
# first handshake runs, so that probe.registry, which imports every prober, stays light.
CERTS = "probe.probers.tlscerts"


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
    preload([CERTS])
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
        await import_in_thread(CERTS)
        from probe.probers import tlscerts  # noqa: PLC0415 - imported just above, in the import thread

        chain = tlscerts.Chain.of(presented)
        if presented is not None:
            tlscerts.fill_facts(facts, presented, chain, bundle)
            rec.conn.attempts.append("dialled again without verification to read the presented certificate")
        return rec.result(reason, tlscerts.verify_detail(reason, exc, host, chain), tls=facts)

    rec.conn.phases[Phase.TLS] = session.handshake_ms if session.handshake_ms is not None else watch.ms()
    facts.verified = True
    latency = rec.elapsed_ms()  # the probe's own time, not a wait for the module below
    await import_in_thread(CERTS)
    from probe.probers import tlscerts  # noqa: PLC0415 - imported just above, in the import thread

    chain = tlscerts.Chain.of(session)
    tlscerts.fill_facts(facts, session, chain, bundle)
    return rec.result(Reason.OK, tlscerts.ok_detail(facts, chain), tls=facts, latency_ms=latency)
