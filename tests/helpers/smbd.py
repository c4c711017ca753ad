"""A throwaway real Samba smbd on 127.0.0.1, configured entirely inside a test's tmp directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port

SMBD = "/usr/sbin/smbd"
READY_TIMEOUT = 10.0

requires_smbd = pytest.mark.skipif(
    not (os.access(SMBD, os.X_OK) or shutil.which("smbd")), reason="samba's smbd is not installed"
)


@dataclass
class Smbd:
    host: str
    port: int
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def write_config(workdir: Path, port: int, extra: dict[str, str] | None = None) -> Path:
    dirs = {name: workdir / name for name in ("pid", "lock", "state", "cache", "private", "ncalrpc", "log")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    options = {
        "smb ports": str(port),
        "interfaces": "127.0.0.1",
        "bind interfaces only": "yes",
        "pid directory": str(dirs["pid"]),
        "lock directory": str(dirs["lock"]),
        "state directory": str(dirs["state"]),
        "cache directory": str(dirs["cache"]),
        "private dir": str(dirs["private"]),
        "ncalrpc dir": str(dirs["ncalrpc"]),
        "log file": str(dirs["log"] / "smbd.log"),
        "disable netbios": "yes",
        "server role": "standalone server",
        "load printers": "no",
        "printing": "bsd",
        "printcap name": "/dev/null",
        **(extra or {}),
    }
    conf = workdir / "smb.conf"
    conf.write_text("[global]\n" + "".join(f"    {k} = {v}\n" for k, v in options.items()))
    return conf


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def running_smbd(workdir: Path, extra: dict[str, str] | None = None) -> Iterator[Smbd]:
    """Start smbd in the foreground on a free loopback port; stop it (and only it) afterwards."""
    host = "127.0.0.1"
    port = free_port(host)
    conf = write_config(workdir, port, extra)
    stdout = (workdir / "smbd.stdout").open("wb")
    proc = subprocess.Popen(
        [SMBD, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
        stdout=stdout,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # smbd signals its whole process group when it shuts down: give it a group of its own,
        # or it takes pytest (and the shell running it) down with it.
        start_new_session=True,
    )
    server = Smbd(host, port, workdir / "smbd.stdout")
    try:
        give_up = time.monotonic() + READY_TIMEOUT
        while not _accepts(host, port):
            if proc.poll() is not None:
                pytest.fail(f"smbd exited with {proc.returncode} before listening:\n{server.log_tail()}")
            if time.monotonic() > give_up:
                pytest.fail(f"smbd did not listen on {host}:{port} within {READY_TIMEOUT} s:\n{server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        _stop_group(proc)
        stdout.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop smbd, then any per-connection child it left: all of them are in its own group."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
