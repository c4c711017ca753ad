"""The stable vocabulary of outcomes: a check's status, confidence and reason code; a finding's severity;
the run's overall status.

A reason names the layer that failed and what it saw there. Codes are snake_case and a published
contract (docs/report-contract.md): monitoring, the diagnosis rules and users' scripts match on
them, so a code is renamed or removed only with a new major schema version, and a retired code
stays readable for one.

Each code carries its own definition, as dnspython's exceptions do: its meaning, and traits
(``Trait``) from which its status and confidence follow, in nmap's spirit: a refusal is proof,
silence is not. The failure sets below and the docs' reason-code table are derived from the members.

    ok
    dns_*        the name did not resolve
    tcp_*        the TCP connection was not established or was torn down
    tls_*        TCP worked; the TLS handshake or certificate verification did not
    ws_*         TLS worked; the websocket upgrade did not
    http_*       an HTTP exchange got no usable answer
    smb_*        TCP 445 worked; SMB2 NEGOTIATE did not
    udp_*        the nmap port state of a UDP probe
    proxy_*      the HTTP proxy in the path refused or rejected the tunnel
    run-level    skipped, interrupted, deadline, internal errors

``ReasonCode`` is the base of every code a check result may carry. The engine's codes are
``Reason``; a knowledge layer that judges results against expectations (``checks``) adds its own
family of codes by subclassing ``ReasonCode`` (``checks.verdicts.Verdict``), and the report model
accepts them all. The engine never produces another layer's codes.
"""

from __future__ import annotations

from enum import Enum, Flag, auto
from typing import Any

from pydantic_core import core_schema


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Confidence(str, Enum):
    """How sure the result is, in nmap's spirit: a refusal is proof, silence is not."""

    CONFIRMED = "confirmed"
    LIKELY = "likely"
    UNCONFIRMED = "unconfirmed"


class Severity(str, Enum):
    """How much a finding matters."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class OverallStatus(str, Enum):
    """The run's verdict (probe.model.overall_status), which decides the exit code."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Trait(Flag):
    """What a code says beyond its meaning. Without traits a code is a confirmed failure."""

    NONE = 0
    # The evidence is silence (no answer in time): it suggests a drop but proves nothing. Likely.
    SILENT = auto()
    # Concluded from evidence rather than seen directly. Likely.
    INFERRED = auto()
    # The evidence cannot decide. Unconfirmed.
    UNDECIDED = auto()
    # The path works: pass.
    PASSES = auto()
    # Neither proven nor disproven: warn.
    WARNS = auto()
    # Not probed, or not finished: skip.
    SKIPS = auto()
    # Never produced any more; still read in reports of earlier schema versions (see the contract).
    RETIRED = auto()


SILENT, INFERRED, UNDECIDED = Trait.SILENT, Trait.INFERRED, Trait.UNDECIDED
PASSES, WARNS, SKIPS, RETIRED = Trait.PASSES, Trait.WARNS, Trait.SKIPS, Trait.RETIRED

# Code prefix -> the layer it names (``ws`` is the websocket layer).
_LAYERS = {
    "dns": "dns",
    "tcp": "tcp",
    "tls": "tls",
    "ws": "websocket",
    "http": "http",
    "smb": "smb",
    "udp": "udp",
    "proxy": "proxy",
}


