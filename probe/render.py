"""Turn a report into text: JSON for machines, a table for people.

Every field of the table goes through probe.sanitize.printable: much of it was chosen by a peer
(a certificate name, a Server header) or read from a file, and a terminal must never receive an
escape sequence, a carriage return or a bidi override from it. The JSON keeps the raw values;
its encoder escapes control characters.
"""

from __future__ import annotations

from collections.abc import Callable

from probe.missing import missing_inputs_lines
from probe.model import CheckResult, OverallStatus, Report, Severity, Status
from probe.sanitize import printable as _p
from probe.style import GENERIC, ReportStyle

_STATUS_MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}
_COLOUR = {
    Status.PASS: "32",
    Status.WARN: "33",
    Status.FAIL: "31",
    Status.SKIP: "90",
    OverallStatus.OK: "32",
    OverallStatus.WARNING: "33",
    OverallStatus.CRITICAL: "31",
    OverallStatus.UNKNOWN: "90",
    Severity.CRITICAL: "31",
    Severity.WARNING: "33",
    Severity.INFO: "36",
}


def render_json(report: Report) -> str:
    return report.model_dump_json(indent=2, exclude_none=False) + "\n"


def _paint(colour: bool) -> Callable[[str, object], str]:
    def paint(text: str, key: object) -> str:
        code = _COLOUR.get(key) if colour else None  # type: ignore[call-overload]
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    return paint


def verdict_line(report: Report, style: ReportStyle = GENERIC) -> str:
    s = report.summary
    failed_findings = [f for f in report.findings if f.severity is not Severity.INFO]
    head = style.headlines[report.status.value]
    extra = []
    if failed_findings:
        extra.append(f"{len(failed_findings)} finding(s)")
    extra.append(f"{s.passed} passed, {s.warned} warned, {s.failed} failed, {s.skipped} skipped")
    extra.append(f"{report.duration_ms / 1000:.1f} s")
    if report.interrupted:
        extra.append("INTERRUPTED")
    if report.deadline_exceeded:
        extra.append("deadline exceeded")
    if report.warnings:
        extra.append(f"{len(report.warnings)} warning(s)")
    return f"{head} ({'; '.join(extra)})"


def _latency(check: CheckResult) -> str:
    return "" if check.latency_ms is None else f"{check.latency_ms:.1f} ms"


def _group_of(check: CheckResult, labels: tuple[str, ...]) -> str:
    return next((check.labels[k] for k in labels if check.labels.get(k)), "targets")


def render_table(report: Report, *, colour: bool = False, style: ReportStyle = GENERIC) -> str:
    paint = _paint(colour)
    out = [paint(verdict_line(report, style), report.status), ""]
    if report.warnings:
        out.append("Warnings")
        out.extend(f"  {_p(w)}" for w in report.warnings)
        out.append("")
    if report.findings:
        out.append("Findings")
        for f in report.findings:
            out.append(f"  {paint(f.severity.value.upper(), f.severity)} {_p(f.title)}  [{_p(f.id)}]")
            if f.detail:
                out.append(f"      {_p(f.detail)}")
            if f.evidence:
                more = f" (+{len(f.evidence) - 6} more)" if len(f.evidence) > 6 else ""
                out.append(f"      evidence: {_p(', '.join(f.evidence[:6]))}{more}")
            for r in f.remediation:
                out.append(f"      fix: {_p(r.text)}")
                # A command is never cut: a shortened one would not paste.
                out.extend(f"        $ {_p(c, None)}" for c in r.commands)
            if f.doc:
                out.append(f"      doc: {_p(f.doc)}")
        out.append("")
    out += missing_inputs_lines(report)
    # The planning layer's own summary lines for people (environment["notes"]: heading -> lines), e.g.
    # which resources have private endpoints and why. The engine shows them as given.
    notes = report.environment.get("notes")
    if isinstance(notes, dict):
        for heading, lines in notes.items():
            if isinstance(lines, list) and lines:
                out.append(str(heading))
                out.extend(f"  {line}" for line in lines)
                out.append("")
    if report.changes:
        out.append("Changes since the previous run")
        for ch in report.changes:
            before = ch.before.value if ch.before else "absent"
            after = ch.after.value if ch.after else "absent"
            out.append(f"  {_p(ch.id)}: {before} -> {after}")
        out.append("")
    groups: dict[str, list[CheckResult]] = {}
    for c in report.checks:
        groups.setdefault(_p(_group_of(c, style.group_labels)), []).append(c)
    ids = {c.id: _p(c.id) for c in report.checks}
    width = max((len(i) for i in ids.values()), default=10)
    for group, checks in groups.items():
        out.append(group)
        for c in checks:
            mark = paint(f"{_STATUS_MARK[c.status]:4}", c.status)
            reason = "" if c.reason.value == "ok" else c.reason.value
            out.append(f"  {mark} {ids[c.id]:<{width}} {_latency(c):>10}  {reason}")
            if c.status is not Status.PASS:
                out.append(f"       {_p(c.detail)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
