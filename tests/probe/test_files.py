"""Files a user names: real FIFOs, devices, symlinks, a full and a read-only file system.

Reading: nothing blocks on a FIFO or reads a device; only regular files of bounded size are read.
Writing (--output, --textfile-dir, --history, bundle --out): only a regular file is replaced,
through a temporary file beside it that never outlives the run; a full or read-only file system
fails with one clear line and leaves the previous report as it was.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.localfacts import gather_local_facts
from probe.atomic import write_atomic
from probe.files import FileTooLarge, NotRegularFile, read_regular
from probe.transport.lookup import hosts_lookup, system_servers
from tests.helpers.cli import ENV
from tests.helpers.netns import requires_netns
from tests.helpers.threaded import ThreadedServer, hold

# Every subprocess gets this long: a hang is a failure, never a stuck suite.
HANG = 20


def amlprobe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amlprobe", *args],
        capture_output=True,
        text=True,
        timeout=HANG,
        env={**ENV, **(env or {})},
        cwd=cwd,
        check=False,
    )


def one_line(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 3, (out.stdout, out.stderr)
    (line,) = out.stderr.splitlines()
    for word in words:
        assert word in line, line


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def device(tmp_path: Path, name: str, minor: int) -> Path:
    """A private copy of /dev/null (minor 3) or /dev/full (minor 7): the real ones are never put at risk."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return path


@pytest.fixture
def silent() -> Iterator[int]:
    """A listener that accepts and never answers TLS: a probe of it waits for its whole timeout."""
    with ThreadedServer(hold) as server:
        yield server.port


# --- reading -----------------------------------------------------------------------------------


