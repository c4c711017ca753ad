"""probe.options as a user meets it: bad durations, CA bundles and proxies are one line and exit 3, and the
deployed check's AMLPROBE_* settings work for a check run by hand (flag > environment > default).

Every run here probes loopback only and names a loopback DNS server nothing answers on: a value the
validation failed to refuse could reach no resolver and no address outside this machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.helpers.cli import AMLPROBE, ENV
from tests.helpers.ports import free_port, listening_socket
from tests.helpers.report import validated


@pytest.fixture
def listener() -> Iterator[int]:
    with listening_socket() as s:
        yield s.getsockname()[1]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    safe = ["--dns-server", f"127.0.0.1:{free_port()}"] if args[:1] == ("check",) else []
    return subprocess.run(
        [*AMLPROBE, *args, *safe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, **(env or {})},
        cwd=cwd,
        check=False,
    )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 3, (out.returncode, out.stdout[-500:], out.stderr)
    (line,) = out.stderr.splitlines()
    assert line.startswith("amlprobe: error: "), line
    return line


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--timeout", "--deadline"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "0", "-1", "1e300", "soon"])
def test_a_duration_is_finite_and_positive(listener: int, option: str, value: str) -> None:
    # Before issue 11, --timeout nan reported this listening port as "dropped silently (firewall/NSG)".
    line = one_error_line(run("check", "--target", f"tcp://127.0.0.1:{listener}", f"{option}={value}"))
    assert f"argument {option}" in line and repr(value) in line


def test_the_lab_takes_no_nan_timeout_either() -> None:
    line = one_error_line(run("lab", "--timeout", "nan"))
    assert "argument --timeout" in line and "finite" in line


@pytest.mark.parametrize("option", ["--concurrency"])
@pytest.mark.parametrize("value", ["0", "-3", "2.5"])
def test_concurrency_is_a_positive_whole_number(listener: int, option: str, value: str) -> None:
    one_error_line(run("check", "--target", f"tcp://127.0.0.1:{listener}", option, value))


# --- AMLPROBE_* settings -------------------------------------------------------------------------


def test_the_deployed_settings_work_by_hand(listener: int, tmp_path: Path) -> None:
    env = {
        "AMLPROBE_TIMEOUT": "2.5",
        "AMLPROBE_DEADLINE": "45",
        "AMLPROBE_CONCURRENCY": "3",
        "AMLPROBE_TEXTFILE_DIR": str(tmp_path),
    }
    out = run("check", "--target", f"tcp://127.0.0.1:{listener}", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    settings = validated(out.stdout).environment["settings"]
    assert (settings["timeout_s"], settings["deadline_s"], settings["concurrency"]) == (2.5, 45.0, 3)
    assert "amlprobe_check_success" in (tmp_path / "amlprobe.prom").read_text()


def test_a_flag_wins_over_the_environment_and_an_empty_variable_is_unset(listener: int) -> None:
    env = {"AMLPROBE_TIMEOUT": "2.5", "AMLPROBE_DEADLINE": "", "AMLPROBE_CONCURRENCY": "3"}
    out = run("check", "--target", f"tcp://127.0.0.1:{listener}", "--timeout", "4", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    settings = validated(out.stdout).environment["settings"]
    assert (settings["timeout_s"], settings["deadline_s"], settings["concurrency"]) == (4.0, 60.0, 3)


@pytest.mark.parametrize(
    ("var", "value"),
    [("AMLPROBE_TIMEOUT", "nan"), ("AMLPROBE_DEADLINE", "-5"), ("AMLPROBE_CONCURRENCY", "many")],
)
def test_a_bad_setting_in_the_environment_names_its_variable(listener: int, var: str, value: str) -> None:
    line = one_error_line(run("check", "--target", f"tcp://127.0.0.1:{listener}", env={var: value}))
    assert line.startswith(f"amlprobe: error: {var}={value}: ")


# --- --ca-bundle -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _der(ca: trustme.CA) -> bytes:
    return x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    "content",
    [
        lambda ca: b"not a certificate\n",
        lambda ca: b"",
        _der,  # the right certificate in the wrong encoding
        lambda ca: ca.private_key_pem.bytes(),  # the wrong file
    ],
    ids=["text", "empty", "der", "key"],
)
def test_a_ca_bundle_must_hold_pem_certificates(
    tmp_path: Path, ca: trustme.CA, content: Callable[[trustme.CA], bytes]
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content(ca))
    # Before issue 11 every TLS check failed "untrusted" instead: a false diagnosis of an input mistake.
    line = one_error_line(run("check", "--target", f"tls://127.0.0.1:{free_port()}", "--ca-bundle", str(bundle)))
    assert f"--ca-bundle '{bundle}': not PEM certificates" in line


def test_a_pem_ca_bundle_is_taken(tmp_path: Path, ca: trustme.CA) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"# the corporate root\n" + ca.cert_pem.bytes())
    out = run("check", "--target", f"tls://127.0.0.1:{free_port()}", "--ca-bundle", str(bundle), "--format", "json")
    assert out.returncode == 2, out.stderr  # probed: the port refuses
    assert validated(out.stdout).checks[0].reason.value == "tcp_refused"


# --- proxies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "why"),
    [
        ("http://pro xy:3128", "invalid host name 'pro xy'"),
        ("http://bad_label-.test:3128", "invalid host name 'bad_label-.test'"),
        ("http://127.0.0.1:0", "port 0"),
        ("https://127.0.0.1:3128", "TLS to the proxy itself is not supported"),
        ("socks5://127.0.0.1:1080", "Unsupported proxy scheme socks5"),
        ("notaurl", "expected http://host:port"),
    ],
)
def test_a_proxy_is_http_with_a_host(proxy: str, why: str) -> None:
    line = one_error_line(run("check", "--target", "tls://127.0.0.1:1", "--proxy", proxy))
    assert why in line


@pytest.mark.parametrize("value", ["http://pro xy:3128", "http://127.0.0.1:0"])
def test_a_proxy_variable_that_no_tool_could_use_is_bad_input(value: str) -> None:
    line = one_error_line(run("check", "--target", "tls://127.0.0.1:1", env={"HTTPS_PROXY": value}))
    assert line.startswith("amlprobe: error: HTTPS_PROXY ")


def test_a_loopback_proxy_by_address_is_taken() -> None:
    # A proxy that is not there: the TLS check fails with the proxy's reason, the input was fine.
    proxy = f"http://127.0.0.1:{free_port()}"
    out = run("check", "--target", "tls://127.0.0.1:1", "--proxy", proxy, "--format", "json")
    assert out.returncode == 2, out.stderr
    assert validated(out.stdout).checks[0].reason.value.startswith("proxy")
