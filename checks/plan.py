"""From catalog and inputs to what gets probed: concrete checks, DNS expectations, and what is skipped.

Check ids: ``<scheme>:<host>:<port>`` for connections (probe.targets.check_id: the protocol, or https/wss
for http and websocket over TLS), ``dns:<host>`` for the configured resolver
and ``dns@reference:<host>`` for the reference resolver (Azure DNS by default). Order is
deterministic: configured DNS checks, reference DNS checks, then connections, each in catalog order.

Whether a resource has a private endpoint is not known when the plan is made: it is decided at run
time from what DNS answers (checks.evidence). Rows whose form depends on it (compute-instance app
ports: ``<ci>.<suffix>:8787`` with a workspace private endpoint, ``<ci>-8787.<suffix>:443`` without;
microsoft/responsible-ai-toolbox azure_nb_environment.py) are planned in both forms, labelled
``when_private_endpoint`` = "true"/"false" and ``pe_resource``; the judge keeps the form the evidence
selects and marks the other not applicable. Both forms are cheap (one connect each, run in parallel).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from checks.addresses import is_ip
from checks.catalog import PLACEHOLDERS, Catalog, Endpoint, PrivateDns, placeholders_in
from checks.inputs import DEFAULT_SCENARIOS, Cloud, InputError, Inputs
from checks.services import keep_headers
from checks.validate import validate_inputs
from probe.model import CheckSpec, Protocol, Target
from probe.targets import check_id

_INPUT_ORDER = tuple(Inputs.model_fields)
# While the plan is built, whether a row is required travels with its labels (rows reaching one check
# merge them); the finished check carries it as CheckSpec.required.
_REQUIRED = "required"
_LABEL_MAX = 63


class SkippedRow(BaseModel):
    """A catalog row that is not probed: an input is missing, or the row has no concrete host."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The catalog entry id.")
    host: str = Field(description="The host pattern, or the documented wildcard when there is no concrete host.")
    port: int | None
    ports: list[int] = Field(default_factory=list, description="Every port of the row (port is the first).")
    protocol: str
    needs: list[str] = Field(default_factory=list, description="Missing input names; empty if no input would help.")
    note: str
    required: bool = Field(False, description="The catalog marks the row required (not situational).")
    labels: dict[str, str] = Field(default_factory=dict)


class DnsExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: str = Field(description="The dns check on the configured resolver.")
    reference_check_id: str | None = Field(description="The same name asked of the reference resolver.")
    name: str
    resource: str
    pe_resource: str | None = Field(None, description="Whose private endpoint answers for the name.")
    expect: Literal["private", "public", "evidence"] = Field(
        description="private/public when the catalog or the user says so; evidence: decided at run time from"
        " DNS (a privatelink CNAME or a private answer means a private endpoint)."
    )
    privatelink_suffix: str | None = Field(description="The zone the documented privatelink CNAME points into.")
    privatelink_name: str | None = Field(None, description="The documented privatelink CNAME target, expanded.")
    zone: str | None
    forwarder_zones: list[str] = Field(default_factory=list)
    doc: str
    entry: str = Field("", description="The catalog private_dns id.")
    variant_group: str | None = None
    may_not_exist: bool = False


class Plan(BaseModel):
    """What `amlprobe check` probes. variant_groups: alternative names for one thing (sources disagree);
    compare a group's checks by (protocol, port) to see which name answered."""

    model_config = ConfigDict(extra="forbid")

    cloud: Cloud
    scenarios: list[str]
    checks: list[CheckSpec]
    skipped: list[SkippedRow] = Field(default_factory=list)
    dns_expectations: list[DnsExpectation] = Field(default_factory=list)
    variant_groups: dict[str, list[str]] = Field(default_factory=dict)
    # Inputs taken as they are, with a doubt (a region not in checks/data/regions.toml).
    warnings: list[str] = Field(default_factory=list)


def notebooks_label(workspace_name: str, region: str, workspace_id: str) -> str:
    """ml-<workspace name>-<region>-<guid>, the name truncated so the DNS label fits 63 characters [S4]."""
    room = _LABEL_MAX - len("ml---") - len(region) - len(workspace_id)
    return f"ml-{workspace_name.lower()[: max(room, 0)]}-{region}-{workspace_id}"


