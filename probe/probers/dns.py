"""The dns prober: does the target's name resolve, to what, via which server.

With ``spec.dns_servers`` it asks those servers directly (no hosts file, no sharing), as a
reference resolver must be asked; otherwise it shares the run's one lookup of the name.
"""

from __future__ import annotations

from probe.deadline import Stopwatch
from probe.facts import DnsFacts
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Recorder
from probe.transport.context import ProbeContext
from probe.transport.lookup import lookup


async def probe_dns(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    watch = Stopwatch()
    host = spec.target.host
    if spec.dns_servers:
        pending = lookup(host, ctx.settings, rec.deadline, servers=spec.dns_servers, use_hosts=False)
    else:
        pending = ctx.resolver.resolve(host)
    try:
        resolution = await rec.deadline.within(pending)
    except TimeoutError:
        detail = f"resolving {host} did not finish within {ctx.settings.timeout:g} s."
        return rec.result(Reason.DNS_TIMEOUT, detail, latency_ms=watch.ms(), dns=DnsFacts(query=host))
    rec.conn.addresses = resolution.addresses
    latency = resolution.latency_ms if resolution.latency_ms is not None else watch.ms()
    return rec.result(resolution.reason, resolution.detail, latency_ms=latency, dns=resolution.facts)
