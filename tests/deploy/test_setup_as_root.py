"""deploy/setup-compute-instance.sh as Azure ML runs it: as root, without AMLPROBE_ROOT.

Inside a private mount namespace, so useradd, chown and setpriv act for real on copies: the service
user is created, the setup's own check and a cron-style periodic run both run as that user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.deploy import Syslog, base_env, make_bundle

pytestmark = pytest.mark.slow


# Runs inside `unshare --mount`: /etc is a bind-mounted copy and /opt, /var/lib, /var/log and /run are
# empty tmpfs, so useradd, chown and setpriv act for real without touching the machine. It refuses to
# go on unless the copy of /etc is provably what /etc shows.
_PRIVATE_ROOT = r"""
set -euo pipefail
scratch=$1 bundle=$2
cp -a /etc "$scratch/etc"
mount --bind "$scratch/etc" /etc
touch /etc/.amlprobe-test-marker
[[ -e $scratch/etc/.amlprobe-test-marker ]] || { echo "bind mount of /etc not in place" >&2; exit 99; }
for dir in /opt /var/lib /var/log /run; do mount -t tmpfs -o mode=755 none "$dir"; done
"""
_NAMESPACE_DRIVER = _PRIVATE_ROOT + r"""bash "$bundle/setup-compute-instance.sh" >"$scratch/first.out" 2>&1
bash "$bundle/setup-compute-instance.sh" >"$scratch/second.out" 2>&1
# What cron would run 15 minutes later: as the service user, with no environment but the env file.
env -i PATH=/usr/bin:/bin AMLPROBE_SYSLOG_SOCKET="$AMLPROBE_SYSLOG_SOCKET" \
  setpriv --reuid=amlprobe --regid=amlprobe --init-groups -- /opt/amlprobe/bin/amlprobe-run --quiet \
  && echo "periodic_rc=0" || echo "periodic_rc=$?"
