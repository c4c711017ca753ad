"""Read the anonymous answers of the workspace's own resources: storage, key vault, container registry.

The http prober (probe/probers/http.py) sends one request without credentials and records the answer; this
module knows what each service answers, as public sources document it, and so tells the network layer
(a firewall, public network access) from the identity layer (credentials everyone must bring).
Nothing here guesses: an answer no source documents is "the service answered" or "inconclusive".
Every code with its source is in docs/sources.md, "Resource answers". In short:

Azure Storage (blob, file, queue, table, dfs), asked with a challenge-capable x-ms-version:
  401 NoAuthenticationInformation + WWW-Authenticate: Bearer authorization_uri=... resource_id=...
      reached, authentication required (learn.microsoft.com/rest/api/storageservices/
      authorize-with-azure-active-directory#bearer-challenge). Whether the account's network rules are
      checked before this challenge is not documented, so the pass says the path works, no more.
  403 AuthorizationFailure ("This request is not authorized to perform this operation.")
      the account's network rules refuse this machine, or its public network access is disabled: the
      same answer for both, with no client address (AzureStorageExplorer#8769, #9150, #8183, #8344;
      Azure/azure-cli-extensions#8706; KodeKloud AZ-700 notes). "... by network security perimeter ..."
      is a perimeter's refusal (AzureStorageExplorer#8979).
  409 PublicAccessNotPermitted, 404 ResourceNotFound: the documented answers to an anonymous request
      without a challenge-capable version (same Learn page): the service answered, nothing more.
Azure Key Vault (GET /secrets?api-version=7.4):
  401 + WWW-Authenticate: Bearer authorization="...", resource="..." (Key Vault REST error codes: "If the
      header is missing, then the response must be 401"; azure-sdk-for-js test recordings), with
      x-ms-keyvault-network-info: addr=<the address the vault saw>. Every Key Vault answer carries
      x-ms-keyvault-service-version and x-ms-keyvault-region (the same azure-sdk-for-js recordings, as
      lab/servers/resources.py cites): the marks that tell the vault's own answer from a box's.
  403 innererror ForbiddenByFirewall, "Client address is not authorized and caller is not a trusted
      service ... Client address: <ip>" (rest-error-codes; hashicorp/terraform-provider-azurerm#4553).
  403 innererror ForbiddenByConnection, "Public network access is disabled and request is not from a
      trusted service nor via an approved private link." (microsoft/multimodal-ai#171; Azure/
      secrets-store-csi-driver-provider-azure#873; Azure/azure-cli#31406).
Azure Container Registry (GET /v2/, the registry API's version check: distribution spec, "API Version Check"):
  401 + WWW-Authenticate: Bearer realm="https://<acr>/oauth2/token",service="<acr>" (Azure CLI
      acr/_docker_utils.py requires exactly this of a reachable registry). The firewall is checked before
      credentials ("the challenge endpoint ... responded with a 403 ... because of a virtual network
      configuration or because access to the registry's public endpoint is not allowed": registry health
      error reference, CONNECTIVITY_FORBIDDEN_ERROR), so a 401 proves the network rules admit this machine.
  403 {"errors":[{"code":"DENIED","message":"client with IP '<ip>' is not allowed access ..."}]}: the
      registry's firewall, or its public network access disabled, which answers alike (Azure/acr#603, #633;
      docker/build-push-action#1214; support article "client IP address not allowed access").
Something else answered (the marks of a middlebox, never of the service):
  Via (RFC 9110 §7.6.3), Squid's Server and X-Squid-Error, Zscaler's Server (probe.probers.websocket.middlebox_signs);
  Azure Firewall's application-rule refusal, HTTP 470 "Action: Deny. Reason: No rule matched. Proceeding
  with default action." (public lab captures, research A4); 407 (RFC 9110 §15.5.8).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from checks.addresses import is_ip, is_private
from checks.services import SERVICE_NAMES
from checks.verdicts import Verdict, rejudge
from probe.model import CheckResult, Confidence, HttpFacts, Protocol, Status, bound_result
from probe.probers.websocket import middlebox_signs
from probe.reasons import Reason, ReasonCode

# Azure Firewall's application-rule refusal (research A4: "HTTP/1.1 470 status code 470 ... Action: Deny.
# Reason: No rule matched. Proceeding with default action.").
AZURE_FIREWALL_STATUS = 470
_AZURE_FIREWALL_BODY = re.compile(r"Action:\s*Deny\.", re.IGNORECASE)
_XML_CODE = re.compile(r"<Code>\s*([^<\s]+)\s*</Code>", re.IGNORECASE)
_XML_MESSAGE = re.compile(r"<Message>([^<]*)", re.IGNORECASE)
_KV_CLIENT = re.compile(r"Client address:\s*([0-9A-Fa-f:.]+)")
_ACR_CLIENT = re.compile(r"client with IP '([0-9A-Fa-f:.]+)'")
_BEARER_PARAM = re.compile(r'([A-Za-z_]+)=("([^"]*)"|[^\s,]+)')


@dataclass(frozen=True)
class ServiceError:
    """What a service's error document says: its code, message and (Key Vault) inner code."""

    code: str | None = None
    message: str | None = None
    inner: str | None = None


