"""Compare two JSON reports: which checks changed status or reason, which findings came or went."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probe.errors import UsageError
from probe.files import MAX_REPORT_BYTES, read_regular
from probe.model import Change, Finding, OverallStatus, Report, Severity
from probe.sanitize import printable


class DiffInputError(UsageError):
    """A report file that cannot be compared; the message names the file and says why."""


class FindingRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    instance: str = ""
    severity: Severity
    title: str


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: OverallStatus
    after: OverallStatus


class ReportDiff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_started_at: str
    new_started_at: str
    status: StatusChange
    checks: list[Change] = Field(default_factory=list, description="Checks whose status or reason changed.")
    findings_added: list[FindingRef] = Field(default_factory=list)
    findings_removed: list[FindingRef] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.status.before is not self.status.after or self.checks or self.findings_added or self.findings_removed
        )


def load_report(path: str | Path, role: str) -> Report:
    """Read and validate one report. Raises DiffInputError with a one-line reason."""
    where = f"{role} report {str(path)!r}"
    try:
        text = read_regular(path, MAX_REPORT_BYTES).decode("utf-8")
    except OSError as exc:
        raise DiffInputError(f"{where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DiffInputError(f"{where}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DiffInputError(f"{where}: not JSON ({exc})") from None
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise DiffInputError(f"{where}: not an amlprobe report ({loc}: {first['msg']})") from None


def _finding_key(f: Finding) -> tuple[str, str, str]:
    # A finding is its rule's id and its instance (schema 2.0: several findings of one rule are several
    # findings). One that changed severity is a different finding: it shows as removed, then added.
    return (f.id, f.instance, f.severity.value)


def diff_reports(old: Report, new: Report) -> ReportDiff:
    old_checks = {c.id: c for c in old.checks}
    new_checks = {c.id: c for c in new.checks}
    changes: list[Change] = []
    for c in new.checks:
        before = old_checks.get(c.id)
        if before is None:
            changes.append(Change(id=c.id, before=None, after=c.status, reason_after=c.reason.value))
        elif before.status is not c.status or before.reason is not c.reason:
            changes.append(
                Change(
                    id=c.id,
                    before=before.status,
                    after=c.status,
                    reason_before=before.reason.value,
                    reason_after=c.reason.value,
                )
            )
    for c in old.checks:
        if c.id not in new_checks:
            changes.append(Change(id=c.id, before=c.status, after=None, reason_before=c.reason.value))
    old_findings = {_finding_key(f): f for f in old.findings}
    new_findings = {_finding_key(f): f for f in new.findings}

    def ref(f: Finding) -> FindingRef:
        return FindingRef(id=f.id, instance=f.instance, severity=f.severity, title=f.title)

    return ReportDiff(
        old_started_at=old.started_at.isoformat(),
        new_started_at=new.started_at.isoformat(),
        status=StatusChange(before=old.status, after=new.status),
        checks=changes,
        findings_added=[ref(f) for k, f in new_findings.items() if k not in old_findings],
        findings_removed=[ref(f) for k, f in old_findings.items() if k not in new_findings],
    )


def render_diff_json(diff: ReportDiff) -> str:
    data = diff.model_dump(mode="json")
    data["changed"] = diff.changed
    return json.dumps(data, indent=2) + "\n"


def _side(status: object, reason: str | None) -> str:
    if status is None:
        return "absent"
    value = getattr(status, "value", status)
    return f"{value} ({reason})" if reason and reason != "ok" else str(value)


def _key(f: FindingRef) -> str:
    return f"{f.id} {f.instance}" if f.instance else f.id


def render_diff_table(diff: ReportDiff) -> str:
    if not diff.changed:
        return f"No change: status {diff.status.after.value}, same checks and findings.\n"
    out = []
    if diff.status.before is diff.status.after:
        out.append(f"Status: {diff.status.after.value} (unchanged)")
    else:
        out.append(f"Status: {diff.status.before.value} -> {diff.status.after.value}")
    out.append(f"  old run {diff.old_started_at}, new run {diff.new_started_at}")
    if diff.checks:
        out += ["", "Checks"]
        # The reports are files someone handed over: nothing from them reaches the terminal raw.
        ids = {c.id: printable(c.id) for c in diff.checks}
        width = max(len(i) for i in ids.values())
        for c in diff.checks:
            before, after = _side(c.before, c.reason_before), _side(c.after, c.reason_after)
            out.append(f"  {ids[c.id]:<{width}}  {printable(before)} -> {printable(after)}")
    if diff.findings_added or diff.findings_removed:
        out += ["", "Findings"]
        for sign, found in (("+", diff.findings_added), ("-", diff.findings_removed)):
            out += [f"  {sign} {f.severity.value.upper()} {printable(f.title)}  [{printable(_key(f))}]" for f in found]
    return "\n".join(out) + "\n"
