"""Prometheus exposition: checked by promtool, read back from a real Pushgateway, written for node_exporter."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from probe import atomic
from probe.model import CheckResult, Finding, OverallStatus, Protocol, Report, Severity, Status, Target
from probe.prometheus import PushError, escape_label_value, push, push_url, render_prometheus
from probe.reasons import Reason
from tests.helpers.cli import ENV, amlprobe
from tests.helpers.pushgateway import Pushgateway, pushgateway  # noqa: F401 - fixture
from tests.helpers.report import validated

PROMTOOL = shutil.which("promtool")
requires_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) is not installed")


def promtool_check(text: str) -> None:
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "" and out.stderr.strip() == "", out.stdout + out.stderr  # no lint remarks either


def _check(
    cid: str,
    status: Status,
    reason: Reason,
    *,
    port: int | None = 443,
    latency_ms: float | None = None,
    labels: dict[str, str] | None = None,
) -> CheckResult:
    return CheckResult(
        id=cid,
        target=Target(host="127.0.0.1", port=port, protocol=Protocol.TCP),
        status=status,
        reason=reason,
        detail="A sentence that must never become a label.",
        latency_ms=latency_ms,
        labels=labels or {},
    )


# The check labels the planning layer names as identities (its ReportStyle.metric_labels).
LABEL_KEYS = ("service", "service_tag", "resource", "required", "resolver")


def sample_report() -> Report:
    checks = [
        _check("z-warn", Status.WARN, Reason.OK, latency_ms=250.0, labels={"service_tag": "Storage.westeurope"}),
        _check("a-pass", Status.PASS, Reason.OK, latency_ms=12.5, labels={"purpose": "long free text " * 5}),
        _check("m-fail", Status.FAIL, Reason.TCP_REFUSED, latency_ms=1.0, labels={"service_tag": 'we"ird\\tag'}),
        _check("s-skip", Status.SKIP, Reason.SKIPPED_MISSING_INPUT, port=None),
    ]
    return Report(
        status=OverallStatus.CRITICAL,
        started_at=datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc),
        duration_ms=1534.0,
        checks=checks,
        findings=[Finding(id="f1", severity=Severity.WARNING, title="t")],
    )


def samples(text: str) -> dict[str, float]:
    """'name{labels}' -> value, for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_values_labels_and_choices() -> None:
    text = render_prometheus(sample_report(), label_keys=LABEL_KEYS)
    got = samples(text)
    success = {k: v for k, v in got.items() if k.startswith("amlprobe_check_success{")}
    # pass and warn succeed, fail does not, skip is absent; every series carries the same label names.
    assert len(success) == 3
    assert got[next(k for k in success if 'id="a-pass"' in k)] == 1
    assert got[next(k for k in success if 'id="z-warn"' in k)] == 1
    down = next(k for k in success if 'id="m-fail"' in k)
    assert got[down] == 0
    assert "status=" not in down and "reason=" not in down, "identity labels only"
    assert 'service_tag="we\\"ird\\\\tag"' in down  # escaped per the exposition format
    assert not any(k.startswith("amlprobe_check_success{") and 'id="s-skip"' in k for k in got)
    assert all('service_tag="' in k for k in success)
    # The status as an enum: every check, skipped ones included, has one series per status.
    status = {k: v for k, v in got.items() if k.startswith("amlprobe_check_status{")}
    assert len(status) == 4 * 4
    fail_series = {k: v for k, v in status.items() if 'id="m-fail"' in k}
    assert {k.rsplit('status="', 1)[1].rstrip('"}'): v for k, v in fail_series.items()} == {
        "pass": 0,
        "warn": 0,
        "fail": 1,
        "skip": 0,
    }
    assert got[next(k for k in status if 'id="s-skip"' in k and 'status="skip"' in k)] == 1
    # The reason as an info metric, to join on id.
    reasons = {k: v for k, v in got.items() if k.startswith("amlprobe_check_reason_info{")}
    assert len(reasons) == 4 and set(reasons.values()) == {1}
    assert any('id="m-fail"' in k and 'reason="tcp_refused"' in k for k in reasons)
    assert "purpose" not in text and "sentence" not in text  # free text never becomes a label
    lat = {k: v for k, v in got.items() if k.startswith("amlprobe_check_latency_seconds{")}
    assert sorted(lat.values()) == [0.0125, 0.25]  # working paths only
    assert got["amlprobe_run_status"] == 2
    assert got['amlprobe_run_status_info{status="critical"}'] == 1
    assert got['amlprobe_run_status_info{status="ok"}'] == 0
    assert got["amlprobe_run_duration_seconds"] == 1.534
    assert got["amlprobe_run_timestamp_seconds"] == datetime(2024, 5, 1, 12, tzinfo=timezone.utc).timestamp()
    assert {k: v for k, v in got.items() if k.startswith("amlprobe_findings")} == {
        'amlprobe_findings{severity="critical"}': 0,
        'amlprobe_findings{severity="warning"}': 1,
        'amlprobe_findings{severity="info"}': 0,
    }
    assert got['amlprobe_checks{status="skip"}'] == 1 and got['amlprobe_checks{status="pass"}'] == 1
    assert any(k.startswith('amlprobe_build_info{version="') for k in got)


