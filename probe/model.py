"""The report contract: pydantic models, serialised as JSON and published as JSON Schema.

Field names listed in the project's contract (status, started_at, duration_ms, tool.version,
environment, checks, findings; per check id, target.*, status, reason, detail, latency_ms,
addresses) are never renamed. New fields may be added; bump SCHEMA_VERSION's minor part then. A
change a consumer must follow (a removed or retyped field, new ids) bumps the major part, and
docs/report-contract.md says how to migrate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from probe import __version__
from probe.facts import (
    AddressRecord,
    CertInfo,
    CnameLink,
    ContractModel,
    DnsFacts,
    HttpFacts,
    ProxyFacts,
    Route,
    SmbCipherCheck,
    SmbFacts,
    TlsFacts,
    UdpFacts,
)
from probe.reasons import Confidence, OverallStatus, ReasonCode, Severity, Status
from probe.sanitize import MAX_FIELD, clip, printable

# The report contract; the facts and the outcome vocabulary it uses are importable from here too.
__all__ = [
    "MAX_CHAIN",
    "MAX_DETAIL",
    "MAX_ITEMS",
    "MAX_PEER_TEXT",
    "MAX_SANS",
    "SCHEMA_VERSION",
    "AddressRecord",
    "CertInfo",
    "Change",
    "CheckResult",
    "CheckSpec",
    "CnameLink",
    "Confidence",
    "DnsFacts",
    "Finding",
    "HttpFacts",
    "MissingInput",
    "Observed",
    "OverallStatus",
    "Protocol",
    "ProxyFacts",
    "Remediation",
    "Report",
    "Route",
    "Severity",
    "SmbCipherCheck",
    "SmbFacts",
    "Status",
    "Summary",
    "Target",
    "TlsFacts",
    "ToolInfo",
    "UdpFacts",
    "bound_result",
    "json_schema",
    "overall_status",
    "summarize",
]

SCHEMA_VERSION = "2.0"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# Bounds on what a peer can make a check result hold (applied where every result is built, in
# CheckResult's validator). A peer chooses its certificate names, its headers and how many
# answers it sends; none of that may grow the report without limit. A string past its bound is
# cut and ends in "… [N more characters]"; a list keeps its first items. Either way
# CheckResult.truncated says, per field, how many characters or items were cut.
MAX_DETAIL = MAX_FIELD  # characters of ``detail`` (escaped for a terminal first, see probe.sanitize)
MAX_PEER_TEXT = MAX_FIELD  # characters of any one string copied from a peer (certificate names, headers)
MAX_SANS = 100  # subject alternative names kept per certificate
MAX_CHAIN = 10  # certificates kept of a presented chain (real chains have 2-4)
MAX_ITEMS = 100  # DNS records, addresses, CNAME links, attempts


# A URL scheme of a target: its default port (None: the URL must give one, or takes none) and whether
# the prober speaks TLS.
Scheme = tuple[int | None, bool]


class Protocol(str, Enum):
    """What a check probes: one prober each (probe.registry.PROBERS), named by its URL schemes."""

    _value_: str
    schemes: dict[str, Scheme]
    over_tcp: bool

    def __new__(cls, value: str, schemes: dict[str, Scheme] | None = None, over_tcp: bool = False) -> Protocol:
        member = str.__new__(cls, value)
        member._value_ = value
        member.schemes = schemes or {}
        member.over_tcp = over_tcp
        return member

    DNS = "dns", {"dns": (None, False)}
    TCP = "tcp", {"tcp": (None, False)}, True
    TLS = "tls", {"tls": (443, True)}, True
    UDP = "udp", {"udp": (None, False)}
    SMB = "smb", {"smb": (445, False)}, True
    WEBSOCKET = "websocket", {"wss": (443, True), "ws": (80, False)}, True
    HTTP = "http", {"https": (443, True), "http": (80, False)}, True


class Target(ContractModel):
    host: str
    port: int | None = None
    protocol: Protocol
    path: str | None = None


class CheckSpec(ContractModel):
    """What to probe: the input of every prober. ``labels`` carry the caller's metadata through."""

    id: str
    target: Target
    labels: dict[str, str] = Field(default_factory=dict)
    # Whether the caller needs this path (True) or only some situations do (False); None: not said.
    required: bool | None = None
    # websocket/http: use TLS (wss/https) or not (ws/http).
    tls: bool = True
    # udp: the datagram to send; empty means a single zero byte.
    payload_hex: str = ""
    # dns: ask these servers directly instead of the run's shared resolver (e.g. a reference resolver).
    dns_servers: list[str] = Field(default_factory=list)
    # http: extra request headers (e.g. the API version a service needs to answer in its current form), and
    # response headers to record besides the ones every http check keeps (probe.transport.http1.KEPT_HEADERS).
    request_headers: dict[str, str] = Field(default_factory=dict)
    keep_headers: list[str] = Field(default_factory=list)

    @field_validator("request_headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        # RFC 9110 §5.1 (a token) and §5.5 (no CR, LF or NUL in a value): nothing may smuggle a line in.
        for name, text in value.items():
            if not _TOKEN.fullmatch(name) or any(c in text for c in "\r\n\x00"):
                raise ValueError(f"invalid request header {name!r}")
        return value


class Observed(ContractModel):
    """What a probe itself reported, kept when a later judgement replaced its reason or detail."""

    reason: ReasonCode
    detail: str


class CheckResult(ContractModel):
    id: str
    target: Target
    status: Status
    reason: ReasonCode
    detail: str
    required: bool | None = Field(
        None,
        description="Whether the path is required (true) or situational (false); null when the caller did not say"
        " (ad-hoc --target checks).",
    )
    latency_ms: float | None = None
    rtt_ms: float | None = Field(
        None,
        description="TCP-based probes: the kernel's round-trip time of the connection to the peer (TCP_INFO "
        "tcpi_rtt on Linux; the proxy when route is proxy), measured by the kernel, unaffected by the "
        "prober's own scheduling. phases_ms are wall times.",
    )
    addresses: list[str] = Field(default_factory=list)
    peer: str | None = Field(None, description="The address actually connected to.")
    route: Route | None = Field(None, description="TCP-based probes: direct, or through the HTTP proxy.")
    confidence: Confidence = Confidence.CONFIRMED
    started_at: datetime | None = None
    phases_ms: dict[str, float] = Field(default_factory=dict)
    attempts: list[str] = Field(default_factory=list, description="One line per address or retry tried.")
    labels: dict[str, str] = Field(default_factory=dict)
    dns: DnsFacts | None = None
    tls: TlsFacts | None = None
    http: HttpFacts | None = None
    smb: SmbFacts | None = None
    udp: UdpFacts | None = None
    proxy: ProxyFacts | None = None
    truncated: dict[str, int] = Field(
        default_factory=dict,
        description="What the bounds on peer data cut, by field path: characters for text, items for lists.",
    )
    observed: Observed | None = Field(
        None,
        description="The probe's own reason and detail, when judging the result against what is expected replaced"
        " them (status, reason and detail are then the verdict); absent when the probe's words stand.",
    )

    @model_validator(mode="after")
    def _bound(self) -> CheckResult:
        bound_result(self)
        return self


class _Cuts:
    """Applies the bounds to one result and counts what they cut into ``result.truncated``.

    A field is assigned only when its bound changes it: a result is bounded when the prober builds it
    and again when the report takes it in (pydantic runs after-validators on instances too). The second
    pass is kept on purpose: a judge may rewrite a result's detail after it was built (checks.verdicts
    rejudge), and the report must not take that in unescaped. For almost every result it finds
    nothing to cut, and then it costs a walk, not an assignment (bench/bench_tls.py).
    """

    def __init__(self, result: CheckResult) -> None:
        self.counts = result.truncated

    def _count(self, path: str, n: int) -> None:
        if n:
            self.counts[path] = self.counts.get(path, 0) + n

    def text(self, path: str, value: str, limit: int = MAX_PEER_TEXT) -> str:
        if len(value) <= limit:
            return value
        kept, cut = clip(value, limit)
        self._count(path, cut)
        return kept

    def optional(self, path: str, value: str | None) -> str | None:
        return None if value is None else self.text(path, value)

    def items(self, path: str, values: list[Any], limit: int = MAX_ITEMS) -> list[Any]:
        if len(values) <= limit:
            return values
        self._count(path, len(values) - limit)
        return values[:limit]

    def texts(self, path: str, values: list[str], limit: int = MAX_ITEMS) -> list[str]:
        kept = self.items(path, values, limit)
        if all(len(v) <= MAX_PEER_TEXT for v in kept):
            return kept
        return [self.text(f"{path}[{i}]", v) for i, v in enumerate(kept)]

    def fields(self, obj: BaseModel, path: str, names: Sequence[str]) -> None:
        """Bound the optional text fields ``names`` of ``obj``."""
        for name in names:
            value = getattr(obj, name)
            if value is not None and len(value) > MAX_PEER_TEXT:
                setattr(obj, name, self.text(f"{path}.{name}", value))

    def cert(self, path: str, cert: CertInfo) -> None:
        self.fields(cert, path, ("subject", "issuer", "issuer_common_name", "issuer_organization"))
        sans = self.texts(f"{path}.sans", cert.sans, MAX_SANS)
        if sans is not cert.sans:
            cert.sans = sans

    def http(self, path: str, facts: HttpFacts) -> None:
        self.fields(facts, path, ("reason_phrase", "server", "via", "plain_get_error", "body"))
        if any(len(v) > MAX_PEER_TEXT for v in facts.headers.values()):
            facts.headers = {k: self.text(f"{path}.headers.{k}", v) for k, v in facts.headers.items()}
        if facts.plain_get is not None:
            self.http(f"{path}.plain_get", facts.plain_get)


def bound_result(r: CheckResult) -> None:
    """Escape ``detail`` for a terminal and bound every field a peer can fill (see MAX_* above)."""
    cuts = _Cuts(r)
    detail = cuts.text("detail", printable(r.detail, None), MAX_DETAIL)
    if detail != r.detail:
        r.detail = detail
    for name in ("addresses", "attempts"):
        values = getattr(r, name)
        bounded = cuts.texts(name, values) if name == "attempts" else cuts.items(name, values)
        if bounded is not values:
            setattr(r, name, bounded)
    if r.dns is not None:
        for name in ("records", "chain"):
            values = getattr(r.dns, name)
            if (bounded := cuts.items(f"dns.{name}", values)) is not values:
                setattr(r.dns, name, bounded)
        if any(len(v) > MAX_ITEMS for v in r.dns.compared.values()):
            r.dns.compared = {k: cuts.items(f"dns.compared.{k}", v) for k, v in r.dns.compared.items()}
    if r.tls is not None:
        cuts.fields(r.tls, "tls", ("verify_error", "trust_anchor"))
        if r.tls.leaf is not None:
            cuts.cert("tls.leaf", r.tls.leaf)
        if (chain := cuts.items("tls.chain", r.tls.chain, MAX_CHAIN)) is not r.tls.chain:
            r.tls.chain = chain
        for i, cert in enumerate(r.tls.chain):
            cuts.cert(f"tls.chain[{i}]", cert)
    if r.http is not None:
        cuts.http("http", r.http)
    if r.proxy is not None:
        cuts.fields(r.proxy, "proxy", ("server", "via"))


class Remediation(ContractModel):
    kind: str = Field(
        description="What the remedy changes or checks: nsg_rule, firewall_rule, dns_link, dns_forwarder, hosts_file,"
        " no_proxy, tls_bypass, trust_store, resource_firewall, private_endpoint, storage_setting, verify,"
        " client_check, outside_check."
    )
    text: str
    commands: list[str] = Field(default_factory=list)


class Finding(ContractModel):
    id: str = Field(description="The rule that found it: a stable code, the same for every finding of the rule.")
    instance: str = Field(
        "",
        description="Which occurrence of the rule this is (a service tag, a resource, a check id); empty when the"
        " rule finds its cause once per run. (id, instance) is unique within a report.",
    )
    severity: Severity
    title: str
    detail: str = ""
    evidence: list[str] = Field(default_factory=list, description="Ids of the checks behind this finding.")
    doc: str | None = None
    remediation: list[Remediation] = Field(default_factory=list)


class Change(ContractModel):
    id: str
    before: Status | None
    after: Status | None
    reason_before: str | None = None
    reason_after: str | None = None


class ToolInfo(ContractModel):
    name: str = "amlprobe"
    version: str = __version__


class Summary(ContractModel):
    total: int = 0
    passed: int = 0
    warned: int = 0
    failed: int = 0
    skipped: int = 0


class MissingInput(ContractModel):
    """An input the plan needed and did not have: the checks it would have made, and how to supply it."""

    input: str = Field(description="The input's name (a config key).")
    flag: str = Field(description="The command-line flag that gives it.")
    env: str | None = Field(None, description="The environment variable that gives it.")
    how: list[str] = Field(default_factory=list, description="Where to find the value, one way per item.")
    required: bool = Field(description="Whether a required check was skipped for want of it.")
    checks: list[str] = Field(default_factory=list, description="Ids of the checks skipped for want of it.")


class Report(ContractModel):
    schema_version: str = SCHEMA_VERSION
    status: OverallStatus
    started_at: datetime
    duration_ms: float
    interrupted: bool = False
    deadline_exceeded: bool = False
    incomplete: bool = Field(
        False,
        description="Not every planned check finished (interrupted, or past the deadline): the checks cut off say"
        " so in their reason, and no finding rests on them.",
    )
    missing_inputs: list[MissingInput] = Field(
        default_factory=list,
        description="Inputs the plan lacked, and the checks skipped for want of them. A required check skipped"
        " makes the run unknown unless ``partial`` is true.",
    )
    partial: bool = Field(
        False, description="The user accepted a partial plan (--partial): missing inputs do not make the run unknown."
    )
    tool: ToolInfo = Field(default_factory=ToolInfo)
    environment: dict[str, Any] = Field(default_factory=dict)
    summary: Summary = Field(default_factory=Summary)
    checks: list[CheckResult] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="Problems beside the checks that did not stop the run (a skipped history)."
    )


