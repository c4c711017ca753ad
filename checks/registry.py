"""Where a registry's image layers come from, and whether that path was probed.

Sources: container-registry-endpoint-reference (learn.microsoft.com/azure/container-registry), quoted below.
"""

from __future__ import annotations

from typing import TypedDict

from probe.model import CheckResult, Protocol, Status


class RegistryLayers(TypedDict):
    """The report's ``environment["registry_layer_path"]``."""

    registry: str
    path: str
    host: str | None
    probed: bool
    evidence: list[str]
    why: str


def registry_layer_path(results: list[CheckResult]) -> RegistryLayers | None:
    """Where image layers come from, as far as it can be known without credentials, or None without a registry.

    "Layer blob downloads for registries with dedicated data endpoints or private endpoints" go to
    <acr>.<region>.data.azurecr.io; without them to the registry's own storage account, *.blob.core.windows.net,
    through a redirect of an authenticated pull (container-registry-endpoint-reference). That account's name is
    not published, so that path cannot be probed without credentials: this says so instead of inventing a host.
    """
    data = [r for r in results if r.labels.get("resource") == "acr-data" and r.target.protocol is not Protocol.DNS]
    if not data:
        return None
    check = data[0]
    blob = next((r.target.host for r in results if r.labels.get("resource") == "storage-blob"), None)
    blob_suffix = blob.split(".", 1)[1] if blob else "blob.core.windows.net"
    if check.status is Status.SKIP and "does not exist" in check.detail:
        return {
            "registry": check.target.host.split(".", 1)[0],
            "path": f"*.{blob_suffix}",
            "host": None,
            "probed": False,
            "evidence": [check.id, f"dns:{check.target.host}"],
            "why": (
                f"{check.target.host} does not exist, so the registry has no dedicated data endpoint or private"
                f" endpoint: a pull downloads layers from the registry's own storage account (*.{blob_suffix}),"
                " whose name only an authenticated pull learns (a redirect). That path is not probed."
            ),
        }
    if check.status is Status.SKIP:
        return None
    return {
        "registry": check.target.host.split(".", 1)[0],
        "path": check.target.host,
        "host": check.target.host,
        "probed": True,
        "evidence": [check.id],
        "why": f"{check.target.host} exists: layers come from the registry's data endpoint, probed as {check.id}"
        f" ({check.status.value}).",
    }
