"""probe.render on its own: the JSON is the report, the table is for people, worded by the caller's style."""

from __future__ import annotations

from datetime import datetime, timezone

from probe.model import (
    Change,
    CheckResult,
    Finding,
    OverallStatus,
    Protocol,
    Remediation,
    Report,
    Severity,
    Status,
    Target,
    summarize,
)
from probe.reasons import Reason
from probe.render import render_json, render_table, verdict_line
from probe.style import GENERIC, ReportStyle

STYLE = ReportStyle(
    headlines={**GENERIC.headlines, "critical": "CRITICAL: the widget service is unreachable"},
    group_labels=("service", "service_tag"),
)


def _check(id: str, status: Status, reason: Reason, labels: dict[str, str] | None = None) -> CheckResult:
    host, _, port = id.partition(":")[2].partition(":")
    return CheckResult(
        id=id,
        target=Target(host=host, port=int(port), protocol=Protocol.TCP),
        status=status,
        reason=reason,
        detail=f"{reason.value} for {id}",
        latency_ms=1.25 if status is Status.PASS else None,
        labels=labels or {},
    )


def report(status: OverallStatus = OverallStatus.CRITICAL, **extra: object) -> Report:
    checks = [
        _check("tcp:api.example:443", Status.PASS, Reason.OK, {"service": "API"}),
        _check("tcp:store.example:443", Status.FAIL, Reason.TCP_TIMEOUT, {"service_tag": "Storage"}),
        _check("tcp:adhoc.example:22", Status.FAIL, Reason.TCP_REFUSED),
    ]
    findings = [
        Finding(
            id="store-blocked",
            severity=Severity.CRITICAL,
            title="Storage is blocked",
            detail="The storage front end drops SYN.",
            evidence=["tcp:store.example:443"],
            doc="https://docs.example/storage",
            remediation=[Remediation(kind="nsg_rule", text="Allow it.", commands=["fw allow " + "x" * 300])],
        )
    ]
    fields: dict[str, object] = {
        "status": status,
        "started_at": datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
        "duration_ms": 2500.0,
        "checks": checks,
        "findings": findings,
        "summary": summarize(checks),
        **extra,
    }
    return Report.model_validate(fields)


def test_json_is_the_report_itself() -> None:
    r = report()
    text = render_json(r)
    assert text.endswith("\n")
    assert Report.model_validate_json(text) == r


def test_the_verdict_line_is_worded_by_the_style() -> None:
    r = report()
    assert verdict_line(r) == (
        "CRITICAL: a required path is broken (1 finding(s); 1 passed, 0 warned, 2 failed, 0 skipped; 2.5 s)"
    )
    assert verdict_line(r, STYLE).startswith("CRITICAL: the widget service is unreachable (")
    assert verdict_line(report(OverallStatus.OK), STYLE).startswith("OK: every required path works")


def test_the_verdict_line_says_how_the_run_ended() -> None:
    r = report(OverallStatus.UNKNOWN, interrupted=True, deadline_exceeded=True, warnings=["history skipped"])
    line = verdict_line(r)
    assert line.startswith("UNKNOWN: the run could not decide")
    assert "INTERRUPTED" in line and "deadline exceeded" in line and "1 warning(s)" in line


def test_the_table_groups_checks_by_the_styles_labels() -> None:
    lines = render_table(report(), style=STYLE).splitlines()
    # Each check under the first of the style's labels it has, "targets" when it has none.
    for group, check in (("API", "tcp:api.example:443"), ("Storage", "tcp:store.example:443")):
        assert lines[lines.index(group) + 1].split()[1] == check
    assert lines[lines.index("targets") + 1].split()[1] == "tcp:adhoc.example:22"
    # Without a style the engine knows no labels: every check is a target.
    generic = render_table(report()).splitlines()
    assert "API" not in generic and "Storage" not in generic and "targets" in generic


def test_the_table_shows_findings_details_of_what_failed_and_whole_commands() -> None:
    text = render_table(report(changes=[Change(id="tcp:adhoc.example:22", before=Status.PASS, after=Status.FAIL)]))
    assert "  CRITICAL Storage is blocked  [store-blocked]" in text
    assert "      evidence: tcp:store.example:443" in text
    assert "        $ fw allow " + "x" * 300 in text  # a command is never cut: it would not paste
    assert "      doc: https://docs.example/storage" in text
    assert "tcp_timeout for tcp:store.example:443" in text
    assert "ok for tcp:api.example:443" not in text  # a passing check's detail is left out
    assert "  tcp:adhoc.example:22: pass -> fail" in text


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in render_table(report())
    coloured = render_table(report(), colour=True)
    assert coloured.startswith("\x1b[31mCRITICAL") and "\x1b[32mPASS" in coloured


def test_peer_text_cannot_reach_the_terminal_raw() -> None:
    r = report()
    r.checks[1].detail = "evil\x1b]0;pwned\x07\rOK: every required path works \u202e"
    r.environment["notes"] = {"Notes from the plan": ["one", "two"]}
    text = render_table(r)
    assert "\x1b]" not in text and "\r" not in text and "\u202e" not in text
    assert "evil\\x1b]0;pwned\\x07\\rOK" in text
    assert "Notes from the plan\n  one\n  two\n" in text
