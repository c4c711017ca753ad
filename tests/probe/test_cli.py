"""The command line as a user runs it: a subprocess, real peers on loopback, real exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import ENV, amlprobe
from tests.helpers.netns import DROP_SETUP, drop_route, requires_netns
from tests.helpers.ports import free_port
from tests.helpers.report import validated


@pytest.fixture
def listener() -> object:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_version() -> None:
    out = amlprobe("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("amlprobe ")


def test_schema_is_json_schema() -> None:
    out = amlprobe("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["properties"]["schema_version"]
    for field in ("status", "started_at", "duration_ms", "tool", "environment", "checks", "findings"):
        assert field in schema["properties"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--target", "tls//nohost"], "expected scheme://"),
        (["check", "--target", "gopher://example.invalid"], "unknown scheme 'gopher'"),
        (["check", "--target", "udp://127.0.0.1"], "needs a port"),
        (["check", "--target", "tcp://bad_label-.example:1"], "invalid host name"),
        (["check", "--target", "tcp://127.0.0.1:99999"], "out of range"),
        (["check", "--target", "tcp://127.0.0.1:1", "--dns-server", "not-an-ip"], "--dns-server 'not-an-ip'"),
        (["check", "--target", "tcp://127.0.0.1:1", "--timeout", "-1"], "must be positive"),
        (["check", "--target", "tls://127.0.0.1", "--ca-bundle", "/nonexistent/ca.pem"], "no such file"),
        (["check", "--bogus-flag"], "unrecognized arguments"),
        (["check", "--target", "tls://127.0.0.1:1", "--proxy", "http://[::1"], "--proxy 'http://[::1'"),
        (["check", "--target", "tls://127.0.0.1:1", "--proxy", "socks5://x"], "Unsupported proxy scheme socks5"),
        (["check", "--target", "tls://127.0.0.1:1", "--proxy", "notaurl"], "expected http://host:port"),
        (["check", "--target", "tls://127.0.0.1:1", "--proxy", "http://p:99999"], "Port out of range"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(args: list[str], message: str) -> None:
    out = amlprobe(*args)
    assert out.returncode == 3
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("var", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
@pytest.mark.parametrize("value", ["http://[::1", "http://u:secret@:3128", "http://proxy.test:port"])
def test_an_unparseable_proxy_variable_is_bad_input(var: str, value: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "amlprobe", "check", "--target", "tls://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, var: value},
        check=False,
    )
    assert out.returncode == 3, out.stdout
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"amlprobe: error: {var} ") and "Invalid proxy URL" in line
    assert "secret" not in line  # credentials stay hidden even in the error


def test_ok_report_exit_0_and_valid_json(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json")
    assert out.returncode == 0, out.stderr
    report = validated(out.stdout)
    assert report.status.value == "ok"
    (check,) = report.checks
    assert check.id == f"tcp:127.0.0.1:{listener}"
    assert check.status.value == "pass" and check.reason.value == "ok"
    assert check.addresses == ["127.0.0.1"]
    assert check.latency_ms is not None


def test_http_and_https_on_one_port_are_two_checks(listener: int) -> None:
    # Report contract 2.0: the same host and port with and without TLS are two targets, two ids, two results.
    urls = [f"http://127.0.0.1:{listener}/", f"https://127.0.0.1:{listener}/", f"https://127.0.0.1:{listener}/v2/"]
    out = amlprobe("check", *(a for u in urls for a in ("--target", u)), "--format", "json", "--timeout", "1")
    report = validated(out.stdout)
    assert [c.id for c in report.checks] == [
        f"http:127.0.0.1:{listener}",
        f"https:127.0.0.1:{listener}",
        f"https:127.0.0.1:{listener}/v2/",
    ]


def test_refused_is_critical_exit_2(listener: int) -> None:
    port = free_port()
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--target", f"tcp://127.0.0.1:{port}")
    assert out.returncode == 2
    report = validated(out.stdout)
    assert report.status.value == "critical"
    assert [c.reason.value for c in report.checks] == ["ok", "tcp_refused"]
    assert report.summary.passed == 1 and report.summary.failed == 1


def test_table_format(listener: int) -> None:
    port = free_port()
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{port}", "--format", "table")
    assert out.returncode == 2
    first = out.stdout.splitlines()[0]
    assert first.startswith("CRITICAL")
    assert "tcp_refused" in out.stdout
    assert "\x1b[" not in out.stdout  # no colour when not a terminal


def test_output_file_is_written_atomically(tmp_path: Path, listener: int) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--output", str(target))
    assert out.returncode == 0
    assert out.stdout == ""
    validated(target.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary left behind


def test_output_into_missing_directory_is_exit_3(listener: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{listener}", "--output", "/nonexistent/dir/r.json")
    assert out.returncode == 3
    assert "--output" in out.stderr


@requires_netns
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_writes_a_partial_report_marked_interrupted(tmp_path: Path, sig: signal.Signals) -> None:
    import shlex

    report = tmp_path / "r.json"
    setup = "; ".join(
        ["ip link set lo up", *(f"ip {c.removeprefix('ip ')}" for c in DROP_SETUP), *drop_route("192.0.2.0/24")]
    )
    cmd = shlex.join(
        [
            sys.executable,
            "-m",
            "amlprobe",
            "check",
            "--target",
            "tcp://192.0.2.1:443",
            "--target",
            "tcp://127.0.0.1:1",
            "--timeout",
            "20",
            "--output",
            str(report),
        ]
    )
    proc = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--net", "sh", "-c", f"{setup}; exec {cmd}"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    # Issue 14: an interrupted run is unknown (exit 3), even though the refused check it saw
    # before the signal would have made a finished run critical.
    assert proc.returncode == 3, err
    parsed = validated(report.read_text())
    assert parsed.interrupted is True
    assert parsed.status.value == "unknown"
    reasons = {c.id: c.reason.value for c in parsed.checks}
    assert reasons == {"tcp:192.0.2.1:443": "interrupted", "tcp:127.0.0.1:1": "tcp_refused"}


def test_targets_file_adds_to_target(tmp_path: Path, listener: int) -> None:
    # Thousands of --target options make argparse quadratic; a file of targets does not (issue 13).
    closed = free_port()
    listed = tmp_path / "targets.txt"
    listed.write_text(f"# probed as well\n\ntcp://127.0.0.1:{closed}\n  tcp://127.0.0.1:{listener}  \n")
    out = amlprobe("check", "--format", "json", "--targets", str(listed), "--target", f"tcp://127.0.0.1:{listener}")
    report = validated(out.stdout)
    assert [c.id for c in report.checks] == [f"tcp:127.0.0.1:{listener}", f"tcp:127.0.0.1:{closed}"]
    assert out.returncode == 2


def test_unreadable_targets_file_is_exit_3(tmp_path: Path) -> None:
    out = amlprobe("check", "--targets", str(tmp_path / "missing.txt"))
    assert out.returncode == 3
    assert out.stderr.startswith("amlprobe: error: --targets ") and out.stderr.count("\n") == 1