def service_error(facts: HttpFacts) -> ServiceError:
    """The error an answer carries: the x-ms-error-code header, an XML <Error>, or a JSON error document
    (Azure REST {"error": {...}}, the registry's {"errors": [...]}, Table's {"odata.error": {...}})."""
    header = facts.headers.get("x-ms-error-code")
    body = (facts.body or "").strip()
    if body.startswith("{"):
        try:
            doc: Any = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            err = doc.get("error") or doc.get("odata.error")
            if isinstance(err, dict):
                message = err.get("message")
                if isinstance(message, dict):
                    message = message.get("value")
                inner = err.get("innererror")
                return ServiceError(
                    header or _text(err.get("code")),
                    _text(message),
                    _text(inner.get("code")) if isinstance(inner, dict) else None,
                )
            errors = doc.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                return ServiceError(header or _text(errors[0].get("code")), _text(errors[0].get("message")))
    if body.startswith("<") and (code := _XML_CODE.search(body)):
        message = _XML_MESSAGE.search(body)
        return ServiceError(header or code.group(1), message.group(1).strip() if message else None)
    return ServiceError(header)


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def bearer_challenge(facts: HttpFacts) -> dict[str, str] | None:
    """The parameters of a Bearer challenge in WWW-Authenticate, or None. Storage writes them unquoted and
    space-separated, Key Vault and the registry quoted and comma-separated (research A1a); both are read."""
    value = facts.headers.get("www-authenticate") or ""
    at = value.lower().find("bearer")
    if at < 0 or facts.status != 401:
        return None
    params = {
        m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2)
        for m in _BEARER_PARAM.finditer(value[at + 6 :])
    }
    return params


