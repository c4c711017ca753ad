"""What each probe saw, by layer: the typed facts a check result carries (part of the report contract).

Field names are never renamed (see probe.model); bounds on what a peer can make them hold are
applied where every result is built (probe.model.bound_result).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Route = Literal["direct", "proxy"]


class ContractModel(BaseModel):
    """Base of every model of the report contract."""

    # defer_build: a model's validator is built on first use, so commands that never touch the report
    # (`plan`, `--version`) do not pay for building all of them at import.
    model_config = ConfigDict(extra="forbid", use_enum_values=False, defer_build=True)


class CnameLink(ContractModel):
    name: str
    target: str
    ttl: int


class AddressRecord(ContractModel):
    address: str
    family: Literal["ipv4", "ipv6"]
    ttl: int | None = None


class DnsFacts(ContractModel):
    query: str
    server: str | None = Field(None, description="The server (ip or ip:port) that gave the final answer.")
    rcode: str | None = None
    chain: list[CnameLink] = Field(default_factory=list)
    canonical_name: str | None = None
    records: list[AddressRecord] = Field(default_factory=list)
    transport: Literal["udp", "tcp"] | None = None
    truncated_retry: bool = Field(False, description="A truncated UDP answer was retried over TCP.")
    source: Literal["dns", "literal", "hosts"] = "dns"
    # Per-resolver answers when several resolvers were compared (configured vs reference).
    compared: dict[str, list[str]] = Field(default_factory=dict)


class CertInfo(ContractModel):
    subject: str
    issuer: str
    # The issuer's name attributes as the certificate holds them (not parsed back out of the RFC 4514
    # string, where "O=DigiCert\, Inc." would have to be unescaped).
    issuer_common_name: str | None = None
    issuer_organization: str | None = None
    sans: list[str] = Field(default_factory=list)
    serial: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    days_left: int | None = None
    sha256: str | None = None
    self_signed: bool = False


class TlsFacts(ContractModel):
    server_name: str
    verified: bool
    verify_error: str | None = None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    leaf: CertInfo | None = None
    chain: list[CertInfo] = Field(default_factory=list, description="Presented chain, leaf first, when known.")
    trust_anchor: str | None = Field(None, description="The root in the trust store the chain led to.")
    ca_bundle: str | None = Field(None, description="The CA bundle used; null for the system default.")


class HttpFacts(ContractModel):
    status: int | None = None
    reason_phrase: str | None = None
    server: str | None = None
    via: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    upgraded: bool | None = None
    # http: the start of the response body as text (at most MAX_PEER_TEXT characters): error codes live there.
    body: str | None = None
    body_truncated: bool = False
    # websocket: the same URL asked as a plain GET, to tell an upgrade-aware answer from one given to any request.
    plain_get: HttpFacts | None = None
    plain_get_error: str | None = Field(None, description="Why the plain GET got no HTTP answer.")


class SmbCipherCheck(ContractModel):
    """A NEGOTIATE that offered only ``offered``: the cipher the server agreed to ("none": it refused them all)."""

    offered: list[str]
    agreed: str | None = None
    error: str | None = Field(None, description="Why this NEGOTIATE got no usable answer.")


class SmbFacts(ContractModel):
    dialect: str | None = None
    dialect_revision: str | None = None
    signing_required: bool | None = None
    server_guid: str | None = None
    ciphers_offered: list[str] = Field(default_factory=list, description="The first NEGOTIATE's ciphers, in order.")
    cipher: str | None = Field(
        None, description='The cipher agreed for the first NEGOTIATE; "none": no cipher in common; null: not named.'
    )
    signing_algorithm: str | None = None
    cipher_checks: list[SmbCipherCheck] = Field(default_factory=list)


class UdpFacts(ContractModel):
    state: Literal["open", "closed", "filtered", "open|filtered"]
    icmp: str | None = Field(None, description="The ICMP error seen, as the errno name.")
    sent: int = 0
    received: int = 0
    note: str | None = None
    wait_ms: float | None = Field(
        None,
        description="How long the prober waited for an answer after its first datagram (derived from round "
        "trips measured to the same network, bounded below and above; the timeout when none was measured).",
    )
    wait_basis: str | None = Field(None, description="What the wait was derived from.")


class ProxyFacts(ContractModel):
    url: str = Field(description="The proxy URL with credentials redacted.")
    source: str = Field(description="Where the proxy came from: --proxy or the environment variable name.")
    connect_status: int | None = None
    server: str | None = None
    via: str | None = None
