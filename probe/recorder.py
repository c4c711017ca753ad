"""One check's record: its deadline, the phases it timed, what its connection learned, and the one
place where its CheckResult is assembled.

The runner makes a Recorder per check (one Deadline, made once) and hands it to the prober, as
blackbox_exporter's handler hands each prober its context and registry. Status and confidence
follow from the reason (``probe.reasons``); a prober only says what it saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from probe.deadline import Deadline, Stopwatch
from probe.facts import DnsFacts, HttpFacts, ProxyFacts, Route, SmbFacts, TlsFacts, UdpFacts
from probe.model import CheckResult, CheckSpec
from probe.reasons import ReasonCode

if TYPE_CHECKING:
    from probe.errors import ProbeFailure


class Phase(str, Enum):
    """The timed steps of a check: the keys of ``phases_ms``, one name per step whatever the prober."""

    RESOLVE = "resolve"
    PROXY_CONNECT = "proxy_connect"
    CONNECT = "connect"
    TLS = "tls_handshake"
    # The HTTP request and its answer (http); the websocket upgrade and its answer.
    HTTP = "http"
    UPGRADE = "upgrade"
    # SMB2 NEGOTIATE, and the follow-up NEGOTIATEs that ask about single ciphers.
    NEGOTIATE = "negotiate"
    CIPHER_CHECKS = "cipher_checks"
    # The datagrams of a UDP probe and the wait for an answer.
    UDP = "udp"


@dataclass
class Connection:
    """What getting a connection learned, whether it succeeded or not (filled by probe.transport.dial)."""

    route: Route | None = None
    addresses: list[str] = field(default_factory=list)
    peer: str | None = None
    attempts: list[str] = field(default_factory=list)
    phases: dict[Phase, float] = field(default_factory=dict)
    # The kernel's RTT of the connection (to the proxy when proxied).
    rtt_ms: float | None = None
    dns: DnsFacts | None = None
    proxy: ProxyFacts | None = None


class Recorder:
    """Everything one check records, and the CheckResult made from it."""

    def __init__(self, spec: CheckSpec, deadline: Deadline) -> None:
        self.spec = spec
        self.deadline = deadline
        self.started_at = datetime.now(timezone.utc)
        self._clock = Stopwatch()
        self.conn = Connection()

    @classmethod
    def start(cls, spec: CheckSpec, timeout: float) -> Recorder:
        """A record for ``spec`` whose deadline is ``timeout`` seconds from now (what the runner does)."""
        return cls(spec, Deadline.after(timeout))

    def ms(self, phase: Phase) -> float | None:
        """How long ``phase`` took, if it was timed."""
        return self.conn.phases.get(phase)

    def elapsed_ms(self) -> float:
        """Milliseconds since the check started."""
        return self._clock.ms()

    def result(
        self,
        reason: ReasonCode,
        detail: str,
        *,
        latency_ms: float | None = None,
        dns: DnsFacts | None = None,
        tls: TlsFacts | None = None,
        http: HttpFacts | None = None,
        smb: SmbFacts | None = None,
        udp: UdpFacts | None = None,
    ) -> CheckResult:
        """The check's result: ``reason`` decides its status and confidence."""
        conn = self.conn
        return CheckResult(
            id=self.spec.id,
            target=self.spec.target,
            status=reason.status,
            reason=reason,
            detail=detail,
            confidence=reason.confidence,
            labels=dict(self.spec.labels),
            required=self.spec.required,
            started_at=self.started_at,
            latency_ms=latency_ms,
            rtt_ms=conn.rtt_ms,
            addresses=list(conn.addresses),
            peer=conn.peer,
            route=conn.route,
            phases_ms={phase.value: ms for phase, ms in conn.phases.items()},
            attempts=list(conn.attempts),
            dns=dns if dns is not None else conn.dns,
            tls=tls,
            http=http,
            smb=smb,
            udp=udp,
            proxy=conn.proxy,
        )

    def failed(self, exc: ProbeFailure, *, tls: TlsFacts | None = None, http: HttpFacts | None = None) -> CheckResult:
        """The result of a check that ``exc`` stopped."""
        return self.result(exc.reason, exc.detail, tls=tls, http=http)
