"""The workspace services asked anonymously over HTTP (storage, key vault, registry): their names and the
response headers worth keeping. Plain data, imported by the plan without the probers behind the judges
(checks/resources.py reads the answers)."""

from __future__ import annotations

# Response headers worth recording for each service, besides those every http check keeps.
KEEP_HEADERS: dict[str, tuple[str, ...]] = {
    "storage": ("x-ms-error-code", "x-ms-version"),
    "key-vault": ("x-ms-keyvault-network-info", "x-ms-keyvault-region", "x-ms-keyvault-service-version"),
    "acr": ("docker-distribution-api-version",),
}
SERVICE_NAMES = {"storage": "storage account", "key-vault": "key vault", "acr": "container registry"}


def keep_headers(judge: str | None) -> tuple[str, ...]:
    return KEEP_HEADERS.get(judge or "", ())
