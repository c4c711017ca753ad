"""The http prober: one HTTP/1.1 GET (probe.transport.exchange), and what came back.

Any HTTP answer passes: the question is whether the path to the service works, and a 401, 403
or 404 from the service proves it does. The status, Server and Via are recorded, because a
403 from "Server: contoso-gw" is a different story from a 403 from the service. So are the start
of the body (bounded: error codes live there) and any response header the check asks to keep, so
that a layer which knows the service can read its answer; this module reads none of it.

Through a proxy, plain http:// is tunnelled with CONNECT as https:// is, so what the proxy says
(proxy_*) never mixes with what the service says; proxies that allow CONNECT only to 443 reject
such tunnels, and the detail says so.
"""

from __future__ import annotations

from probe.errors import HttpFailed
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Recorder
from probe.transport.context import ProbeContext
from probe.transport.exchange import exchange, route_phrase
from probe.transport.http1 import BODY_LIMIT, body_text, request_target


async def probe_http(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    """GET the target path over HTTP/1.1 (HTTPS when ``spec.tls``) with the spec's extra request headers;
    any HTTP answer passes. The answer's status, kept headers and the start of its body are recorded."""
    host, tls = spec.target.host, spec.tls
    port = spec.target.port or (443 if tls else 80)
    target, headers = request_target(spec.target.path), list(spec.request_headers.items())
    try:
        answer = await exchange(
            ctx, rec.deadline, rec.conn, host, port, target=target, tls=tls, headers=headers, body_limit=BODY_LIMIT
        )
    except HttpFailed as exc:
        detail = exc.detail
        if exc.reason is Reason.PROXY_CONNECT_REJECTED and not tls:
            detail += " Many proxies allow CONNECT only to port 443; plain-HTTP clients send them forward requests."
        return rec.result(exc.reason, detail, tls=exc.tls)
    head = answer.head
    facts = head.facts(keep=spec.keep_headers)
    if answer.body:
        facts.body, facts.body_truncated = body_text(answer.body, head), answer.body_truncated
    answered = f" from {facts.server}" if facts.server else ""
    via = route_phrase(rec.conn)
    detail = f"HTTP {head.status} {head.reason}".rstrip() + f"{answered} for GET {answer.url} ({via})."
    return rec.result(Reason.OK, detail, tls=answer.tls, http=facts, latency_ms=rec.elapsed_ms())
