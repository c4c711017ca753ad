"""A report as a monitoring plugin's output: Nagios, Icinga, Checkmk and Zabbix run amlprobe as they are.

The Monitoring Plugins Development Guidelines (monitoring-plugins.org/doc/guidelines.html), "Plugin
Output" and "Performance data":

* the first line is ``SERVICE STATUS - text | perfdata``; the exit code is the status (0 OK,
  1 WARNING, 2 CRITICAL, 3 UNKNOWN), which ``amlprobe check`` already returns;
* later lines are the long output (here: one finding per line, then the inputs a required check
  lacked); a ``|``
  is never part of the text (it starts the performance data), so every ``|`` that came from a peer
  or a title is replaced, and every control character is escaped (probe.sanitize), so that a line
  stays a line;
* performance data is space-separated ``'label'=value[UOM];[warn];[crit];[min];[max]``: the label
  is quoted when it holds a space and may not hold ``=``; UOM ``s`` for seconds, none for counts;
  empty warn and crit (amlprobe's verdict is not a threshold), min 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from probe.missing import missing_line
from probe.model import Report, Severity, Status
from probe.sanitize import printable

SERVICE = "AMLPROBE"
# The first line's text is a summary: findings past this many characters are counted, not listed.
MAX_SUMMARY = 400
_SEVERITY_ORDER = (Severity.CRITICAL, Severity.WARNING)


def plugin_text(text: object, limit: int | None = None) -> str:
    """``text`` safe in a plugin's text output: one line, no ``|`` (the performance data separator)."""
    return printable(text, limit).replace("|", "/")


def perf_label(name: str) -> str:
    """A performance data label as the guidelines write it: quoted when it holds a space. ``=`` cannot be in a
    label, and a quote (which the guidelines double) is refused too: the monitoring-plugins perl library does not
    read a doubled quote back."""
    if not name or any(c in name for c in "='\n|"):
        raise ValueError(f"invalid performance data label {name!r}")
    return f"'{name}'" if " " in name or "\t" in name else name


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def perfdata(items: Iterable[tuple[str, float, str]]) -> str:
    """``label=value[UOM];;;0`` for each (label, value, unit), space-separated."""
    return " ".join(f"{perf_label(label)}={_number(value)}{unit};;;0" for label, value, unit in items)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(report: Report) -> str:
    s = report.summary
    findings = [f for sev in _SEVERITY_ORDER for f in report.findings if f.severity is sev]
    parts: list[str] = []
    if findings:
        head = _count(len(findings), "finding") + ": "
        titles: list[str] = []
        for f in findings:
            if titles and len(head) + len("; ".join([*titles, f.title])) > MAX_SUMMARY:
                break
            titles.append(f.title)
        more = len(findings) - len(titles)
        parts.append(head + "; ".join(titles) + (f"; +{more} more" if more else ""))
    elif s.failed:
        failed = [c for c in report.checks if c.status is Status.FAIL]
        shown = "; ".join(f"{c.id} ({c.reason.value})" for c in failed[:5])
        parts.append(f"{s.failed} of {_count(s.total, 'check')} failed: {shown}" + ("; ..." if s.failed > 5 else ""))
    else:
        parts.append(f"{s.passed} of {_count(s.total, 'check')} passed, {s.warned} warned, {s.skipped} skipped")
    if report.interrupted:
        parts.append("interrupted: the report is incomplete")
    elif report.deadline_exceeded:
        parts.append("the deadline passed: the report is incomplete")
    required = [m for m in report.missing_inputs if m.required]
    if required:
        flags = ", ".join(m.flag for m in required)
        parts.append(f"{'partial plan, ' if report.partial else ''}inputs missing for required checks: {flags}")
    return ". ".join(parts)


def render_nagios(report: Report) -> str:
    """The status line, then the long output: one finding per line, then the inputs to add."""
    s = report.summary
    counts = [(f"findings_{sev.value}", sum(1 for f in report.findings if f.severity is sev), "") for sev in Severity]
    perf = perfdata(
        [
            ("checks_total", s.total, ""),
            ("checks_passed", s.passed, ""),
            ("checks_warned", s.warned, ""),
            ("checks_failed", s.failed, ""),
            ("checks_skipped", s.skipped, ""),
            *counts,
            ("duration", round(report.duration_ms / 1000, 3), "s"),
        ]
    )
    status = report.status.value.upper()
    lines = [f"{SERVICE} {status} - {plugin_text(_summary(report))} | {perf}"]
    for f in report.findings:
        key = f"{f.id} {f.instance}" if f.instance else f.id
        lines.append(plugin_text(f"{f.severity.value.upper()}: {f.title} [{key}]", None))
    for m in (m for m in report.missing_inputs if m.required):
        lines.append(plugin_text(f"INPUT: {missing_line(m)}", None))
    return "\n".join(lines) + "\n"
