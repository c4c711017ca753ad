"""The tls prober (probe.probers.tls) against real TLS servers on loopback, with certificates from test CAs."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest
import trustme

from probe.model import CheckSpec, Confidence, Protocol, Status, Target
from probe.probers.tls import probe_tls
from probe.reasons import Reason
from probe.runner import run_prober
from probe.settings import ProbeSettings
from probe.transport.tlsconfig import ca_bundle_in_use, make_ssl_context
from tests.helpers.probes import probe_context, self_signed_pem

Start = Callable[..., Awaitable[int]]
HOSTS = {"tls.test": ["127.0.0.1"]}


def tls_spec(host: str, port: int) -> CheckSpec:
    return CheckSpec(id=f"tls-{host}", target=Target(host=host, port=port, protocol=Protocol.TLS))


# --- CA selection ------------------------------------------------------------------------------


def test_ca_bundle_order() -> None:
    env = {"SSL_CERT_FILE": "/env/ssl.pem", "REQUESTS_CA_BUNDLE": "/env/requests.pem"}
    assert ca_bundle_in_use(ProbeSettings(ca_bundle="/explicit.pem", env=env)) == "/explicit.pem"
    assert ca_bundle_in_use(ProbeSettings(env=env)) == "/env/ssl.pem"
    assert ca_bundle_in_use(ProbeSettings(env={"REQUESTS_CA_BUNDLE": "/env/requests.pem"})) == "/env/requests.pem"
    assert ca_bundle_in_use(ProbeSettings(env={"SSL_CERT_FILE": ""})) is None
    assert ca_bundle_in_use(ProbeSettings(env=env, trust_env=False)) is None


def test_unverified_context_checks_nothing_and_offers_http11(tls_ca_file: str) -> None:
    ctx = make_ssl_context(ProbeSettings(ca_bundle=tls_ca_file, env={}), verify=False)
    assert ctx.verify_mode is ssl.CERT_NONE and not ctx.check_hostname
    verified = make_ssl_context(ProbeSettings(ca_bundle=tls_ca_file, env={}))
    assert verified.verify_mode is ssl.CERT_REQUIRED and verified.check_hostname
    assert len(verified.get_ca_certs()) == 1


# --- handshakes --------------------------------------------------------------------------------


async def test_trusted_handshake_reports_session_and_certificate(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("tls.test", common_name="tls.test"))
    ctx = probe_context(hosts=HOSTS, ca_bundle=tls_ca_file)
    result = await run_prober(probe_tls, tls_spec("tls.test", port), ctx)
    assert result.status is Status.PASS, result.detail
    assert result.reason is Reason.OK
    assert result.route == "direct" and result.proxy is None
    assert result.peer == f"127.0.0.1:{port}"
    assert {"resolve", "connect", "tls_handshake"} <= set(result.phases_ms)
    assert result.latency_ms is not None
    tls = result.tls
    assert tls is not None and tls.verified and tls.verify_error is None
    assert tls.server_name == "tls.test"
    assert tls.version in ("TLSv1.2", "TLSv1.3")
    assert tls.cipher and tls.alpn == "http/1.1"
    assert tls.ca_bundle == tls_ca_file
    assert tls.leaf is not None
    assert tls.leaf.subject.startswith("CN=tls.test")
    assert "Trusted Test Root" in tls.leaf.issuer
    assert tls.leaf.sans == ["tls.test"]
    assert tls.leaf.days_left is not None and tls.leaf.days_left > 300
    assert tls.leaf.sha256 is not None and len(tls.leaf.sha256) == 64
    assert not tls.leaf.self_signed
    assert tls.trust_anchor is not None and "Trusted Test Root" in tls.trust_anchor
    assert result.detail.startswith(f"{tls.version.replace('TLSv', 'TLS ')} {tls.cipher}, leaf CN=tls.test issued by")
    assert f"({tls.leaf.days_left} days)." in result.detail


async def test_chain_through_an_intermediate_leads_to_the_root(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    intermediate = tls_ca.create_child_ca()
    port = await start_tls_server(intermediate.issue_cert("tls.test"))
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
    assert result.status is Status.PASS, result.detail
    assert result.tls is not None
    # Leaf and intermediate as presented (the full chain needs Python's chain API, 3.10+).
    assert len(result.tls.chain) == 2
    assert result.tls.chain[1].issuer == result.tls.trust_anchor
    assert result.tls.trust_anchor is not None and "Trusted Test Root" in result.tls.trust_anchor


async def test_ip_literal_target_is_verified_against_ip_sans(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("127.0.0.1"))
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", port), probe_context(ca_bundle=tls_ca_file))
    assert result.status is Status.PASS, result.detail
    assert result.tls is not None and result.tls.leaf is not None and result.tls.leaf.sans == ["127.0.0.1"]


async def test_untrusted_issuer_still_reports_the_presented_certificate(
    inspection_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(inspection_ca.issue_cert("tls.test", common_name="tls.test"))
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_UNTRUSTED
    tls = result.tls
    assert tls is not None and not tls.verified
    assert tls.verify_error is not None and "unable to get local issuer certificate" in tls.verify_error
    assert tls.leaf is not None and "Contoso Inspection CA" in tls.leaf.issuer
    assert tls.leaf.subject.startswith("CN=tls.test")
    assert tls.trust_anchor is None
    assert "Contoso Inspection CA" in result.detail and "is not trusted" in result.detail
    assert "unable to get local issuer certificate" in result.detail
    assert "tls_handshake" in result.phases_ms


async def test_self_signed_certificate_is_untrusted_and_flagged(tls_ca_file: str, start_tls_server: Start) -> None:
    port = await start_tls_server(self_signed_pem("tls.test", ["tls.test"]))
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
    assert result.reason is Reason.TLS_UNTRUSTED
    assert result.tls is not None and result.tls.leaf is not None
    assert result.tls.leaf.self_signed
    assert result.detail.startswith("Self-signed certificate CN=tls.test is not trusted")


async def test_hostname_mismatch(tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start) -> None:
    port = await start_tls_server(tls_ca.issue_cert("other.test", common_name="other.test"))
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_HOSTNAME_MISMATCH
    assert result.tls is not None and result.tls.leaf is not None
    assert result.tls.leaf.sans == ["other.test"]
    assert "does not name tls.test" in result.detail and "other.test" in result.detail


async def test_expired_certificate(tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=3)
    leaf = tls_ca.issue_cert("tls.test", not_before=past - timedelta(days=30), not_after=past)
    port = await start_tls_server(leaf)
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_EXPIRED
    assert result.tls is not None and result.tls.leaf is not None
    assert result.tls.leaf.days_left is not None and result.tls.leaf.days_left < 0
    assert f"expired on {past.date().isoformat()}" in result.detail


async def test_peer_that_never_speaks_is_a_handshake_timeout(start_silent_server: Start) -> None:
    port = await start_silent_server()
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", port), probe_context(timeout=0.5))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_TIMEOUT
    assert result.confidence is Confidence.LIKELY
    assert result.peer == f"127.0.0.1:{port}"
    assert "never answers the ClientHello" in result.detail
    assert result.phases_ms["tls_handshake"] < 3000


async def test_reset_during_handshake(start_reset_server: Start) -> None:
    port = await start_reset_server()
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", port), probe_context())
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_RESET, result.detail
    assert "reset the connection (RST) during the TLS handshake" in result.detail


async def test_peer_closing_during_handshake_is_a_reset_too(start_plain_server: Start) -> None:
    port = await start_plain_server(b"")
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", port), probe_context())
    assert result.reason is Reason.TLS_RESET, result.detail
    assert "closed the connection" in result.detail


async def test_plain_http_on_a_tls_port_fails_the_handshake(start_plain_server: Start) -> None:
    port = await start_plain_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", port), probe_context())
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_HANDSHAKE_FAILED, result.detail
    assert result.detail.startswith(f"TLS handshake with 127.0.0.1:{port} failed")
    assert "not TLS" in result.detail


async def test_tcp_failure_keeps_the_tcp_reason(closed_port: int) -> None:
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", closed_port), probe_context())
    assert result.reason is Reason.TCP_REFUSED
    assert result.tls is not None and result.tls.server_name == "127.0.0.1"
    assert "tls_handshake" not in result.phases_ms


async def test_dns_failure_keeps_the_dns_reason() -> None:
    result = await run_prober(probe_tls, tls_spec("missing.test", 443), probe_context())
    assert result.reason is Reason.DNS_NXDOMAIN


async def test_unreadable_ca_bundle_is_reported_not_raised(tmp_path: pytest.TempPathFactory) -> None:
    missing = f"{tmp_path}/nope.pem"
    result = await run_prober(probe_tls, tls_spec("127.0.0.1", 443), probe_context(ca_bundle=missing))
    assert result.status is Status.FAIL
    assert result.reason is Reason.TLS_UNTRUSTED
    assert "could not be loaded" in result.detail


# --- trust configuration from the environment ----------------------------------------------------


@pytest.mark.parametrize("var", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_ca_bundle_from_environment_is_honoured(
    var: str, tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("tls.test"))
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(hosts=HOSTS, env={var: tls_ca_file}))
    assert result.status is Status.PASS, result.detail
    assert result.tls is not None and result.tls.ca_bundle == tls_ca_file


async def test_environment_is_ignored_without_trust_env(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("tls.test"))
    ctx = probe_context(hosts=HOSTS, env={"SSL_CERT_FILE": tls_ca_file}, trust_env=False)
    result = await run_prober(probe_tls, tls_spec("tls.test", port), ctx)
    # The system store does not know the test CA.
    assert result.reason is Reason.TLS_UNTRUSTED
    assert result.tls is not None and result.tls.ca_bundle is None


async def test_explicit_ca_bundle_wins_over_environment(
    tls_ca: trustme.CA, tls_ca_file: str, inspection_ca_file: str, start_tls_server: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("tls.test"))
    ctx = probe_context(hosts=HOSTS, ca_bundle=inspection_ca_file, env={"SSL_CERT_FILE": tls_ca_file})
    result = await run_prober(probe_tls, tls_spec("tls.test", port), ctx)
    assert result.reason is Reason.TLS_UNTRUSTED
    assert result.tls is not None and result.tls.ca_bundle == inspection_ca_file


# --- through an HTTP proxy -----------------------------------------------------------------------


async def test_handshake_through_connect_proxy_records_route_and_proxy(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start, start_connect_proxy: Start
) -> None:
    port = await start_tls_server(tls_ca.issue_cert("tls.test"))
    proxy_port = await start_connect_proxy({"tls.test": "127.0.0.1"})
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}"}
    # The client resolves nothing but the proxy: "tls.test" is unknown to its resolver.
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(ca_bundle=tls_ca_file, env=env))
    assert result.status is Status.PASS, result.detail
    assert result.route == "proxy"
    assert result.proxy is not None and result.proxy.connect_status == 200
    assert result.proxy.source == "HTTPS_PROXY"
    assert {"proxy_connect", "tls_handshake"} <= set(result.phases_ms)


async def test_untrusted_certificate_through_proxy_is_fetched_through_it_too(
    inspection_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start, start_connect_proxy: Start
) -> None:
    port = await start_tls_server(inspection_ca.issue_cert("tls.test"))
    proxy_port = await start_connect_proxy({"tls.test": "127.0.0.1"})
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}"}
    result = await run_prober(probe_tls, tls_spec("tls.test", port), probe_context(ca_bundle=tls_ca_file, env=env))
    assert result.reason is Reason.TLS_UNTRUSTED
    assert result.route == "proxy"
    assert result.tls is not None and result.tls.leaf is not None
    assert "Contoso Inspection CA" in result.tls.leaf.issuer


async def test_silent_peer_through_proxy_names_target_and_proxy(
    start_silent_server: Start, start_connect_proxy: Start
) -> None:
    port = await start_silent_server()
    proxy_port = await start_connect_proxy({"quiet.test": "127.0.0.1"})
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}"}
    result = await run_prober(probe_tls, tls_spec("quiet.test", port), probe_context(timeout=0.5, env=env))
    assert result.reason is Reason.TLS_TIMEOUT
    assert f"quiet.test:{port} through proxy http://127.0.0.1:{proxy_port}" in result.detail


async def test_proxy_rejection_keeps_the_proxy_reason(start_connect_proxy: Start) -> None:
    proxy_port = await start_connect_proxy({})
    env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}"}
    result = await run_prober(probe_tls, tls_spec("nowhere.test", 443), probe_context(env=env))
    assert result.reason is Reason.PROXY_CONNECT_REJECTED
    assert result.route == "proxy"
    assert result.proxy is not None and result.proxy.connect_status == 502
