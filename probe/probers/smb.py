"""The smb prober: TCP to 445, then real SMB2 NEGOTIATEs, the exchange every SMB mount starts with.

Only NEGOTIATE is ever sent (probe.transport.smb2): no session setup, no credentials. That is
enough to tell an SMB2/3 server from a firewall or appliance that accepts TCP and then stays silent,
resets, or answers something else, and to learn the dialect, the cipher and signing algorithm the
server agrees to, and whether it requires signing. What it cannot show is anything the server
checks later: credentials, identity, and (on some servers) which ciphers a session may use; the
pass says so. SMB cannot cross an HTTP proxy, so the connection is always direct.

The first NEGOTIATE offers what the Linux CIFS client of Ubuntu 22.04 (kernel 5.15) offers, in its
order: AES-128-GCM, AES-256-GCM, AES-128-CCM (fs/cifs/smb2pdu.c ``build_encrypt_ctxt`` with
``enable_gcm_256``, on by default since Linux commit fee742b50289, 5.13).

The cipher a server picks from a list says what it prefers, not everything it accepts, so up to two
more NEGOTIATEs (new connections, the same deadline) ask about what the first answer left open:
AES-256-GCM alone, and the AES-128 ciphers alone. A server that refuses both AES-128 ciphers accepts
only AES-256; one that refuses everything the Linux client offers has no cipher in common with it.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

from probe.deadline import Deadline, Stopwatch
from probe.errors import Closed, DialFailed, NoCommonDialect, NotSmb, ProbeFailure, SmbFailure
from probe.facts import SmbCipherCheck, SmbFacts
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Connection, Phase, Recorder
from probe.transport.classify import classify_socket_error, is_reset
from probe.transport.context import ProbeContext
from probe.transport.dial import dial
from probe.transport.smb2 import (
    AES128_ONLY,
    AES256_ONLY,
    CIPHER_AES256_GCM,
    CIPHER_NONE,
    CIPHERS,
    DEFAULT_PORT,
    DIALECTS,
    LINUX_CIFS_CIPHERS,
    LINUX_CIFS_CLIENT,
    SIGNING_ALGORITHMS,
    SIGNING_REQUIRED,
    NegotiateAnswer,
    cipher_list,
    cipher_name,
    dialect_name,
    negotiate,
    preview,
)


async def _first_negotiate(sock: socket.socket, peer: str, deadline: Deadline) -> NegotiateAnswer:
    """The first NEGOTIATE; whatever comes back instead of an answer raises ProbeFailure, worded."""
    watch = Stopwatch()
    try:
        return await negotiate(sock, deadline, LINUX_CIFS_CIPHERS)
    except TimeoutError:
        waited = watch.ms() / 1000
        detail = f"{peer} accepted TCP but sent no SMB2 NEGOTIATE response within {waited:.1f} s."
        raise ProbeFailure(Reason.SMB_TIMEOUT, detail) from None
    except Closed as exc:
        if exc.received:
            detail = (
                f"{peer} sent {len(exc.received)} bytes ({preview(exc.received)}) but no complete "
                "SMB2 NEGOTIATE response, then closed the connection."
            )
        else:
            detail = f"{peer} accepted TCP, then closed the connection without answering SMB2 NEGOTIATE."
        raise ProbeFailure(exc.reason, detail) from None
    except NoCommonDialect as exc:
        detail = f"{peer} speaks SMB2 but answered NEGOTIATE with {exc}: it supports none of SMB 2.0.2 to 3.1.1."
        raise ProbeFailure(exc.reason, detail) from None
    except NotSmb as exc:
        conclusion = "" if exc.smb2 else ": not an SMB2/3 server"
        raise ProbeFailure(exc.reason, f"{peer} {exc}{conclusion}.") from None
    except OSError as exc:
        if is_reset(exc):
            raise ProbeFailure(Reason.SMB_RESET, f"{peer} reset the connection during SMB2 NEGOTIATE.") from None
        reason = classify_socket_error(exc)
        if reason is Reason.TCP_TIMEOUT:
            raise ProbeFailure(Reason.SMB_TIMEOUT, f"{peer} timed out during SMB2 NEGOTIATE: {exc}.") from None
        raise ProbeFailure(reason, f"{peer} failed during SMB2 NEGOTIATE: {exc}.") from None


def _facts(answer: NegotiateAnswer) -> SmbFacts:
    agreed = answer.agreed_cipher
    return SmbFacts(
        dialect=dialect_name(answer.dialect),
        dialect_revision=f"0x{answer.dialect:04X}",
        signing_required=bool(answer.security_mode & SIGNING_REQUIRED),
        server_guid=str(uuid.UUID(bytes_le=answer.server_guid)),
        ciphers_offered=[CIPHERS[c] for c in LINUX_CIFS_CIPHERS],
        cipher=None if agreed is None else cipher_name(agreed) if agreed != CIPHER_NONE else "none",
        signing_algorithm=(
            None
            if answer.signing_algorithm is None
            else SIGNING_ALGORITHMS.get(answer.signing_algorithm, f"0x{answer.signing_algorithm:04X}")
        ),
    )


def _unusable(answer: NegotiateAnswer, peer: str) -> str | None:
    """Why an answer that parsed cannot be used (something that was not offered), or None."""
    if answer.dialect not in DIALECTS:
        name = dialect_name(answer.dialect)
        return f"{peer} answered NEGOTIATE with {name}, which was not offered: not a usable SMB2/3 server."
    if answer.cipher is not None and answer.cipher not in (CIPHER_NONE, *LINUX_CIFS_CIPHERS):
        return f"{peer} chose {cipher_name(answer.cipher)}, which was not offered: not a usable SMB 3.1.1 server."
    return None


def _follow_ups(answer: NegotiateAnswer) -> list[tuple[int, ...]]:
    """What the first answer left open: whether AES-256-GCM alone is accepted (unless it was chosen), and
    whether the AES-128 ciphers are (unless one was chosen). Only SMB 3.1.1 negotiates a cipher."""
    if answer.dialect != 0x0311 or answer.cipher is None:
        return []
    asks: list[tuple[int, ...]] = []
    if answer.cipher != CIPHER_AES256_GCM:
        asks.append(AES256_ONLY)
    if answer.cipher not in AES128_ONLY:
        asks.append(AES128_ONLY)
    return asks


async def _ask(
    ctx: ProbeContext, deadline: Deadline, address: str, port: int, ciphers: tuple[int, ...]
) -> SmbCipherCheck:
    """A NEGOTIATE offering only ``ciphers`` on a new connection to the address that answered the first."""
    offered = [CIPHERS[c] for c in ciphers]
    try:
        sock = await dial(ctx, deadline, Connection(), address, port, tls=False, allow_proxy=False)
    except DialFailed as exc:
        return SmbCipherCheck(offered=offered, error=exc.reason.code)
    try:
        answer = await negotiate(sock, deadline, ciphers)
    except (TimeoutError, SmbFailure, OSError) as exc:
        why = "timeout" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        return SmbCipherCheck(offered=offered, error=why)
    finally:
        sock.close()
    if answer.cipher is None:
        return SmbCipherCheck(offered=offered, error="the answer named no cipher")
    agreed = "none" if answer.cipher == CIPHER_NONE else cipher_name(answer.cipher)
    return SmbCipherCheck(offered=offered, agreed=agreed)


def _check_phrase(check: SmbCipherCheck) -> str:
    asked = " or ".join(check.offered) if len(check.offered) > 1 else check.offered[0]
    if check.error:
        return f"offered {asked} alone, it gave no answer ({check.error})"
    if check.agreed == "none":
        return f"it refuses {asked}"
    return f"it accepts {check.agreed}"


def pass_detail(facts: SmbFacts, negotiate_ms: float) -> str:
    """The honest sentence for a NEGOTIATE that worked: what was agreed, and what it does not prove."""
    signing = "signing required" if facts.signing_required else "signing not required"
    parts = [signing]
    if facts.signing_algorithm:
        parts.append(f"signing with {facts.signing_algorithm}")
    if facts.dialect == "SMB 3.1.1":
        if facts.cipher:
            parts.append(f"cipher {facts.cipher} for what {LINUX_CIFS_CLIENT} offers")
        else:
            parts.append("the server named no cipher: it offers no encryption")
    elif facts.cipher:
        parts.append(f"encryption with {facts.cipher}")
    detail = f"{facts.dialect} negotiated ({'; '.join(parts)}) in {negotiate_ms:g} ms"
    if facts.cipher_checks:
        detail += "; asked again, " + "; ".join(_check_phrase(c) for c in facts.cipher_checks)
    return detail + ". Mounting also needs the share's credentials or identity, which this check does not test."


async def probe_smb(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    """Does host:445 answer an SMB2 NEGOTIATE, with which dialect, cipher and signing? Never through a proxy."""
    host = spec.target.host
    port = spec.target.port or DEFAULT_PORT
    try:
        sock = await dial(ctx, rec.deadline, rec.conn, host, port, tls=False, allow_proxy=False)
    except DialFailed as exc:
        return rec.failed(exc)

    peer = rec.conn.peer or f"{host}:{port}"
    watch = Stopwatch()
    try:
        answer = await _first_negotiate(sock, peer, rec.deadline)
    except ProbeFailure as exc:
        rec.conn.phases[Phase.NEGOTIATE] = watch.ms()
        return rec.failed(exc)
    finally:
        sock.close()
    negotiate_ms = rec.conn.phases[Phase.NEGOTIATE] = watch.ms()

    facts = _facts(answer)
    unusable = _unusable(answer, peer)
    if unusable is not None:
        return rec.result(Reason.SMB_NOT_SMB, unusable, smb=facts)
    asks = _follow_ups(answer)
    if asks:
        address = peer.rsplit(":", 1)[0].strip("[]")
        watch = Stopwatch()
        facts.cipher_checks = list(await asyncio.gather(*(_ask(ctx, rec.deadline, address, port, c) for c in asks)))
        rec.conn.phases[Phase.CIPHER_CHECKS] = watch.ms()
    if answer.dialect == 0x0311 and answer.cipher == CIPHER_NONE:
        detail = (
            f"{facts.dialect} negotiated, but {peer} has no cipher in common with what {LINUX_CIFS_CLIENT} offers"
            f" ({cipher_list(LINUX_CIFS_CIPHERS)}): it answered cipher 0, so no encrypted session can be set up."
        )
        if facts.cipher_checks:
            detail += " Asked again, " + "; ".join(_check_phrase(c) for c in facts.cipher_checks) + "."
        return rec.result(Reason.SMB_NO_COMMON_CIPHER, detail, smb=facts)
    return rec.result(Reason.OK, pass_detail(facts, negotiate_ms), latency_ms=negotiate_ms, smb=facts)
