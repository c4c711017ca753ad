"""The Azure ML endpoint catalog: TOML files a support engineer can read and extend, validated on load.

Packaged files live in ``checks/data/*.toml``; users add their own with ``--catalog FILE`` (same format).
A file holds an optional ``clouds = [...]`` (default: every cloud), ``[[endpoint]]`` tables (what to
probe) and ``[[private_dns]]`` tables (what a name must resolve to). The field reference is at the top
of ``checks/data/common.toml``. Every problem is reported as one line naming file, entry and field.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from checks import toml
from checks.inputs import SCENARIOS, Cloud
from probe.errors import UsageError
from probe.files import MAX_CATALOG_BYTES, read_regular

DATA_DIR = Path(__file__).parent / "data"
# The packaged catalog in catalog order (the plan's check order): cloud rows first, then the shared ones.
# Other files in data/ (trust.toml) are not catalogs.
PACKAGED_FILES = ("public.toml", "usgov.toml", "china.toml", "common.toml")
CLOUDS: tuple[Cloud, ...] = ("public", "usgov", "china")

# Placeholder -> the Inputs fields its value is built from. notebooks_host is the first DNS label of the
# workspace's notebooks FQDN: ml-<workspace name, truncated>-<region>-<workspace guid>.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "region": ("region",),
    "workspace_id": ("workspace_id",),
    "storage_account": ("storage_account",),
    "key_vault": ("key_vault",),
    "container_registry": ("container_registry",),
    "instance_name": ("instance_name",),
    "instance_domain_suffix": ("instance_domain_suffix",),
    "notebooks_host": ("workspace_name", "region", "workspace_id"),
}

_SLUG = r"^[a-z0-9][a-z0-9-]*$"
# Literal text around placeholders in a concrete host: DNS name characters only, never '*'.
_HOST_TEXT = re.compile(r"^[a-z0-9.-]*$")

EndpointProtocol = Literal["tcp", "tls", "udp", "smb", "websocket", "http"]
Operator = Literal["microsoft", "third-party"]
# Which service's rules read an http row's answer (checks/resources.py).
Judge = Literal["storage", "key-vault", "acr"]
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
# Rows whose certificate (and, for websockets, whose HTTP answer) is judged by who operates the host.
OPERATED_PROTOCOLS = ("tls", "websocket", "http")
Port = Annotated[int, Field(ge=1, le=65535)]
Slug = Annotated[str, Field(pattern=_SLUG)]
DocUrl = Annotated[str, Field(pattern=r"^https://\S+$")]


class CatalogError(UsageError):
    """A catalog file is unreadable or invalid; str() is one line naming file, entry and field."""


def placeholders_in(pattern: str) -> list[str]:
    """The placeholder names in a pattern, in order; ValueError for malformed or unknown ones."""
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"malformed pattern {pattern!r}: {exc}") from None
    names: list[str] = []
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {shown!r} (known: {known})")
        names.append(name)
    return names


def _check_pattern(value: str | None) -> str | None:
    if value is not None:
        placeholders_in(value)
    return value


def _check_host(value: str | None) -> str | None:
    if value is None:
        return None
    placeholders_in(value)
    literal = "".join(text for text, _n, _s, _c in string.Formatter().parse(value))
    if "*" in literal:
        raise ValueError(
            f"host {value!r} is a wildcard: give a concrete name, or leave host out and keep the wildcard in fqdn"
        )
    if not value or not _HOST_TEXT.match(literal):
        raise ValueError(f"host {value!r} may hold only lowercase letters, digits, '-', '.' and placeholders")
    return value


def _check_scenarios(value: list[str]) -> list[str]:
    for s in value:
        if s not in SCENARIOS:
            raise ValueError(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
    return value


class _Entry(BaseModel):
    # strict: TOML is typed, so "443" where 443 belongs is a mistake worth naming, not coercing.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Slug
    scenarios: list[str] = Field(min_length=1)
    doc: DocUrl
    # Where the row comes from: its row of docs/requirements.md (§1b #6) and public sources ([S1], docs/sources.md).
    ref: str = ""
    variant_group: Slug | None = None
    # A name derived by analogy rather than read in a source (e.g. Batch names in sovereign clouds).
    inferred: bool = False
    # The name may rightly not exist in a given set-up (e.g. a registry's data endpoint without a
    # private endpoint): NXDOMAIN is "not applicable", not a failure, unless the resource has a
    # private endpoint. Variant-group members and inferred names are treated so implicitly, as long
    # as one variant resolves.
    may_not_exist: bool = False
    # The name exists only in an Azure ML managed virtual network (how-to-custom-dns: the -22 SSH name is
    # "only used by the az ml compute connect-ssh command to connect to computers in a managed virtual
    # network"): a customer VNet rightly has none, so NXDOMAIN is "not applicable", private endpoint or not.
    managed_network_only: bool = False
    # The name the machine itself reports (e.g. the compute instance's from /mnt/azmnt/.nbvm): when
    # it can be built, the other rows of its variant_group are not probed.
    preferred: bool = False
    note: str = ""

    _scenarios = field_validator("scenarios")(_check_scenarios)

    @model_validator(mode="after")
    def _preferred_needs_group(self) -> _Entry:
        if self.preferred and self.variant_group is None:
            raise ValueError("preferred: only meaningful with a variant_group")
        return self


class Endpoint(_Entry):
    """Something to connect to. ``host`` None: the documented wildcard has no concrete name to probe."""

    fqdn: str = Field(min_length=1, description="The FQDN or wildcard as the doc writes it (a firewall rule).")
    host: str | None = None
    protocol: EndpointProtocol
    ports: list[Port] = Field(min_length=1)
    path: str | None = None
    service_tag: str | None = None
    purpose: str = Field(min_length=1)
    required: bool
    resource: Slug | None = None
    # Compute-instance app ports (8787, 18881): probed as host:port only when the resource's private
    # endpoint exists; without one the port travels in the host name, on 443:
    # <first label>-<port>.<rest> (microsoft/responsible-ai-toolbox azure_nb_environment.py).
    port_in_host_name: bool = False
    # http rows: extra request headers (e.g. a storage API version), and whose rules read the answer.
    headers: dict[str, str] = Field(default_factory=dict)
    judge: Judge | None = None
    # Who runs the host: only Microsoft-operated hosts must present an Azure CA (real-world-azure.md Q2).
    operator: Operator | None = Field(None, validate_default=True)

    _host = field_validator("host")(_check_host)
    _patterns = field_validator("service_tag", "path")(_check_pattern)

    @model_validator(mode="after")
    def _port_in_host_name_is_tcp(self) -> Endpoint:
        if self.port_in_host_name and (self.protocol != "tcp" or self.host is None):
            raise ValueError("port_in_host_name: only for tcp rows with a host")
        if (self.headers or self.judge) and self.protocol != "http":
            raise ValueError(f"{'headers' if self.headers else 'judge'}: only for http rows")
        return self

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name) or not text.isprintable():
                raise ValueError(f"header {name!r}: a name of letters, digits and '-', and a printable value")
        return value

    @field_validator("operator")
    @classmethod
    def _operator(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("protocol") in OPERATED_PROTOCOLS:
            raise ValueError('required for tls, websocket and http rows: "microsoft" or "third-party"')
        return value


class PrivateDns(_Entry):
    """A name that must resolve to a private endpoint (or, private_endpoint=false, must stay public)."""

    resource: Slug
    name: str
    privatelink: str | None = Field(None, description="The documented privatelink CNAME target; None if undocumented.")
    zone: str | None = None
    forwarder_zones: list[str] = Field(default_factory=list)
    private_endpoint: bool = True
    # The resource whose private endpoint answers for this name (default: ``resource``); e.g. the
    # workspace's endpoint serves its cert FQDN and the compute instances (S4).
    pe_resource: Slug | None = None

    _name = field_validator("name")(_check_host)
    _privatelink = field_validator("privatelink", "zone")(_check_host)

    @field_validator("forwarder_zones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        for zone in value:
            _check_host(zone)
        return value


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cloud: Cloud
    endpoints: list[Endpoint]
    private_dns: list[PrivateDns]
    files: list[str] = Field(default_factory=list, description="The files merged, in order.")


_SECTIONS: dict[str, tuple[str, type[_Entry]]] = {
    "endpoint": ("entry", Endpoint),
    "private_dns": ("private_dns entry", PrivateDns),
}
_TOP_KEYS = ("clouds", "endpoint", "private_dns")


@dataclass(frozen=True)
class _File:
    shown: str
    clouds: tuple[str, ...]
    endpoints: tuple[tuple[int, Endpoint], ...]
    private_dns: tuple[tuple[int, PrivateDns], ...]


def _describe(err: Any, model: type[_Entry]) -> tuple[str, str]:
    """(field, message) for one pydantic error, worded for a catalog author."""
    loc = [str(p) for p in err.get("loc", ())]
    field = loc[0] if loc else "?"
    for part in err.get("loc", ())[1:]:
        field += f"[{part}]" if isinstance(part, int) else f".{part}"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(field, model.model_fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(model.model_fields)}"
        return field, f"unknown field ({hint})"
    if kind == "missing":
        return field, "missing required field"
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if not loc and ": " in msg:
        # A rule across fields (a model validator) names its field as "field: message".
        field, _, msg = msg.partition(": ")
    msg = msg[:1].lower() + msg[1:]
    if kind not in ("value_error",) and "input" in err:
        msg += f" (got {err['input']!r})"
    return field, msg


def _entry_error(where: str, raw: Any, model: type[_Entry], exc: ValidationError) -> CatalogError:
    errors = exc.errors()
    field, msg = _describe(errors[0], model)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    ident = raw.get("id") if isinstance(raw, dict) else None
    who = f"id {ident!r}" if isinstance(ident, str) else "no id"
    return CatalogError(f"{where} ({who}): field {field!r}: {msg}{more}")


def _parse_file(path: Path, shown: str) -> _File:
    try:
        text = read_regular(path, MAX_CATALOG_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise CatalogError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        doc: dict[str, Any] = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        raise CatalogError(f"{shown}: TOML syntax error: {' '.join(str(exc).split())}") from None

    for key in doc:
        if key not in _TOP_KEYS:
            allowed = ", ".join(_TOP_KEYS)
            raise CatalogError(f"{shown}: field {key!r}: unknown top-level key (allowed: {allowed})")
    clouds = doc.get("clouds", list(CLOUDS))
    if not isinstance(clouds, list) or not clouds or any(c not in CLOUDS for c in clouds):
        raise CatalogError(f"{shown}: field 'clouds': must be a non-empty list of {', '.join(CLOUDS)} (got {clouds!r})")

    parsed: dict[str, list[tuple[int, Any]]] = {}
    for section, (label, model) in _SECTIONS.items():
        raws = doc.get(section, [])
        if not isinstance(raws, list):
            raise CatalogError(f"{shown}: field {section!r}: must be an array of tables ([[{section}]])")
        items: list[tuple[int, Any]] = []
        for index, raw in enumerate(raws, start=1):
            if not isinstance(raw, dict):
                raise CatalogError(f"{shown}: {label} #{index}: must be a table ([[{section}]])")
            try:
                items.append((index, model.model_validate(raw)))
            except ValidationError as exc:
                raise _entry_error(f"{shown}: {label} #{index}", raw, model, exc) from None
        parsed[section] = items
    first: dict[str, str] = {}
    for section, (label, _model) in _SECTIONS.items():
        for index, entry in parsed[section]:
            if entry.id in first:
                raise CatalogError(
                    f"{shown}: {label} #{index} (id {entry.id!r}): field 'id': "
                    f"duplicate id, already defined at {shown} {first[entry.id]}"
                )
            first[entry.id] = f"{label} #{index}"
    return _File(
        shown=shown,
        clouds=tuple(clouds),
        endpoints=tuple(parsed["endpoint"]),
        private_dns=tuple(parsed["private_dns"]),
    )


class _Packaged:
    """A packaged file: which clouds it serves is read from its preamble (the top-level keys before
    the first table); the whole file is parsed and validated only when a catalog of one of those
    clouds is loaded. TOML parsing is most of the cost of ``plan``.
    """

    def __init__(self, name: str) -> None:
        self.path = DATA_DIR / name
        self.shown = f"checks/data/{name}"

    @cached_property
    def parsed(self) -> _File:
        return _parse_file(self.path, self.shown)

    @cached_property
    def clouds(self) -> tuple[str, ...]:
        try:
            head = self.path.read_text(encoding="utf-8").split("\n[", 1)[0]
            clouds = toml.loads(head).get("clouds")
        except (OSError, UnicodeDecodeError, toml.TOMLDecodeError):
            clouds = None
        if isinstance(clouds, list) and clouds and all(c in CLOUDS for c in clouds):
            return tuple(clouds)
        # Anything unusual: the full parse says what is wrong.
        return self.parsed.clouds


@cache
def _packaged() -> tuple[_Packaged, ...]:
    # Packaged data never changes while the process runs: parse and validate each file once.
    return tuple(_Packaged(name) for name in PACKAGED_FILES)


def load_catalog(cloud: str, extra_files: Sequence[Path] = ()) -> Catalog:
    """The packaged catalog for ``cloud`` merged with the user's files. Raises CatalogError."""
    if cloud not in CLOUDS:
        raise CatalogError(f"unknown cloud {cloud!r} (known: {', '.join(CLOUDS)})")
    files = [f.parsed for f in _packaged() if cloud in f.clouds] + [_parse_file(Path(p), str(p)) for p in extra_files]
    endpoints: list[Endpoint] = []
    private_dns: list[PrivateDns] = []
    seen: dict[str, str] = {}
    used: list[str] = []
    for f in files:
        if cloud not in f.clouds:
            continue
        used.append(f.shown)
        entries: list[tuple[str, int, _Entry]] = [("entry", i, e) for i, e in f.endpoints]
        entries += [("private_dns entry", i, e) for i, e in f.private_dns]
        for label, index, entry in entries:
            where = f"{f.shown} {label} #{index}"
            if entry.id in seen:
                raise CatalogError(
                    f"{f.shown}: {label} #{index} (id {entry.id!r}): field 'id': "
                    f"duplicate id, already defined at {seen[entry.id]}"
                )
            seen[entry.id] = where
            if isinstance(entry, Endpoint):
                endpoints.append(entry)
            elif isinstance(entry, PrivateDns):
                private_dns.append(entry)
    return Catalog(cloud=cloud, endpoints=endpoints, private_dns=private_dns, files=used)