def test_read_regular_refuses_fifos_devices_and_directories(fifo: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(NotRegularFile) as err:
            read_regular(path, 1 << 20)
        assert err.value.strerror == f"not a regular file ({kind})"
    with pytest.raises(NotRegularFile):
        read_regular(tmp_path, 1 << 20)
    assert time.monotonic() - started < 1
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(FileTooLarge):
        read_regular(big, 1000)
    assert read_regular(big, 2000) == b"x" * 2000
    assert b"Name:" in read_regular("/proc/self/status", 1 << 20)  # st_size 0, read to EOF


def test_system_files_that_are_fifos_are_skipped_not_waited_on(fifo: Path) -> None:
    assert system_servers(str(fifo)) == []
    assert hosts_lookup("example.test", str(fifo)) == []
    facts = gather_local_facts(
        env={}, names=["a.test"], resolv_conf=fifo, hosts_file=fifo, systemd_resolved_conf=fifo, check_firewall=False
    ).model_dump()
    assert facts["dns"] is None and facts["hosts_overrides"] is None
    errors = facts["errors"]
    assert isinstance(errors, dict) and "not a regular file (a FIFO)" in errors["dns"]


@pytest.mark.parametrize("var", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_ca_bundle_variable_naming_a_fifo_is_bad_input(var: str, fifo: Path, silent: int) -> None:
    out = amlprobe("check", "--target", f"tls://127.0.0.1:{silent}", "--timeout", "30", env={var: str(fifo)})
    one_line(out, var, "not a regular file (a FIFO)")


def test_a_ca_bundle_flag_naming_a_device_is_bad_input(silent: int) -> None:
    out = amlprobe("check", "--target", f"tls://127.0.0.1:{silent}", "--ca-bundle", "/dev/zero")
    one_line(out, "--ca-bundle")


def test_a_history_fifo_is_bad_input(fifo: Path, silent: int) -> None:
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--history", str(fifo))
    one_line(out, "--history", "not a regular file (a FIFO)")


def test_diff_of_a_fifo_is_bad_input(fifo: Path, tmp_path: Path) -> None:
    one_line(amlprobe("diff", str(fifo), str(fifo)), "old report", "not a regular file (a FIFO)")


@requires_netns
@pytest.mark.parametrize("flag", ["--config", "--catalog"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_plan_files_that_are_not_regular_are_bad_input(flag: str, special: str, fifo: Path, tmp_path: Path) -> None:
    from tests.helpers.netns import run_in_netns

    path = str(fifo) if special == "fifo" else special
    env = {**ENV, "AMLPROBE_DMI_PATH": "/nonexistent/amlprobe-test-dmi"}
    out = run_in_netns(
        [], [sys.executable, "-m", "amlprobe", "plan", "--region", "eastus", flag, path], env=env, timeout=HANG
    )
    one_line(out, path, "not a regular file")


# --- writing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "minor"), [("null", 3), ("full", 7)])
def test_output_never_replaces_a_device(name: str, minor: int, tmp_path: Path, silent: int) -> None:
    node = device(tmp_path, name, minor)
    started = time.monotonic()
    out = amlprobe("check", "--target", f"tls://127.0.0.1:{silent}", "--timeout", "30", "--output", str(node))
    one_line(out, "--output", "not a regular file (a character device)")
    assert time.monotonic() - started < 10  # refused before probing, not after
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_output_never_replaces_a_fifo_nor_follows_a_link_to_one(fifo: Path, tmp_path: Path, silent: int) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    for target in (fifo, link):
        out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--output", str(target))
        one_line(out, "--output", "not a regular file (a FIFO)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


def test_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path, silent: int) -> None:
    real = tmp_path / "reports" / "r.json"
    real.parent.mkdir()
    real.write_text("previous")
    link = tmp_path / "r.json"
    link.symlink_to(real)
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--output", str(link))
    assert out.returncode == 0, out.stderr
    assert link.is_symlink() and json.loads(real.read_text())["status"] == "ok"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere" / "x.json")
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--output", str(dangling))
    one_line(out, "--output", "a symbolic link to nothing")


def test_monitoring_and_bundle_targets_are_checked_the_same_way(tmp_path: Path, silent: int) -> None:
    os.mkfifo(tmp_path / "amlprobe.prom")
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--textfile-dir", str(tmp_path))
    one_line(out, "--textfile-dir", "not a regular file (a FIFO)")
    out = amlprobe("bundle", "--target", f"tcp://127.0.0.1:{silent}", "--out", str(tmp_path / "amlprobe.prom"))
    one_line(out, "--out", "not a regular file (a FIFO)")


def test_a_replaced_file_keeps_a_narrower_mode_and_no_temporary_survives(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    target.chmod(0o600)
    write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(tmp_path / "fresh.json", "x")
    assert stat.S_IMODE((tmp_path / "fresh.json").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "r.json"]


_FULL_OR_READ_ONLY = r"""
import json, os, subprocess, sys
d, how = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", d], check=True)
report = os.path.join(d, "r.json")
with open(report, "w") as fh:
    fh.write("previous report\n")
if how == "full":
    try:
        with open(os.path.join(d, "filler"), "wb") as fh:
            while True:
                fh.write(b"x" * 65536)
                fh.flush()
    except OSError:
        pass
else:
    subprocess.run(["mount", "-o", "remount,ro", d], check=True)
out = subprocess.run(
    [sys.executable, "-m", "amlprobe", "check", "--target", "tcp://127.0.0.1:1", "--output", report],
    capture_output=True, text=True, timeout=30,
)
print(json.dumps({"rc": out.returncode, "stderr": out.stderr, "report": open(report).read(),
                  "files": sorted(os.listdir(d))}))
"""


@requires_netns
@pytest.mark.parametrize(("how", "error"), [("full", errno.ENOSPC), ("ro", errno.EROFS)])
def test_full_or_read_only_file_system_fails_clearly_and_keeps_the_previous_report(
    how: str, error: int, tmp_path: Path
) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    unshare = ["unshare", "--user", "--map-root-user", "--net", "--mount"]
    proc = subprocess.run(
        [*unshare, sys.executable, "-c", _FULL_OR_READ_ONLY, str(mountpoint), how],
        capture_output=True,
        text=True,
        timeout=HANG * 2,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["rc"] == 3, seen
    (line,) = seen["stderr"].splitlines()
    assert os.strerror(error) in line and "the previous file is unchanged" in line
    assert seen["report"] == "previous report\n"
    assert [f for f in seen["files"] if f.endswith(".tmp")] == []


def test_history_never_creates_the_target_of_a_dangling_symlink(tmp_path: Path, silent: int) -> None:
    from probe.history import append_entry

    planted = tmp_path / "h.jsonl"
    planted.symlink_to(tmp_path / "elsewhere.conf")
    out = amlprobe("check", "--target", f"tcp://127.0.0.1:{silent}", "--history", str(planted))
    one_line(out, "--history", "a symbolic link to nothing")
    with pytest.raises(NotRegularFile):
        append_entry(planted, {"v": 1})
    assert not (tmp_path / "elsewhere.conf").exists()
