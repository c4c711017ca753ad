"""Gather the workspace facts from every source and record where each one came from.

Precedence, strongest first; a field takes the first value found:

1. command-line flags (``flags``: Inputs field name -> value; None means "not given");
2. the TOML config file (``--config``);
3. environment variables ``AMLPROBE_<FIELD>`` (see ENV_VARS);
4. Azure ML's ``config.json`` (subscription_id, resource_group, workspace_name);
5. what this machine says (checks.discovery: compute-instance / job markers);
6. IMDS (region, cloud; subscription and resource group only off Azure ML compute);
7. the defaults in checks.inputs.Inputs.

Config file. Top-level keys are Inputs field names. A ``[workspace]`` table may hold the same keys,
for grouping only; a key may not appear both at top level and in the table. Unknown keys are an
error. Example::

    cloud = "public"
    region = "westeurope"
    scenarios = ["compute-instance", "studio"]
    private_endpoint = true                           # every resource (default: decided from DNS)
    private_endpoints = { storage = false }           # per resource, wins over private_endpoint
    private_networks = ["10.0.0.0/8"]
    reference_dns = ["168.63.129.16"]
    partial = true                                    # accept a partial plan (see below)

    [workspace]
    subscription_id = "00000000-0000-0000-0000-000000000000"
    resource_group = "rg-ml"
    workspace_name = "ws-ml"
    workspace_id = "11111111-1111-1111-1111-111111111111"
    storage_account = "stml"
    key_vault = "kv-ml"
    container_registry = "crml"
    instance_name = "ci-alice"

Environment variables: AMLPROBE_CLOUD, AMLPROBE_REGION, AMLPROBE_SUBSCRIPTION_ID,
AMLPROBE_RESOURCE_GROUP, AMLPROBE_WORKSPACE_ID, AMLPROBE_WORKSPACE_NAME, AMLPROBE_STORAGE_ACCOUNT,
AMLPROBE_KEY_VAULT, AMLPROBE_CONTAINER_REGISTRY, AMLPROBE_INSTANCE_NAME,
AMLPROBE_INSTANCE_DOMAIN_SUFFIX, AMLPROBE_SCENARIOS, AMLPROBE_PRIVATE_ENDPOINT (true/false, yes/no,
1/0, on/off), AMLPROBE_PRIVATE_ENDPOINTS ("storage=no,workspace=yes"), AMLPROBE_PRIVATE_NETWORKS,
AMLPROBE_REFERENCE_DNS and AMLPROBE_PARTIAL (a boolean like AMLPROBE_PRIVATE_ENDPOINT). Lists are
separated by commas or spaces. An empty variable counts as unset.

Partial plans. A check an input is missing for is skipped, and the report's ``missing_inputs`` says
which input, its flag and where to find it. When a required check is among them the run's verdict
is ``unknown`` (exit 3): it could not check what it was asked to. ``partial`` (``--partial``,
``partial = true``, AMLPROBE_PARTIAL) accepts the partial plan: the verdict then rests on what was
checked, and the missing inputs are still listed.

config.json. With explicit paths, exactly those files are read, first one strongest (like the SDK's
``from_config(path=...)``). Without, the SDK's search is mirrored (azure-ai-ml
``find_config_file_path``): ``.azureml/config.json``, then ``aml_config/config.json``, then
``config.json``, each looked for in the working directory and up to 20 parents. A searched file
that is not a JSON object with at least one of the three keys is someone else's config.json and
is skipped.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from checks import toml
from checks.discovery import Discovery
from checks.inputs import PE_RESOURCES, SCENARIOS, Cloud, InputError, Inputs
from probe.files import FileTooLarge, read_regular
from probe.system import parse_server

FIELDS: tuple[str, ...] = tuple(name for name in Inputs.model_fields if name != "sources")
ENV_VARS: dict[str, str] = {name: f"AMLPROBE_{name.upper()}" for name in FIELDS}
CONFIG_JSON_KEYS = ("subscription_id", "resource_group", "workspace_name")
WORKSPACE_TABLE = "workspace"
_SEARCH_DIRS: tuple[str | None, ...] = (".azureml", "aml_config", None)
_SEARCH_LEVELS = 20
_MAX_FILE_BYTES = 1 << 20

_CLOUDS: tuple[str, ...] = get_args(Cloud)
_LIST_FIELDS = ("scenarios", "private_networks", "reference_dns")
_GUID_FIELDS = ("subscription_id", "workspace_id")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class _Bad(Exception):
    """A value's problem, before the source is known."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _split_list(text: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", text) if item]


