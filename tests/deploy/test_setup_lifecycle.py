"""setup-compute-instance.sh over a machine's life: wrong arguments, re-runs that keep settings,
wheels built for another Python, and --uninstall. Real runs into a throwaway root (AMLPROBE_ROOT)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.deploy import base_env, make_bundle

pytestmark = pytest.mark.slow


def run(bundle: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(bundle / "setup-compute-instance.sh"), *args],
        env=env,
        cwd=bundle,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def staging_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = base_env(tmp_path)
    env.update(AMLPROBE_ROOT=str(tmp_path / "root"), AMLPROBE_PYTHON=sys.executable, AMLPROBE_SCHEDULER="cron")
    env.update(extra)
    return env


@pytest.mark.parametrize("argument", ["--stritc", "AMLPROBE_lower=1", "DEADLINE=90", "-x"])
def test_unknown_argument_prints_usage_and_exits_2_before_changing_anything(tmp_path: Path, argument: str) -> None:
    bundle = make_bundle(tmp_path / "bundle", None)
    (tmp_path / "root").mkdir()
    done = run(bundle, staging_env(tmp_path), "--strict", argument)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert "setup-compute-instance.sh: install amlprobe" in done.stderr, "the usage is shown"
    assert done.stderr.rstrip().splitlines()[-1].startswith("amlprobe-setup: ERROR: ")
    assert f"'{argument}'" in done.stderr
    assert files_under(tmp_path / "root") == []


def test_rerun_keeps_settings_it_was_not_given_and_uninstall_removes_everything(
    wheelhouse: dict[str, Path], tmp_path: Path, ok_target: str
) -> None:
    bundle = make_bundle(tmp_path / "bundle", wheelhouse)
    root = tmp_path / "root"
    textfile = "/srv/node-exporter"
    (root / "srv/node-exporter").mkdir(parents=True)
    (root / "srv/node-exporter/other.prom").write_text("# another collector's file\n")
    env_file = root / "etc/amlprobe/amlprobe.env"

    first = run(
        bundle,
        staging_env(tmp_path, AMLPROBE_DEADLINE="10", AMLPROBE_TEXTFILE_DIR=textfile),
        f"AMLPROBE_CHECK_ARGS={ok_target}",
        "AMLPROBE_REGION=eastus",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "amlprobe: OK" in first.stdout
    lines = env_file.read_text().splitlines()
    assert "AMLPROBE_REGION=eastus" in lines and f"AMLPROBE_CHECK_ARGS={ok_target}" in lines

    # Re-run as a compute's startup script does: without the arguments. The settings stay, and the
    # check still finds its target (it would fail with no AMLPROBE_CHECK_ARGS).
    second = run(bundle, staging_env(tmp_path, AMLPROBE_DEADLINE="10"), "AMLPROBE_WORKSPACE_NAME=ws1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "amlprobe: OK" in second.stdout
    lines = env_file.read_text().splitlines()
    assert "AMLPROBE_REGION=eastus" in lines
    assert f"AMLPROBE_CHECK_ARGS={ok_target}" in lines
    assert f"AMLPROBE_TEXTFILE_DIR={textfile}" in lines
    assert "AMLPROBE_WORKSPACE_NAME=ws1" in lines
    assert (root / "srv/node-exporter/amlprobe.prom").exists()

    # An empty value removes a setting.
    third = run(bundle, staging_env(tmp_path, AMLPROBE_DEADLINE="10"), "AMLPROBE_REGION=")
    assert third.returncode == 0, third.stdout + third.stderr
    assert not any(line.startswith("AMLPROBE_REGION=") for line in env_file.read_text().splitlines())

    # --uninstall removes every file it installed and every file amlprobe wrote, nothing else.
    gone = run(bundle, staging_env(tmp_path), "--uninstall")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert gone.stdout.rstrip().endswith("amlprobe-setup: amlprobe uninstalled")
    assert "amlprobe: " not in gone.stdout, "no check runs"
    assert files_under(root) == ["srv/node-exporter/other.prom"]
    for path in ("opt/amlprobe", "etc/amlprobe", "var/lib/amlprobe", "etc/cron.d/amlprobe"):
        assert not (root / path).exists(), path
    assert "kept /srv/node-exporter: it holds files amlprobe did not write: other.prom" in gone.stdout

    # Nothing left to remove: a second uninstall is a no-op that still succeeds.
    again = run(bundle, staging_env(tmp_path), "--uninstall")
    assert again.returncode == 0
    assert "removed" not in again.stdout


def test_uninstall_keeps_a_prefix_that_is_not_an_amlprobe_venv(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", None)
    root = tmp_path / "root"
    (root / "opt/tools/bin").mkdir(parents=True)
    (root / "opt/tools/bin/tool").write_text("precious\n")
    done = run(bundle, staging_env(tmp_path, AMLPROBE_PREFIX="/opt/tools"), "--uninstall")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / "opt/tools/bin/tool").read_text() == "precious\n"
    assert "kept /opt/tools: it is not an amlprobe venv" in done.stdout


def test_wheels_for_another_python_are_named_plainly(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", None)
    (bundle / "wheels").mkdir()
    other = sys.version_info.minor + 1
    (bundle / "wheels" / f"aiohttp-3.9.0-cp3{other}-cp3{other}-manylinux2014_x86_64.whl").write_bytes(b"")
    (tmp_path / "root").mkdir()
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    for strict, code in ((False, 0), (True, 1)):
        done = run(bundle, staging_env(tmp_path), *(["--strict"] if strict else []))
        assert done.returncode == code, done.stdout + done.stderr
        assert (
            f"ERROR: the wheels in {bundle}/wheels are built for Python 3.{other}, but /opt/amlprobe runs"
            f" Python {ours}: build them with Python {ours}" in done.stdout
        ), done.stdout
        assert "pip could not install" not in done.stdout, "named before pip runs"
    assert not list((tmp_path / "root/opt/amlprobe").glob("lib/python3*/site-packages/amlprobe*"))
    assert os.access(tmp_path / "root/opt/amlprobe/bin/python", os.X_OK)
