"""The reason codes this layer adds, and how a verdict replaces a probe's.

The engine's probers report what they saw (``probe.reasons.Reason``); judging a result against
what the catalog expects (a private endpoint's address, the issuers a service uses, what a service
answers an anonymous request) can turn it into one of these. They are reason codes like any other
in the report (``checks[].reason``): the same published contract, the same strings.

``rejudge`` gives a result its new verdict and keeps what the probe itself said ("resolved to
20.60.1.5 via ...") in ``observed``, so the report shows both: the verdict in
``status``/``reason``/``detail``, the probe's own reason and sentence beside it.
"""

from __future__ import annotations

from probe.model import CheckResult, Confidence, Observed, Status, bound_result
from probe.reasons import INFERRED, PASSES, RETIRED, UNDECIDED, WARNS, ReasonCode


class Verdict(ReasonCode):
    DNS_PUBLIC_ADDRESS = (
        "dns_public_address",
        "The name resolved to a public address where a private endpoint was expected.",
    )
    DNS_PRIVATE_ADDRESS = (
        "dns_private_address",
        "The name resolved to a private address where a public one was expected.",
        WARNS,
    )
    DNS_RESOLVER_MISMATCH = (
        "dns_resolver_mismatch",
        "The configured resolver and the reference resolver disagree.",
        WARNS,
    )
    DNS_MISSING_PRIVATELINK_CNAME = (
        "dns_missing_privatelink_cname",
        "Retired in schema 1.5, never produced: a private answer without the privatelink CNAME (a manual DNS"
        " record) passes; a public answer where a private endpoint is expected is dns_public_address.",
        RETIRED,
    )
    TLS_UNEXPECTED_ISSUER = (
        "tls_unexpected_issuer",
        "The chain is trusted here, but its issuer is not one the host's operator uses (or is the CA seen"
        " re-signing other hosts): TLS inspection.",
        WARNS,
    )
    HTTP_AUTH_REQUIRED = (
        "http_auth_required",
        "Reached, authentication required: the service answered the anonymous request with its own documented"
        " authentication challenge. The path works.",
        PASSES | INFERRED,
    )
    HTTP_SERVICE_ANSWERED = (
        "http_service_answered",
        "The service itself answered (its own error), but not with a documented challenge or refusal: the path"
        " works; what the answer says about access is not documented.",
        PASSES | UNDECIDED,
    )
    HTTP_NETWORK_DENIED = (
        "http_network_denied",
        "The service answered and refused the request because of where it came from: its firewall (network"
        " rules) does not admit this machine (for some services, or its public network access is disabled).",
    )
    HTTP_PUBLIC_ACCESS_DISABLED = (
        "http_public_access_disabled",
        "The service answered that its public network access is disabled: only its private endpoints (or trusted"
        " services) may reach it.",
    )
    HTTP_INTERCEPTED = (
        "http_intercepted",
        "Something in between (a proxy, a firewall's block page, Azure Firewall's 470) answered instead of the"
        " service: the request never reached it.",
    )
    HTTP_INCONCLUSIVE = (
        "http_inconclusive",
        "An answer without the service's marks and without a middlebox's: who sent it cannot be told.",
        WARNS | UNDECIDED,
    )


def rejudge(
    result: CheckResult, status: Status, reason: ReasonCode, detail: str, confidence: Confidence | None = None
) -> None:
    """Give ``result`` a new verdict, in place. The probe's reason and detail go to ``observed`` the first
    time they are replaced (a detail that only grows keeps the probe's words in it, and needs no copy)."""
    if result.observed is None and (reason is not result.reason or result.detail not in detail):
        result.observed = Observed(reason=result.reason, detail=result.detail)
    result.status, result.reason, result.detail = status, reason, detail
    if confidence is not None:
        result.confidence = confidence
    # The new detail may quote a peer (a service's own message): escaped and bounded like every detail.
    bound_result(result)