def network_info_address(facts: HttpFacts) -> str | None:
    """The address Key Vault saw, from x-ms-keyvault-network-info ("conn_type=Ipv4;addr=...;...")."""
    for part in (facts.headers.get("x-ms-keyvault-network-info") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "addr" and is_ip(value):
            return value
    return None


def service_marks(judge: str, facts: HttpFacts, error: ServiceError) -> list[str]:
    """What in the answer shows the service itself wrote it (never what a proxy adds)."""
    h = facts.headers
    marks: list[str] = []
    if judge == "storage":
        marks += [f"{k}: {h[k]}" for k in ("x-ms-error-code", "x-ms-request-id") if k in h]
        if not marks and error.code and (facts.body or "").lstrip().startswith("<"):
            marks.append(f"<Code>{error.code}</Code>")
    elif judge == "key-vault":
        marks += [f"{k}: {h[k]}" for k in ("x-ms-keyvault-service-version", "x-ms-keyvault-region") if k in h]
        if not marks and "x-ms-request-id" in h and error.code:
            marks.append(f"x-ms-request-id: {h['x-ms-request-id']}")
    elif judge == "acr":
        if "docker-distribution-api-version" in h:
            marks.append(f"Docker-Distribution-Api-Version: {h['docker-distribution-api-version']}")
        if error.code in ("DENIED", "UNAUTHORIZED") and (facts.body or "").lstrip().startswith("{"):
            marks.append(f'{{"errors":[{{"code":"{error.code}"}}]}}')
    return marks


@dataclass
class Judged:
    status: Status
    reason: ReasonCode
    confidence: Confidence
    detail: str
    # The address the service says it saw (Key Vault, the registry); None when it does not say.
    seen: str | None = None


def peer_address(result: CheckResult) -> str | None:
    """The IP address the probe connected to (its ``peer``, "ip:port" or "[v6]:port"), or None."""
    host = (result.peer or "").rsplit(":", 1)[0].strip("[]")
    return host if host and is_ip(host) else None


def via_private_endpoint(result: CheckResult) -> bool:
    """The probe connected straight to a private address: the resource's private endpoint."""
    peer = peer_address(result)
    return result.route != "proxy" and peer is not None and is_private(peer)


def _where(result: CheckResult) -> str:
    peer = peer_address(result)
    if result.route == "proxy":
        return "through the proxy"
    if peer is not None:
        kind = "its private endpoint" if is_private(peer) else "its public endpoint"
        return f"at {peer} ({kind})"
    return ""


def _seen_phrase(seen: str | None, service: str, result: CheckResult) -> str:
    if seen is None or not is_ip(seen):
        return ""
    if result.route == "proxy":
        return f" The {service} saw {seen}: the address the proxy connects from (this request went through it)."
    if not is_private(seen):
        return f" The {service} saw this machine as {seen}, a public address: its egress (NAT, firewall or public IP)."
    if via_private_endpoint(result):
        return f" The {service} saw this machine as {seen}, through its private endpoint at {peer_address(result)}."
    return (
        f" The {service} saw this machine as {seen}, a private address on its public endpoint: the subnet reaches it"
        " over a service endpoint."
    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _judge_storage(r: CheckResult, facts: HttpFacts, err: ServiceError, name: str, relayed: str) -> Judged | None:
    what = f"storage account {name} ({r.target.host.split('.')[1]})"
    ask = f"the anonymous GET {r.target.path or '/'}"
    if err.code == "AuthorizationFailure" and facts.status == 403:
        said = f' ("{err.message.splitlines()[0]}")' if err.message else ""
        if err.message and "network security perimeter" in err.message:
            why = "a network security perimeter refuses this machine"
        else:
            why = "denied by the storage account's network rules or public network access is disabled"
        detail = (
            f"{_cap(what)} answered {ask} {_where(r)} with 403 AuthorizationFailure{said}: {why}. Azure Storage gives"
            " a firewall and disabled public network access the same answer, and does not say which address it"
            f" saw.{relayed}"
        )
        return Judged(Status.FAIL, Verdict.HTTP_NETWORK_DENIED, Confidence.CONFIRMED, detail)
    challenge = bearer_challenge(facts)
    if challenge is not None and ("resource_id" in challenge or "authorization_uri" in challenge):
        shown = f"resource_id={challenge['resource_id']}" if "resource_id" in challenge else "authorization_uri"
        code = f" {err.code}" if err.code else ""
        detail = (
            f"Reached {what}, which asks for credentials: {ask} got 401{code} with its bearer challenge ({shown})."
            " The path works; Azure Storage does not document whether its network rules are checked before this"
            f" challenge.{relayed}"
        )
        return Judged(Status.PASS, Verdict.HTTP_AUTH_REQUIRED, Confidence.LIKELY, detail)
    return None


def _judge_key_vault(r: CheckResult, facts: HttpFacts, err: ServiceError, name: str, relayed: str) -> Judged | None:
    what = f"key vault {name}"
    seen = network_info_address(facts)
    if facts.status == 403 and err.inner in ("ForbiddenByFirewall", "ForbiddenByConnection"):
        message = (err.message or "").splitlines()[0].strip() if err.message else ""
        if (m := _KV_CLIENT.search(err.message or "")) is not None and is_ip(m.group(1)):
            seen = m.group(1)
        said = f' ("{message}")' if message else ""
        if err.inner == "ForbiddenByConnection":
            detail = (
                f"{_cap(what)} refused the anonymous request {_where(r)} with 403 ForbiddenByConnection{said}:"
                f" its public network access is disabled, and this request did not come through an approved private"
                f" endpoint.{_seen_phrase(seen, 'vault', r)}{relayed}"
            )
            return Judged(Status.FAIL, Verdict.HTTP_PUBLIC_ACCESS_DISABLED, Confidence.CONFIRMED, detail, seen)
        detail = (
            f"{_cap(what)} refused the anonymous request {_where(r)} with 403 ForbiddenByFirewall{said}: its firewall"
            f" does not admit this machine.{_seen_phrase(seen, 'vault', r)}{relayed}"
        )
        return Judged(Status.FAIL, Verdict.HTTP_NETWORK_DENIED, Confidence.CONFIRMED, detail, seen)
    challenge = bearer_challenge(facts)
    if challenge is not None and ("resource" in challenge or "authorization" in challenge):
        shown = f"resource={challenge['resource']}" if "resource" in challenge else "authorization"
        detail = (
            f"Reached {what}, which asks for credentials: GET {r.target.path or '/'} got 401"
            f" with its bearer challenge ({shown}). The path works; Key Vault does not document whether its"
            f" firewall answers an anonymous request before this challenge.{_seen_phrase(seen, 'vault', r)}{relayed}"
        )
        return Judged(Status.PASS, Verdict.HTTP_AUTH_REQUIRED, Confidence.LIKELY, detail, seen)
    return None


def _judge_acr(r: CheckResult, facts: HttpFacts, err: ServiceError, name: str, relayed: str) -> Judged | None:
    what = f"container registry {name}"
    if facts.status == 403 and err.code == "DENIED":
        m = _ACR_CLIENT.search(err.message or "")
        seen = m.group(1) if m is not None and is_ip(m.group(1)) else None
        detail = (
            f'{_cap(what)} refused GET /v2/ {_where(r)} with 403 DENIED ("{(err.message or "").strip()}"): its firewall'
            " does not admit this machine, or its public network access is disabled; the registry answers both"
            f" alike.{_seen_phrase(seen, 'registry', r)}{relayed}"
        )
        return Judged(Status.FAIL, Verdict.HTTP_NETWORK_DENIED, Confidence.CONFIRMED, detail, seen)
    challenge = bearer_challenge(facts)
    if challenge is not None and "realm" in challenge:
        detail = (
            f"Reached {what}, which asks for credentials: GET /v2/ got 401 with its bearer"
            f" challenge (realm={challenge['realm']}). The registry checks its firewall before credentials, so"
            f" its network rules admit this machine.{relayed}"
        )
        return Judged(Status.PASS, Verdict.HTTP_AUTH_REQUIRED, Confidence.CONFIRMED, detail)
    return None


_JUDGES = {"storage": _judge_storage, "key-vault": _judge_key_vault, "acr": _judge_acr}


def judge_resource_answer(result: CheckResult) -> Judged | None:
    """Classify one anonymous answer of a workspace resource; None when there is no HTTP answer to read."""
    facts, judge = result.http, result.labels.get("judge")
    if facts is None or facts.status is None or judge not in _JUDGES:
        return None
    name = result.target.host.split(".", 1)[0]
    service = SERVICE_NAMES[judge]
    url = f"https://{result.target.host}{result.target.path or '/'}"
    body = facts.body or ""
    if facts.status == AZURE_FIREWALL_STATUS or (facts.status >= 400 and _AZURE_FIREWALL_BODY.match(body)):
        detail = (
            f"A firewall refused the request to the {service} {name} ({url}) itself: HTTP {facts.status}"
            f' "{body.strip()[:120]}", Azure Firewall\'s answer when no application rule allows the name.'
        )
        return Judged(Status.FAIL, Verdict.HTTP_INTERCEPTED, Confidence.CONFIRMED, detail)
    if facts.status == 407:
        detail = f"A proxy answered the request to the {service} {name} ({url}) with 407: it wants credentials."
        return Judged(Status.FAIL, Reason.PROXY_AUTH_REQUIRED, Confidence.CONFIRMED, detail)
    err = service_error(facts)
    marks = service_marks(judge, facts, err)
    if marks:
        relayed = ""
        if facts.via:
            relayed = (
                f" The answer came through a proxy (Via: {facts.via}), so the {service} saw the proxy's address,"
                " not this machine's."
            )
        judged = _JUDGES[judge](result, facts, err, name, relayed)
        if judged is not None:
            return judged
        code = f" {err.code}" if err.code else ""
        detail = (
            f"The {service} {name} answered the anonymous request to {url} itself (HTTP {facts.status}{code};"
            f" {'; '.join(marks)}), but not with the challenge or refusal its documentation describes: the path"
            f" works; what the answer says about its network rules is not documented.{relayed}"
        )
        return Judged(Status.PASS, Verdict.HTTP_SERVICE_ANSWERED, Confidence.UNCONFIRMED, detail)
    signs = middlebox_signs(facts)
    if signs:
        detail = (
            f"Something in between answered the request to the {service} {name} ({url}): HTTP {facts.status}"
            f" carrying {'; '.join(signs)}, and no mark of the {service} itself. The request never reached it."
        )
        return Judged(Status.FAIL, Verdict.HTTP_INTERCEPTED, Confidence.CONFIRMED, detail)
    server = f", Server: {facts.server}" if facts.server else ""
    detail = (
        f"The anonymous request to the {service} {name} ({url}) got HTTP {facts.status}{server}, with neither the"
        f" {service}'s marks (its request id, error code or challenge) nor a middlebox's: who answered cannot be"
        " told."
    )
    return Judged(Status.WARN, Verdict.HTTP_INCONCLUSIVE, Confidence.UNCONFIRMED, detail)


def apply_resource_answers(results: list[CheckResult]) -> None:
    """Judge every resource's anonymous answer (catalog rows with a ``judge``); in place.

    An http check that failed before any HTTP answer (DNS, TCP, proxy, TLS) with the same reason as the TLS
    check of the same host and port is that check's consequence: it is labelled so (``consequence_of``), and
    whatever finding explains the TLS check explains it too.
    """
    by_id = {r.id: r for r in results}
    for r in results:
        if r.target.protocol is not Protocol.HTTP or "judge" not in r.labels or r.status is Status.SKIP:
            continue
        if r.http is None or r.http.status is None:
            twin = by_id.get(f"tls:{r.target.host}:{r.target.port}")
            if twin is not None and twin.status is not Status.PASS and twin.reason is r.reason:
                r.labels["consequence_of"] = twin.id
            continue
        judged = judge_resource_answer(r)
        if judged is None:
            continue
        # The new detail quotes the service's own message: rejudge escapes and bounds it like every detail.
        rejudge(r, judged.status, judged.reason, judged.detail, judged.confidence)
        if judged.seen:
            r.labels["seen_address"] = judged.seen


# Azure Files checks the account's SMB settings at session setup, not at NEGOTIATE ("these settings are checked
# when an SMB session is established and if not met, the SMB session setup fails with the error
# 'STATUS_ACCESS_DENIED'": learn.microsoft.com/azure/storage/files/files-smb-protocol), and has been seen to agree
# AES-128-GCM with a client that offers it first although the account allows only AES-256-GCM (linux-cifs
# thread "mount.cifs fails to negotiate AES-256-GCM ...", Oct 2025).
_FILES_CAVEAT = (
    " Azure Files checks the account's SMB settings (versions, channel encryption, authentication) only when the"
    " session is set up, and has been seen to agree AES-128-GCM here even when the account allows only AES-256-GCM"
    " (then the mount fails with error 13): this NEGOTIATE cannot show those settings."
)


def apply_file_share_answers(results: list[CheckResult]) -> None:
    """Add to an Azure Files NEGOTIATE pass what it cannot show about the account's SMB settings; in place."""
    for r in results:
        if r.target.protocol is not Protocol.SMB or r.labels.get("resource") != "storage-file":
            continue
        if r.status is Status.PASS and r.smb is not None and r.smb.cipher == "AES-128-GCM":
            r.detail += _FILES_CAVEAT
            bound_result(r)