def test_required_is_a_label_from_the_typed_field() -> None:
    # Schema 2.0 moved `required` out of the free-form labels into a boolean; the metrics keep the label.
    report = sample_report()
    report.checks[0].required, report.checks[2].required = True, False
    got = samples(render_prometheus(report, label_keys=LABEL_KEYS))
    success = [k for k in got if k.startswith("amlprobe_check_success{")]
    assert any('id="z-warn"' in k and 'required="true"' in k for k in success)
    assert any('id="m-fail"' in k and 'required="false"' in k for k in success)
    assert any('id="a-pass"' in k and 'required=""' in k for k in success)  # not said: empty, same label names


def test_label_value_escaping() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_order_is_stable() -> None:
    report = sample_report()
    first = render_prometheus(report, label_keys=LABEL_KEYS)
    report.checks.reverse()
    assert render_prometheus(report, label_keys=LABEL_KEYS) == first
    ids = re.findall(r'^amlprobe_check_success\{id="([^"]+)"', first, re.M)
    assert ids == sorted(ids)


def test_a_check_changing_state_keeps_its_series() -> None:
    # blackbox_exporter's convention: the success series of a check is one series for its whole
    # life, so alerts, changes() and resets() see one time series flap rather than two series
    # appearing and vanishing (what status and reason labels on it did).
    def series(report: Report, family: str) -> set[str]:
        return {k for k in samples(render_prometheus(report, label_keys=LABEL_KEYS)) if k.startswith(family + "{")}

    before = sample_report()
    after = sample_report()
    for c in after.checks:
        if c.id == "a-pass":
            c.status, c.reason = Status.FAIL, Reason.TCP_TIMEOUT
        if c.id == "m-fail":
            c.status, c.reason = Status.PASS, Reason.OK
    for family in ("amlprobe_check_success", "amlprobe_check_status"):
        assert series(before, family) == series(after, family), family
    assert (
        samples(render_prometheus(after, label_keys=LABEL_KEYS))[
            next(k for k in series(after, "amlprobe_check_success") if 'id="a-pass"' in k)
        ]
        == 0
    )


@requires_promtool
def test_promtool_accepts_the_exposition() -> None:
    promtool_check(render_prometheus(sample_report(), label_keys=LABEL_KEYS))


@requires_promtool
def test_promtool_rejects_a_broken_exposition() -> None:
    # The checker itself must be able to fail, or the test above proves nothing.
    broken = render_prometheus(sample_report(), label_keys=LABEL_KEYS).replace('id="a-pass"', 'id="a-pass', 1)
    out = subprocess.run(
        [PROMTOOL or "", "check", "metrics"], input=broken, capture_output=True, text=True, check=False
    )
    assert out.returncode != 0


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@requires_promtool
def test_cli_format_prometheus(listener: int) -> None:
    out = amlprobe(
        "check", "--target", f"tcp://127.0.0.1:{listener}", "--target", "tcp://127.0.0.1:1", "--format", "prometheus"
    )
    assert out.returncode == 2, out.stderr  # exit codes are the check's, whatever the format
    promtool_check(out.stdout)
    got = samples(out.stdout)
    identity = f'id="tcp:127.0.0.1:{listener}",protocol="tcp",host="127.0.0.1",port="{listener}"'
    assert got[f"amlprobe_check_success{{{identity}}}"] == 1
    assert got[f'amlprobe_check_status{{{identity},status="pass"}}'] == 1
    assert got[f'amlprobe_check_reason_info{{{identity},reason="ok"}}'] == 1
    assert got['amlprobe_check_success{id="tcp:127.0.0.1:1",protocol="tcp",host="127.0.0.1",port="1"}'] == 0
    assert got["amlprobe_run_status"] == 2


