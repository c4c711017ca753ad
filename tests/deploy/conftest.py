"""Fixtures for the deploy/ tests: a wheelhouse of amlprobe and its dependencies, a syslog socket."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.deploy import PIP, REPO, Syslog, can_build_here, dependency_key, source_tree
from tests.helpers.ports import listening_socket

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@pytest.fixture(scope="session")
def wheelhouse(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``amlprobe`` built from this tree (every session) and its dependency wheels (cached across
    sessions by the dependency list and Python version: fetching them from the index takes ~20 s)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = f"deploy-wheels-{dependency_key()}"
    cache_plugin = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    cache = Path(cache_plugin.mkdir(key)) if cache_plugin is not None else tmp_path_factory.mktemp(key)
    if not (cache / ".complete").exists():
        subprocess.run([*PIP, "wheel", "-w", str(cache), *deps], check=True, timeout=600)
        (cache / ".complete").touch()
    out = tmp_path_factory.mktemp("amlprobe-wheel")
    isolation = ["--no-build-isolation"] if can_build_here() else []
    src = source_tree(tmp_path_factory.mktemp("amlprobe-src"))
    subprocess.run([*PIP, "wheel", "--no-deps", *isolation, "-w", str(out), str(src)], check=True, timeout=300)
    (wheel,) = out.glob("amlprobe-*.whl")
    return {"wheel": wheel, "deps": cache}


@pytest.fixture
def syslog() -> Iterator[Syslog]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="amlprobe-log-"))
    s = Syslog(directory / "log.sock")
    yield s
    s.close()
    shutil.rmtree(directory)


@pytest.fixture
def ok_target() -> Iterator[str]:
    """Arguments for a check of one loopback listener: an 'ok' run that touches nothing else."""
    s = listening_socket()
    yield f"--target tcp://127.0.0.1:{s.getsockname()[1]} --timeout 1 --no-env"
    s.close()
