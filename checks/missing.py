"""The inputs a plan lacked: which checks each would have made, its flag, and where to find its value.

A check skipped for want of an input did not run; when it is a required one, the run could not
check what it was asked to and its verdict is ``unknown`` (probe.execution), unless the user
accepted a partial plan (``--partial``, checks.sources). A row with alternatives that did run (the
compute instance's name variants) is not missing: the alternatives stand for it.

Where each value is found (the ``how`` lines): Azure ML's config.json holds subscription_id,
resource_group and workspace_name (azure-ai-ml ``MLClient.from_config``, checks.sources);
``az ml workspace show`` prints the workspace's location and the
ids of its storage account, key vault and container registry (``--query storage_account``: the
name is the id's last part; MicrosoftDocs/azure-docs PR #123836 uses ``--query container_registry``);
the workspace's immutable id is the ARM property ``properties.workspaceId`` (Workspaces REST API;
terraform-provider-azurerm PR #21746 exports it as ``workspace_id``), which the portal's JSON View
shows too; a compute instance names itself in CI_NAME, CI_WORKSPACE and CI_RESOURCE_GROUP and its
DNS suffix in /mnt/azmnt/.nbvm (checks.discovery).
"""

from __future__ import annotations

from checks.inputs import Inputs
from checks.plan import Plan
from checks.remedies.base import quote
from checks.sources import ENV_VARS
from probe.model import MissingInput

_SHOW = "az ml workspace show --name {ws} --resource-group {rg}"


def _how(inputs: Inputs) -> dict[str, list[str]]:
    """Where to find each input's value, with what is known filled in (placeholders where not)."""
    ws = quote(inputs.workspace_name or "<WORKSPACE_NAME>")
    rg = quote(inputs.resource_group or "<RESOURCE_GROUP>")
    show = _SHOW.format(ws=ws, rg=rg)

    def resource(query: str, portal: str) -> list[str]:
        return [f"{show} --query {query} --output tsv (the name is the id's last part)", f"portal: {portal}"]

    return {
        "region": [
            f"{show} --query location --output tsv",
            "portal: the workspace's Overview, Location",
            "found by itself on an Azure VM (IMDS)",
        ],
        "subscription_id": [
            "Azure ML's config.json (subscription_id)",
            "az account show --query id --output tsv",
        ],
        "resource_group": [
            "Azure ML's config.json (resource_group)",
            "found by itself on a compute instance (CI_RESOURCE_GROUP)",
        ],
        "workspace_name": [
            "Azure ML's config.json (workspace_name)",
            "found by itself on a compute instance (CI_WORKSPACE)",
        ],
        "workspace_id": [
            f"az resource show --resource-group {rg} --name {ws} --resource-type"
            " Microsoft.MachineLearningServices/workspaces --query properties.workspaceId --output tsv",
            "portal: the workspace's Overview, JSON View, properties.workspaceId",
        ],
        "storage_account": resource("storage_account", "the workspace's Overview, Storage"),
        "key_vault": resource("key_vault", "the workspace's Overview, Key Vault"),
        "container_registry": resource(
            "container_registry", "the workspace's Overview, Registry (empty until the first image is built)"
        ),
        "instance_name": [
            "Azure ML studio: Compute, Compute instances",
            "found by itself on the compute instance (CI_NAME)",
        ],
        "instance_domain_suffix": [
            "found by itself on the compute instance (/mnt/azmnt/.nbvm, domainsuffix)",
            "the host part of the instance's Jupyter URL after its name, e.g. westeurope.instances.azureml.ms",
        ],
    }


def missing_inputs(plan: Plan, inputs: Inputs) -> list[MissingInput]:
    """The inputs the plan's skipped rows needed, in input order, each with the rows it would have made."""
    how = _how(inputs)
    checks: dict[str, list[str]] = {}
    required: dict[str, bool] = {}
    groups: dict[str, list[set[str]]] = {}
    for row in plan.skipped:
        if row.labels.get("variant_group"):
            groups.setdefault(row.labels["variant_group"], []).append(set(row.needs))
    for row in plan.skipped:
        # Another name for the same thing (a variant) stands for the row when it runs, and for an input when it
        # would run without it.
        group = row.labels.get("variant_group", "")
        planned = bool(plan.variant_groups.get(group))
        for name in row.needs:
            needed = row.required and not planned and all(name in n for n in groups.get(group, []))
            checks.setdefault(name, []).append(row.id)
            required[name] = required.get(name, False) or needed
    return [
        MissingInput(
            input=name,
            flag=f"--{name.replace('_', '-')}",
            env=ENV_VARS.get(name),
            how=how.get(name, []),
            required=required[name],
            checks=list(dict.fromkeys(checks[name])),
        )
        for name in Inputs.model_fields
        if name in checks
    ]
