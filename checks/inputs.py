"""The workspace facts a plan is built from, each with where it came from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Defined apart so that building the command line does not import pydantic; re-exported here.
from checks.scenarios import DEFAULT_SCENARIOS as DEFAULT_SCENARIOS  # noqa: PLC0414
from checks.scenarios import SCENARIOS as SCENARIOS  # noqa: PLC0414
from probe.errors import UsageError

Cloud = Literal["public", "usgov", "china"]

AZURE_DNS = "168.63.129.16"


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
    scenarios: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENARIOS))
    # None: unknown (assume private endpoints, the VNet case amlprobe exists for).
    private_endpoint: bool | None = None
    private_networks: list[str] = Field(default_factory=list)
    reference_dns: list[str] = Field(default_factory=lambda: [AZURE_DNS])
    # field name -> where its value came from: "flag", "config:<path>", "config.json:<path>",
    # "env:<NAME>", "imds", "discovered:<what>", "default".
    sources: dict[str, str] = Field(default_factory=dict)

    @property
    def expects_private(self) -> bool:
        return self.private_endpoint is not False
