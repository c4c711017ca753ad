"""Azure's naming rules for every input that becomes a host name or goes into a remedy.

A typo here would otherwise become a confident "NXDOMAIN" for a name nobody meant to probe, and a
hostile value (``rg;touch pwn``) would become a command in a fix a person pastes into a shell.
Every source is checked the same way: flags, --config, AMLPROBE_* variables, config.json and what
discovery found on the machine (a compute's CI_RESOURCE_GROUP). checks.remedies also shell-quotes
each value where it inserts it; validation is the first fence, quoting the second.

Source of the rules, unless a row says otherwise: Microsoft Learn, "Naming rules and restrictions
for Azure resources", https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
(MicrosoftDocs/azure-docs articles/azure-resource-manager/management/resource-name-rules.md).
"""

from __future__ import annotations

import re

from checks.inputs import SCENARIOS, InputError, Inputs
from checks.regions import check_region
from probe.sanitize import printable

# Subscription and workspace ids are GUIDs.
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)

# field -> (pattern, the rule as a user reads it). Patterns are case-insensitive where Azure is.
RULES: dict[str, tuple[re.Pattern[str], str]] = {
    # Microsoft.Resources/resourcegroups: 1-90 "alphanumerics, underscores, parentheses, hyphens,
    # periods, and unicode characters that match the regex documentation"; can't end with a
    # period. The regex is the ResourceGroups_CreateOrUpdate REST API's ^[-\w\._\(\)]+$ (\w is
    # Unicode letters, digits and underscore here too).
    "resource_group": (
        re.compile(r"[-\w.()]{0,89}[-\w()]"),
        "1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'",
    ),
    # A subscription is named by its GUID (az account show --query id).
    "subscription_id": (
        _GUID,
        "a GUID such as 00000000-0000-0000-0000-000000000000",
    ),
    # Region names as `az account list-locations --query [].name` prints them (eastus, westeurope).
    "region": (
        re.compile(r"[a-z0-9]+"),
        "an Azure region name: lowercase letters and digits only, e.g. eastus",
    ),
    "workspace_id": (
        _GUID,
        "a GUID such as 00000000-0000-0000-0000-000000000000 (the workspace's id, not its name)",
    ),
    # Microsoft.MachineLearningServices/workspaces: 3-33, alphanumerics, hyphens and underscores,
    # starting with an alphanumeric (the REST API's ^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$).
    "workspace_name": (
        re.compile(r"[a-z0-9][a-z0-9_-]{2,32}", re.IGNORECASE),
        "3-33 letters, digits, '-' or '_', starting with a letter or digit",
    ),
    # Microsoft.Storage/storageAccounts: 3-24, lowercase letters and numbers.
    "storage_account": (
        re.compile(r"[a-z0-9]{3,24}"),
        "3-24 lowercase letters and digits",
    ),
    # Microsoft.KeyVault/vaults: 3-24, alphanumerics and hyphens; start with a letter, end with
    # a letter or digit; no consecutive hyphens.
    "key_vault": (
        re.compile(r"(?=[a-z0-9-]{3,24}\Z)[a-z](?:-?[a-z0-9])+", re.IGNORECASE),
        "3-24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit",
    ),
    # Microsoft.ContainerRegistry/registries: 5-50 alphanumerics.
    "container_registry": (
        re.compile(r"[a-z0-9]{5,50}", re.IGNORECASE),
        "5-50 letters and digits (the registry name, not its login server)",
    ),
    # Compute instance names: 3-24 letters, digits and hyphens, starting with a letter (the
    # service's own message: "A name for an Azure ML Compute Instance must be between 3 and 24
    # characters in length and must use only numbers, letters and minus symbol (-), must start
    # with letters", quoted in microsoftdocs/pipelines-azureml issue 19).
    "instance_name": (
        re.compile(r"[a-z][a-z0-9-]{2,23}", re.IGNORECASE),
        "3-24 letters, digits and hyphens, starting with a letter",
    ),
    "instance_domain_suffix": (
        re.compile(r"[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){2,}", re.IGNORECASE),
        "a DNS suffix such as westeurope.instances.azureml.ms (the domainsuffix in /mnt/azmnt/.nbvm)",
    ),
}


def _where(inputs: Inputs, name: str) -> str:
    return inputs.sources.get(name) or "inputs"


def _check_region(inputs: Inputs) -> list[str]:
    """The region against its cloud's list (checks.regions); what the machine itself said (IMDS, a
    compute's own files) is taken as it is."""
    source = _where(inputs, "region")
    if inputs.region is None or source == "imds" or source.startswith("discovered"):
        return []
    found = check_region(inputs.region, inputs.cloud)
    if found.error:
        shown = printable(inputs.region, 100)
        raise InputError(f"{source}: field 'region': '{shown}' is not a region name: {found.error}")
    return [f"{source}: {found.warning}"] if found.warning else []


def validate_inputs(inputs: Inputs) -> list[str]:
    """Raise InputError (one line) for the first input that breaks its rule; None values are not checked.

    Returns warnings about inputs taken as they are (a region not in the list, which may be new)."""
    warnings = _check_region(inputs)
    for name, (pattern, rule) in RULES.items():
        value = getattr(inputs, name)
        if value is not None and not pattern.fullmatch(value):
            shown = printable(value, 100)
            raise InputError(f"{_where(inputs, name)}: field '{name}': '{shown}' is not valid: expected {rule}")
    for scenario in inputs.scenarios:
        if scenario not in SCENARIOS:
            raise InputError(
                f"{_where(inputs, 'scenarios')}: field 'scenarios': unknown scenario {scenario!r}"
                f" (known: {', '.join(SCENARIOS)})"
            )
    return warnings
