"""The TLS prober's own handshake (issue 13): certificates parsed once, OpenSSL's verdicts used as
they are, the kernel's RTT beside the phases, and a goodbye the server sees."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable

import trustme

from probe.model import CheckSpec, Protocol, Status, Target
from probe.probers.tls import probe_tls
from probe.runner import run_prober
from probe.transport.x509 import load_der
from tests.helpers.probes import probe_context

Start = Callable[..., Awaitable[int]]
HOSTS = {"tls.test": ["127.0.0.1"]}


def _spec(port: int, i: int = 0) -> CheckSpec:
    return CheckSpec(id=f"tls-{i}", target=Target(host="tls.test", port=port, protocol=Protocol.TLS))


async def test_many_handshakes_with_one_server_parse_its_certificates_once(
    tls_ca: trustme.CA, tls_ca_file: str, start_tls_server: Start
) -> None:
    intermediate = tls_ca.create_child_ca()
    port = await start_tls_server(intermediate.issue_cert("tls.test"))
    ctx = probe_context(hosts=HOSTS, ca_bundle=tls_ca_file)
    first = await run_prober(probe_tls, _spec(port), ctx)
    assert first.status is Status.PASS, first.detail
    parsed = load_der.cache_info().misses
    results = await asyncio.gather(*(run_prober(probe_tls, _spec(port, i), ctx) for i in range(1, 9)))
    assert all(r.status is Status.PASS for r in results), [r.detail for r in results]
    assert load_der.cache_info().misses == parsed, "the same certificates were parsed again"
    for r in results:
        assert r.tls is not None and r.tls.leaf is not None
        assert r.tls.leaf == first.tls.leaf if first.tls else False
        # The anchor is where OpenSSL's verified chain ended: the root, above the intermediate.
        assert r.tls.trust_anchor is not None and "Trusted Test Root" in r.tls.trust_anchor
        assert r.rtt_ms is not None and r.rtt_ms > 0
        assert {"connect", "tls_handshake"} <= set(r.phases_ms)


async def test_the_server_completes_its_handshake_and_sees_a_clean_close(tls_ca: trustme.CA, tls_ca_file: str) -> None:
    # A blocking OpenSSL server in a thread: its handshake must complete, and the prober must end
    # with close_notify (an orderly TLS close: recv() returns b""), not a bare TCP close that
    # OpenSSL reports as "EOF occurred in violation of protocol".
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("tls.test").configure_cert(server_ctx)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    outcome: list[object] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(5)
        try:
            with server_ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
                outcome.append(tls.recv(1024))
        except (OSError, ssl.SSLError) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        result = await run_prober(probe_tls, _spec(port), probe_context(hosts=HOSTS, ca_bundle=tls_ca_file))
        assert result.status is Status.PASS, result.detail
        await asyncio.to_thread(thread.join, 5)
        assert outcome == [b""]
    finally:
        listener.close()
