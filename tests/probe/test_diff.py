"""`amlprobe diff`: exact changes between two hand-written reports, and its exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from probe.diff import diff_reports, render_diff_table
from probe.model import CheckResult, Finding, OverallStatus, Protocol, Report, Severity, Status, Target
from probe.reasons import Reason
from tests.helpers.cli import amlprobe
from tests.helpers.report import validated


def _check(cid: str, status: Status, reason: Reason) -> CheckResult:
    return CheckResult(
        id=cid,
        target=Target(host="h.example", port=443, protocol=Protocol.TLS),
        status=status,
        reason=reason,
        detail="d",
    )


OLD = Report(
    status=OverallStatus.WARNING,
    started_at=datetime(2024, 5, 1, 10, tzinfo=timezone.utc),
    duration_ms=900.0,
    checks=[
        _check("same", Status.PASS, Reason.OK),
        _check("broke", Status.PASS, Reason.OK),
        _check("reason", Status.FAIL, Reason.TCP_TIMEOUT),
        _check("gone", Status.WARN, Reason.OK),
    ],
    findings=[
        Finding(id="kept", severity=Severity.INFO, title="Kept"),
        Finding(id="fixed", severity=Severity.WARNING, title="Fixed since"),
        Finding(id="worse", severity=Severity.WARNING, title="Got worse"),
    ],
)
NEW = Report(
    status=OverallStatus.CRITICAL,
    started_at=datetime(2024, 5, 1, 11, tzinfo=timezone.utc),
    duration_ms=800.0,
    checks=[
        _check("same", Status.PASS, Reason.OK),
        _check("broke", Status.FAIL, Reason.TLS_UNTRUSTED),
        _check("reason", Status.FAIL, Reason.TCP_REFUSED),
        _check("new", Status.SKIP, Reason.SKIPPED_MISSING_INPUT),
    ],
    findings=[
        Finding(id="kept", severity=Severity.INFO, title="Kept"),
        Finding(id="worse", severity=Severity.CRITICAL, title="Got worse"),
        Finding(id="appeared", severity=Severity.CRITICAL, title="Appeared"),
    ],
)


def _write(tmp_path: Path, name: str, report: Report) -> str:
    path = tmp_path / name
    text = report.model_dump_json(indent=2)
    validated(text)
    path.write_text(text)
    return str(path)


def test_diff_finds_exactly_the_changes() -> None:
    diff = diff_reports(OLD, NEW)
    assert (diff.status.before, diff.status.after) == (OverallStatus.WARNING, OverallStatus.CRITICAL)
    assert [(c.id, c.before, c.after, c.reason_before, c.reason_after) for c in diff.checks] == [
        ("broke", Status.PASS, Status.FAIL, "ok", "tls_untrusted"),
        ("reason", Status.FAIL, Status.FAIL, "tcp_timeout", "tcp_refused"),
        ("new", None, Status.SKIP, None, "skipped_missing_input"),
        ("gone", Status.WARN, None, "ok", None),
    ]
    assert [(f.id, f.severity) for f in diff.findings_added] == [
        ("worse", Severity.CRITICAL),
        ("appeared", Severity.CRITICAL),
    ]
    assert [(f.id, f.severity) for f in diff.findings_removed] == [
        ("fixed", Severity.WARNING),
        ("worse", Severity.WARNING),
    ]
    assert diff.changed
    assert not diff_reports(NEW, NEW).changed


def test_findings_of_one_rule_are_told_apart_by_their_instance() -> None:
    # Report contract 2.0: 51 findings of one rule are 51 findings; the diff keys on (id, instance).
    def report(*instances: str) -> Report:
        findings = [
            Finding(id="unexplained-failure", instance=i, severity=Severity.WARNING, title=i) for i in instances
        ]
        return NEW.model_copy(update={"findings": findings})

    diff = diff_reports(report("tcp:a:1", "tcp:b:2", "tcp:c:3"), report("tcp:a:1", "tcp:c:3", "tcp:d:4"))
    assert [(f.id, f.instance) for f in diff.findings_removed] == [("unexplained-failure", "tcp:b:2")]
    assert [(f.id, f.instance) for f in diff.findings_added] == [("unexplained-failure", "tcp:d:4")]
    table = render_diff_table(diff)
    assert "  - WARNING tcp:b:2  [unexplained-failure tcp:b:2]" in table.splitlines()


def test_status_change_alone_is_a_change() -> None:
    other = NEW.model_copy(update={"status": OverallStatus.UNKNOWN})
    diff = diff_reports(NEW, other)
    assert diff.changed and diff.checks == [] and diff.findings_added == []
    assert "Status: critical -> unknown" in render_diff_table(diff)


def test_cli_json_and_exit_1(tmp_path: Path) -> None:
    out = amlprobe("diff", _write(tmp_path, "old.json", OLD), _write(tmp_path, "new.json", NEW), "--format", "json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["changed"] is True
    assert data["status"] == {"before": "warning", "after": "critical"}
    assert [c["id"] for c in data["checks"]] == ["broke", "reason", "new", "gone"]
    assert data["checks"][3] == {
        "id": "gone",
        "before": "warn",
        "after": None,
        "reason_before": "ok",
        "reason_after": None,
    }
    assert [f["id"] for f in data["findings_added"]] == ["worse", "appeared"]


def test_cli_table(tmp_path: Path) -> None:
    out = amlprobe("diff", _write(tmp_path, "old.json", OLD), _write(tmp_path, "new.json", NEW), "--format", "table")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == "Status: warning -> critical"
    assert any(line.split() == ["broke", "pass", "->", "fail", "(tls_untrusted)"] for line in lines)
    assert any(line.split() == ["gone", "warn", "->", "absent"] for line in lines)
    assert "  + CRITICAL Appeared  [appeared]" in lines
    assert "  - WARNING Fixed since  [fixed]" in lines


def test_cli_no_change_is_exit_0(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.json", NEW)
    out = amlprobe("diff", path, path, "--format", "table")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("No change")
    out = amlprobe("diff", path, path)  # not a terminal: json
    assert out.returncode == 0 and json.loads(out.stdout)["changed"] is False


@pytest.mark.parametrize(
    ("content", "which", "why"),
    [
        (None, "old", "No such file"),
        ("{not json", "new", "not JSON"),
        ('{"status": "ok"}', "old", "not an amlprobe report"),
        ("[]", "new", "not an amlprobe report"),
        (b"\xff\xfe", "old", "not UTF-8"),
    ],
)
def test_bad_files_are_exit_3_naming_the_file(
    tmp_path: Path, content: str | bytes | None, which: str, why: str
) -> None:
    good = _write(tmp_path, "good.json", NEW)
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    args = (str(bad), good) if which == "old" else (good, str(bad))
    out = amlprobe("diff", *args)
    assert out.returncode == 3
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert f"{which} report '{bad}'" in line and why in line