def summarize(checks: list[CheckResult]) -> Summary:
    counts = {s: 0 for s in Status}
    for c in checks:
        counts[c.status] += 1
    return Summary(
        total=len(checks),
        passed=counts[Status.PASS],
        warned=counts[Status.WARN],
        failed=counts[Status.FAIL],
        skipped=counts[Status.SKIP],
    )


def overall_status(checks: list[CheckResult], findings: list[Finding], *, incomplete: bool) -> OverallStatus:
    """The run's verdict: findings decide when there are any rules, else the worst check does.

    A failed check no rule explains still counts as critical: the verdict never hides a failure.
    """
    if findings and any(f.severity is Severity.CRITICAL for f in findings):
        return OverallStatus.CRITICAL
    explained = {e for f in findings for e in f.evidence}
    if any(c.status is Status.FAIL and c.id not in explained for c in checks):
        return OverallStatus.CRITICAL
    if any(f.severity is Severity.WARNING for f in findings):
        return OverallStatus.WARNING
    if any(c.status is Status.WARN and c.id not in explained for c in checks):
        return OverallStatus.WARNING
    if any(c.status is Status.FAIL for c in checks):
        # Failures explained only by info findings still deserve attention.
        return OverallStatus.WARNING
    if incomplete:
        return OverallStatus.UNKNOWN
    if not checks:
        return OverallStatus.UNKNOWN
    return OverallStatus.OK


def json_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://amlprobe.invalid/schema/report-{SCHEMA_VERSION}.json"
    return schema
