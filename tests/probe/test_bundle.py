"""The support bundle: real run, real tarball, planted secrets that must not survive; the redaction engine."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import ENV
from tests.helpers.report import validated
from tests.helpers.secrets import CLI_PROXY_PASSWORD, CLIENT_SECRET, CONN_KEY, JWT, PROXY_PASSWORD, SAS_SIG, STORAGE_KEY

REPO = Path(__file__).resolve().parents[2]
SECRETS = (STORAGE_KEY, CONN_KEY, SAS_SIG, PROXY_PASSWORD, CLIENT_SECRET, JWT, CLI_PROXY_PASSWORD)
MEMBERS = {
    "report.json",
    "report.txt",
    "plan.json",
    "environment.json",
    "environ.txt",
    "resolv.conf",
    "routes.txt",
    "listening.json",
    "version.txt",
    "REDACTIONS.txt",
}


def test_planted_values_have_the_shapes_they_stand_for() -> None:
    assert len(STORAGE_KEY) == 88 and STORAGE_KEY.endswith("==")
    assert len(CONN_KEY) == 88 and CONN_KEY.endswith("==")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def run_bundle(*args: str, cwd: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**ENV, **extra_env, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "amlprobe", "bundle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


PLANTED_ENV = {
    "HTTPS_PROXY": f"http://proxyuser:{PROXY_PASSWORD}@127.0.0.1:9",
    "AML_DATA_URL": f"https://acct.blob.core.windows.net/data/x.csv?sv=2022-11-02&se=2030-01-01T00:00:00Z&sp=r&sig={SAS_SIG}",
    "AZURE_STORAGE_KEY": STORAGE_KEY,
    "AZUREML_STORAGE_CONNECTION": f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={CONN_KEY}",
    "AZURE_CLIENT_SECRET": CLIENT_SECRET,
    "AML_ACCESS": f"Bearer {JWT}",
    "NO_PROXY": "127.0.0.1,localhost",
}


def _members(path: Path) -> dict[str, str]:
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for info in tar.getmembers():
            assert info.isfile()
            folder, _, name = info.name.partition("/")
            assert folder == path.name.removesuffix(".tar.gz")
            fh = tar.extractfile(info)
            assert fh is not None
            out[name] = fh.read().decode()
    return out


def test_bundle_contains_the_evidence_and_no_planted_secret(tmp_path: Path, listener: int) -> None:
    out_path = tmp_path / "case.tar.gz"
    out = run_bundle(
        "--target", f"tcp://127.0.0.1:{listener}", "--format", "json", "--timeout", "1",
        "--proxy", f"http://cliuser:{CLI_PROXY_PASSWORD}@127.0.0.1:9", "--out", str(out_path),
        cwd=tmp_path, extra_env=PLANTED_ENV,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    validated(out.stdout)  # the run prints its report as check does
    assert f"bundle written to {out_path}" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.tar.gz"]  # no temporary left behind
    assert stat.S_IMODE(out_path.stat().st_mode) == 0o600

    members = _members(out_path)
    assert set(members) == MEMBERS
    blob = out_path.read_bytes() + "".join(members.values()).encode()
    for secret in SECRETS:
        assert secret not in "".join(members.values()), secret
        assert secret not in out.stderr
    assert PROXY_PASSWORD.encode() not in blob  # not even in tar headers

    report = validated(members["report.json"])  # redaction keeps the JSON valid
    assert [c.status.value for c in report.checks] == ["pass"]
    plan = json.loads(members["plan.json"])
    assert [c["id"] for c in plan["checks"]] == [f"tcp:127.0.0.1:{listener}"] and plan["skipped"] == []
    assert json.loads(members["environment.json"])["settings"]["timeout_s"] == 1.0
    assert "$ ip route show table all" in members["routes.txt"] and "$ ip rule show" in members["routes.txt"]
    assert re.search(r"local 127\.0\.0\.1 dev lo", members["routes.txt"])
    sockets = json.loads(members["listening.json"])["sockets"]
    mine = [s for s in sockets if (s["protocol"], s["address"], s["port"]) == ("tcp", "127.0.0.1", listener)]
    assert len(mine) == 1 and mine[0]["pid"] == os.getpid()  # the test's own listener, with its owner
    assert members["version.txt"].startswith("amlprobe ")
    environ = members["environ.txt"]
    assert "NO_PROXY=127.0.0.1,localhost" in environ  # context a support engineer needs stays readable
    assert "HTTPS_PROXY=http://proxyuser:<redacted:url_password>@127.0.0.1:9" in environ
    assert "sv=2022-11-02&se=2030-01-01T00:00:00Z&sp=r&sig=<redacted:sas_signature>" in environ

    redactions = members["REDACTIONS.txt"]
    for expected in (
        "environ.txt: URL password",
        "environ.txt: SAS signature",
        "environ.txt: storage account key",
        "environ.txt: secret value (AZURE_CLIENT_SECRET)",
        "environ.txt: JWT",
    ):
        assert expected in redactions, redactions
        assert expected in out.stderr
    assert len(re.findall(r"environ\.txt: storage account key", redactions)) == 2  # both keys


def test_default_name_in_cwd_and_missing_out_dir(tmp_path: Path, listener: int) -> None:
    out = run_bundle("--target", f"tcp://127.0.0.1:{listener}", "--format", "json", cwd=tmp_path, extra_env={})
    assert out.returncode == 0, out.stderr
    (made,) = tmp_path.iterdir()
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    assert re.fullmatch(rf"amlprobe-bundle-{re.escape(host)}-\d{{8}}T\d{{6}}Z\.tar\.gz", made.name)
    assert "nothing needed redacting" in out.stderr or "REDACTIONS.txt" in out.stderr
    assert "REDACTIONS.txt" in _members(made)

    out = run_bundle("--target", f"tcp://127.0.0.1:{listener}", "--out", str(tmp_path / "no" / "b.tar.gz"),
                     cwd=tmp_path, extra_env={})  # fmt: skip
    assert out.returncode == 3 and len(out.stderr.splitlines()) == 1 and "--out" in out.stderr


def test_bundle_exit_code_is_the_checks(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    out = run_bundle("--target", f"tcp://127.0.0.1:{closed}", "--format", "json", "--out", str(tmp_path / "b.tar.gz"),
                     cwd=tmp_path, extra_env={})  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert (tmp_path / "b.tar.gz").exists()
    assert "CRITICAL" in out.stderr


def test_resolv_conf_comes_from_the_machine(tmp_path: Path, listener: int) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\noptions edns0\n")
    out = run_bundle("--target", f"tcp://127.0.0.1:{listener}", "--format", "json", "--out", str(tmp_path / "b.tar.gz"),
                     cwd=tmp_path, extra_env={"AMLPROBE_RESOLV_CONF": str(resolv)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _members(tmp_path / "b.tar.gz")["resolv.conf"] == resolv.read_text()
