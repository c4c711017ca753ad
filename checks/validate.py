"""Sanity rules for the workspace names a plan turns into host names.

A typo here would otherwise become a confident "NXDOMAIN" for a name nobody meant to probe.
"""

from __future__ import annotations

import re

from checks.inputs import SCENARIOS, InputError, Inputs

# field -> (pattern, the rule as a user reads it). Patterns are case-insensitive where Azure is.
RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "region": (
        re.compile(r"[a-z0-9]+"),
        "an Azure region name: lowercase letters and digits only, e.g. eastus",
    ),
    "workspace_id": (
        re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE),
        "a GUID such as 00000000-0000-0000-0000-000000000000 (the workspace's id, not its name)",
    ),
    "workspace_name": (
        re.compile(r"[a-z0-9][a-z0-9_-]{2,32}", re.IGNORECASE),
        "3-33 letters, digits, '-' or '_', starting with a letter or digit",
    ),
    "storage_account": (
        re.compile(r"[a-z0-9]{3,24}"),
        "3-24 lowercase letters and digits",
    ),
    "key_vault": (
        re.compile(r"[a-z0-9-]{3,24}", re.IGNORECASE),
        "3-24 letters, digits and hyphens",
    ),
    "container_registry": (
        re.compile(r"[a-z0-9]{5,50}", re.IGNORECASE),
        "5-50 letters and digits (the registry name, not its login server)",
    ),
    "instance_name": (
        re.compile(r"[a-z0-9-]{3,24}", re.IGNORECASE),
        "3-24 letters, digits and hyphens",
    ),
    "instance_domain_suffix": (
        re.compile(r"[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){2,}", re.IGNORECASE),
        "a DNS suffix such as westeurope.instances.azureml.ms (the domainsuffix in /mnt/azmnt/.nbvm)",
    ),
}


def _where(inputs: Inputs, name: str) -> str:
    return inputs.sources.get(name) or "inputs"


def validate_inputs(inputs: Inputs) -> None:
    """Raise InputError for the first input that breaks its rule; None values are not checked."""
    for name, (pattern, rule) in RULES.items():
        value = getattr(inputs, name)
        if value is not None and not pattern.fullmatch(value):
            raise InputError(f"{_where(inputs, name)}: field '{name}': {value!r} is not valid: expected {rule}")
    for scenario in inputs.scenarios:
        if scenario not in SCENARIOS:
            raise InputError(
                f"{_where(inputs, 'scenarios')}: field 'scenarios': unknown scenario {scenario!r}"
                f" (known: {', '.join(SCENARIOS)})"
            )
