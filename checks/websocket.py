"""Judge the websocket answers of Microsoft-operated hosts (the compute-instance front end) against
what that front end really answers an anonymous client.

The probe (probe/probers/websocket.py) classifies what any server says; this module knows which answers come
from Azure ML. The compute-instance front end authenticates every request, so an anonymous upgrade is
never answered 101:
  * "User ... does not have access to compute instance ... Only the creator can access a compute
    instance" (MicrosoftDocs/azure-docs#52934, MicrosoftLearning/DP100#20);
  * the websocket endpoint answers 403 to callers that are not authorised or not on the private link
    (microsoft/vscode-tools-for-ai#885, #2077, #1976, #2501).
The exact status of that refusal is not published (real-world-azure.md Q1), so every plausible one is
accepted when the answer carries the marks of Azure: a redirect to the Entra ID or studio sign-in
(login.microsoftonline.com, ml.azure.com and their sovereign-cloud twins), or an Azure request-id
header (x-ms-request-id, x-ms-correlation-request-id: learn.microsoft.com/rest/api/azure/ "Common
parameters and headers"), and no Via (RFC 9110 §7.6.3: a proxy adds Via to what it forwards).

Stripped is called only on evidence (the probe's ws_intercepted, ws_proxy_auth_required,
ws_upgrade_ignored, ws_reset) or a block page: an HTML refusal, without Azure's marks, that only the
upgrade got. Everything else that does not prove the path is inconclusive, never a failure.

Unless the TLS session is sealed to Microsoft: verified, the leaf issued by a CA Azure uses
(checks.issuers). A wss:// upgrade can only be stripped by a box that decrypts it (docs/sources.md,
"Websocket and TLS"), and nothing in between could read this one, so whatever answered it without a
middlebox's sign is Microsoft's endpoint. A refusal (a redirect, 401 or 403, an HTML page or not) is
then the front end asking for credentials: a pass, unconfirmed, since the front end's exact answer is
not published and the vscode-tools-for-ai reports show it answering the websocket 403 while browsers
are sent to sign in. A 2xx or a reset is then the front end's too: inconclusive, never "stripped".
"""

from __future__ import annotations

from urllib.parse import urlsplit

from checks.issuers import is_azure_issuer, issuer_cn
from checks.verdicts import rejudge
from probe.model import CheckResult, Confidence, HttpFacts, Protocol, Status
from probe.probers.websocket import demands_auth, middlebox_signs, same_answer
from probe.reasons import Reason

# Where the front end sends an unauthenticated browser: Entra ID sign-in and the studio, per cloud
# (login hosts: the catalog's entra-id rows; studio hosts: the catalog's studio rows).
SIGN_IN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "ml.azure.com",
        "login.microsoftonline.us",
        "ml.azure.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "studio.ml.azure.cn",
    }
)
AZURE_ID_HEADERS = ("x-ms-request-id", "x-ms-correlation-request-id")
# The answers the generic probe could not settle, which knowing the front end can.
_UNSETTLED = (Reason.WS_AUTH_REQUIRED, Reason.WS_INCONCLUSIVE, Reason.WS_UPGRADE_REJECTED)
_RELAYED = (
    " The answer itself is the Azure ML front end's ({marks}), relayed by a proxy that decrypts the connection;"
    " such proxies drop Upgrade unless told to pass it (Squid's default: squid-cache.org/Doc/config/"
    "http_upgrade_request_protocols), and without credentials it cannot be confirmed which this one does."
)


def _sign_in_host(facts: HttpFacts) -> str | None:
    location = facts.headers.get("location")
    if not location:
        return None
    try:
        host = (urlsplit(location).hostname or "").lower()
    except ValueError:
        return None
    return host if host in SIGN_IN_HOSTS else None


def azure_marks(facts: HttpFacts, *, relayed: bool = False) -> list[str]:
    """What in an answer shows the Azure ML front end wrote it; empty if anything shows a middlebox
    (unless ``relayed``: then only what the front end wrote is looked at)."""
    if middlebox_signs(facts) and not relayed:
        return []
    marks = [f"{h}: {facts.headers[h]}" for h in AZURE_ID_HEADERS if h in facts.headers]
    host = _sign_in_host(facts)
    if host is not None:
        marks.insert(0, f"a redirect to {host}")
    return marks


def _is_block_page(facts: HttpFacts) -> bool:
    """An HTML refusal only the upgrade got (the plain GET was answered differently): a box reacting to it."""
    html = facts.headers.get("content-type", "").lower().startswith("text/html")
    differs = facts.plain_get is not None and not same_answer(facts, facts.plain_get)
    return html and facts.status in (403, 200) and differs


_REFUSALS = frozenset({301, 302, 303, 307, 308, 401, 403})


