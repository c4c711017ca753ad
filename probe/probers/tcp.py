"""The tcp prober: can a TCP connection to host:port be opened directly (never through a proxy)?

A refusal is proof that the path works and nothing listens; silence only suggests a drop, so a
timeout is reported as "likely" rather than "confirmed" (``Reason.TCP_TIMEOUT``).
"""

from __future__ import annotations

from probe.errors import DialFailed
from probe.model import CheckResult, CheckSpec
from probe.reasons import Reason
from probe.recorder import Phase, Recorder
from probe.transport.context import ProbeContext
from probe.transport.dial import dial


async def probe_tcp(spec: CheckSpec, ctx: ProbeContext, rec: Recorder) -> CheckResult:
    host, port = spec.target.host, spec.target.port
    if port is None:
        return rec.result(Reason.SKIPPED_MISSING_INPUT, f"No port given for the TCP check of {host}.")
    try:
        sock = await dial(ctx, rec.deadline, rec.conn, host, port, tls=False, allow_proxy=False)
    except DialFailed as exc:
        return rec.failed(exc)
    sock.close()
    connect_ms = rec.ms(Phase.CONNECT)
    rtt = f" (kernel RTT {rec.conn.rtt_ms:g} ms)" if rec.conn.rtt_ms is not None else ""
    return rec.result(Reason.OK, f"Connected to {rec.conn.peer} in {connect_ms:g} ms{rtt}.", latency_ms=connect_ms)