def _as_str_list(value: object, text: bool) -> list[str]:
    if isinstance(value, str) and text:
        return _split_list(value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _Bad("expected a list of strings")
    return [v.strip() for v in value if v.strip()]


def _check_dns_server(item: str) -> str:
    # The engine's resolver format: "ip", "ip:port" or "[ipv6]:port".
    try:
        parse_server(item)
    except ValueError:
        raise _Bad(f"expected an IP address, ip:port or [ipv6]:port, got {item!r}") from None
    return item


def _check_network(item: str) -> str:
    try:
        return str(ipaddress.ip_network(item, strict=False))
    except ValueError:
        raise _Bad(f"expected an IP network like 10.0.0.0/8, got {item!r}") from None


def _as_bool(value: object, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"expected true or false, got {value!r}")


def _private_endpoints(value: object, text: bool) -> dict[str, bool]:
    """``{resource: bool}`` from a table (TOML/JSON) or ``resource=yes`` items (flags, env)."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = []
        for item in _as_str_list(value, text):
            key, sep, word = item.partition("=")
            if not sep:
                raise _Bad(f"expected RESOURCE=yes|no, got {item!r}")
            items.append((key.strip(), word.strip()))
    out: dict[str, bool] = {}
    for key, flag in items:
        if key not in PE_RESOURCES:
            raise _Bad(f"unknown resource {key!r} (known: {', '.join(PE_RESOURCES)})")
        out[str(key)] = _as_bool(flag, text)
    return out


def _convert(name: str, value: object, *, text: bool) -> object:
    """Check and normalise one field's value. ``text``: the source only has strings (env vars,
    flags), so lists and booleans are parsed from them; typed sources (TOML, JSON) must use the
    right type."""
    if name in ("private_endpoint", "partial"):
        return _as_bool(value, text)
    if name == "private_endpoints":
        return _private_endpoints(value, text)
    if name in _LIST_FIELDS:
        items = _as_str_list(value, text)
        if name == "scenarios":
            unknown = [s for s in items if s not in SCENARIOS]
            if unknown:
                raise _Bad(f"unknown scenario {unknown[0]!r} (known: {', '.join(SCENARIOS)})")
            if not items:
                raise _Bad("expected at least one scenario")
            return list(dict.fromkeys(items))
        if name == "private_networks":
            return [_check_network(i) for i in items]
        if not items:
            raise _Bad("expected at least one DNS server")
        return [_check_dns_server(i) for i in items]
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {type(value).__name__}")
    word = value.strip()
    if not word:
        raise _Bad("expected a non-empty string")
    if name == "cloud":
        if word.lower() not in _CLOUDS:
            raise _Bad(f"expected one of {', '.join(_CLOUDS)}, got {word!r}")
        return word.lower()
    if name in _GUID_FIELDS:
        try:
            return str(uuid.UUID(word))
        except ValueError:
            raise _Bad(f"expected a GUID, got {word!r}") from None
    if name == "instance_domain_suffix":
        return word.lower().strip(".")
    if name == "region":
        # Region names in host names are lower case without spaces ("West Europe" -> westeurope).
        return word.lower().replace(" ", "")
    return word


def _unknown_field(name: str) -> str:
    close = difflib.get_close_matches(name, FIELDS, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known: {', '.join(FIELDS)}"


class _Merger:
    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.sources: dict[str, str] = {}

    def offer(self, name: str, value: object, *, source: str, label: str, text: bool) -> None:
        """Take ``value`` unless a stronger source already set ``name``; bad values raise InputError."""
        if name in self.values:
            return
        try:
            self.values[name] = _convert(name, value, text=text)
        except _Bad as exc:
            raise InputError(_one_line(f"{label}: field '{name}': {exc}")) from None
        self.sources[name] = source

    def offer_lenient(self, name: str, value: object, *, source: str) -> None:
        # Machine-found values are hints: a malformed one is ignored rather than fatal.
        if name in self.values or name not in FIELDS:
            return
        try:
            self.values[name] = _convert(name, value, text=True)
        except _Bad:
            return
        self.sources[name] = source


def _read_text(path: Path, label: str) -> str:
    try:
        data = read_regular(path, _MAX_FILE_BYTES)
    except FileTooLarge:
        raise InputError(f"{label}: larger than 1 MiB") from None
    except OSError as exc:
        raise InputError(_one_line(f"{label}: cannot read: {exc.strerror or exc}")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(_one_line(f"{label}: not UTF-8: {exc}")) from None


def load_config_file(path: Path) -> dict[str, object]:
    """The TOML config's fields, flattened (``[workspace]`` merged into the top level)."""
    label = f"config {path}"
    try:
        data = toml.loads(_read_text(path, label))
    except toml.TOMLDecodeError as exc:
        raise InputError(_one_line(f"{label}: invalid TOML: {exc}")) from None
    flat: dict[str, object] = {}
    for key, value in data.items():
        if key == WORKSPACE_TABLE:
            if not isinstance(value, dict):
                raise InputError(f"{label}: field '{WORKSPACE_TABLE}': expected a table")
            for sub_key, sub_value in value.items():
                if sub_key in data:
                    raise InputError(f"{label}: field '{sub_key}': given both at top level and in [{WORKSPACE_TABLE}]")
                flat[sub_key] = sub_value
        else:
            flat[key] = value
    for key in flat:
        if key not in FIELDS:
            raise InputError(f"{label}: field '{key}': unknown field ({_unknown_field(key)})")
    return flat