def _sealed_issuer(result: CheckResult) -> str | None:
    """The issuer of a verified leaf from a CA Azure uses: the TLS session ends at Microsoft. Else None."""
    tls = result.tls
    if tls is None or not tls.verified or tls.leaf is None or not is_azure_issuer(tls.leaf):
        return None
    return issuer_cn(tls.leaf)


def _judge_sealed(result: CheckResult, issuer: str) -> bool:
    """Settle an answer that came through a session sealed to Microsoft; False when it is not one to settle
    here (an answer with a middlebox's sign, a 407, Azure's own marks: the checks below weigh those)."""
    facts = result.http
    url = f"wss://{result.target.host}{result.target.path or '/'}"
    sealed = (
        f"TLS to it was verified and its certificate was issued by {issuer}, a CA Azure uses, so nothing in"
        " between could read the upgrade"
    )
    if result.reason in (Reason.WS_RESET, Reason.WS_UPGRADE_IGNORED):
        got = "a closed connection" if facts is None or facts.status is None else _answer(facts)
        detail = (
            f"The anonymous upgrade to {url} got {got} instead of 101, from Microsoft's endpoint itself: {sealed}."
            " Whether a signed-in client gets a websocket cannot be told without credentials."
        )
        rejudge(result, Status.WARN, Reason.WS_INCONCLUSIVE, detail, Confidence.UNCONFIRMED)
        return True
    if facts is None or facts.status not in _REFUSALS or result.reason not in _UNSETTLED:
        return False
    if middlebox_signs(facts) or azure_marks(facts):
        return False
    detail = (
        f"Reached the Azure ML front end, which refuses an anonymous upgrade: {url} answered {_answer(facts)},"
        f" and {sealed}. Its exact answer to an anonymous client is not published, so this is unconfirmed;"
        " only credentials can get a 101."
    )
    rejudge(result, Status.PASS, Reason.WS_AUTH_REQUIRED, detail, Confidence.UNCONFIRMED)
    return True


def _answer(facts: HttpFacts) -> str:
    shown = f"HTTP {facts.status}"
    if "location" in facts.headers:
        shown += f" to {facts.headers['location']}"
    return shown


def judge_websocket(result: CheckResult) -> None:
    """Settle a front-end websocket answer the generic probe left open. Changes ``result`` in place."""
    issuer = _sealed_issuer(result)
    if issuer is not None and _judge_sealed(result, issuer):
        return
    facts = result.http
    if facts is None or facts.status is None:
        return
    if result.reason is Reason.WS_INTERCEPTED and facts.via and middlebox_signs(facts) == [f"Via: {facts.via}"]:
        marks = azure_marks(facts, relayed=True)
        if marks:
            # Only Via says a box is there, and what it relayed is Azure's: likely stripped, not proven.
            result.confidence = Confidence.LIKELY
            result.detail += _RELAYED.format(marks="; ".join(marks))
        return
    if result.reason not in _UNSETTLED:
        return
    host = result.target.host
    url = f"wss://{host}{result.target.path or '/'}"
    marks = azure_marks(facts)
    if marks and demands_auth(facts, host):
        detail = (
            f"Reached the Azure ML front end, which requires authentication: the anonymous upgrade to {url} got"
            f" {_answer(facts)} ({'; '.join(marks)}). The front end never answers an anonymous upgrade with 101;"
            " the path from this machine carries the upgrade to it."
        )
        rejudge(result, Status.PASS, Reason.WS_AUTH_REQUIRED, detail, Confidence.LIKELY)
        return
    if not marks and _is_block_page(facts):
        plain = facts.plain_get
        assert plain is not None
        detail = (
            f"A block page answered the upgrade to {url}: HTTP {facts.status}, HTML from"
            f" {facts.server or 'an unnamed server'} without any mark of the Azure ML front end, while a plain GET"
            f" of the same URL got HTTP {plain.status}: something in between refuses websockets."
        )
        rejudge(result, Status.FAIL, Reason.WS_INTERCEPTED, detail, Confidence.CONFIRMED)
        return
    if marks:
        why = f"the Azure ML front end ({'; '.join(marks)}) answered {_answer(facts)}, not a sign-in demand"
    else:
        why = (
            f"the answer ({_answer(facts)}{f', Server: {facts.server}' if facts.server else ''}) carries no mark of"
            " the Azure ML front end (no x-ms-request-id, no redirect to its sign-in), so it cannot be told whether"
            " the front end or something in between sent it"
        )
    detail = f"The anonymous upgrade to {url} is not proven either way: {why}."
    rejudge(result, Status.WARN, Reason.WS_INCONCLUSIVE, detail, Confidence.UNCONFIRMED)


def apply_websocket_answers(results: list[CheckResult]) -> None:
    for r in results:
        if r.target.protocol is Protocol.WEBSOCKET and r.labels.get("operator") == "microsoft":
            judge_websocket(r)
