"""A report as Prometheus text exposition (node_exporter textfile collector, Pushgateway).

Choices, for alerting rules to rely on (blackbox_exporter's conventions):

* ``amlprobe_check_success`` is 1 when the path works (pass, or warn: the path works but something
  deserves a look, e.g. a certificate close to expiry) and 0 when it fails, like blackbox_exporter's
  ``probe_success``. Its labels are the check's identity only, so a check keeps one series whatever
  happens to it: ``amlprobe_check_success == 0`` alerts, and ``changes()``/``resets()`` see flaps.
  Skipped checks were not probed, so they have no ``success`` series (a 0 would page someone for a
  check that never ran).
* ``amlprobe_check_status`` is an enum-style gauge: one series per possible status (pass, warn,
  fail, skip), 1 for the check's current one. Its series set never changes either.
* ``amlprobe_check_reason_info`` is an info metric (value 1) carrying the stable reason code; join it
  on ``id`` when an alert wants to say why (``* on(id) group_left(reason)``). It is the only per-check
  family whose series change when the outcome does, which is what an info metric is for.
* ``amlprobe_check_latency_seconds`` is exported for working paths only: the time a failure took
  is its timeout, not a latency.
* ``amlprobe_run_status_info`` has one series per possible status, 1 for the run's, 0 otherwise,
  so ``amlprobe_run_status_info{status="critical"} == 1`` alerts without absent() tricks.
* Labels carry identities and stable codes only (id, protocol, host, port and a few short caller
  labels), never free text, to keep cardinality bounded. Every series of a family has the same
  label names (empty when a check has no such label): the Pushgateway rejects families whose
  series disagree.

Until metrics version 2 (report schema 2.0) one family, ``amlprobe_check_up``, carried status and
reason as labels, so every change of state started a new series; docs/report-contract.md says how
to migrate.
"""

from __future__ import annotations

import asyncio
import base64
import math
import platform
import re
from collections.abc import Iterable, Sequence

from probe import __version__
from probe.model import CheckResult, OverallStatus, Report, Severity, Status

