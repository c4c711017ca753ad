"""The periodic check's systemd units and cron.d entry: verified by systemd's own tools and a strict parser."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY

SERVICE = DEPLOY / "amlprobe.service"
TIMER = DEPLOY / "amlprobe.timer"
CRON = DEPLOY / "amlprobe.cron"
WRAPPER_PATH = "/opt/amlprobe/bin/amlprobe-run"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (Debian package systemd)"
)


def unit_settings(path: Path) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> every value, in order: systemd keys may repeat, so configparser will not do."""
    out: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


@pytest.fixture
def units_for_verify(tmp_path: Path) -> Path:
    """Copies whose ExecStart names an executable that exists here: `verify` checks that it does.
    The repository's own wrapper stands in for /opt/amlprobe/bin/amlprobe-run."""
    service = SERVICE.read_text().replace(f"ExecStart={WRAPPER_PATH}", f"ExecStart={DEPLOY / 'amlprobe-run'}")
    assert service != SERVICE.read_text()
    (tmp_path / "amlprobe.service").write_text(service)
    shutil.copy2(TIMER, tmp_path / "amlprobe.timer")
    return tmp_path


@needs_systemd_analyze
def test_systemd_analyze_verify_is_silent(units_for_verify: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", "amlprobe.service", "amlprobe.timer"],
        cwd=units_for_verify,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on mere warnings ("... has no effect ..."): any output is a finding here.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


@needs_systemd_analyze
def test_service_exposure_stays_low(units_for_verify: Path) -> None:
    # systemd's own hardening score: 0 (locked down) .. 10 (unprotected); threshold is in tenths.
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", "amlprobe.service"],
        cwd=units_for_verify,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "Overall exposure level for amlprobe.service" in done.stdout


def test_service_is_hardened_but_keeps_what_the_probes_need() -> None:
    s = unit_settings(SERVICE)

    def one(key: str) -> str:
        values = s[("Service", key)]
        assert len(values) == 1, key
        return values[0]

    assert one("Type") == "oneshot"
    assert one("ExecStart") == WRAPPER_PATH
    assert one("User") == one("Group") == "amlprobe"
    assert one("StateDirectory") == "amlprobe"
    assert one("SuccessExitStatus") == "1"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes",
    }.items():
        assert one(key) == value, key
    # Outbound TCP/UDP over IPv4 and IPv6, netlink for the interface list, AF_UNIX for syslog.
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    # Nothing may hide what the probes read or cut the network they probe.
    forbidden = ("PrivateNetwork", "IPAddressDeny", "IPAddressAllow", "InaccessiblePaths", "TemporaryFileSystem")
    assert not [k for (_sec, k) in s if k in forbidden]
    assert ("Service", "TimeoutStartSec") in s, "a hung run must end"
    assert s[("Unit", "After")] == ["network-online.target"]


@needs_systemd_analyze
def test_timer_fires_every_15_minutes_spread_and_catching_up() -> None:
    t = unit_settings(TIMER)
    assert t[("Timer", "Persistent")] == ["true"]
    assert t[("Timer", "RandomizedDelaySec")] == ["5min"]
    assert t[("Install", "WantedBy")] == ["timers.target"]
    (calendar,) = t[("Timer", "OnCalendar")]
    done = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=4", calendar],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"LC_ALL": "C", "TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", done.stdout)
    times = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in stamps]
    assert len(times) == 4
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(times)} == {900.0}
    assert all(t.minute % 15 == 0 and t.second == 0 for t in times)


# --- cron.d --------------------------------------------------------------------------------------

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def _cron_number(text: str, index: int, low: int, high: int) -> int:
    names = _NAMES.get(index, [])
    if text.lower() in names:
        return names.index(text.lower()) + (1 if index == 3 else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{_FIELDS[index][0]} {text!r} is not in {low}-{high}")
    return int(text)


def cron_field(text: str, index: int) -> set[int]:
    """The values one time field matches (vixie-cron syntax: lists, ranges, steps, names); ValueError if bad."""
    _name, low, high = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in {item!r}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _cron_number(a, index, low, high), _cron_number(b, index, low, high)
            if first > last:
                raise ValueError(f"empty range {base!r}")
        else:
            first = _cron_number(base, index, low, high)
            last = high if step else first
        values.update(range(first, last + 1, step or 1))
    return values


def parse_cron_d(text: str) -> tuple[dict[str, str], list[tuple[list[set[int]], str, str]]]:
    """Environment lines and jobs (times, user, command) of a cron.d file; ValueError on any bad line."""
    env: dict[str, str] = {}
    jobs = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", line):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
            continue
        parts = line.split(None, 6)
        if len(parts) < 7:
            raise ValueError(f"a cron.d job needs 5 time fields, a user and a command: {raw!r}")
        times = [cron_field(parts[i], i) for i in range(5)]
        if not re.fullmatch(r"[a-z_][a-z0-9_-]*", parts[5]):
            raise ValueError(f"bad user {parts[5]!r}")
        jobs.append((times, parts[5], parts[6]))
    return env, jobs


def test_cron_parser_rejects_what_cron_rejects() -> None:
    for bad in (
        "*/15 * * * amlprobe /x",  # a field short: the user would be taken as a time
        "60 * * * * amlprobe /x",
        "*/0 * * * * amlprobe /x",
        "* 24 * * * amlprobe /x",
        "5-1 * * * * amlprobe /x",
        "* * * * * /opt/x",  # no user field (crontab -e syntax, not cron.d)
    ):
        with pytest.raises(ValueError):
            parse_cron_d(bad)
    assert cron_field("1-5/2,10", 0) == {1, 3, 5, 10}
    assert cron_field("mon-fri", 4) == {1, 2, 3, 4, 5}


def test_cron_d_entry_runs_the_wrapper_every_15_minutes_as_the_service_user() -> None:
    text = CRON.read_text()
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    assert "." not in CRON.stem, "the installed name (amlprobe) must have no dot: run-parts/cron skip those"
    env, jobs = parse_cron_d(text)
    assert env["MAILTO"] == '""', "status changes go to syslog: no mail every 15 minutes"
    assert "PATH" in env
    ((minutes, hours, days, months, weekdays), user, command) = jobs[0]
    assert len(jobs) == 1
    assert minutes == {0, 15, 30, 45}
    assert (hours, days, months) == (set(range(24)), set(range(1, 32)), set(range(1, 13)))
    assert weekdays == set(range(8))
    assert user == "amlprobe"
    argv = command.split()
    assert argv[0] == WRAPPER_PATH
    assert "--quiet" in argv and argv[argv.index("--splay") + 1].isdigit()
