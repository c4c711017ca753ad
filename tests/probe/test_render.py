"""probe.render on its own: the JSON is the report, the table is for people, worded by the caller's style."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

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
from probe.render import count, render_json, render_table, verdict_line
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
        "CRITICAL: a required path is broken (1 critical finding; 1 passed, 0 warned, 2 failed, 0 skipped; 2.5 s)"
    )
    assert verdict_line(r, STYLE).startswith("CRITICAL: the widget service is unreachable (")
    assert verdict_line(report(OverallStatus.OK), STYLE).startswith("OK: every required path works")


def test_the_verdict_line_says_how_the_run_ended() -> None:
    r = report(OverallStatus.UNKNOWN, interrupted=True, deadline_exceeded=True, warnings=["history skipped"])
    line = verdict_line(r)
    assert line.startswith("UNKNOWN: the run could not decide")
    assert "INTERRUPTED" in line and "deadline exceeded" in line and "; 1 warning)" in line


def _group_line(lines: list[str], group: str) -> int:
    return next(i for i, line in enumerate(lines) if line.split()[:1] == [group] and line.startswith("  "))


def test_the_table_groups_checks_by_the_styles_labels() -> None:
    lines = render_table(report(), style=STYLE, verbose=True).splitlines()
    # Each check under the first of the style's labels it has, "targets" when it has none.
    for group, check in (("API", "tcp:api.example:443"), ("Storage", "tcp:store.example:443")):
        assert lines[_group_line(lines, group) + 1].split()[1] == check
    assert lines[_group_line(lines, "targets") + 1].split()[1] == "tcp:adhoc.example:22"
    # Without a style the engine knows no labels: every check is a target.
    generic = render_table(report(), verbose=True).splitlines()
    assert [line.split()[0] for line in generic if line.startswith("  ") and not line.startswith("   ")][:1] == [
        "targets"
    ]
    assert not any(line.split()[:1] in (["API"], ["Storage"]) for line in generic)


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
    assert "\x1b[" not in render_table(report(), verbose=True)
    coloured = render_table(report(), colour=True, verbose=True)
    assert coloured.startswith("\x1b[31mCRITICAL") and "\x1b[32mPASS" in coloured
    assert coloured.splitlines()[-1].startswith("\x1b[31mCRITICAL")


def test_peer_text_cannot_reach_the_terminal_raw() -> None:
    r = report()
    r.checks[1].detail = "evil\x1b]0;pwned\x07\rOK: every required path works \u202e"
    r.environment["notes"] = {"Notes from the plan": ["one", "two"]}
    text = render_table(r)
    assert "\x1b]" not in text and "\r" not in text and "\u202e" not in text
    assert "evil\\x1b]0;pwned\\x07\\rOK" in text
    assert "Notes from the plan\n  one\n  two\n" in text


# --- the terminal view: where the eye lands when the command returns --------------------------


def _critical_run() -> Report:
    """A critical run as a compute instance sees one: 300 passes over 12 services, with 3 failures and a
    warning among them (not at the top of the report's order), and two findings with long text."""
    checks = [
        _check(f"tcp:host{i}.svc{i % 12}.example:443", Status.PASS, Reason.OK, {"service": f"Service{i % 12}"})
        for i in range(300)
    ]
    checks[40:40] = [_check("tcp:api.svc3.example:443", Status.FAIL, Reason.TCP_TIMEOUT, {"service": "Service3"})]
    checks[170:170] = [
        _check("tcp:blob.svc7.example:443", Status.FAIL, Reason.TCP_TIMEOUT, {"service": "Service7"}),
        _check("tcp:file.svc7.example:445", Status.FAIL, Reason.TCP_REFUSED, {"service": "Service7"}),
        _check("tcp:tundra.svc3.example:5831", Status.WARN, Reason.UDP_OPEN_FILTERED, {"service": "Service3"}),
    ]
    findings = [
        Finding(
            id="outbound-443-blocked",
            severity=Severity.CRITICAL,
            title="Outbound TCP 443 to Service3 is dropped",
            detail="Two endpoints could not be reached. " + "Explained at length. " * 30,
            evidence=["tcp:api.svc3.example:443", "tcp:blob.svc7.example:443"],
            remediation=[Remediation(kind="nsg_rule", text="Allow it.", commands=["fw allow " + "x" * 200] * 3)],
            doc="https://docs.example/443",
        ),
        Finding(
            id="udp-unconfirmed",
            severity=Severity.INFO,
            title="UDP 5831 cannot be confirmed from inside",
            detail="Silence is not proof. " * 20,
            evidence=["tcp:tundra.svc3.example:5831"],
        ),
        Finding(id="smb-refused", severity=Severity.WARNING, title="SMB 445 is refused", evidence=[]),
    ]
    return Report(
        status=OverallStatus.CRITICAL,
        started_at=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
        duration_ms=2100.0,
        checks=checks,
        findings=findings,
        summary=summarize(checks),
    )


def _screen(text: str, *, rows: int, cols: int) -> list[str]:
    """The lines a terminal of rows x cols shows in full once ``text`` was printed (long lines wrap)."""
    shown: list[str] = []
    used = 0
    for line in reversed(text.splitlines()):
        used += max(1, -(-len(line) // cols))
        if used > rows:
            break
        shown.insert(0, line)
    return shown


@pytest.mark.parametrize(("rows", "cols"), [(50, 80), (24, 80), (50, 200)])
def test_the_last_screen_holds_the_verdict_and_the_findings(rows: int, cols: int) -> None:
    r = _critical_run()
    text = render_table(r, style=STYLE)
    screen = _screen(text, rows=rows, cols=cols)
    verdict = verdict_line(r, STYLE)
    assert screen[-1] == verdict  # the last line, where the eye lands
    assert text.splitlines()[0] == verdict  # and the first
    for f in r.findings:  # every finding's title and id, most severe first
        assert any(f.title in line and f"[{f.id}]" in line for line in screen), (f.id, screen)
    titles = [line.split()[0] for line in screen[-1 - len(r.findings) : -1]]
    assert titles == ["CRITICAL", "WARNING", "INFO"]
    assert "3 findings: 1 critical, 1 warning, 1 info" in verdict


def test_failures_come_first_and_passes_fold_into_one_count_per_group() -> None:
    r = _critical_run()
    lines = render_table(r, style=STYLE).splitlines()
    rows = [line.split()[0] for line in lines if re.match(r"    (PASS|FAIL|WARN|SKIP) ", line)]
    assert rows == ["FAIL", "WARN", "FAIL", "FAIL"]  # what failed or warned, by group; no PASS row
    assert len([line for line in lines if line.startswith("  Service") and "passed" in line]) == 12
    assert lines[_group_line(lines, "Service3")].split()[1:] == ["1", "failed,", "1", "warned,", "25", "passed"]
    assert lines[_group_line(lines, "Service0")].split()[1:] == ["25", "passed"]
    # Groups with failures first, then the rest.
    groups = [line.split()[0] for line in lines if line.startswith("  Service")]
    assert groups[:2] == ["Service3", "Service7"] and len(groups) == 12
    assert len(lines) < 50  # 304 checks and three findings in one 50-line screen (before: 600 lines)


def test_verbose_lists_every_check_failures_first_in_each_group() -> None:
    r = _critical_run()
    lines = render_table(r, style=STYLE, verbose=True).splitlines()
    marks = [line.split()[0] for line in lines if re.match(r"    (PASS|FAIL|WARN|SKIP) ", line)]
    assert len(marks) == len(r.checks)
    start = _group_line(lines, "Service7")
    in_group = [line.split()[0] for line in lines[start + 1 : start + 30] if re.match(r"    (PASS|FAIL) ", line)]
    assert in_group[:2] == ["FAIL", "FAIL"] and set(in_group[2:]) == {"PASS"}
    assert lines[-1] == verdict_line(r, STYLE)


def test_counts_are_words_not_parentheses() -> None:
    assert [count(n, "finding") for n in (0, 1, 2)] == ["0 findings", "1 finding", "2 findings"]
    one = report()
    assert "(1 critical finding;" in verdict_line(one)
    one.findings = one.findings * 2
    assert "(2 critical findings;" in verdict_line(one)
    one.warnings = ["a", "b"]
    assert verdict_line(one).endswith("; 2 warnings)")
    assert "(s)" not in render_table(_critical_run())


def test_the_short_list_of_findings_stays_short() -> None:
    r = _critical_run()
    r.findings = [r.findings[2].model_copy(update={"id": f"f{i}", "title": f"Finding {i}"}) for i in range(15)]
    lines = render_table(r).splitlines()
    assert lines[-2] == "  ... and 5 more findings above"
    assert lines[-13] == "Summary (15 warning findings)"
    assert "  WARNING Finding 14  [f14]" in lines  # in full above


def test_notes_and_titles_from_outside_are_escaped_too() -> None:
    r = report()
    r.environment["notes"] = {"Heading\x1b[2J": ["line\u202e"]}
    r.findings[0].title = "Storage\r is blocked"
    text = render_table(r)
    assert "\x1b[2J" not in text and "\u202e" not in text and "\r" not in text
    assert "Heading\\x1b[2J" in text and "Storage\\r is blocked" in text
