"""probe.targets on its own: ad-hoc target URLs become checks, and a malformed one is one clear line."""

from __future__ import annotations

from argparse import Namespace

import pytest

from probe.errors import UsageError
from probe.execution import plan_targets
from probe.model import Protocol
from probe.settings import ProbeSettings
from probe.targets import TargetError, check_id, parse_target, validate_host


@pytest.mark.parametrize(
    ("url", "protocol", "port", "tls", "path"),
    [
        ("tls://example.org", Protocol.TLS, 443, True, None),
        ("tcp://example.org:8787", Protocol.TCP, 8787, False, None),
        ("udp://example.org:5831", Protocol.UDP, 5831, False, None),
        ("smb://example.org", Protocol.SMB, 445, False, None),
        ("wss://example.org", Protocol.WEBSOCKET, 443, True, "/"),
        ("ws://example.org:8080/socket", Protocol.WEBSOCKET, 8080, False, "/socket"),
        ("https://example.org/v2/?api=1", Protocol.HTTP, 443, True, "/v2/?api=1"),
        ("http://example.org", Protocol.HTTP, 80, False, "/"),
        ("dns://example.org", Protocol.DNS, None, False, None),
        ("TLS://Example.ORG.:8443", Protocol.TLS, 8443, True, None),
    ],
)
def test_each_scheme_becomes_its_protocol_with_its_default_port(
    url: str, protocol: Protocol, port: int | None, tls: bool, path: str | None
) -> None:
    spec = parse_target(url)
    assert spec.target.protocol is protocol and spec.target.port == port and spec.tls is tls
    assert spec.target.host == "example.org"  # lower case, no trailing dot
    assert spec.target.path == path
    assert spec.id == check_id(protocol, "example.org", port, tls=tls, path=path)


def test_check_ids() -> None:
    assert check_id(Protocol.TLS, "example.org", 443) == "tls:example.org:443"
    assert check_id(Protocol.DNS, "example.org", None) == "dns:example.org"
    assert check_id(Protocol.TCP, "fd00::1", 22) == "tcp:[fd00::1]:22"
    assert parse_target("tcp://[FD00::1]:22").id == "tcp:[fd00::1]:22"
    # http and websocket ids say their URL scheme; a path other than "/" is part of the target.
    assert parse_target("https://example.org").id == "https:example.org:443"
    assert parse_target("http://example.org").id == "http:example.org:80"
    assert parse_target("wss://example.org/").id == "wss:example.org:443"
    assert parse_target("ws://example.org:8080/socket").id == "ws:example.org:8080/socket"
    assert parse_target("https://example.org/v2/?api=1").id == "https:example.org:443/v2/?api=1"


@pytest.mark.parametrize(
    "urls",
    [
        ["http://127.0.0.1:8080", "https://127.0.0.1:8080"],
        ["ws://127.0.0.1:8080", "wss://127.0.0.1:8080"],
        ["https://127.0.0.1:8443/a", "https://127.0.0.1:8443/b", "https://127.0.0.1:8443"],
    ],
)
def test_distinct_targets_have_distinct_ids(urls: list[str]) -> None:
    # The same host and port with and without TLS, or with another path, are different targets: none may be
    # dropped as a duplicate of another (report contract 2.0).
    ids = [parse_target(u).id for u in urls]
    assert len(set(ids)) == len(urls), ids
    args = Namespace(deadline=None, concurrency=1)
    planned = plan_targets([*urls, urls[0]], ProbeSettings(timeout=1.0, env={}), args)
    assert [s.id for s in planned.specs] == ids  # each once, in the order given


def test_host_names_are_normalised() -> None:
    assert validate_host("Example.ORG.") == "example.org"
    assert validate_host("[::1]") == "::1"
    assert validate_host("127.000.0.1".replace("000", "0")) == "127.0.0.1"
    assert validate_host("bücher.example") == "xn--bcher-kva.example"  # IDNA: the name a resolver is asked
    assert validate_host("_sip._tcp.example.org") == "_sip._tcp.example.org"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("example.org:443", "expected scheme://host[:port][/path]"),
        ("gopher://example.org", "unknown scheme 'gopher' (known: dns, http, https, smb, tcp, tls, udp, ws, wss)"),
        ("tls://", "no host"),
        ("tcp://example.org", "tcp:// needs a port"),
        ("udp://example.org", "udp:// needs a port"),
        ("dns://example.org:53", "dns:// takes a name only"),
        ("tcp://example.org:0", "port 0 out of range"),
        ("tcp://example.org:99999", "out of range"),
        ("tcp://bad_label-.example:1", "invalid host name"),
        ("tcp://a!b.example:1", "label 'a!b' must be 1-63 letters"),
        ("tcp://" + "a" * 64 + ".example:1", "invalid host name"),
        ("tcp://" + ".".join(["abcdefgh"] * 30) + ":1", "must be 1 to 253 characters"),
    ],
)
def test_a_malformed_target_is_one_line_naming_it(url: str, message: str) -> None:
    with pytest.raises(TargetError) as raised:
        parse_target(url)
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert isinstance(raised.value, UsageError)  # the CLI prints it as one line and exits 3
