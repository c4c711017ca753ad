"""The composition root's commands that read or describe reports know the Azure layer's reason codes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from checks.verdicts import Verdict
from probe.model import CheckResult, OverallStatus, Protocol, Report, Status, Target, summarize
from probe.reasons import Reason
from tests.helpers.cli import amlprobe


def _report(reason: Reason | Verdict, status: Status) -> str:
    check = CheckResult(
        id="blob-http",
        target=Target(host="labsa.blob.core.windows.net", port=443, protocol=Protocol.HTTP, path="/"),
        status=status,
        reason=reason,
        detail="made up for the test",
    )
    report = Report(
        status=OverallStatus.CRITICAL if status is Status.FAIL else OverallStatus.OK,
        started_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
        duration_ms=1.0,
        summary=summarize([check]),
        checks=[check],
    )
    return report.model_dump_json()


def test_schema_lists_every_verdict_code() -> None:
    out = amlprobe("schema")
    assert out.returncode == 0, out.stderr
    codes = json.loads(out.stdout)["$defs"]["Reason"]["enum"]
    assert {v.code for v in Verdict} <= set(codes)
    assert {r.code for r in Reason} <= set(codes)


def test_diff_reads_reports_that_carry_verdict_codes(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(_report(Verdict.HTTP_AUTH_REQUIRED, Status.PASS))
    new.write_text(_report(Verdict.HTTP_NETWORK_DENIED, Status.FAIL))
    out = amlprobe("diff", str(old), str(new), "--format", "json")
    assert out.returncode == 1, out.stderr  # something changed
    (change,) = json.loads(out.stdout)["checks"]
    assert (change["reason_before"], change["reason_after"]) == ("http_auth_required", "http_network_denied")