PREFIX = "amlprobe_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_STATUS_CODE = {
    OverallStatus.OK: 0,
    OverallStatus.WARNING: 1,
    OverallStatus.CRITICAL: 2,
    OverallStatus.UNKNOWN: 3,
}
UP = {Status.PASS: 1, Status.WARN: 1, Status.FAIL: 0}
_LABEL_VALUE_MAX = 80
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_IDENTITY = ("id", "protocol", "host", "port")
_REQUIRED = "required"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Family:
    def __init__(self, name: str, help_text: str) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.samples: list[tuple[tuple[tuple[str, str], ...], float]] = []
        self._seen: set[tuple[tuple[str, str], ...]] = set()

    def add(self, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        key = tuple(labels)
        # Duplicate series make the whole exposition invalid; the first one wins.
        if key in self._seen:
            return
        self._seen.add(key)
        self.samples.append((key, value))

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            body = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
            out.append(f"{self.name}{{{body}}} {format_value(value)}" if body else f"{self.name} {format_value(value)}")
        return out


def _extra_label_keys(checks: Sequence[CheckResult], keys: Sequence[str]) -> list[str]:
    present = {k for c in checks for k in c.labels}
    if any(c.required is not None for c in checks):
        present.add(_REQUIRED)
    return [k for k in keys if k in present and _LABEL_NAME.match(k) and k not in _IDENTITY and not k.startswith("__")]


def _label(c: CheckResult, key: str) -> str:
    if key == _REQUIRED:  # a typed field of the check (schema 2.0), shown as its label always was
        return "" if c.required is None else str(c.required).lower()
    return _short(c.labels.get(key, ""))


def _short(value: str) -> str:
    # A label value is an identity: long or multi-line text is not one.
    return value if len(value) <= _LABEL_VALUE_MAX and "\n" not in value else ""


def render_prometheus(report: Report, *, label_keys: Sequence[str] = ()) -> str:
    """The report's metrics in text exposition format 0.0.4, families and series in a stable order.

    ``label_keys``: check labels worth a label of their own in dashboards (the planning layer's
    ReportStyle.metric_labels); anything else (a purpose, a doc link) is free text and stays out.
    """
    checks = sorted(report.checks, key=lambda c: c.id)
    extra = _extra_label_keys(checks, label_keys)

    def identity(c: CheckResult) -> list[tuple[str, str]]:
        labels = [
            ("id", c.id),
            ("protocol", c.target.protocol.value),
            ("host", c.target.host),
            ("port", "" if c.target.port is None else str(c.target.port)),
        ]
        return labels + [(k, _label(c, k)) for k in extra]

    success = _Family(
        "check_success", "1 if the checked path works (pass or warn), 0 if it fails; skipped checks are absent."
    )
    check_status = _Family("check_status", "1 for the check's status (pass, warn, fail, skip), 0 for the others.")
    reason = _Family("check_reason_info", "The check's outcome as a stable reason code (value always 1).")
    latency = _Family("check_latency_seconds", "Time the check took, for working paths.")
    for c in checks:
        base = identity(c)
        for st in Status:
            check_status.add(1 if st is c.status else 0, [*base, ("status", st.value)])
        reason.add(1, [*base, ("reason", c.reason.value)])
        if c.status not in UP:
            continue
        success.add(UP[c.status], base)
        if UP[c.status] and c.latency_ms is not None:
            latency.add(c.latency_ms / 1000, base)

    status = _Family("run_status", "Overall verdict: 0 ok, 1 warning, 2 critical, 3 unknown.")
    status.add(RUN_STATUS_CODE[report.status])
    status_info = _Family("run_status_info", "1 for the run's overall status, 0 for the others.")
    for s in OverallStatus:
        status_info.add(1 if s is report.status else 0, [("status", s.value)])
    incomplete = _Family("run_incomplete", "1 if the run was interrupted or hit its deadline.")
    incomplete.add(1 if report.interrupted or report.deadline_exceeded else 0)
    duration = _Family("run_duration_seconds", "How long the run took.")
    duration.add(report.duration_ms / 1000)
    started = _Family("run_timestamp_seconds", "When the run started, in seconds since the Unix epoch.")
    started.add(report.started_at.timestamp())

    by_status = _Family("checks", "Checks in the run, by status.")
    for st in Status:
        by_status.add(sum(1 for c in report.checks if c.status is st), [("status", st.value)])
    findings = _Family("findings", "Findings of the diagnosis, by severity.")
    for sev in Severity:
        findings.add(sum(1 for f in report.findings if f.severity is sev), [("severity", sev.value)])
    changes = _Family("changes", "Checks whose status changed since the previous run in the history file.")
    changes.add(len(report.changes))

    build = _Family("build_info", "amlprobe version that produced these metrics.")
    build.add(1, [("version", report.tool.version or __version__), ("python", platform.python_version())])

    families = [
        *(success, check_status, reason, latency),
        *(status, status_info, incomplete, duration, started, by_status, findings, changes, build),
    ]
    lines = [line for family in families for line in family.render()]
    return "\n".join(lines) + "\n"


PUSH_TIMEOUT = 10.0
PUSH_JOB = "amlprobe"


class PushError(Exception):
    """The Pushgateway did not take the metrics; the message is one line."""


def push_url(base: str, instance: str, job: str = PUSH_JOB) -> str:
    """``{base}/metrics/job/{job}/instance/{instance}``, as the Pushgateway's API spells a group."""

    def segment(name: str, value: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9._-]+", value):
            return f"{name}/{value}"
        # The Pushgateway's own escape for a value that cannot sit in a path as it is (/, empty).
        return f"{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode() or '='}"

    return f"{base.rstrip('/')}/metrics/{segment('job', job)}/{segment('instance', instance)}"


async def push(base: str, text: str, *, instance: str, timeout: float = PUSH_TIMEOUT) -> None:
    """PUT the metrics, replacing this job/instance group. Raises PushError.

    ``trust_env=False``: the Pushgateway is monitoring infrastructure inside the network, and the
    environment's HTTP(S)_PROXY on these machines is for egress; pushing through it would send
    metrics out of the network or fail for the wrong reason.
    """
    # aiohttp (~100 ms to import) only when metrics are pushed: every `check` imports this module.
    import aiohttp  # noqa: PLC0415 - lazy for start-up: only --pushgateway needs it

    url = push_url(base, instance)
    try:
        async with (
            aiohttp.ClientSession(trust_env=False, timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.put(url, data=text.encode(), headers={"Content-Type": CONTENT_TYPE}) as resp,
        ):
            if resp.status >= 300:
                body = (await resp.text(errors="replace")).strip().splitlines()
                why = f": {body[0][:200]}" if body else ""
                raise PushError(f"{base} answered HTTP {resp.status}{why}")
    except aiohttp.ClientConnectorError as exc:
        raise PushError(f"{base}: cannot connect: {exc.os_error.strerror or exc.os_error}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise PushError(f"{base}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    except asyncio.TimeoutError:
        raise PushError(f"{base}: no answer within {timeout:g} s") from None
