"""Pieces for the deploy/ tests: the repository's deploy files, the bundle an admin uploads, a syslog socket."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BUNDLE_FILES = ("setup-compute-instance.sh", "amlprobe-run", "amlprobe.service", "amlprobe.timer", "amlprobe.cron")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]


def dependency_key() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    text = "\n".join([sys.version, *sorted(deps)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def can_build_here() -> bool:
    """Whether this interpreter can build the wheel itself (faster than pip's isolated build env)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(p) for p in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    if (major, minor) < (64, 0):
        return False
    if (major, minor) >= (70, 1):  # bdist_wheel moved into setuptools
        return True
    try:
        version("wheel")
    except PackageNotFoundError:
        return False
    return True


def make_bundle(directory: Path, wheelhouse: dict[str, Path] | None) -> Path:
    """What an admin uploads: deploy/'s files, the amlprobe wheel beside them, dependencies in wheels/."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        shutil.copy2(DEPLOY / name, directory / name)
    if wheelhouse is not None:
        shutil.copy2(wheelhouse["wheel"], directory / wheelhouse["wheel"].name)
        wheels = directory / "wheels"
        wheels.mkdir()
        for whl in wheelhouse["deps"].glob("*.whl"):
            os.symlink(whl, wheels / whl.name)
    return directory


class Syslog:
    """A real syslog socket (AF_UNIX datagrams, as /dev/log); ``logger -u PATH`` writes to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def messages(self) -> list[tuple[int, int, str]]:
        """(facility, severity, text) of every datagram received since the last call."""
        out = []
        while True:
            try:
                raw = self.sock.recv(65536).decode(errors="replace")
            except BlockingIOError:
                return out
            pri, _, rest = raw[1:].partition(">")
            out.append((int(pri) // 8, int(pri) % 8, rest))

    def close(self) -> None:
        self.sock.close()


# syslog(3) severities
LOG_ERR, LOG_WARNING, LOG_NOTICE = 3, 4, 5
LOG_USER = 1


def base_env(tmp_path: Path) -> dict[str, str]:
    """A minimal environment: nothing from the developer's shell (proxies, AMLPROBE_*) leaks in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}


def source_tree(dest: Path) -> Path:
    """The files a clean clone of this tree has (tracked, and new files git does not ignore), copied to
    ``dest``: a wheel built from the repository itself picks up setuptools' ``build/`` left by an earlier
    build, stale modules included; one built here is what a user's fresh clone builds."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        origin = REPO / rel
        if not origin.is_file():  # deleted in the working tree, not yet in the index
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)
    return dest
