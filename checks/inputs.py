"""The workspace facts a plan is built from, each with where it came from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Defined apart so that building the command line does not import pydantic; re-exported here.
from checks.addresses import AZURE_DNS
from checks.scenarios import DEFAULT_SCENARIOS as DEFAULT_SCENARIOS  # noqa: PLC0414
from checks.scenarios import SCENARIOS as SCENARIOS  # noqa: PLC0414
from probe.errors import UsageError

Cloud = Literal["public", "usgov", "china"]

# What can have a private endpoint of its own, as `private_endpoints` keys. "storage" stands for every
# storage sub-resource (one private endpoint each: storage-blob, storage-file, ...).
PE_RESOURCES = (
    "workspace",
    "notebooks",
    "storage",
    "storage-blob",
    "storage-file",
    "storage-queue",
    "storage-table",
    "storage-dfs",
    "key-vault",
    "acr",
)


class InputError(UsageError, ValueError):
    """A bad input value or source. ``str()`` is one line naming the source, the field and the rule."""


class Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cloud: Cloud = "public"
    region: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_id: str | None = None
    workspace_name: str | None = None
    storage_account: str | None = None
    key_vault: str | None = None
    container_registry: str | None = None
    instance_name: str | None = None
    # The compute instance's DNS suffix as it reports it (/mnt/azmnt/.nbvm ``domainsuffix``), e.g.
    # "westeurope.instances.azureml.ms": <instance_name>.<suffix> is its one real host name.
    instance_domain_suffix: str | None = None
    scenarios: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENARIOS))
    # Whether resources have private endpoints. None (the default): decided per resource from what
    # DNS answers (checks.evidence). True/False: the user says so for every resource.
    private_endpoint: bool | None = None
    # The same, per resource (keys: PE_RESOURCES); wins over private_endpoint.
    private_endpoints: dict[str, bool] = Field(default_factory=dict)
    private_networks: list[str] = Field(default_factory=list)
    reference_dns: list[str] = Field(default_factory=lambda: [AZURE_DNS])
    # The user accepts a partial plan: checks skipped for want of an input do not make the run unknown
    # (they are still listed in the report's missing_inputs).
    partial: bool = False
    # field name -> where its value came from: "flag", "config:<path>", "config.json:<path>",
    # "env:<NAME>", "imds", "discovered:<what>", "default".
    sources: dict[str, str] = Field(default_factory=dict)

    def private_endpoint_for(self, resource: str) -> tuple[bool | None, str]:
        """The user's word on whether ``resource`` (a PE_RESOURCES key) has a private endpoint, and the
        input that said so; (None, "") when the user said nothing and DNS evidence decides."""
        for key in (resource, resource.split("-", 1)[0]):
            if key in self.private_endpoints:
                return self.private_endpoints[key], "private_endpoints"
        if self.private_endpoint is not None:
            return self.private_endpoint, "private_endpoint"
        return None, ""