@requires_promtool
def test_textfile_is_replaced_atomically(tmp_path: Path, listener: int) -> None:
    prom = tmp_path / "amlprobe.prom"
    prom.write_text("stale\n")
    old_inode = prom.stat().st_ino
    out = amlprobe(
        "check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json", "--textfile-dir", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    validated(out.stdout)  # --format still decides stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amlprobe.prom"]
    assert prom.stat().st_ino != old_inode  # renamed over, not rewritten in place
    text = prom.read_text()
    promtool_check(text)
    assert samples(text)["amlprobe_run_status"] == 0


def test_textfile_temporary_is_not_collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # node_exporter reads *.prom: the file being written must never match that glob.
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(Path(src).name)
        assert not Path(src).name.endswith(".prom")
        assert sorted(p.name for p in tmp_path.glob("*.prom")) == []
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic.write_atomic(tmp_path / "amlprobe.prom", "x 1\n")
    assert len(seen) == 1 and seen[0].startswith(".")
    assert (tmp_path / "amlprobe.prom").read_text() == "x 1\n"


def test_textfile_dir_missing_is_exit_3(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--textfile-dir", "/nonexistent/dir")
    assert out.returncode == 3
    assert "--textfile-dir" in out.stderr and len(out.stderr.splitlines()) == 1


def test_push_url() -> None:
    assert push_url("http://127.0.0.1:9091/", "vm-1") == "http://127.0.0.1:9091/metrics/job/amlprobe/instance/vm-1"
    assert push_url("http://127.0.0.1:9091", "a/b") == (
        "http://127.0.0.1:9091/metrics/job/amlprobe/instance@base64/YS9i"
    )


def _groups(gateway: Pushgateway) -> list[dict[str, object]]:
    data = json.loads(gateway.get("/api/v1/metrics"))
    assert data["status"] == "success"
    return list(data["data"])


def test_cli_push_lands_with_job_and_instance(pushgateway: Pushgateway, listener: int) -> None:  # noqa: F811
    out = amlprobe(
        "check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json", "--pushgateway", pushgateway.url
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    (group,) = _groups(pushgateway)
    assert group["labels"] == {"job": "amlprobe", "instance": socket.gethostname()}
    success = group["amlprobe_check_success"]["metrics"]  # type: ignore[index]
    assert [(m["labels"]["id"], m["value"]) for m in success] == [(f"tcp:127.0.0.1:{listener}", "1")]
    assert group["amlprobe_run_status"]["metrics"][0]["value"] == "0"  # type: ignore[index]
    exposed = pushgateway.get("/metrics")
    assert re.search(r'amlprobe_run_status\{instance="[^"]+",job="amlprobe"\} 0', exposed)


async def test_push_of_checks_with_uneven_labels_is_accepted(pushgateway: Pushgateway) -> None:  # noqa: F811
    # Only some checks carry service_tag: the gateway's consistency check must still take the push.
    await push(
        pushgateway.url, render_prometheus(sample_report(), label_keys=LABEL_KEYS), instance="test-host", timeout=5
    )
    (group,) = _groups(pushgateway)
    assert group["labels"] == {"job": "amlprobe", "instance": "test-host"}
    ids = sorted(m["labels"]["id"] for m in group["amlprobe_check_success"]["metrics"])  # type: ignore[index]
    assert ids == ["a-pass", "m-fail", "z-warn"]
    # A second push replaces the group (PUT), so a check that went away does not linger.
    report = sample_report()
    report.checks = report.checks[:1]
    await push(pushgateway.url, render_prometheus(report, label_keys=LABEL_KEYS), instance="test-host", timeout=5)
    (group,) = _groups(pushgateway)
    assert [m["labels"]["id"] for m in group["amlprobe_check_success"]["metrics"]] == ["z-warn"]  # type: ignore[index]


async def test_push_rejected_by_the_gateway_is_a_push_error(pushgateway: Pushgateway) -> None:  # noqa: F811
    with pytest.raises(PushError, match="HTTP 400"):
        await push(pushgateway.url, "amlprobe_x{bad 1\n", instance="test-host", timeout=5)


def test_push_failure_warns_and_keeps_the_exit_code(listener: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    out = amlprobe(
        "check",
        "--target",
        f"tcp://127.0.0.1:{listener}",
        "--format",
        "json",
        "--pushgateway",
        f"http://127.0.0.1:{dead}",
    )
    assert out.returncode == 0
    validated(out.stdout)
    assert out.stderr.startswith("amlprobe: warning: --pushgateway:")
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr


def test_push_ignores_proxy_environment(pushgateway: Pushgateway, listener: int) -> None:  # noqa: F811
    # A proxy that does not exist: the push still lands because it never goes through it.
    env = {**ENV, "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "amlprobe",
            "check",
            "--target",
            f"tcp://127.0.0.1:{listener}",
            "--format",
            "json",
            "--pushgateway",
            pushgateway.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert len(_groups(pushgateway)) == 1


def test_bad_pushgateway_url_is_exit_3(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--pushgateway", "ftp://127.0.0.1")
    assert out.returncode == 3 and "--pushgateway" in out.stderr
