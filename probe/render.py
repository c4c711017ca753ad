"""Turn a report into text: JSON for machines, a table for people.

The table is read on a terminal right after the command returns, where the eye lands on the last
lines. So it opens and closes with the verdict; just above the closing verdict comes one line per
finding, above those the findings in full (evidence, fixes, documentation). The checks come first:
per group (the service, as the caller's ReportStyle says), what failed or warned, with its detail;
what passed or was skipped is folded into the group's counts unless ``verbose``.

Every field of the table goes through probe.sanitize.printable: much of it was chosen by a peer
(a certificate name, a Server header) or read from a file, and a terminal must never receive an
escape sequence, a carriage return or a bidi override from it. The JSON keeps the raw values;
its encoder escapes control characters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from probe.missing import missing_inputs_lines
from probe.model import CheckResult, Finding, OverallStatus, Report, Severity, Status
from probe.sanitize import printable as _p
from probe.style import GENERIC, ReportStyle

_STATUS_MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}
# Failures first, passes last: the order checks are listed in, and groups by their worst check.
_STATUS_ORDER = {Status.FAIL: 0, Status.WARN: 1, Status.SKIP: 2, Status.PASS: 3}
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
# The one-line-per-finding list above the closing verdict stays this short, so that it and the
# verdict fit on any terminal; the rest are in full above it.
SUMMARY_FINDINGS = 10
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
_BOLD = "1"

Paint = Callable[[str, object], str]


def render_json(report: Report) -> str:
    return report.model_dump_json(indent=2, exclude_none=False) + "\n"


def paint_for(colour: bool) -> Paint:
    """``paint(text, key)``: ``text`` in the colour of ``key`` (a status, a severity, ``"bold"``), or as is."""

    def paint(text: str, key: object) -> str:
        code = (_BOLD if key == "bold" else _COLOUR.get(key)) if colour else None  # type: ignore[call-overload]
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    return paint


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 finding``, ``2 findings``, ``0 findings``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def findings_count(findings: Sequence[Finding]) -> str:
    """``1 critical finding``, ``3 info findings``, ``2 findings: 1 critical, 1 info``."""
    by = {s: sum(1 for f in findings if f.severity is s) for s in _SEVERITY_ORDER}
    present = [(s, n) for s, n in by.items() if n]
    if len(present) == 1:
        (severity, n), *_ = present
        return count(n, f"{severity.value} finding")
    return f"{count(len(findings), 'finding')}: " + ", ".join(f"{n} {s.value}" for s, n in present)


def verdict_line(report: Report, style: ReportStyle = GENERIC) -> str:
    s = report.summary
    head = style.headlines[report.status.value]
    extra = []
    if report.findings:
        extra.append(findings_count(report.findings))
    extra.append(f"{s.passed} passed, {s.warned} warned, {s.failed} failed, {s.skipped} skipped")
    extra.append(f"{report.duration_ms / 1000:.1f} s")
    if report.interrupted:
        extra.append("INTERRUPTED")
    if report.deadline_exceeded:
        extra.append("deadline exceeded")
    if report.warnings:
        extra.append(count(len(report.warnings), "warning"))
    return f"{head} ({'; '.join(extra)})"


def _latency(check: CheckResult) -> str:
    return "" if check.latency_ms is None else f"{check.latency_ms:.1f} ms"


def _group_of(check: CheckResult, labels: tuple[str, ...]) -> str:
    return next((check.labels[k] for k in labels if check.labels.get(k)), "targets")


def _counts(checks: Sequence[CheckResult]) -> str:
    words = {Status.FAIL: "failed", Status.WARN: "warned", Status.PASS: "passed", Status.SKIP: "skipped"}
    n = {s: sum(1 for c in checks if c.status is s) for s in words}
    return ", ".join(f"{n[s]} {w}" for s, w in words.items() if n[s])


def _checks_section(report: Report, paint: Paint, style: ReportStyle, verbose: bool) -> list[str]:
    if not report.checks:
        return []
    groups: dict[str, list[CheckResult]] = {}
    for c in report.checks:
        groups.setdefault(_p(_group_of(c, style.group_labels)), []).append(c)
    ordered = sorted(groups.items(), key=lambda g: min(_STATUS_ORDER[c.status] for c in g[1]))

    def listed(checks: list[CheckResult]) -> list[CheckResult]:
        shown = checks if verbose else [c for c in checks if c.status in (Status.FAIL, Status.WARN)]
        return sorted(shown, key=lambda c: _STATUS_ORDER[c.status])

    shown = {group: listed(checks) for group, checks in ordered}
    ids = {c.id: _p(c.id) for checks in shown.values() for c in checks}
    width = max((len(i) for i in ids.values()), default=0)
    group_width = max(len(g) for g in groups)
    heading = "Checks, failures first" if verbose else "Checks, failures first (--verbose lists every check)"
    out = [paint(heading, "bold")]
    for group, checks in ordered:
        out.append(f"  {group:<{group_width}}  {_counts(checks)}")
        for c in shown[group]:
            mark = paint(f"{_STATUS_MARK[c.status]:4}", c.status)
            reason = "" if c.reason.value == "ok" else c.reason.value
            out.append(f"    {mark} {ids[c.id]:<{width}} {_latency(c):>10}  {reason}".rstrip())
            if c.status is not Status.PASS:
                out.append(f"         {_p(c.detail)}")
    return [*out, ""]


def _notes_section(report: Report) -> list[str]:
    # The planning layer's own summary lines for people (environment["notes"]: heading -> lines), e.g.
    # which resources have private endpoints and why. The engine shows them as given.
    out: list[str] = []
    notes = report.environment.get("notes")
    if isinstance(notes, dict):
        for heading, lines in notes.items():
            if isinstance(lines, list) and lines:
                out.append(_p(str(heading)))
                out.extend(f"  {_p(str(line))}" for line in lines)
                out.append("")
    if report.changes:
        out.append("Changes since the previous run")
        for ch in report.changes:
            before = ch.before.value if ch.before else "absent"
            after = ch.after.value if ch.after else "absent"
            out.append(f"  {_p(ch.id)}: {before} -> {after}")
        out.append("")
    if report.warnings:
        out.append("Warnings")
        out.extend(f"  {_p(w)}" for w in report.warnings)
        out.append("")
    return out


def _ranked(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: _SEVERITY_ORDER[f.severity])


def _title(f: Finding, paint: Paint, width: int = 0) -> str:
    return f"{paint(f'{f.severity.value.upper():<{width}}', f.severity)} {_p(f.title)}  [{_p(f.id)}]"


def _findings_section(findings: list[Finding], paint: Paint) -> list[str]:
    out = [paint("Findings", "bold")]
    for f in findings:
        out.append(f"  {_title(f, paint)}")
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
    return [*out, ""]


def _findings_summary(findings: list[Finding], paint: Paint) -> list[str]:
    out = [paint(f"Summary ({findings_count(findings)})", "bold")]
    width = max(len(f.severity.value) for f in findings)
    out.extend(f"  {_title(f, paint, width)}" for f in findings[:SUMMARY_FINDINGS])
    if len(findings) > SUMMARY_FINDINGS:
        out.append(f"  ... and {count(len(findings) - SUMMARY_FINDINGS, 'more finding')} above")
    return out


def render_table(report: Report, *, colour: bool = False, style: ReportStyle = GENERIC, verbose: bool = False) -> str:
    """The report for a person at a terminal: verdict, checks (failures first), notes, findings, verdict.

    ``verbose``: list every check, not only those that failed or warned."""
    paint = paint_for(colour)
    verdict = paint(verdict_line(report, style), report.status)
    out = [verdict, ""]
    out += _checks_section(report, paint, style, verbose)
    out += _notes_section(report)
    findings = _ranked(report.findings)
    if findings:
        out += _findings_section(findings, paint)
    # What to add when required checks could not run: near the end, where the eye lands.
    out += missing_inputs_lines(report)
    if findings:
        out += _findings_summary(findings, paint)
    out.append(verdict)
    return "\n".join(out) + "\n"