def placeholder_values(inputs: Inputs) -> dict[str, str]:
    """Placeholder -> value for every placeholder the inputs can fill. Names are lower-cased: DNS is
    case-insensitive, check ids are not."""
    values: dict[str, str] = {}
    for name, fields in PLACEHOLDERS.items():
        if len(fields) == 1 and (value := getattr(inputs, fields[0])) is not None:
            values[name] = value.lower()
    if inputs.workspace_name and inputs.region and inputs.workspace_id:
        values["notebooks_host"] = notebooks_label(inputs.workspace_name, inputs.region, inputs.workspace_id.lower())
    return values


def _needs(pattern: str, values: dict[str, str], inputs: Inputs) -> list[str]:
    missing = {f for p in placeholders_in(pattern) if p not in values for f in PLACEHOLDERS[p]}
    return [f for f in _INPUT_ORDER if f in missing and getattr(inputs, f) is None]


def _expand(pattern: str, values: dict[str, str]) -> str | None:
    if any(p not in values for p in placeholders_in(pattern)):
        return None
    return pattern.format(**values)


def _expand_soft(pattern: str, values: dict[str, str]) -> str:
    # "Storage.{region}" without a region is still a valid (wider) service tag: "Storage".
    def sub(m: re.Match[str]) -> str:
        value = values.get(m.group(2))
        return m.group(1) + value if value is not None else ""

    return re.sub(r"(\.?)\{(\w+)\}", sub, pattern)


def _common_labels(row: Endpoint | PrivateDns, labels: dict[str, str], pe_of: dict[str, str]) -> None:
    if row.variant_group:
        labels["variant_group"] = row.variant_group
    if row.inferred:
        labels["inferred"] = "true"
    if row.may_not_exist:
        labels["may_not_exist"] = "true"
    if row.managed_network_only:
        labels["managed_network_only"] = "true"
    if row.resource:
        labels["resource"] = row.resource
        labels["pe_resource"] = pe_of.get(row.resource, row.resource)


def _endpoint_labels(e: Endpoint, values: dict[str, str], pe_of: dict[str, str]) -> dict[str, str]:
    labels = {"entry": e.id, "purpose": e.purpose, _REQUIRED: str(e.required).lower(), "doc": e.doc}
    labels["fqdn"] = e.fqdn
    if e.service_tag:
        labels["service_tag"] = _expand_soft(e.service_tag, values)
    _common_labels(e, labels, pe_of)
    if e.operator:
        labels["operator"] = e.operator
    if e.judge:
        labels["judge"] = e.judge
    return labels


_PURPOSE = {
    "private": "must resolve to a private endpoint address",
    "public": "must resolve to a public address",
    "evidence": "private endpoint address if the resource has one, else public",
}


def _private_dns_labels(row: PrivateDns, expect: str, pe_of: dict[str, str]) -> dict[str, str]:
    labels = {
        "entry": row.id,
        "purpose": f"{_PURPOSE[expect]} ({row.resource})",
        _REQUIRED: "true",
        "doc": row.doc,
    }
    _common_labels(row, labels, pe_of)
    if not row.private_endpoint:
        # "resource" marks a private-endpoint name; the diagnosis reads it that way.
        labels.pop("resource")
        labels.pop("pe_resource")
    return labels


def _port_in_host(host: str, port: int) -> str:
    """``ci.eastus.instances.azureml.ms`` and 8787: ``ci-8787.eastus.instances.azureml.ms``, the name the
    compute instance's app answers on 443 when the workspace has no private endpoint
    (microsoft/responsible-ai-toolbox azure_nb_environment.py: f"{instance_name}-{port}.{domain_suffix}")."""
    first, _, rest = host.partition(".")
    return f"{first}-{port}.{rest}"


