"""How a report is worded and grouped for people and dashboards: chosen by the layer that planned it.

The engine does not know what the checks are for, so it does not name the verdict ("connectivity to
what?"), nor know which labels of a check are worth grouping by. The knowledge layer hands a
``ReportStyle`` to the renderers through the command line; ``GENERIC`` is the engine's own, for
ad-hoc ``--target`` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_HEADLINES = {
    "ok": "OK: every required path works",
    "warning": "WARNING: something needs attention",
    "critical": "CRITICAL: a required path is broken",
    "unknown": "UNKNOWN: the run could not decide",
}


@dataclass(frozen=True)
class ReportStyle:
    # The verdict line's head, by overall status ("ok", "warning", "critical", "unknown").
    headlines: Mapping[str, str] = field(default_factory=lambda: dict(_HEADLINES))
    # The table groups checks by the first of these labels a check has ("targets" when none).
    group_labels: tuple[str, ...] = ()
    # Check labels worth a Prometheus label of their own (identities, never free text).
    metric_labels: tuple[str, ...] = ()
    # Environment variable names (a regular expression) the support bundle keeps besides the engine's own.
    bundle_env: str = ""


GENERIC = ReportStyle()
