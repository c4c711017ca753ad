"""A real squid for proxy tests: one process, two loopback ports (open, and Basic auth).

Squid refuses to run as root and switches to its own user (``proxy`` on Debian), which cannot
enter pytest's 0700 tmp_path; so its config, logs, pid file and password file live in a private
temporary directory owned by that user, removed at teardown. It never resolves a name through the
machine: ``hosts_file`` lists the test names and ``dns_nameservers`` is 127.0.0.1, where nothing
listens. ``-n`` gives each instance its own shared-memory names so parallel runs do not collide.

Policy: CONNECT is allowed to any port (tests use ephemeral ports) except ``deny_port`` (403).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port

SQUID = shutil.which("squid") or "/usr/sbin/squid"
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
TERM_GRACE = 0.3


def squid_available() -> bool:
    return os.access(SQUID, os.X_OK) and os.access(NCSA_AUTH, os.X_OK) and shutil.which("openssl") is not None


requires_squid = pytest.mark.skipif(not squid_available(), reason="squid (and its basic_ncsa_auth) not installed")


@dataclass
class Squid:
    open_port: int
    auth_port: int
    deny_port: int
    user: str
    password: str
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.open_port}"

    def auth_url(self, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            return f"http://127.0.0.1:{self.auth_port}"
        return f"http://{user}:{password}@127.0.0.1:{self.auth_port}"

    def access_log(self) -> list[str]:
        path = self.state_dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _config(state: Path, open_port: int, auth_port: int, deny_port: int, user: str | None) -> str:
    lines = [
        f"http_port 127.0.0.1:{open_port} name=open",
        f"http_port 127.0.0.1:{auth_port} name=authed",
        "visible_hostname amlprobe-test-squid",
        f"pid_filename {state}/squid.pid",
        f"cache_log {state}/cache.log",
        f"access_log stdio:{state}/access.log",
        "cache_store_log none",
        f"coredump_dir {state}",
        "cache deny all",
        "cache_mem 1 MB",
        "netdb_filename none",
        "pinger_enable off",
        # Nothing listens on 127.0.0.1:53: squid can never ask the machine's resolver.
        "dns_nameservers 127.0.0.1",
        f"hosts_file {state}/hosts",
        "shutdown_lifetime 0 seconds",
        f"auth_param basic program {NCSA_AUTH} {state}/passwd",
        "auth_param basic children 1 startup=1 idle=1",
        "auth_param basic realm amlprobe-test",
        "acl tunnel method CONNECT",
        "acl open_port myportname open",
        "acl auth_port myportname authed",
        "acl authed proxy_auth REQUIRED",
        f"acl denied_ports port {deny_port}",
        "http_access deny tunnel denied_ports",
        "http_access allow open_port",
        "http_access allow auth_port authed",
        "http_access deny all",
    ]
    if user is not None:
        lines.append(f"cache_effective_user {user}")
    return "\n".join(lines) + "\n"


def _effective_user() -> str | None:
    """As root squid must switch to an unprivileged user; Debian's is ``proxy``."""
    if os.geteuid() != 0:
        return None
    for name in ("proxy", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.skip("no unprivileged user for squid to run as")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: a squid that served requests lingers ~2 s on SIGTERM alone.

    Its auth helper exits on its own once squid's end of the pipe closes.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(TERM_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def run_squid(hosts: dict[str, str] | None = None, *, user: str = "probe", password: str = "s3cret") -> Iterator[Squid]:
    """Start squid, wait until both ports accept connections, stop and clean up afterwards."""
    if not squid_available():
        pytest.skip("squid not installed")
    state = Path(tempfile.mkdtemp(prefix="amlprobe-squid-"))
    # Alphanumeric only, or squid refuses it.
    service = f"amlpt{os.getpid()}x{secrets.token_hex(4)}"
    proc: subprocess.Popen[bytes] | None = None
    stderr = open(state / "stderr.log", "wb")  # noqa: SIM115 - closed in finally
    try:
        squid = Squid(free_port(), free_port(), free_port(), user, password, state)
        run_as = _effective_user()
        (state / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in (hosts or {}).items()))
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        (state / "passwd").write_text(f"{user}:{hashed}\n")
        conf = state / "squid.conf"
        conf.write_text(_config(state, squid.open_port, squid.auth_port, squid.deny_port, run_as))
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            for path in (state, *state.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        proc = subprocess.Popen(
            [SQUID, "-N", "-n", service, "-f", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        give_up = time.monotonic() + START_TIMEOUT
        while not (_listening(squid.open_port) and _listening(squid.auth_port)):
            if proc.poll() is not None or time.monotonic() > give_up:
                logs = [state / "cache.log", state / "stderr.log"]
                text = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
                raise RuntimeError(f"squid did not start:\n{text}")
            time.sleep(0.05)
        yield squid
    finally:
        if proc is not None:
            _stop(proc)
        stderr.close()
        for shm in Path("/dev/shm").glob(f"{service}-*"):
            shm.unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