def _superseded_groups(catalog: Catalog, selected: set[str], values: dict[str, str]) -> dict[str, str]:
    """Variant group -> the preferred (machine-reported) name that replaces the group's other rows."""
    out: dict[str, str] = {}
    rows: list[tuple[Endpoint | PrivateDns, str | None]] = [(e, e.host) for e in catalog.endpoints]
    rows += [(p, p.name) for p in catalog.private_dns]
    for row, pattern in rows:
        if not row.preferred or not row.variant_group or not selected.intersection(row.scenarios):
            continue
        name = _expand(pattern, values) if pattern else None
        if name is not None:
            out.setdefault(row.variant_group, name)
    return out


def _merge(into: dict[str, str], new: dict[str, str]) -> None:
    """Two rows reach the same check: keep the first row's words, record both entries."""
    entries = into.get("entry", "").split(",") if into.get("entry") else []
    for entry in new.get("entry", "").split(","):
        if entry and entry not in entries:
            entries.append(entry)
    into["entry"] = ",".join(entries)
    if new.get(_REQUIRED) == "true":
        into[_REQUIRED] = "true"
    for key, value in new.items():
        into.setdefault(key, value)


def _skip(
    row: Endpoint | PrivateDns,
    *,
    host: str,
    protocol: str,
    ports: list[int],
    needs: list[str],
    note: str,
    labels: dict[str, str],
) -> SkippedRow:
    labels = dict(labels)
    return SkippedRow(
        id=row.id,
        host=host,
        port=ports[0] if ports else None,
        ports=ports,
        protocol=protocol,
        needs=needs,
        note=note,
        required=labels.pop(_REQUIRED, "false") == "true",
        labels=labels,
    )


def _missing_note(needs: list[str]) -> str:
    return f"missing input: {', '.join(needs)}" if needs else "an input it needs is missing"


