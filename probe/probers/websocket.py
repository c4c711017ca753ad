"""The websocket prober: a real RFC 6455 opening handshake, and what the answer says about the path.

A 101 with the right Sec-WebSocket-Accept proves the path. Anything else is read for who answered,
because a refusal by the service and a refusal by a box in between need different fixes:

    407                              an intercepting proxy wants credentials    ws_proxy_auth_required
    Via / a web proxy's Server       a middlebox answered for the service       ws_intercepted
    2xx                              the Upgrade header was dropped or ignored  ws_upgrade_ignored
    401, 403, redirect elsewhere     the service wants a login: the path works  ws_auth_required
      ... but a plain GET got a different answer: nothing decides             ws_inconclusive
    reset or close after Upgrade:    something reacted to the upgrade           ws_reset
    anything else (404, 426, 5xx)                                               ws_upgrade_rejected

Sources: RFC 6455 §4.1-4.2 (the handshake, Sec-WebSocket-Accept); RFC 9110 §7.6.3 (a proxy MUST add
Via to each message it forwards) and §15.5.8 (407); Squid answers with "Server: squid/<v>" and
X-Squid-Error, and by default drops the Upgrade header ("Upgrade header dropped, effectively blocking
an upgrade attempt": squid-cache.org/Doc/config/http_upgrade_request_protocols), so the origin then
answers as to a plain GET; a Zscaler block page is "403, Content-Type text/html, Server: Zscaler/5.6"
(github.com/Ekultek/WhatWaf/issues/178); MDN "Upgrade": a server that ignores Upgrade "should respond
as though the Upgrade header had not been sent (for example, with a 200 OK)".

To tell an answer aimed at the upgrade from one given to every request, a non-101 answer is followed
by a plain GET of the same URL (the differential probe); both answers are recorded.

Connections go through probe.transport.exchange (probe.transport.dial underneath), so DNS, TCP,
proxy and TLS failures are classified exactly as the tcp, tls and http probers classify them, and
there is no second copy of proxy handling here; through a proxy, ws:// is tunnelled with CONNECT as
wss:// is, like the http prober's http://.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from urllib.parse import urlsplit

from probe.errors import HttpFailed
from probe.facts import HttpFacts
from probe.importer import import_in_thread
from probe.model import CheckResult, CheckSpec
from probe.probers.tls import CERTS
from probe.reasons import Reason
from probe.recorder import Connection, Phase, Recorder
from probe.transport.context import ProbeContext
from probe.transport.exchange import exchange, route_phrase
from probe.transport.http1 import HttpHead, answered_by, auth_schemes, host_header, request_target

# RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing.
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# A masked Close frame with no payload (RFC 6455 §5.5.1): said after a 101 before hanging up.
_CLOSE_FRAME = b"\x88\x80" + b"\x00\x00\x00\x00"
# Web proxies and secure web gateways naming themselves in Server when they answer for the origin:
# Squid's own pages, Zscaler's block page (WhatWaf#178); BlueCoat/ProxySG (docs/sources.md, "The
# compute-instance front end and the websocket upgrade", cites where each is named).
_PROXY_SERVER = re.compile(r"squid|zscaler|bluecoat|blue coat|proxysg", re.IGNORECASE)
# Response headers only proxies write (Squid's error pages).
_PROXY_HEADERS = ("x-squid-error",)
_REDIRECTS = (301, 302, 303, 307, 308)


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode("ascii")).digest()).decode("ascii")


def upgrade_headers(key: str) -> list[tuple[str, str]]:
    """The RFC 6455 §4.1 opening-handshake headers."""
    return [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key),
    ]


def _answered_by(facts: HttpFacts) -> str:
    return answered_by(facts.server, facts.via)


def _status(head: HttpHead | HttpFacts) -> str:
    status = head.status
    phrase = head.reason if isinstance(head, HttpHead) else head.reason_phrase
    return f"HTTP {status} {phrase or ''}".rstrip()


def _location_host(facts: HttpFacts) -> str | None:
    location = facts.headers.get("location")
    if not location:
        return None
    try:
        return (urlsplit(location).hostname or "").lower() or None
    except ValueError:
        return None


def redirects_elsewhere(facts: HttpFacts, host: str) -> bool:
    """A redirect to another site (a login page), not to another path of the same host."""
    target = _location_host(facts)
    return facts.status in _REDIRECTS and target is not None and target != host.strip("[]").rstrip(".").lower()


def demands_auth(facts: HttpFacts, host: str) -> bool:
    """What an authenticating service answers an anonymous request: 401, 403, or a redirect to a login site."""
    return facts.status in (401, 403) or redirects_elsewhere(facts, host)


def middlebox_signs(facts: HttpFacts) -> list[str]:
    """The evidence in an answer that a box in between wrote it, as short phrases."""
    signs = []
    if facts.via:
        signs.append(f"Via: {facts.via}")
    if facts.server and _PROXY_SERVER.search(facts.server):
        signs.append(f"Server: {facts.server}")
    signs += [f"{h}: {facts.headers[h]}" for h in _PROXY_HEADERS if h in facts.headers]
    return signs


def same_answer(a: HttpFacts, b: HttpFacts) -> bool:
    """The two answers are the same kind: same status, and a redirect to the same site."""
    return a.status == b.status and _location_host(a) == _location_host(b)


async def _plain_get(
    ctx: ProbeContext, rec: Recorder, host: str, port: int, target: str, *, tls: bool
) -> tuple[HttpFacts | None, str | None]:
    """The differential probe: the same URL without Upgrade. (answer, None) or (None, why there is none)."""
    # Its own connection: only its answer joins the check's record.
    conn = Connection()
    try:
        answer = await exchange(ctx, rec.deadline, conn, host, port, target=target, tls=tls)
    except HttpFailed as exc:
        return None, f"{exc.reason.value}: {exc.detail}"
    return answer.head.facts(), None


def _judge(facts: HttpFacts, host: str, url: str, where: str) -> tuple[Reason, str]:
    """Classify a non-101 answer to the upgrade, given the plain GET recorded in ``facts.plain_get``."""
    answer = _status(facts) + _answered_by(facts)
    plain = facts.plain_get
    if plain is not None:
        compared = f"a plain GET of the same URL got {_status(plain)}{_answered_by(plain)}"
    else:
        compared = f"a plain GET of the same URL got no answer ({facts.plain_get_error})"
    where_url = f"{url} ({where})"
    if facts.status == 407:
        schemes = auth_schemes([facts.headers.get("proxy-authenticate", "")])
        detail = f"An intercepting proxy answered the upgrade to {where_url} with {answer}: it wants credentials"
        return Reason.WS_PROXY_AUTH_REQUIRED, f"{detail} (it offers: {schemes})."
    signs = middlebox_signs(facts)
    if signs:
        return Reason.WS_INTERCEPTED, (
            f"A middlebox stands between this machine and {url}: the answer to the upgrade ({where}),"
            f" {_status(facts)}, carries {'; '.join(signs)}; {compared}."
        )
    if facts.status is not None and 200 <= facts.status < 300:
        return Reason.WS_UPGRADE_IGNORED, (
            f"The upgrade to {where_url} got {answer}, as a plain GET would, instead of 101: the Upgrade header was"
            f" removed or ignored on the way; {compared}."
        )
    if demands_auth(facts, host):
        to = f" to {facts.headers['location']}" if facts.status in _REDIRECTS else ""
        if plain is not None and same_answer(facts, plain):
            return Reason.WS_AUTH_REQUIRED, (
                f"Reached, authentication required: the upgrade to {where_url} got {answer}{to}, the same answer"
                " a plain GET gets. The path works; only credentials can get a 101."
            )
        return Reason.WS_INCONCLUSIVE, (
            f"The upgrade to {where_url} got {answer}{to}, but {compared}: the refusal may come from the service"
            " or from something in between, and nothing in the answers says which."
        )
    return Reason.WS_UPGRADE_REJECTED, f"The upgrade to {where_url} got {answer} instead of 101; {compared}."


async def probe_websocket(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    """Open ``wss://host:port/path`` (``ws://`` when not ``spec.tls``) with an RFC 6455 handshake."""
    host, tls = spec.target.host, spec.tls
    port = spec.target.port or (443 if tls else 80)
    target = request_target(spec.target.path)
    url = f"{'wss' if tls else 'ws'}://{host_header(host, port, tls=tls)}{target}"

    key = base64.b64encode(os.urandom(16)).decode("ascii")
    # The session's own certificate goes into the result: who the TLS ends at tells whether anything
    # in between could have read the upgrade (the knowledge layer's judgement). Loaded off the loop.
    describe = (await import_in_thread(CERTS)).leaf_info if tls else None
    try:
        answer = await exchange(
            ctx,
            rec.deadline,
            rec.conn,
            host,
            port,
            target=target,
            tls=tls,
            headers=upgrade_headers(key),
            phase=Phase.UPGRADE,
            farewell=_CLOSE_FRAME,
            describe=describe,
        )
    except HttpFailed as exc:
        if exc.stage != "request":
            # DNS, TCP, proxy or TLS: the same reason and sentence as the other probers give.
            return rec.failed(exc, tls=exc.tls)
        where = f"{url} ({route_phrase(rec.conn)})"
        if exc.reason is Reason.HTTP_TIMEOUT:
            return rec.result(Reason.WS_TIMEOUT, f"No answer to the upgrade request at {where} in time.")
        if not exc.closed:
            return rec.failed(exc, tls=exc.tls)
        plain, error = await _plain_get(ctx, rec, host, port, target, tls=tls)
        if plain is not None:
            why = f"A plain GET of the same URL got {_status(plain)}, so whatever closed it reacted to the upgrade."
        else:
            why = f"A plain GET of the same URL got no answer either ({error})."
        detail = f"The connection to {where} was closed right after the upgrade request was sent. {why}"
        http = HttpFacts(plain_get=plain, plain_get_error=error)
        return rec.result(Reason.WS_RESET, detail, tls=exc.tls, http=http)

    head = answer.head
    where = route_phrase(rec.conn)
    if head.status == 101:
        facts = head.facts(upgraded=True)
        upgrade = (head.get("upgrade") or "").lower()
        accept = head.get("sec-websocket-accept")
        if upgrade == "websocket" and accept == _accept_key(key):
            detail = f"Websocket upgrade accepted (101) by {url} ({where})."
            return rec.result(Reason.OK, detail, tls=answer.tls, http=facts, latency_ms=rec.elapsed_ms())
        facts.upgraded = False
        detail = (
            f"{url} ({where}) answered 101 but the handshake is invalid (Upgrade: {upgrade or 'none'},"
            f" Sec-WebSocket-Accept {'wrong' if accept else 'missing'})."
        )
        return rec.result(Reason.WS_UPGRADE_REJECTED, detail, tls=answer.tls, http=facts)

    facts = head.facts(upgraded=False)
    facts.plain_get, facts.plain_get_error = await _plain_get(ctx, rec, host, port, target, tls=tls)
    reason, detail = _judge(facts, host, url, where)
    latency = rec.elapsed_ms() if reason is Reason.WS_AUTH_REQUIRED else None
    return rec.result(reason, detail, tls=answer.tls, http=facts, latency_ms=latency)
