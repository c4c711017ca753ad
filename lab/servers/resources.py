"""How the workspace's resources answer an anonymous request, admitted or refused, as public sources show.

``resource_answer`` builds the answer of a storage account, key vault or container registry to a request
without credentials, in one of three states:

* ``allow``: the network admits the caller, so the service asks for credentials;
* ``firewall``: its network rules (selected networks) refuse the caller;
* ``public-access-disabled``: public network access is off (storage and the registry answer this exactly as a
  firewall refusal; the key vault answers ForbiddenByConnection).

Traffic that arrives through the resource's private endpoint is admitted whatever the state ("traffic from
the associated virtual network is always allowed, even if public network access is disabled on the storage
account": MicrosoftDocs/azure-docs PR #128038, storage-private-endpoints.md), which the front end decides from
the address the request arrived on. Sources, per answer:

Storage. Anonymous request with x-ms-version at or past the service's first bearer-challenge version (blob and
queue 2019-12-12, dfs 2017-11-09, file 2022-11-02, table 2020-12-06): 401 NoAuthenticationInformation with
``WWW-Authenticate: Bearer authorization_uri=https://login.microsoftonline.com/<tenant>/oauth2/authorize
resource_id=https://storage.azure.com``, unquoted and space-separated; older or no version: 409
PublicAccessNotPermitted (learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory,
"Bearer challenge"; the Azure/azure-storage-azcopy capture of the same header). The XML body and
``x-ms-error-code``: "Common REST API error codes" (NoAuthenticationInformation, "Server failed to authenticate
the request. Please refer to the information in the www-authenticate header."). Refused: 403
AuthorizationFailure, "This request is not authorized to perform this operation.", ``server:
Microsoft-HTTPAPI/2.0``, no client address (AzureStorageExplorer#8769, #9150; KodeKloud AZ-700 notes for an
anonymous curl; azure-cli-extensions#8706 for disabled public access). ``Server: Windows-Azure-Blob/1.0
Microsoft-HTTPAPI/2.0`` on blob's own answers: blog.stigok.com 2022-03-09. The dfs endpoint writes errors as
JSON ({"error": {"code", "message"}}: Data Lake Storage REST API, DataLakeStorageError); Table as OData JSON
({"odata.error": {"code", "message": {"lang", "value"}}}: Table service error codes).

Key Vault. 401 with ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
resource="https://vault.azure.net"``, ``x-ms-keyvault-region``, ``x-ms-keyvault-service-version``,
``x-ms-keyvault-network-info: conn_type=Ipv4;addr=<client>;act_addr_fam=InterNetwork;`` and
{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}
(azure-sdk-for-js Key Vault test recordings; a Dec 2021 nock recording for the AKV10000 text). Refused by the
firewall: 403 {"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a
trusted service.\\r\\nClient address: <ip>\\r\\n...Vault: <name>;location=<region>","innererror":{"code":
"ForbiddenByFirewall"}}} (hashicorp/terraform-provider-azurerm#4553; Key Vault REST error codes). Public access
disabled: 403 ... "Public network access is disabled and request is not from a trusted service nor via an
approved private link." ... innererror ForbiddenByConnection (microsoft/multimodal-ai#171;
Azure/secrets-store-csi-driver-provider-azure#873). What a refusal says on its "Caller:" line for a request
without a token is not published, so the lab leaves that line out; its headers are not published either, so
only ``x-ms-request-id`` (Azure's common response header) is sent.

Container Registry. ``GET /v2/``: 401 with ``Www-Authenticate: Bearer realm="https://<registry>/oauth2/token",
service="<registry>"`` and ``Docker-Distribution-Api-Version: registry/2.0`` (Azure CLI acr/_docker_utils.py
and its test mock; Azure/acr docs/AAD-OAuth.md; the exact /v2/ body is not published: the UNAUTHORIZED errors
document of the other anonymous endpoints is used). Refused: 403
{"errors":[{"code":"DENIED","message":"client with IP '<ip>' is not allowed access. Refer
https://aka.ms/acr/firewall to grant access."}]} (docker/build-push-action#1214, Azure/acr#603), the same for
disabled public access (support article "client IP address not allowed access").
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping

from aiohttp import web

KINDS = ("storage", "key-vault", "acr")
MODES = ("allow", "firewall", "public-access-disabled")
# A made-up tenant for the lab's challenges (the real one is the workspace's Entra ID tenant).
LAB_TENANT = "00000000-0000-4000-8000-00000000a11b"
LAB_REGION = "eastus"
# First x-ms-version that answers an anonymous request with a bearer challenge, per storage service.
STORAGE_CHALLENGE_FROM = {
    "blob": "2019-12-12",
    "queue": "2019-12-12",
    "dfs": "2017-11-09",
    "file": "2022-11-02",
    "table": "2020-12-06",
}
_HTTPAPI = "Microsoft-HTTPAPI/2.0"


def _request_id() -> str:
    return str(uuid.uuid4())


def _time() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _storage_error(service: str, status: int, code: str, message: str, headers: dict[str, str]) -> web.Response:
    request_id = headers["x-ms-request-id"]
    text = f"{message}\nRequestId:{request_id}\nTime:{_time()}"
    headers = {**headers, "x-ms-error-code": code}
    if service == "dfs":
        body = json.dumps({"error": {"code": code, "message": text}})
        return web.Response(status=status, text=body, content_type="application/json", headers=headers)
    if service == "table":
        body = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": text}}})
        return web.Response(status=status, text=body, content_type="application/json", headers=headers)
    xml = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{text}</Message></Error>'
    return web.Response(status=status, text=xml, content_type="application/xml", headers=headers)


def storage_answer(request: web.Request, service: str, admitted: bool) -> web.Response:
    headers = {"x-ms-request-id": _request_id(), "Server": _HTTPAPI}
    if not admitted:
        return _storage_error(
            service, 403, "AuthorizationFailure", "This request is not authorized to perform this operation.", headers
        )
    version = request.headers.get("x-ms-version", "")
    if service == "blob":
        headers["Server"] = f"Windows-Azure-Blob/1.0 {_HTTPAPI}"
    if version:
        headers["x-ms-version"] = version
    if version and version >= STORAGE_CHALLENGE_FROM.get(service, "2019-12-12"):
        headers["WWW-Authenticate"] = (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{LAB_TENANT}/oauth2/authorize"
            " resource_id=https://storage.azure.com"
        )
        message = (
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."
        )
        return _storage_error(service, 401, "NoAuthenticationInformation", message, headers)
    return _storage_error(
        service, 409, "PublicAccessNotPermitted", "Public access is not permitted on this storage account.", headers
    )


def key_vault_answer(request: web.Request, vault: str, mode: str, admitted: bool, client: str) -> web.Response:
    if admitted:
        headers = {
            "WWW-Authenticate": (
                f'Bearer authorization="https://login.microsoftonline.com/{LAB_TENANT}", resource="https://vault.azure.net"'
            ),
            "x-ms-keyvault-region": LAB_REGION,
            "x-ms-keyvault-service-version": "1.9.195.1",
            "x-ms-keyvault-network-info": f"conn_type=Ipv4;addr={client};act_addr_fam=InterNetwork;",
            "x-ms-request-id": _request_id(),
        }
        body = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
        return web.json_response(body, status=401, headers=headers)
    where = f"Vault: {vault};location={LAB_REGION}"
    if mode == "public-access-disabled":
        message = (
            "Public network access is disabled and request is not from a trusted service nor via an approved private"
            f" link.\r\n{where}"
        )
        inner = "ForbiddenByConnection"
    else:
        message = (
            "Client address is not authorized and caller is not a trusted service."
            f"\r\nClient address: {client}\r\n{where}"
        )
        inner = "ForbiddenByFirewall"
    refusal = {"error": {"code": "Forbidden", "message": message, "innererror": {"code": inner}}}
    return web.json_response(refusal, status=403, headers={"x-ms-request-id": _request_id()})


def registry_answer(request: web.Request, host: str, admitted: bool, client: str) -> web.Response:
    if admitted:
        headers = {
            "Www-Authenticate": f'Bearer realm="https://{host}/oauth2/token",service="{host}"',
            "Docker-Distribution-Api-Version": "registry/2.0",
        }
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]}
        return web.json_response(body, status=401, headers=headers)
    message = f"client with IP '{client}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    return web.json_response({"errors": [{"code": "DENIED", "message": message}]}, status=403)


def resource_answer(request: web.Request, host: str, kind: str, mode: str, *, private_endpoint: bool) -> web.Response:
    """The answer of resource ``host`` (``kind``) in state ``mode``; ``private_endpoint``: the request arrived on
    the resource's private endpoint, which is admitted whatever the state."""
    admitted = mode == "allow" or private_endpoint
    client = request.remote or ""
    name = host.split(".", 1)[0]
    if kind == "storage":
        return storage_answer(request, host.split(".")[1], admitted)
    if kind == "key-vault":
        return key_vault_answer(request, name, mode, admitted, client)
    return registry_answer(request, host, admitted, client)


def check_modes(modes: Mapping[str, str]) -> None:
    for kind, mode in modes.items():
        if kind not in KINDS or mode not in MODES:
            raise ValueError(f"resource mode {kind}={mode}: kinds {KINDS}, modes {MODES}")
