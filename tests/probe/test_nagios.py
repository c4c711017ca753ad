"""`--format nagios`: a monitoring plugin's output, checked against the Monitoring Plugins guidelines' grammar and
parsed by the monitoring-plugins project's own perl library (Debian libmonitoring-plugin-perl) when it is here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from probe.model import (
    CheckResult,
    Finding,
    MissingInput,
    OverallStatus,
    Protocol,
    Report,
    Severity,
    Status,
    Target,
    summarize,
)
from probe.nagios import perf_label, render_nagios
from probe.reasons import Reason
from tests.helpers.cli import amlprobe
from tests.helpers.ports import free_port
from tests.helpers.threaded import ThreadedServer, hold

# "Plugin Output" and "Performance data" (monitoring-plugins.org/doc/guidelines.html): the first line is the
# service, its status and the text, then " | " and space-separated 'label'=value[UOM];[warn];[crit];[min];[max].
_LABEL = r"(?:'(?:[^']|'')+'|[^'= ]+)"
_PERF = rf"{_LABEL}=-?[0-9]+(?:\.[0-9]+)?(?:s|ms|us|%|B|KB|MB|TB|c)?;[^; ]*;[^; ]*;[^; ]*(?:;[^; ]*)?"
_FIRST_LINE = re.compile(rf"^AMLPROBE (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+) \| ({_PERF}(?: {_PERF})*)$")
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}

PERL = shutil.which("perl")


def _perl_parser() -> bool:
    if PERL is None:
        return False
    probe = subprocess.run([PERL, "-MMonitoring::Plugin::Performance", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


requires_perl_parser = pytest.mark.skipif(
    not _perl_parser(), reason="Monitoring::Plugin::Performance (Debian libmonitoring-plugin-perl) is not installed"
)


def parse_with_monitoring_plugin(perfdata: str) -> list[tuple[str, float, str, float | None]]:
    """(label, value, uom, min) of each item, as the monitoring-plugins perl library parses them."""
    assert PERL is not None
    script = (
        "use Monitoring::Plugin::Performance; my $s = do { local $/; <STDIN> };"
        " for (Monitoring::Plugin::Performance->parse_perfstring($s)) {"
        ' print join("\\t", $_->label, $_->value, $_->uom, $_->min // ""), "\\n" }'
    )
    out = subprocess.run([PERL, "-e", script], input=perfdata, capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    return [(label, float(value), uom, float(low) if low else None) for label, value, uom, low in rows]


def split(text: str) -> tuple[str, str, str, dict[str, str], list[str]]:
    """(status, summary, perfdata, {label: value+unit}, long output lines) of a plugin's output."""
    first, *rest = text.rstrip("\n").split("\n")
    match = _FIRST_LINE.match(first)
    assert match, f"not a plugin status line: {first!r}"
    status, summary, perf = match.groups()
    values = {item.split("=")[0]: item.split("=")[1].split(";")[0] for item in perf.split(" ")}
    assert all("|" not in line for line in rest)
    return status, summary, perf, values, rest


@pytest.fixture
def listener() -> Iterator[int]:
    with ThreadedServer(hold) as server:  # accepts, and says nothing: a working TCP path
        yield server.port


def test_a_real_check_prints_one_status_line_with_performance_data(listener: int) -> None:
    refused = free_port()
    targets = ["--target", f"tcp://127.0.0.1:{listener}", "--target", f"tcp://127.0.0.1:{refused}"]
    out = amlprobe("check", *targets, "--format", "nagios", "--timeout", "2")
    status, summary, perf, values, rest = split(out.stdout)
    assert (status, out.returncode) == ("CRITICAL", 2)  # the exit code is the plugin's status
    assert summary.startswith("1 of 2 checks failed: ") and f"tcp:127.0.0.1:{refused} (tcp_refused)" in summary
    assert values["checks_total"] == "2" and values["checks_failed"] == "1" and values["checks_passed"] == "1"
    assert re.fullmatch(r"[0-9.]+s", values["duration"])
    assert rest == []  # no findings, no missing input: no long output
    assert "checks_failed=1;;;0" in perf.split(" ")
    # The same run as JSON: the same verdict and exit code.
    again = amlprobe("check", *targets, "--format", "json", "--timeout", "2")
    assert again.returncode == out.returncode and json.loads(again.stdout)["summary"]["failed"] == 1


def test_a_working_path_is_ok_exit_0(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "nagios")
    status, summary, _perf, values, _rest = split(out.stdout)
    assert (status, out.returncode) == ("OK", 0)
    assert summary == "1 of 1 check passed, 0 warned, 0 skipped"
    assert values["checks_failed"] == "0" and values["findings_critical"] == "0"


