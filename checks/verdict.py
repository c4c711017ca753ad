"""Replace a probe's verdict with the knowledge layer's, keeping what the probe itself said.

A probe reports what it saw ("resolved to 20.60.1.5 via ..."); judging it against what Azure ML
expects may turn that into a failure ("should be private"). The report shows both: the verdict in
``status``/``reason``/``detail``, the probe's own reason and sentence in ``observed``.
"""

from __future__ import annotations

from probe.model import CheckResult, Confidence, Observed, Status, bound_result
from probe.reasons import ReasonCode


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