def _load_config_json(path: Path, *, searched: bool) -> dict[str, object] | None:
    label = f"config.json {path}"
    try:
        doc = json.loads(_read_text(path, label))
    except (InputError, json.JSONDecodeError) as exc:
        if searched:
            return None
        if isinstance(exc, InputError):
            raise
        raise InputError(_one_line(f"{label}: invalid JSON: {exc}")) from None
    if not isinstance(doc, dict) or not any(k in doc for k in CONFIG_JSON_KEYS):
        if searched:
            return None
        raise InputError(f"{label}: expected a JSON object with {', '.join(CONFIG_JSON_KEYS)}")
    return {k: doc[k] for k in CONFIG_JSON_KEYS if k in doc}


def find_config_json(start: Path) -> list[Path]:
    """Candidate config.json files in the Azure ML SDK's search order."""
    found: list[Path] = []
    base = start.resolve()
    for directory in _SEARCH_DIRS:
        current = base
        for _ in range(_SEARCH_LEVELS + 1):
            candidate = (current / directory / "config.json") if directory else (current / "config.json")
            if candidate.is_file():
                found.append(candidate)
            if current.parent == current:
                break
            current = current.parent
    return found


def gather_inputs(
    *,
    flags: Mapping[str, object],
    config_path: Path | None,
    env: Mapping[str, str],
    config_json_paths: list[Path] | None = None,
    discovery: Discovery | None = None,
    cwd: Path | None = None,
) -> Inputs:
    """Merge every source into Inputs, with ``sources`` naming each field's origin.

    ``config_json_paths``: None searches from ``cwd`` (default: the working directory); an empty
    list reads no config.json at all.
    """
    merged = _Merger()

    for name, value in flags.items():
        if name not in FIELDS:
            raise InputError(f"flags: field '{name}': unknown field ({_unknown_field(name)})")
        if value is not None:
            merged.offer(name, value, source="flag", label="flags", text=True)

    if config_path is not None:
        for name, value in load_config_file(config_path).items():
            merged.offer(name, value, source=f"config:{config_path}", label=f"config {config_path}", text=False)

    for name, var in ENV_VARS.items():
        if env.get(var, "").strip():
            merged.offer(name, env[var], source=f"env:{var}", label=f"environment {var}", text=True)

    searched = config_json_paths is None
    paths = find_config_json(cwd or Path.cwd()) if config_json_paths is None else config_json_paths
    for path in paths:
        doc = _load_config_json(path, searched=searched)
        if doc is None:
            continue
        for name, value in doc.items():
            merged.offer(name, value, source=f"config.json:{path}", label=f"config.json {path}", text=False)
        if searched:
            break  # the SDK uses the first Azure ML config.json it finds

    if discovery is not None:
        for name, value in discovery.values.items():
            merged.offer_lenient(name, value, source=discovery.sources.get(name, "discovered:"))
        if (imds := discovery.imds) is not None:
            offers: list[tuple[str, str | None]] = [("region", imds.region), ("cloud", imds.cloud)]
            if discovery.aml_compute is None:
                offers += [("subscription_id", imds.subscription_id), ("resource_group", imds.resource_group)]
            for name, value in offers:
                if value:
                    merged.offer_lenient(name, value, source="imds")

    sources = {name: merged.sources.get(name, "default") for name in FIELDS}
    try:
        return Inputs.model_validate({**merged.values, "sources": sources})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(_one_line(f"{sources.get(where, 'inputs')}: field '{where}': {first['msg']}")) from None
