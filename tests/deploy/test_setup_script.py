"""deploy/setup-compute-instance.sh, run for real into a throwaway root (AMLPROBE_ROOT).

The bundle is what an admin uploads: the deploy/ files, a wheel of this tree beside them and the
dependency wheels in wheels/, so pip never contacts an index. The check it runs only touches a
loopback listener (AMLPROBE_CHECK_ARGS). systemd is not running here: the cron path is taken, and a
`systemctl` that records any call stands first on PATH to prove it is never called.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY, LOG_NOTICE, Syslog, base_env, make_bundle
from tests.helpers.ports import free_port, listening_socket

SCRIPTS = [DEPLOY / "setup-compute-instance.sh", DEPLOY / "amlprobe-run"]

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (Debian package shellcheck)")
def test_scripts_are_shellcheck_clean() -> None:
    done = subprocess.run(
        ["shellcheck", "--severity=style", *map(str, SCRIPTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for script in SCRIPTS:
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text() or "set -Eeuo pipefail" in script.read_text()
        assert os.access(script, os.X_OK), f"{script.name} is not executable"


@dataclass
class Setup:
    """A bundle, a root, and how to run the setup script against them."""

    bundle: Path
    root: Path
    tripwire: Path
    env: dict[str, str]
    syslog: Syslog

    def run(self, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(self.bundle / "setup-compute-instance.sh"), *args],
            env={**self.env, **env},
            cwd=self.bundle,  # Azure ML runs the script in the folder it was uploaded to
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return done, time.monotonic() - started

    @property
    def state(self) -> Path:
        return self.root / "var/lib/amlprobe"


def snapshot(root: Path, *, skip: Path) -> dict[str, tuple[str, int, int]]:
    """path -> (content hash or link target, mtime_ns, mode) of everything under root but ``skip``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip:
            dirnames.clear()
            continue
        for name in [*filenames, *dirnames]:
            path = Path(dirpath) / name
            if path == skip:
                continue
            st = path.lstat()
            if path.is_symlink():
                digest = "->" + os.readlink(path)
            elif path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                digest = "dir"
            out[str(path.relative_to(root))] = (digest, st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture(scope="module")
def ok_target() -> Iterator[str]:
    s = listening_socket()
    yield f"--target tcp://127.0.0.1:{s.getsockname()[1]} --timeout 1 --no-env"
    s.close()


@pytest.fixture(scope="module")
def setup(wheelhouse: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, ok_target: str) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("setup")
    tripwire = base / "systemctl-called"
    fake_bin = base / "tripwire-bin"
    fake_bin.mkdir()
    (fake_bin / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tripwire}\nexit 1\n')
    (fake_bin / "systemctl").chmod(0o755)
    env = base_env(base)
    env["PATH"] = f"{fake_bin}:{env['PATH']}"
    # AF_UNIX paths are limited to 108 bytes: the module's tmp path can be longer.
    sock_dir = Path(tempfile.mkdtemp(prefix="amlprobe-setup-"))
    syslog = Syslog(sock_dir / "log.sock")
    env.update(
        AMLPROBE_ROOT=str(base / "root"),
        # The wheels were built by this interpreter: its ABI. (A venv made from a venv's python is
        # based on the underlying installation.)
        AMLPROBE_PYTHON=sys.executable,
        AMLPROBE_CHECK_ARGS=ok_target,
        AMLPROBE_DEADLINE="10",
        AMLPROBE_SYSLOG_SOCKET=str(syslog.path),
        CI_NAME="ci-test",
    )
    yield Setup(make_bundle(base / "bundle", wheelhouse), base / "root", tripwire, env, syslog)
    syslog.close()
    shutil.rmtree(sock_dir)


@pytest.fixture(scope="module")
def two_runs(setup: Setup) -> dict[str, object]:
    first, t1 = setup.run()
    before = snapshot(setup.root, skip=setup.state)
    history_after_first = (setup.state / "history.jsonl").read_text().count("\n")
    second, t2 = setup.run()
    after = snapshot(setup.root, skip=setup.state)
    print(f"\nsetup-compute-instance.sh: first run {t1:.2f} s, second run {t2:.2f} s")
    return {
        "first": first,
        "second": second,
        "t1": t1,
        "t2": t2,
        "before": before,
        "after": after,
        "history_after_first": history_after_first,
    }


def test_first_run_installs_checks_and_schedules_with_cron(setup: Setup, two_runs: dict[str, object]) -> None:
    first = two_runs["first"]
    assert isinstance(first, subprocess.CompletedProcess)
    assert first.returncode == 0, first.stdout + first.stderr
    report = setup.state / "report.json"
    verdicts = [line for line in first.stdout.splitlines() if line.startswith("amlprobe: ")]
    assert verdicts == [f"amlprobe: OK (0 findings, 0 of 1 checks failed) report={report}"]
    assert "ERROR" not in first.stdout
    assert re.search(r"^amlprobe-setup: installing amlprobe \S+ into /opt/amlprobe from \S+\.whl$", first.stdout, re.M)

    venv = setup.root / "opt/amlprobe"
    version = subprocess.run([venv / "bin/amlprobe", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("amlprobe ")
    assert os.access(venv / "bin/amlprobe-run", os.X_OK)
    assert (venv / "bin/amlprobe-run").read_bytes() == (DEPLOY / "amlprobe-run").read_bytes()

    cron = setup.root / "etc/cron.d/amlprobe"
    assert cron.read_text() == (DEPLOY / "amlprobe.cron").read_text(), "default paths: installed as shipped"
    assert not (setup.root / "etc/systemd").exists()
    assert not setup.tripwire.exists(), "systemctl must not be called without systemd"

    env_file = setup.root / "etc/amlprobe/amlprobe.env"
    assert env_file.stat().st_mode & 0o777 == 0o640
    lines = env_file.read_text().splitlines()
    assert f"AMLPROBE_CHECK_ARGS={setup.env['AMLPROBE_CHECK_ARGS']}" in lines
    assert "CI_NAME=ci-test" in lines, "the periodic runs need what Azure ML told the setup script"
    assert not any(line.startswith(("AMLPROBE_ROOT=", "AMLPROBE_PYTHON=")) for line in lines)

    assert json.loads(report.read_text())["status"] == "ok"
    assert (setup.state / "textfile/amlprobe.prom").exists()
    assert two_runs["history_after_first"] == 1
    msgs = setup.syslog.messages()
    assert [(s, "status none -> ok" in t) for _, s, t in msgs] == [(LOG_NOTICE, True)]


def test_second_run_changes_nothing_and_is_much_faster(setup: Setup, two_runs: dict[str, object]) -> None:
    second = two_runs["second"]
    assert isinstance(second, subprocess.CompletedProcess)
    assert second.returncode == 0, second.stdout + second.stderr
    # Nothing installed, nothing written: the verdict and the closing line only.
    lines = second.stdout.splitlines()
    assert len(lines) == 2, second.stdout
    assert lines[0].startswith("amlprobe: OK ")
    assert lines[1].startswith("amlprobe-setup: amlprobe ") and "ready (cron)" in lines[1]
    before, after = two_runs["before"], two_runs["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert len(before) > 100, "the venv is in the snapshot"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == []
    # Only the state directory moves: one more history line, a fresh report.
    assert (setup.state / "history.jsonl").read_text().count("\n") == 2
    t1, t2 = two_runs["t1"], two_runs["t2"]
    assert isinstance(t1, float) and isinstance(t2, float)
    assert t2 < t1 / 3, f"first {t1:.1f} s, second {t2:.1f} s"
    assert not setup.tripwire.exists()


def test_critical_verdict_exits_0_unless_strict(setup: Setup, two_runs: dict[str, object]) -> None:
    down = f"--target tcp://127.0.0.1:{free_port()} --timeout 1 --no-env"
    relaxed, _ = setup.run(AMLPROBE_CHECK_ARGS=down)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert "amlprobe: CRITICAL (0 findings, 1 of 1 checks failed)" in relaxed.stdout
    assert "ERROR" not in relaxed.stdout + relaxed.stderr, "a critical verdict is a result, not an error"
    strict, _ = setup.run("--strict", AMLPROBE_CHECK_ARGS=down)
    assert strict.returncode == 2, strict.stdout + strict.stderr
    assert "amlprobe: CRITICAL" in strict.stdout
    assert not setup.tripwire.exists()


def test_installation_failure_is_logged_and_exits_0_unless_strict(
    setup: Setup, two_runs: dict[str, object], tmp_path: Path
) -> None:
    # A newer version is wanted, but no wheel is beside the script and the index is off: pip fails.
    bare = make_bundle(tmp_path / "bare", None)
    runs = {}
    for strict in (False, True):
        done = subprocess.run(
            ["bash", str(bare / "setup-compute-instance.sh"), *(["--strict"] if strict else [])],
            env={**setup.env, "AMLPROBE_VERSION": "999.0", "AMLPROBE_PIP_ARGS": "--no-index"},
            cwd=bare,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        runs[strict] = done
    assert runs[False].returncode == 0
    assert "ERROR: pip could not install amlprobe==999.0" in runs[False].stdout
    assert "exiting 0 so that the compute is still created" in runs[False].stdout
    assert runs[True].returncode == 1
    # The working installation is left alone.
    version = subprocess.run(
        [setup.root / "opt/amlprobe/bin/amlprobe", "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0

    no_python, _ = setup.run(AMLPROBE_PREFIX="/opt/other", AMLPROBE_PYTHON="/nonexistent/python3")
    assert no_python.returncode == 0
    assert "ERROR: no Python 3.10+" in no_python.stdout
    assert not (setup.root / "opt/other").exists()


def test_systemd_path_installs_rendered_units_and_enables_the_timer(setup: Setup, two_runs: dict[str, object]) -> None:
    # systemd "running" inside the staging root: the script then only tells it via systemctl --root,
    # which edits files and talks to no daemon. The real systemctl, not the tripwire.
    (setup.root / "run/systemd/system").mkdir(parents=True)
    env = {"PATH": setup.env["PATH"].split(":", 1)[1], "AMLPROBE_STATE_DIR": "/srv/amlprobe-state"}
    if shutil.which("systemctl", path=env["PATH"]) is None:
        pytest.skip("systemctl not installed")
    done, _ = setup.run(**env)
    assert done.returncode == 0, done.stdout + done.stderr
    units = setup.root / "etc/systemd/system"
    service = (units / "amlprobe.service").read_text()
    shipped = (DEPLOY / "amlprobe.service").read_text()
    # Only the state directory differs from the shipped unit: /srv is not under /var/lib.
    assert service == shipped.replace("StateDirectory=amlprobe\n", "ReadWritePaths=/srv/amlprobe-state\n")
    assert (units / "amlprobe.timer").read_text() == (DEPLOY / "amlprobe.timer").read_text()
    link = units / "timers.target.wants/amlprobe.timer"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/amlprobe.timer"
    assert not (setup.root / "etc/cron.d/amlprobe").exists(), "one scheduler only"
    assert "AMLPROBE_STATE_DIR=/srv/amlprobe-state" in (setup.root / "etc/amlprobe/amlprobe.env").read_text()
    assert json.loads((setup.root / "srv/amlprobe-state/report.json").read_text())["status"] == "ok"

    before = snapshot(setup.root, skip=setup.root / "srv/amlprobe-state")
    again, _ = setup.run(**env)
    assert again.returncode == 0
    assert "wrote" not in again.stdout
    assert snapshot(setup.root, skip=setup.root / "srv/amlprobe-state") == before