class ReasonCode(str, Enum):
    """Base of every reason code: ``Reason`` (the engine's) and the families knowledge layers add."""

    _value_: str
    meaning: str
    traits: Trait

    def __new__(cls, value: str, meaning: str = "", traits: Trait = Trait.NONE) -> ReasonCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.traits = traits
        return member

    @property
    def code(self) -> str:
        return self._value_

    @property
    def layer(self) -> str:
        """The layer the code is about: dns, tcp, tls, websocket, http, smb, udp, proxy; "run" otherwise."""
        return _LAYERS.get(self._value_.split("_", 1)[0], "run")

    @property
    def silent(self) -> bool:
        return Trait.SILENT in self.traits

    @property
    def retired(self) -> bool:
        return Trait.RETIRED in self.traits

    @property
    def status(self) -> Status:
        if Trait.PASSES in self.traits:
            return Status.PASS
        if Trait.WARNS in self.traits:
            return Status.WARN
        if Trait.SKIPS in self.traits:
            return Status.SKIP
        return Status.FAIL

    @property
    def confidence(self) -> Confidence:
        if Trait.UNDECIDED in self.traits:
            return Confidence.UNCONFIRMED
        if self.traits & (Trait.SILENT | Trait.INFERRED):
            return Confidence.LIKELY
        return Confidence.CONFIRMED

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A report field typed ``ReasonCode`` accepts any registered family's code (see ``parse_code``)."""
        return core_schema.no_info_plain_validator_function(
            parse_code,
            ref="Reason",
            serialization=core_schema.plain_serializer_function_ser_schema(lambda c: c.code, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        # Built when the schema is asked for: every family imported by then is listed.
        return {"title": "Reason", "type": "string", "enum": [c.code for c in all_codes()]}


def families() -> list[type[ReasonCode]]:
    """Every family of codes defined so far: ``Reason`` first, then the knowledge layers' in import order."""
    found: list[type[ReasonCode]] = []
    todo = list(ReasonCode.__subclasses__())
    while todo:
        family = todo.pop(0)
        found.append(family)
        todo.extend(family.__subclasses__())
    return found


def all_codes() -> list[ReasonCode]:
    return [code for family in families() for code in family]


def parse_code(value: object) -> ReasonCode:
    """The code named ``value`` in any family; ValueError when no family defines it."""
    if isinstance(value, ReasonCode):
        return value
    if isinstance(value, str):
        for family in families():
            found = family._value2member_map_.get(value)
            if found is not None:
                return found  # type: ignore[return-value]
    raise ValueError(f"unknown reason code {value!r}")


class Reason(ReasonCode):
    OK = "ok", "The check passed.", PASSES

    DNS_NXDOMAIN = "dns_nxdomain", "The resolver answered that the name does not exist (NXDOMAIN)."
    DNS_SERVFAIL = "dns_servfail", "The resolver failed to answer (SERVFAIL): often a broken forwarder."
    DNS_REFUSED = "dns_refused", "The resolver refused the query (REFUSED)."
    DNS_TIMEOUT = "dns_timeout", "No resolver answered within the timeout.", SILENT
    DNS_NO_ANSWER = "dns_no_answer", "The name exists but has no A/AAAA record (NOERROR, no data)."
    DNS_NO_SERVERS = "dns_no_servers", "No DNS server is configured."
    DNS_ERROR = "dns_error", "The DNS exchange failed in another way (malformed answer, socket error)."
    DNS_HOSTS_OVERRIDE = (
        "dns_hosts_override",
        'Retired in schema 1.5, never produced: a name the hosts file answers passes, with dns.source "hosts".',
        RETIRED,
    )

    TCP_REFUSED = "tcp_refused", "The peer (or a firewall acting for it) answered with a TCP reset: nothing listens."
    TCP_TIMEOUT = "tcp_timeout", "No answer to the TCP SYN: dropped silently by a firewall, NSG or route.", SILENT
    TCP_UNREACHABLE = "tcp_unreachable", "An ICMP unreachable or a missing route: no path to the address."
    TCP_PROHIBITED = "tcp_prohibited", "Local policy forbade the connection (EACCES/EPERM)."
    TCP_RESET = "tcp_reset", "The connection was established, then reset."
    TCP_ERROR = "tcp_error", "Another socket error."

    TLS_UNTRUSTED = "tls_untrusted", "The certificate chain does not lead to a trusted root."
    TLS_HOSTNAME_MISMATCH = "tls_hostname_mismatch", "The certificate does not name the host."
    TLS_EXPIRED = "tls_expired", "The certificate has expired or is not yet valid."
    TLS_TIMEOUT = "tls_timeout", "TCP connected but the TLS handshake did not finish in time.", SILENT
    TLS_RESET = "tls_reset", "The connection was reset or closed during the TLS handshake."
    TLS_HANDSHAKE_FAILED = (
        "tls_handshake_failed",
        "The TLS handshake failed (protocol or cipher disagreement, alert).",
    )

    WS_UPGRADE_REJECTED = (
        "ws_upgrade_rejected",
        "The server refused the websocket upgrade with another status (404, 426, 5xx ...) and no sign of a"
        " middlebox, or answered 101 with an invalid handshake.",
    )
    WS_RESET = "ws_reset", "The connection was reset or closed right after the websocket upgrade request was sent."
    WS_TIMEOUT = "ws_timeout", "No answer to the websocket upgrade request in time.", SILENT
    WS_AUTH_REQUIRED = (
        "ws_auth_required",
        "Reached, authentication required: the server answered the anonymous upgrade with 401, 403 or a redirect"
        " to another site, as it answers a plain GET. The path works; only credentials can get a 101.",
        PASSES | INFERRED,
    )
    WS_INCONCLUSIVE = (
        "ws_inconclusive",
        "The answer to the upgrade neither proves the path nor shows a middlebox (e.g. a refusal only the upgrade"
        " got, with no sign of who sent it).",
        WARNS | UNDECIDED,
    )
    WS_INTERCEPTED = (
        "ws_intercepted",
        "A middlebox answered the upgrade itself (a Via header, a web proxy's Server header or a block page):"
        " it never reached the service.",
    )
    WS_PROXY_AUTH_REQUIRED = (
        "ws_proxy_auth_required",
        "An intercepting proxy answered the websocket upgrade with 407 (proxy credentials).",
    )
    WS_UPGRADE_IGNORED = (
        "ws_upgrade_ignored",
        "The upgrade got a 2xx answer, as a plain GET would: the Upgrade header was removed or ignored on the way.",
    )

    HTTP_TIMEOUT = "http_timeout", "No HTTP answer in time.", SILENT
    HTTP_BAD_RESPONSE = "http_bad_response", "The peer's HTTP answer could not be parsed."

    SMB_NOT_SMB = "smb_not_smb", "TCP 445 is open but what answered does not speak SMB2/3."
    SMB_RESET = "smb_reset", "The connection was reset during SMB2 NEGOTIATE."
    SMB_TIMEOUT = "smb_timeout", "TCP 445 connected but no SMB2 NEGOTIATE response came in time.", SILENT
    SMB_NO_COMMON_DIALECT = (
        "smb_no_common_dialect",
        "An SMB2 server answered, but supports none of the dialects offered (2.0.2 to 3.1.1).",
    )
    SMB_NO_COMMON_CIPHER = (
        "smb_no_common_cipher",
        "SMB 3.1.1 negotiated, but the server has no cipher in common with what a Linux CIFS client offers"
        " (AES-128-GCM, AES-256-GCM, AES-128-CCM): no encrypted session can be set up.",
    )

    UDP_OPEN = "udp_open", "A datagram came back: the UDP port is open.", PASSES
    UDP_CLOSED = "udp_closed", "ICMP port unreachable came back: the UDP port is closed (rejected)."
    UDP_FILTERED = "udp_filtered", "Another ICMP unreachable came back: the UDP port is filtered."
    UDP_OPEN_FILTERED = (
        "udp_open_filtered",
        "Silence: the port is open or silently filtered; this cannot be told apart from inside.",
        SILENT | WARNS | UNDECIDED,
    )

    PROXY_AUTH_REQUIRED = "proxy_auth_required", "The proxy demands authentication (HTTP 407)."
    PROXY_REFUSED = "proxy_refused", "The proxy itself could not be reached."
    PROXY_CONNECT_REJECTED = (
        "proxy_connect_rejected",
        "The proxy refused to open the CONNECT tunnel (e.g. 403, 502, 503).",
    )
    PROXY_TIMEOUT = "proxy_timeout", "The proxy did not answer the CONNECT request in time.", SILENT
    PROXY_RESET = "proxy_reset", "The proxy closed the connection during CONNECT."

    SKIPPED_MISSING_INPUT = (
        "skipped_missing_input",
        "Not probed: an input needed to build the host name is missing.",
        SKIPS,
    )
    SKIPPED_NOT_APPLICABLE = "skipped_not_applicable", "Not probed: does not apply to this configuration.", SKIPS
    INTERRUPTED = "interrupted", "Not finished: the run was interrupted (SIGINT/SIGTERM).", SKIPS | UNDECIDED
    DEADLINE_EXCEEDED = "deadline_exceeded", "Not finished: the whole-run deadline passed.", SKIPS | UNDECIDED
    INTERNAL_ERROR = "internal_error", "amlprobe itself failed on this check: a bug, please report it.", UNDECIDED


def _failures(layer: str) -> frozenset[Reason]:
    return frozenset(r for r in Reason if r.layer == layer and r.status is Status.FAIL and not r.retired)


# Reasons that mean "the name did not resolve" / "the TCP connection failed", whatever the protocol on top.
DNS_FAILURES = _failures("dns")
TCP_FAILURES = _failures("tcp")