echo "passwd=$(getent passwd amlprobe)"
echo "state=$(stat -c '%U %G %a' /var/lib/amlprobe)"
echo "report=$(stat -c '%U' /var/lib/amlprobe/report.json)"
echo "history=$(stat -c '%U' /var/lib/amlprobe/history.jsonl) $(wc -l </var/lib/amlprobe/history.jsonl)"
echo "env_file=$(stat -c '%U %G %a' /etc/amlprobe/amlprobe.env)"
echo "cron=$(grep -v '^#' /etc/cron.d/amlprobe | grep amlprobe-run)"
bash "$bundle/setup-compute-instance.sh" --uninstall >"$scratch/uninstall.out" 2>&1
echo "uninstalled_user=$(getent passwd amlprobe || echo none)"
echo "uninstalled_left=$(ls -A /opt /var/lib /etc/cron.d 2>/dev/null | grep amlprobe || echo none)"
echo "uninstalled_etc=$(test -e /etc/amlprobe && echo present || echo none)"
"""


def _unshare_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _same_python() -> str | None:
    """/usr/bin/python3 when it matches the wheels' ABI: the service user cannot reach a Python
    under /root (pyenv), as on a compute instance it runs the system's."""
    system = "/usr/bin/python3"
    if not os.path.exists(system):
        return None
    out = subprocess.run(
        [system, "-c", "import sys, venv, ensurepip; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    return system if out.stdout.strip() == str(sys.version_info[:2]) else None


@pytest.mark.skipif(not _unshare_works(), reason="needs root and unshare --mount")
def test_as_root_creates_the_service_user_and_the_check_runs_as_it(
    wheelhouse: dict[str, Path], tmp_path: Path, ok_target: str, syslog: Syslog
) -> None:
    python = _same_python()
    if python is None:
        pytest.skip("/usr/bin/python3 does not match this interpreter's version (the wheels' ABI)")
    assert subprocess.run(["getent", "passwd", "amlprobe"], capture_output=True, check=False).returncode != 0, (
        "this machine already has an amlprobe user: the test could not tell its own apart"
    )
    bundle = make_bundle(tmp_path / "bundle", wheelhouse)
    scratch = tmp_path / "ns"
    scratch.mkdir()
    env = base_env(tmp_path)
    env.update(
        AMLPROBE_PYTHON=python,
        AMLPROBE_CHECK_ARGS=ok_target,
        AMLPROBE_DEADLINE="10",
        AMLPROBE_SCHEDULER="cron",  # never the machine's systemd, even if one runs
        AMLPROBE_SYSLOG_SOCKET=str(syslog.path),
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", _NAMESPACE_DRIVER, "-", scratch, bundle],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    first = (scratch / "first.out").read_text() if (scratch / "first.out").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + first
    facts = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    second = (scratch / "second.out").read_text()

    assert "created the system user amlprobe" in first
    assert re.search(r"^amlprobe: OK .* report=/var/lib/amlprobe/report.json$", first, re.M), first
    assert "ERROR" not in first + second
    assert "wrote" not in second and "created" not in second and "installing" not in second
    user = facts["passwd"].split(":")
    assert user[0] == "amlprobe" and int(user[2]) < 1000 and user[6].endswith("nologin"), facts["passwd"]
    assert facts["state"] == "amlprobe amlprobe 755"
    assert facts["report"] == "amlprobe", "the setup's own check ran as the service user"
    assert facts["history"] == "amlprobe 3"
    # Readable by the service user (the periodic run below found its AMLPROBE_CHECK_ARGS there),
    # by nobody else: proxy credentials may be in it.
    assert facts["env_file"] == "root amlprobe 640"
    assert facts["periodic_rc"] == "0"
    assert facts["cron"] == "*/15 * * * * amlprobe /opt/amlprobe/bin/amlprobe-run --quiet --splay 300"
    # --uninstall takes it all back, the service user included.
    assert "removed the system user amlprobe" in (scratch / "uninstall.out").read_text()
    assert facts["uninstalled_user"] == "none"
    assert facts["uninstalled_left"] == "none"
    assert facts["uninstalled_etc"] == "none"
    # The machine itself is untouched.
    assert subprocess.run(["getent", "passwd", "amlprobe"], capture_output=True, check=False).returncode != 0
    assert not Path("/opt/amlprobe").exists() and not Path("/etc/cron.d/amlprobe").exists()


_PRIVATE_PYTHON_DRIVER = _PRIVATE_ROOT + r"""rc=0
bash "$bundle/setup-compute-instance.sh" --strict >"$scratch/out" 2>&1 || rc=$?
echo "rc=$rc"
echo "venv=$(test -e /opt/amlprobe && echo present || echo none)"
"""


@pytest.mark.skipif(not _unshare_works(), reason="needs root and unshare --mount")
def test_refuses_a_python_the_service_user_cannot_execute(tmp_path: Path) -> None:
    # On a compute instance the trap is a Python under /root (pyenv), which only root can execute.
    # This machine's sandbox does not enforce execute permission for other users (a mode-700 file in a
    # mode-700 directory still runs as nobody), so the interpreter here is a Python that refuses
    # every user but root, exactly as EACCES would.
    rootonly = tmp_path / "rootonly-python"
    rootonly.write_text(
        '#!/bin/sh\n[ "$(id -u)" = 0 ] || { echo "$0: Permission denied" >&2; exit 126; }\n'
        f'exec {sys.executable} "$@"\n'
    )
    rootonly.chmod(0o700)
    bundle = make_bundle(tmp_path / "bundle", None)
    scratch = tmp_path / "ns"
    scratch.mkdir()
    env = base_env(tmp_path)
    env.update(AMLPROBE_PYTHON=str(rootonly), AMLPROBE_SCHEDULER="cron")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", _PRIVATE_PYTHON_DRIVER, "-", scratch, bundle],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    facts = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    out = (scratch / "out").read_text()
    assert facts["rc"] == "1", out
    assert f"ERROR: the service user amlprobe cannot execute {rootonly}" in out
    assert facts["venv"] == "none", "refused before the venv was made"