@requires_perl_parser
def test_the_monitoring_plugins_library_parses_the_performance_data(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--target", f"tcp://127.0.0.1:{free_port()}",
                   "--format", "nagios")  # fmt: skip
    _status, _summary, perf, _values, _rest = split(out.stdout)
    parsed = parse_with_monitoring_plugin(perf)
    assert [label for label, *_ in parsed] == [item.split("=")[0] for item in perf.split(" ")]
    by_label = {label: (value, uom, low) for label, value, uom, low in parsed}
    assert by_label["checks_total"] == (2.0, "", 0.0) and by_label["checks_failed"] == (1.0, "", 0.0)
    assert by_label["duration"][1] == "s" and by_label["duration"][0] > 0


@requires_perl_parser
def test_a_quoted_label_parses_as_the_library_reads_it() -> None:
    perf = f"{perf_label('odd label')}=3;;;0 {perf_label('run time')}=4s;;;0 plain=5;;;0"
    parsed = parse_with_monitoring_plugin(perf)
    assert [(label, value, uom) for label, value, uom, _ in parsed] == [
        ("odd label", 3.0, ""),
        ("run time", 4.0, "s"),
        ("plain", 5.0, ""),
    ]


def test_labels_are_quoted_per_the_guidelines() -> None:
    assert perf_label("checks_failed") == "checks_failed"
    assert perf_label("odd label") == "'odd label'"
    for bad in ("a=b", "it's", "", "a|b"):
        with pytest.raises(ValueError):
            perf_label(bad)


def _report(status: OverallStatus, findings: list[Finding], **extra: object) -> Report:
    checks = [
        CheckResult(
            id="tls:h.example:443",
            target=Target(host="h.example", port=443, protocol=Protocol.TLS),
            status=Status.FAIL,
            reason=Reason.TLS_UNTRUSTED,
            detail="d",
        )
    ]
    return Report(
        status=status,
        started_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        duration_ms=2100.0,
        checks=checks,
        summary=summarize(checks),
        findings=findings,
        **extra,  # type: ignore[arg-type]
    )


def test_the_text_never_holds_a_bar_nor_a_line_break_from_a_peer() -> None:
    # A title quotes a certificate's issuer: a peer chooses it. A "|" would start the performance data early, a
    # line break would forge a status line.
    hostile = "Contoso | evil\nAMLPROBE OK - all good | checks_failed=0;;;0\x1b[2J"
    findings = [
        Finding(id="tls-inspection", severity=Severity.CRITICAL, title=f"TLS inspection: '{hostile}' re-signs"),
        Finding(id="unexplained-failure", instance="tcp:a:1", severity=Severity.WARNING, title="second | one"),
    ]
    text = render_nagios(_report(OverallStatus.CRITICAL, findings))
    status, summary, _perf, values, rest = split(text)
    assert status == "CRITICAL" and values["checks_failed"] == "1"
    assert summary.startswith("2 findings: TLS inspection: 'Contoso / evil\\nAMLPROBE OK - all good / ")
    assert "\x1b" not in text and "\\x1b[2J" in summary
    assert rest == [
        "CRITICAL: TLS inspection: 'Contoso / evil\\nAMLPROBE OK - all good / checks_failed=0;;;0\\x1b[2J' re-signs"
        " [tls-inspection]",
        "WARNING: second / one [unexplained-failure tcp:a:1]",
    ]
    assert len(text.splitlines()) == 3


def test_many_findings_are_counted_not_all_listed_on_the_first_line() -> None:
    findings = [Finding(id="unexplained-failure", instance=f"c{i}", severity=Severity.WARNING, title="x" * 60)
                for i in range(40)]  # fmt: skip
    text = render_nagios(_report(OverallStatus.WARNING, findings))
    _status, summary, _perf, _values, rest = split(text)
    assert summary.startswith("40 findings: ") and re.search(r"; \+\d+ more$", summary)
    assert len(summary) < 500 and len(rest) == 40


def test_unknown_says_why_interrupted_or_inputs_missing() -> None:
    interrupted = _report(OverallStatus.UNKNOWN, [], interrupted=True, incomplete=True)
    assert split(render_nagios(interrupted))[1].endswith("interrupted: the report is incomplete")
    missing = MissingInput(
        input="workspace_id",
        flag="--workspace-id",
        env="AMLPROBE_WORKSPACE_ID",
        required=True,
        checks=["aml-workspace-api"],
        how=["az resource show ... --query properties.workspaceId"],
    )
    situational = MissingInput(input="instance_domain_suffix", flag="--instance-domain-suffix", required=False)
    report = _report(OverallStatus.UNKNOWN, [], missing_inputs=[missing, situational])
    status, summary, _perf, _values, rest = split(render_nagios(report))
    assert status == "UNKNOWN" and summary.endswith("inputs missing for required checks: --workspace-id")
    assert rest == ["INPUT: --workspace-id WORKSPACE_ID or AMLPROBE_WORKSPACE_ID: 1 check skipped (required)"]
