"""Interpret a run: judge the raw results against what Azure ML expects, then diagnose the causes.

The judge (checks.judge and the services' own judges) and the diagnosis (checks.diagnosis) know
nothing of each other; this module runs one after the other and says what the report's
``environment`` gains from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from checks.addresses import parse_networks
from checks.diagnosis import Evidence, diagnose
from checks.evidence import decide_private_endpoints, expected
from checks.inputs import Inputs
from checks.judge import (
    apply_absent_names,
    apply_dns_expectation,
    apply_private_destinations,
    apply_private_endpoint_forms,
    apply_tls_issuers,
    apply_wireserver_user,
)
from checks.localfacts import LocalFacts
from checks.plan import Plan
from checks.registry import registry_layer_path
from checks.resources import apply_file_share_answers, apply_resource_answers
from checks.verdicts import rejudge
from checks.websocket import apply_websocket_answers
from probe.model import CheckResult, Confidence, Finding, Status
from probe.reasons import Reason

# Checks the run cut off before they finished: they decide nothing, and nothing is judged against them.
CUT_OFF = (Reason.INTERRUPTED, Reason.DEADLINE_EXCEEDED)


class Interpretation(NamedTuple):
    results: list[CheckResult]
    findings: list[Finding]
    # What the report's environment gains: private_endpoints, variants, registry_layer_path, notes.
    environment: dict[str, Any]


def _not_judged(reference: CheckResult, configured: CheckResult) -> None:
    """The reference resolver's answer means something only beside the configured resolver's; with that one cut
    off, neither is judged, and neither can be evidence of a cause (the probe's own answer stays in ``observed``)."""
    if reference.status is Status.SKIP:
        return
    rejudge(
        reference,
        Status.SKIP,
        configured.reason,
        f"Not judged: the configured resolver's check of the same name was cut off ({configured.reason.value}), and"
        " this answer means something only beside it.",
        Confidence.UNCONFIRMED,
    )


def interpret(
    results: list[CheckResult],
    plan: Plan,
    inputs: Inputs,
    *,
    local: LocalFacts | None = None,
    dns_servers: Sequence[str] = (),
) -> Interpretation:
    """Judge ``results`` in place, then diagnose them. ``dns_servers``: --dns-server as given (empty: the
    system resolver, which ``local`` describes)."""
    by_id = {r.id: r for r in results}
    extra = parse_networks(inputs.private_networks)
    verdicts = decide_private_endpoints(plan, inputs, by_id, extra)
    environment: dict[str, Any] = {"private_endpoints": {name: v.as_dict() for name, v in verdicts.items()}}
    notes: dict[str, list[str]] = {}
    if verdicts:
        notes["Private endpoints (per resource, from DNS unless you said)"] = [v.line() for v in verdicts.values()]
    apply_private_endpoint_forms(results, verdicts)
    apply_absent_names(results, verdicts, extra)
    for exp in plan.dns_expectations:
        configured = by_id.get(exp.check_id)
        reference = by_id.get(exp.reference_check_id) if exp.reference_check_id else None
        if configured is not None and configured.reason in CUT_OFF and reference is not None:
            _not_judged(reference, configured)
        if reference is not None and reference.reason in CUT_OFF:
            reference = None  # nothing to compare with: the configured answer is judged on its own
        if configured is not None and configured.status is Status.SKIP:
            continue
        apply_dns_expectation(exp, configured, reference, extra, expected(exp, verdicts))
    apply_private_destinations(results, extra)
    apply_wireserver_user(results, local.euid if local is not None else None)
    apply_tls_issuers(results)
    apply_websocket_answers(results)
    apply_resource_answers(results)
    apply_file_share_answers(results)
    layers = registry_layer_path(results)
    if layers is not None:
        environment["registry_layer_path"] = layers
        notes["Registry image layers"] = [layers["why"]]
    if notes:
        environment["notes"] = notes
    environment["variants"] = {
        group: {cid: by_id[cid].status.value for cid in ids if cid in by_id}
        for group, ids in plan.variant_groups.items()
    }
    evidence = Evidence(
        results=results,
        plan=plan,
        inputs=inputs,
        local=local,
        dns_servers=dns_servers,
        private_endpoints=verdicts,
        registry_layers=layers,
    )
    return Interpretation(results, diagnose(evidence), environment)
