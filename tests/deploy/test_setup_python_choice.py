"""setup-compute-instance.sh picks the Python that wheels/ was built for, when several are installed."""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.deploy import base_env, make_bundle

pytestmark = pytest.mark.slow


def installed_pythons() -> dict[str, str]:
    """'3.X' -> an interpreter of that version with venv and ensurepip, from the usual places."""
    found: dict[str, str] = {}
    for directory in ["/usr/local/bin", "/usr/bin", *sorted(glob.glob("/root/.pyenv/versions/*/bin"))]:
        for minor in range(10, 14):
            path = os.path.join(directory, f"python3.{minor}")
            if f"3.{minor}" in found or not os.access(path, os.X_OK):
                continue
            ok = subprocess.run([path, "-c", "import venv, ensurepip"], capture_output=True, check=False)
            if ok.returncode == 0:
                found[f"3.{minor}"] = path
    return found


def test_prefers_the_python_the_wheels_were_built_for(tmp_path: Path) -> None:
    pythons = installed_pythons()
    if len(pythons) < 2:
        pytest.skip(f"needs two Python versions with venv, found {sorted(pythons)}")
    oldest = min(pythons, key=lambda v: int(v.split(".")[1]))
    bundle = make_bundle(tmp_path / "bundle", None)
    (bundle / "wheels").mkdir()
    tag = "cp3" + oldest.split(".")[1]
    (bundle / "wheels" / f"somedep-1.0-{tag}-{tag}-manylinux2014_x86_64.whl").write_bytes(b"")
    env = base_env(tmp_path)
    # Newest first on PATH: without the wheels' hint the script would take python3.13 .. first.
    env["PATH"] = ":".join([*(os.path.dirname(p) for _, p in sorted(pythons.items(), reverse=True)), env["PATH"]])
    # The choice is logged before the venv is made; a file where /opt should be stops it right there.
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "opt").write_text("not a directory")
    env["AMLPROBE_ROOT"] = str(tmp_path / "root")
    done = subprocess.run(
        ["bash", str(bundle / "setup-compute-instance.sh")],
        env=env,
        cwd=bundle,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert f"creating the venv /opt/amlprobe with {pythons[oldest]}\n" in done.stdout, done.stdout
    assert "ERROR: setup did not complete" in done.stdout
