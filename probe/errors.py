"""The exceptions amlprobe raises, as two small trees.

Errors that reach the user are bad input: printed as one line on stderr, exit code 3.

    UsageError                  a flag, config, catalog, target or host name is unusable
      (TargetError, InputError, CatalogError, DiffInputError: where the input is read)

Network faults are never exceptions to the user: they are check results. Inside a probe they travel
as a ProbeFailure, whose ``reason`` and ``detail`` are what the check reports when the failure stops
it (``Recorder.failed``); the subclasses carry the evidence their layer gathered on the way.

    ProbeFailure                reason + detail
      DialFailed                no connection: dns_*, tcp_* or proxy_* (probe.transport.dial)
        ConnectFailed           every address failed (tcp_*): the attempts, how long it took
        ProxyFailed             the proxy or its CONNECT tunnel failed (proxy_*): the proxy's facts
      HttpFailed                an HTTP exchange got no answer: where it stopped, TLS facts so far
      BadHttpResponse           what came back is not an HTTP/1.x response head (http_bad_response)
      SmbFailure                an SMB2 NEGOTIATE got no usable answer
        NotSmb                  what answered does not speak SMB2/3, or garbled it (smb_not_smb)
        Closed                  the peer closed before a whole message arrived (smb_not_smb)
        NoCommonDialect         an SMB2 server supports none of the dialects offered

Exceptions from sockets and TLS become reasons at each boundary through one mapping,
``probe.transport.classify``. Running out of file descriptors is neither: it is back-pressure for
the runner (``probe.descriptors.DescriptorsExhausted``), never a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from probe.model import ProxyFacts, TlsFacts
    from probe.reasons import Reason, ReasonCode


def _reason(name: str) -> Reason:
    """The engine's code ``name``, for the failures that always report the same one."""
    # The command line imports this module (UsageError) before anything else; the reason codes
    # (~2.5 ms to build) load only when a probe fails.
    from probe.reasons import Reason  # noqa: PLC0415 - lazy for start-up: `amlprobe --version` imports errors

    return Reason[name]


class UsageError(Exception):
    """Bad input (flag, config, catalog, host name): printed as one line on stderr, exit code 3."""


class ProbeFailure(Exception):
    """A probe step failed; ``reason`` and ``detail`` are what the check reports if this ends it."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class DialFailed(ProbeFailure):
    """No connection to the target: the name did not resolve, no address answered, or the proxy failed."""


class ConnectFailed(DialFailed):
    def __init__(self, reason: ReasonCode, detail: str, attempts: list[str], elapsed_ms: float) -> None:
        super().__init__(reason, detail)
        self.attempts = attempts
        self.elapsed_ms = elapsed_ms


class ProxyFailed(DialFailed):
    def __init__(self, reason: ReasonCode, detail: str, facts: ProxyFacts, attempts: list[str]) -> None:
        super().__init__(reason, detail)
        self.facts = facts
        self.attempts = attempts


Stage = Literal["connect", "tls", "request"]


class HttpFailed(ProbeFailure):
    """An HTTP exchange got no answer. ``stage``: where it stopped (``request`` = after the request was sent);
    ``closed`` says the peer closed or reset the connection instead of answering."""

    def __init__(
        self, reason: ReasonCode, detail: str, tls: TlsFacts | None, stage: Stage, *, closed: bool = False
    ) -> None:
        super().__init__(reason, detail)
        self.tls = tls
        self.stage = stage
        self.closed = closed


class BadHttpResponse(ProbeFailure):
    """What came back is not an HTTP/1.x response head; the message says how."""

    def __init__(self, message: str) -> None:
        super().__init__(_reason("HTTP_BAD_RESPONSE"), message)


class SmbFailure(ProbeFailure):
    """An SMB2 NEGOTIATE got no usable answer; the message says what came back instead."""


class NotSmb(SmbFailure):
    """What answered is not a usable SMB2 NEGOTIATE response.

    ``smb2`` marks a peer that does speak SMB2 but refused or garbled the negotiation.
    """

    def __init__(self, message: str, *, smb2: bool = False) -> None:
        super().__init__(_reason("SMB_NOT_SMB"), message)
        self.smb2 = smb2


class Closed(SmbFailure):
    """The peer closed the connection after ``received`` bytes, before a whole message arrived."""

    def __init__(self, received: bytes) -> None:
        super().__init__(_reason("SMB_NOT_SMB"), f"closed after {len(received)} bytes")
        self.received = received


class NoCommonDialect(SmbFailure):
    """The server speaks SMB2 and answered that it supports none of the offered dialects (an NT status)."""

    def __init__(self, status: int, status_text: str) -> None:
        super().__init__(_reason("SMB_NO_COMMON_DIALECT"), status_text)
        self.status = status