def build_plan(catalog: Catalog, inputs: Inputs) -> Plan:
    """Select the catalog rows for the inputs' scenarios and expand them. Raises InputError."""
    warnings = validate_inputs(inputs)
    if catalog.cloud != inputs.cloud:
        raise InputError(
            f"{inputs.sources.get('cloud') or 'inputs'}: field 'cloud': {inputs.cloud!r} does not match"
            f" the catalog's cloud {catalog.cloud!r}"
        )
    scenarios = list(dict.fromkeys(inputs.scenarios)) or list(DEFAULT_SCENARIOS)
    selected = set(scenarios)
    values = placeholder_values(inputs)

    connections: dict[str, CheckSpec] = {}
    dns_labels: dict[str, dict[str, str]] = {}
    skipped: list[SkippedRow] = []
    expectations: list[DnsExpectation] = []

    def want_dns(host: str, labels: dict[str, str]) -> None:
        if is_ip(host):
            return
        if host in dns_labels:
            _merge(dns_labels[host], labels)
        else:
            dns_labels[host] = dict(labels)

    pe_of = {row.resource: row.pe_resource or row.resource for row in catalog.private_dns}
    superseded = _superseded_groups(catalog, selected, values)

    def replaced(
        row: Endpoint | PrivateDns, labels: dict[str, str], host: str, protocol: str, ports: list[int]
    ) -> bool:
        """Rows of a variant group whose preferred (machine-reported) name is known are not probed."""
        if row.preferred or row.variant_group not in superseded:
            return False
        note = f"not probed: the compute instance reports its own name, {superseded[row.variant_group]}"
        skipped.append(_skip(row, host=host, protocol=protocol, ports=ports, needs=[], note=note, labels=labels))
        return True

    def connect(
        host: str,
        port: int,
        protocol: str,
        labels: dict[str, str],
        path: str | None = None,
        *,
        row: Endpoint | None = None,
    ) -> None:
        cid = check_id(Protocol(protocol), host, port)
        if cid in connections:
            _merge(connections[cid].labels, labels)
            return
        target = Target(host=host, port=port, protocol=Protocol(protocol), path=path)
        extra: dict[str, object] = {}
        if row is not None and row.protocol == "http":
            extra = {"request_headers": dict(row.headers), "keep_headers": list(keep_headers(row.judge))}
        connections[cid] = CheckSpec(id=cid, target=target, labels=dict(labels), **extra)

    for e in catalog.endpoints:
        if not selected.intersection(e.scenarios):
            continue
        labels = _endpoint_labels(e, values, pe_of)
        if e.host is None:
            note = e.note or "no concrete host to probe for this wildcard"
            skipped.append(
                _skip(e, host=e.fqdn, protocol=e.protocol, ports=e.ports, needs=[], note=note, labels=labels)
            )
            continue
        if replaced(e, labels, e.host, e.protocol, e.ports):
            continue
        host = _expand(e.host, values)
        if host is None:
            needs = _needs(e.host, values, inputs)
            note = _missing_note(needs)
            skipped.append(
                _skip(e, host=e.host, protocol=e.protocol, ports=e.ports, needs=needs, note=note, labels=labels)
            )
            continue
        path = _expand_soft(e.path, values) if e.path is not None else None
        want_dns(host, {**labels, "purpose": f"name resolution: {e.purpose}"})
        for port in e.ports:
            if not e.port_in_host_name:
                connect(host, port, e.protocol, labels, path, row=e)
                continue
            # Both forms; the judge keeps the one the private-endpoint evidence selects.
            connect(host, port, e.protocol, {**labels, "when_private_endpoint": "true"}, path)
            named = _port_in_host(host, port)
            by_name = {**labels, "when_private_endpoint": "false", "app_port": str(port)}
            connect(named, 443, "tls", by_name)
            want_dns(named, {**by_name, "purpose": f"name resolution: {e.purpose}"})

    references: list[str] = []
    for row in catalog.private_dns:
        if not selected.intersection(row.scenarios):
            continue
        pe_group = row.pe_resource or row.resource
        expect: Literal["private", "public", "evidence"] = "public"
        if row.private_endpoint:
            said, _source = inputs.private_endpoint_for(pe_group)
            expect = "evidence" if said is None else "private" if said else "public"
        labels = _private_dns_labels(row, expect, pe_of)
        if replaced(row, labels, row.name, "dns", []):
            continue
        name = _expand(row.name, values)
        if name is None:
            needs = _needs(row.name, values, inputs)
            note = _missing_note(needs)
            skipped.append(_skip(row, host=row.name, protocol="dns", ports=[], needs=needs, note=note, labels=labels))
            continue
        want_dns(name, labels)
        reference_id = None
        if inputs.reference_dns:
            reference_id = f"dns@reference:{name}"
            if name not in references:
                references.append(name)
        privatelink = _expand(row.privatelink, values) if row.privatelink else None
        expectations.append(
            DnsExpectation(
                check_id=f"dns:{name}",
                reference_check_id=reference_id,
                name=name,
                resource=row.resource,
                pe_resource=pe_group if row.private_endpoint else None,
                expect=expect,
                privatelink_suffix=row.zone if row.privatelink else None,
                privatelink_name=privatelink,
                zone=_expand(row.zone, values) if row.zone else None,
                forwarder_zones=[_expand(z, values) or z for z in row.forwarder_zones],
                doc=row.doc,
                entry=row.id,
                variant_group=row.variant_group,
                may_not_exist=row.may_not_exist,
            )
        )

    checks: list[CheckSpec] = [
        CheckSpec(
            id=f"dns:{host}",
            target=Target(host=host, protocol=Protocol.DNS),
            labels={**labels, "resolver": "configured"},
        )
        for host, labels in dns_labels.items()
    ]
    checks += [
        CheckSpec(
            id=f"dns@reference:{name}",
            target=Target(host=name, protocol=Protocol.DNS),
            labels={**dns_labels[name], "resolver": "reference"},
            dns_servers=list(inputs.reference_dns),
        )
        for name in references
    ]
    checks += connections.values()
    for spec in checks:
        # Planned with the rows' labels; reported as the check's typed ``required``.
        spec.required = spec.labels.pop(_REQUIRED, "false") == "true"

    groups: dict[str, list[str]] = {}
    for spec in checks:
        group = spec.labels.get("variant_group")
        if group and spec.labels.get("resolver") != "reference":
            groups.setdefault(group, []).append(spec.id)

    return Plan(
        cloud=catalog.cloud,
        scenarios=scenarios,
        checks=checks,
        skipped=skipped,
        dns_expectations=expectations,
        variant_groups=groups,
        warnings=warnings,
    )
