"""Text a peer chose never reaches a terminal raw, and never grows the report without bound.

Real peers on loopback (a TLS server whose certificate names hold escape sequences, a proxy
whose answer holds them, a certificate with 2,000 names), the real CLI as a subprocess.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from probe.model import MAX_SANS, CertInfo, CheckResult, Protocol, Status, Target, TlsFacts
from probe.reasons import Reason
from probe.sanitize import clip, printable
from tests.helpers.cli import ENV
from tests.helpers.probes import self_signed_pem, server_ssl_context
from tests.helpers.report import validated
from tests.helpers.threaded import ThreadedServer, reply, tls_holder

# An OSC window title, a screen clear, a carriage return that rewrites the line with a verdict,
# a bell and a right-to-left override: what a hostile peer sends to a terminal.
FORGED = "OK: every required path works"
HOSTILE = f"evil\x1b]0;pwned\x07\x1b[2J\x1b[H\r{FORGED}\u202e\x9b31m"
RAW_CONTROLS = ("\x1b", "\r", "\x07", "\u202e", "\x9b")


def amlprobe(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "amlprobe", *args, "--dns-server", "127.0.0.1:1", "--timeout", "5"],
        capture_output=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    # Decoded by hand: text=True would turn a raw CR into a newline and hide it.
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode(), out.stderr.decode())


def assert_terminal_safe(table: str, *, lines: int) -> None:
    for ch in RAW_CONTROLS:
        assert ch not in table, f"{ch!r} reached the table"
    got = table.splitlines()
    assert len(got) == lines, got
    assert not any(line.startswith(FORGED) for line in got[1:])
    assert "\\x1b]0;pwned\\x07" in table  # escaped visibly, not dropped


# --- the sanitiser itself ----------------------------------------------------------------------


def test_printable_escapes_controls_and_bidi_visibly() -> None:
    assert printable("a\x1b[2Jb\rc\nd\te\x85f\u202eg\u2066h\u200bi") == (
        "a\\x1b[2Jb\\rc\\nd\\te\\x85f\\u202eg\\u2066h\\u200bi"
    )
    assert printable("Zürich 東京 (contoso) \\x1b") == "Zürich 東京 (contoso) \\x1b"
    assert printable("\ud800") == "\\ud800"  # a lone surrogate could not even be encoded


def test_bounds_are_idempotent_and_count_the_cut() -> None:
    text, cut = clip("x" * 5000, 1000)
    assert len(text) == 1000 and text.endswith(f"… [{cut} more characters]")
    assert cut == 5000 - text.index("…")
    assert clip(text, 1000) == (text, 0)
    assert printable(printable(HOSTILE * 100)) == printable(HOSTILE * 100)


def test_a_result_keeps_raw_peer_values_bounded_and_escapes_its_detail() -> None:
    cert = CertInfo(subject="CN=" + HOSTILE, issuer="CN=x" * 600, sans=[f"h{i}.test" for i in range(250)])
    result = CheckResult(
        id="tls:x",
        target=Target(host="x", port=443, protocol=Protocol.TLS),
        status=Status.FAIL,
        reason=Reason.TLS_UNTRUSTED,
        detail=f"Certificate {HOSTILE} " + "y" * 3000,
        tls=TlsFacts(server_name="x", verified=False, leaf=cert, chain=[cert] * 30),
    )
    assert not any(ch in result.detail for ch in RAW_CONTROLS) and len(result.detail) <= 1000
    assert result.tls is not None and result.tls.leaf is not None
    assert result.tls.leaf.subject == "CN=" + HOSTILE  # JSON keeps the raw value
    assert len(result.tls.leaf.sans) == MAX_SANS and len(result.tls.leaf.issuer) <= 1000
    assert len(result.tls.chain) == 10
    assert result.truncated["tls.leaf.sans"] == 150
    assert result.truncated["tls.chain"] == 20
    assert result.truncated["tls.leaf.issuer"] > 0 and result.truncated["detail"] > 2000
    again = CheckResult.model_validate_json(result.model_dump_json())
    assert again == result  # bounding is idempotent: a stored report reads back unchanged


# --- real peers, real CLI ----------------------------------------------------------------------


@pytest.fixture
def hostile_tls(tmp_path: Path) -> Iterator[int]:
    ascii_only = HOSTILE.encode("ascii", "ignore").decode()  # a DNS name is IA5 (ASCII), controls and all
    cert = self_signed_pem(HOSTILE, ["amlprobe.test", f"x{ascii_only}.test"])
    with ThreadedServer(tls_holder(server_ssl_context(cert, tmp_path))) as server:
        yield server.port


def test_certificate_names_cannot_forge_table_lines(hostile_tls: int) -> None:
    out = amlprobe("check", "--target", f"tls://127.0.0.1:{hostile_tls}", "--format", "table")
    assert out.returncode == 2, out.stderr
    # verdict, blank, heading, group, check line, its detail, blank, verdict again (issue 11's layout):
    # eight lines, whatever the certificate says.
    assert_terminal_safe(out.stdout, lines=8)
    assert "Self-signed certificate CN=evil" in out.stdout


def test_json_keeps_the_raw_certificate_name_escaped_by_the_encoder(hostile_tls: int) -> None:
    out = amlprobe("check", "--target", f"tls://127.0.0.1:{hostile_tls}", "--format", "json")
    assert not any(ch in out.stdout for ch in RAW_CONTROLS[:3])  # the encoder escapes controls
    (check,) = validated(out.stdout).checks
    assert check.tls is not None and check.tls.leaf is not None
    assert HOSTILE.replace(";", "\\;") in check.tls.leaf.subject
    assert not any(ch in check.detail for ch in RAW_CONTROLS)


def test_a_proxy_answer_cannot_forge_table_lines() -> None:
    answer = f"HTTP/1.1 403 Denied{HOSTILE}\r\nServer: squid{HOSTILE}\r\nVia: 1.1 gw\r\n\r\n".encode(
        "latin-1", "replace"
    )
    with ThreadedServer(reply(answer)) as proxy:
        out = amlprobe(
            "check", "--target", "tls://127.0.0.1:443", "--proxy", f"http://127.0.0.1:{proxy.port}", "--format", "table"
        )
    assert out.returncode == 2, out.stderr
    assert "refused CONNECT" in out.stdout
    assert_terminal_safe(out.stdout, lines=8)


def test_a_server_header_is_bounded_and_kept_raw_in_json() -> None:
    server = "gw\x1b[2J" + "s" * 5000
    answer = f"HTTP/1.1 403 Forbidden\r\nServer: {server}\r\nContent-Length: 0\r\n\r\n".encode("latin-1")
    with ThreadedServer(reply(answer)) as peer:
        out = amlprobe("check", "--target", f"http://127.0.0.1:{peer.port}/", "--format", "json")
    assert out.returncode == 0, out.stderr
    (check,) = validated(out.stdout).checks
    assert check.http is not None and check.http.server is not None
    assert check.http.server.startswith("gw\x1b[2J") and len(check.http.server) <= 1000
    assert check.truncated["http.server"] == len(server) - check.http.server.index("…")
    assert "\x1b" not in check.detail and len(check.detail) <= 1000


def test_two_thousand_sans_are_cut_to_a_hundred(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    names = [f"host{i:04}.amlprobe.test" for i in range(2000)]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(ctx)
    with ThreadedServer(tls_holder(ctx)) as server:
        out = amlprobe(
            "check", "--target", f"tls://127.0.0.1:{server.port}", "--ca-bundle", str(tmp_path / "ca.pem"), "--format",
            "json",
        )  # fmt: skip
    assert out.returncode == 2, out.stderr
    (check,) = validated(out.stdout).checks
    assert check.reason is Reason.TLS_HOSTNAME_MISMATCH
    assert len(check.detail) <= 1000 and check.detail.endswith("more characters]")
    assert check.tls is not None and check.tls.leaf is not None
    assert check.tls.leaf.sans == names[:MAX_SANS]
    assert check.truncated["tls.leaf.sans"] == 1900
    assert check.truncated["detail"] > 40000
    assert len(json.dumps(json.loads(out.stdout))) < 30000


def test_nested_peer_values_are_bounded_too() -> None:
    from probe.model import HttpFacts

    plain = HttpFacts(status=200, server="p" * 3000, headers={"via": "v" * 1500})
    cert = CertInfo(subject="CN=x", issuer="CN=x", issuer_organization="O" * 2000)
    result = CheckResult(
        id="websocket:x",
        target=Target(host="x", port=443, protocol=Protocol.WEBSOCKET),
        status=Status.FAIL,
        reason=Reason.TLS_UNTRUSTED,
        detail="x",
        http=HttpFacts(status=403, plain_get=plain, plain_get_error="e" * 1200),
        tls=TlsFacts(server_name="x", verified=False, leaf=cert),
    )
    assert result.http is not None and result.http.plain_get is not None
    assert len(result.http.plain_get.server or "") <= 1000 and len(result.http.plain_get_error or "") <= 1000
    assert set(result.truncated) == {
        "http.plain_get.server",
        "http.plain_get.headers.via",
        "http.plain_get_error",
        "tls.leaf.issuer_organization",
    }


def test_every_result_counts_what_its_bounds_cut_from_a_shared_certificate(tmp_path: Path) -> None:
    # Two servers, one certificate with more names than a result keeps: the prober describes the
    # certificate once (probe.probers.tlscerts), and each result still records its own cut.
    cert = self_signed_pem("many.test", [f"h{i}.test" for i in range(MAX_SANS + 40)])
    with (
        ThreadedServer(tls_holder(server_ssl_context(cert, tmp_path))) as one,
        ThreadedServer(tls_holder(server_ssl_context(cert, tmp_path))) as two,
    ):
        out = amlprobe(
            "check", "--target", f"tls://127.0.0.1:{one.port}", "--target", f"tls://127.0.0.1:{two.port}",
            "--format", "json",
        )  # fmt: skip
    checks = validated(out.stdout).checks
    assert len(checks) == 2, out.stderr
    for check in checks:
        assert check.tls is not None and check.tls.leaf is not None
        assert len(check.tls.leaf.sans) == MAX_SANS
        assert check.truncated["tls.leaf.sans"] == 40
