"""probe_smb against a real Samba smbd, the lab's SMB2 responder, and TCP peers that are not SMB."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from lab.servers.smb import Smb2Responder
from probe.model import CheckResult, CheckSpec, Confidence, Protocol, Status, Target
from probe.probers.smb import probe_smb
from probe.reasons import Reason
from probe.runner import run_prober
from probe.transport.context import ProbeContext
from probe.transport.resolve import LookupFn
from probe.transport.smb2 import build_negotiate_request
from tests.helpers.probes import no_lookup, no_lookup_context
from tests.helpers.smbd import Smbd, free_port, requires_smbd, running_smbd

TIMEOUT = 0.5
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def make_ctx(timeout: float = TIMEOUT, lookup: LookupFn = no_lookup) -> ProbeContext:
    return no_lookup_context(timeout, lookup)


async def smb(host: str, port: int, timeout: float = TIMEOUT) -> CheckResult:
    spec = CheckSpec(id="smb", target=Target(host=host, port=port, protocol=Protocol.SMB))
    return await run_prober(probe_smb, spec, make_ctx(timeout))


@asynccontextmanager
async def tcp_peer(handler: Handler) -> AsyncIterator[int]:
    """A loopback TCP server whose every connection is handled by ``handler``."""
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for w in writers:
            w.close()
        await server.wait_closed()


# -- real Samba -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smbd]:
    with running_smbd(tmp_path_factory.mktemp("smbd")) as server:
        yield server


@pytest.fixture(scope="module")
def samba_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smbd]:
    extra = {"server signing": "mandatory", "server max protocol": "SMB2_10"}
    with running_smbd(tmp_path_factory.mktemp("smbd-strict"), extra) as server:
        yield server


@requires_smbd
async def test_samba_answers_smb3(samba: Smbd) -> None:
    result = await smb(samba.host, samba.port, timeout=2.0)
    assert result.status is Status.PASS, f"{result.detail}\n{samba.log_tail()}"
    assert result.reason is Reason.OK
    assert result.smb is not None
    assert result.smb.dialect is not None and result.smb.dialect.startswith("SMB 3.")
    # Samba 4.17 speaks 3.1.1, and only accepts it when the negotiate contexts are well formed.
    assert result.smb.dialect == "SMB 3.1.1"
    assert result.smb.dialect_revision == "0x0311"
    assert result.smb.signing_required is False
    assert result.smb.server_guid is not None
    # The wording: what was negotiated, and what a NEGOTIATE does not prove.
    assert result.detail.startswith("SMB 3.1.1 negotiated (signing not required; signing with AES-GMAC;")
    assert "Mounting also needs the share's credentials or identity, which this check does not test." in result.detail
    assert result.route == "direct"
    assert result.peer == f"127.0.0.1:{samba.port}"
    assert set(result.phases_ms) >= {"connect", "negotiate"}
    assert result.latency_ms == result.phases_ms["negotiate"]


@requires_smbd
async def test_samba_with_mandatory_signing_and_smb21_only(samba_strict: Smbd) -> None:
    result = await smb(samba_strict.host, samba_strict.port, timeout=2.0)
    assert result.status is Status.PASS, f"{result.detail}\n{samba_strict.log_tail()}"
    assert result.smb is not None
    assert result.smb.dialect == "SMB 2.1"
    assert result.smb.signing_required is True
    assert "(signing required)" in result.detail


@requires_smbd
async def test_samba_rejects_a_broken_311_request_so_the_contexts_matter(samba: Smbd) -> None:
    """Guards the test above: Samba does check 3.1.1 contexts, so passing it proves ours are valid."""
    request = bytearray(build_negotiate_request(bytes(16), bytes(32)))
    # NegotiateContextCount (request offset 4 + 64 + 32) -> 0: 3.1.1 offered without preauth.
    struct.pack_into("<H", request, 4 + 64 + 32, 0)
    reader, writer = await asyncio.open_connection(samba.host, samba.port)
    try:
        writer.write(bytes(request))
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(4), 2.0)
        message = await asyncio.wait_for(reader.readexactly(int.from_bytes(head[1:], "big")), 2.0)
    finally:
        writer.close()
    (status,) = struct.unpack_from("<I", message, 8)
    assert status != 0, "Samba accepted 3.1.1 without negotiate contexts"


def _checks(result: CheckResult) -> dict[str, str | None]:
    assert result.smb is not None
    return {", ".join(c.offered): c.agreed for c in result.smb.cipher_checks}


@requires_smbd
async def test_samba_agrees_the_linux_clients_first_cipher_and_accepts_aes256_alone(samba: Smbd) -> None:
    result = await smb(samba.host, samba.port, timeout=2.0)
    assert result.status is Status.PASS, f"{result.detail}\n{samba.log_tail()}"
    assert result.smb is not None
    assert result.smb.ciphers_offered == ["AES-128-GCM", "AES-256-GCM", "AES-128-CCM"]
    assert (result.smb.cipher, result.smb.signing_algorithm) == ("AES-128-GCM", "AES-GMAC")
    assert _checks(result) == {"AES-256-GCM": "AES-256-GCM"}
    assert "it accepts AES-256-GCM" in result.detail
    assert "cipher_checks" in result.phases_ms


@requires_smbd
async def test_samba_allowing_only_aes256_gcm_refuses_the_aes128_ciphers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    extra = {"server smb3 encryption algorithms": "AES-256-GCM", "server smb encrypt": "required"}
    with running_smbd(tmp_path_factory.mktemp("smbd-aes256"), extra) as server:
        result = await smb(server.host, server.port, timeout=2.0)
    assert result.status is Status.PASS, result.detail
    assert result.smb is not None and result.smb.cipher == "AES-256-GCM"
    assert _checks(result) == {"AES-128-GCM, AES-128-CCM": "none"}
    assert "it refuses AES-128-GCM or AES-128-CCM" in result.detail


@requires_smbd
async def test_samba_with_no_cipher_the_linux_client_offers(tmp_path_factory: pytest.TempPathFactory) -> None:
    extra = {"server smb3 encryption algorithms": "AES-256-CCM", "server smb encrypt": "required"}
    with running_smbd(tmp_path_factory.mktemp("smbd-ccm256"), extra) as server:
        result = await smb(server.host, server.port, timeout=2.0)
    assert (result.status, result.reason) == (Status.FAIL, Reason.SMB_NO_COMMON_CIPHER), result.detail
    assert result.smb is not None and result.smb.cipher == "none"
    assert _checks(result) == {"AES-256-GCM": "none", "AES-128-GCM, AES-128-CCM": "none"}
    assert "no cipher in common with what the Linux CIFS client of Ubuntu 22.04 offers" in result.detail


@requires_smbd
async def test_samba_signing_algorithm_is_reported(tmp_path_factory: pytest.TempPathFactory) -> None:
    extra = {"server smb3 signing algorithms": "AES-128-CMAC"}
    with running_smbd(tmp_path_factory.mktemp("smbd-cmac"), extra) as server:
        result = await smb(server.host, server.port, timeout=2.0)
    assert result.status is Status.PASS, result.detail
    assert result.smb is not None and result.smb.signing_algorithm == "AES-CMAC"


# -- the lab's SMB2 responder -------------------------------------------------------------------


async def test_responder_answers_smb311() -> None:
    async with Smb2Responder() as responder:
        result = await smb(*responder.address)
    assert result.status is Status.PASS, result.detail
    assert result.smb is not None
    assert result.smb.dialect == "SMB 3.1.1"
    assert result.smb.server_guid == str(responder.server_guid)
    # The first NEGOTIATE agreed AES-128-GCM; a second one asked whether AES-256-GCM alone is accepted.
    assert responder.negotiated == [0x0311, 0x0311]
    assert responder.chosen_ciphers == [0x0002, 0x0004]


async def test_responder_older_dialect_and_signing_required() -> None:
    async with Smb2Responder(dialects=[0x0202, 0x0210, 0x0300, 0x0302], signing_required=True) as responder:
        result = await smb(*responder.address)
    assert result.status is Status.PASS, result.detail
    assert result.smb is not None
    assert (result.smb.dialect, result.smb.dialect_revision) == ("SMB 3.0.2", "0x0302")
    assert result.smb.signing_required is True


async def test_no_common_dialect_is_its_own_reason() -> None:
    # Was smb_not_smb: a server that speaks SMB2 and refuses every dialect is "no common SMB security
    # settings" (issue 10), not "not SMB".
    async with Smb2Responder(dialects=[]) as responder:
        result = await smb(*responder.address)
    assert result.reason is Reason.SMB_NO_COMMON_DIALECT, result.detail
    assert "STATUS_NOT_SUPPORTED" in result.detail


async def test_name_goes_through_the_shared_resolver(make_probe_context: Callable[..., ProbeContext]) -> None:
    name = "acct.file.core.example.test"
    ctx = make_probe_context(timeout=TIMEOUT, hosts={name: ["127.0.0.1"]})
    async with Smb2Responder() as responder:
        spec = CheckSpec(id="smb", target=Target(host=name, port=responder.port, protocol=Protocol.SMB))
        result = await run_prober(probe_smb, spec, ctx)
    assert result.status is Status.PASS, result.detail
    assert result.addresses == ["127.0.0.1"]
    assert result.dns is not None and result.dns.query == name
    assert "resolve" in result.phases_ms


async def test_dns_failure_keeps_the_dns_reason(make_probe_context: Callable[..., ProbeContext]) -> None:
    spec = CheckSpec(id="smb", target=Target(host="gone.example.test", port=445, protocol=Protocol.SMB))
    result = await run_prober(probe_smb, spec, make_probe_context(timeout=TIMEOUT))
    assert result.reason is Reason.DNS_NXDOMAIN, result.detail
    assert result.smb is None


# -- TCP open, but not SMB ----------------------------------------------------------------------


async def test_http_server_is_not_smb() -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        result = await smb("127.0.0.1", port)
    finally:
        await runner.cleanup()
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert result.status is Status.FAIL
    assert "HTTP/1." in result.detail
    assert result.smb is None


async def test_echo_server_is_not_smb() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()

    async with tcp_peer(echo) as port:
        result = await smb("127.0.0.1", port)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert "echoed" in result.detail


async def test_garbage_on_an_open_connection_is_not_smb_without_waiting() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\x00\x00\x10SSH-2.0-x\r\n\x00\x00\x00")
        await writer.drain()
        await reader.read()  # keep the connection open

    async with tcp_peer(garbage) as port:
        result = await smb("127.0.0.1", port, timeout=2.0)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert result.phases_ms["negotiate"] < 1000


async def test_close_without_answer_is_not_smb() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4)

    async with tcp_peer(hang_up) as port:
        result = await smb("127.0.0.1", port)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert "closed the connection" in result.detail


async def test_smb1_only_answer() -> None:
    async def smb1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        header = b"\xffSMB" + bytes([0x72]) + bytes(27)  # SMB_COM_NEGOTIATE, 32-byte header
        writer.write(struct.pack(">I", len(header) + 3) + header + bytes(3))
        await writer.drain()

    async with tcp_peer(smb1) as port:
        result = await smb("127.0.0.1", port)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert "answered SMB1 only" in result.detail


async def test_oversized_frame_is_rejected_before_reading_it() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"\x00\xff\xff\xff\xfeSMB")
        await writer.drain()
        await reader.read()

    async with tcp_peer(huge) as port:
        result = await smb("127.0.0.1", port, timeout=2.0)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert "too large" in result.detail


# -- reset, timeout, refused ------------------------------------------------------------------------


async def test_reset_during_negotiate(start_reset_server: Callable[..., Awaitable[int]]) -> None:
    result = await smb("127.0.0.1", await start_reset_server())
    assert result.reason is Reason.SMB_RESET, result.detail
    assert result.status is Status.FAIL


async def test_silent_peer_times_out(start_silent_server: Callable[..., Awaitable[int]]) -> None:
    result = await smb("127.0.0.1", await start_silent_server())
    assert result.reason is Reason.SMB_TIMEOUT, result.detail
    assert result.confidence is Confidence.LIKELY
    assert "connect" in result.phases_ms
    assert TIMEOUT * 1000 * 0.5 < result.phases_ms["negotiate"] < TIMEOUT * 1000 * 3


async def test_refused_keeps_the_tcp_reason(closed_port: int) -> None:
    result = await smb("127.0.0.1", closed_port)
    assert result.reason is Reason.TCP_REFUSED, result.detail
    assert result.status is Status.FAIL
    assert result.smb is None
    assert "negotiate" not in result.phases_ms


def test_request_layout() -> None:
    """The offsets a server relies on: dialects right after the fixed part, contexts 8-aligned."""
    message = build_negotiate_request(bytes(16), bytes(32))[4:]
    assert message[:4] == b"\xfeSMB"
    size, count, mode, _, _, _, ctx_offset, ctx_count, _ = struct.unpack_from("<HHHHI16sIHH", message, 64)
    assert (size, count, mode, ctx_count) == (36, 5, 1, 3)
    (capabilities,) = struct.unpack_from("<I", message, 64 + 8)
    assert capabilities & 0x40, "SMB2_GLOBAL_CAP_ENCRYPTION, or Samba answers no ENCRYPTION context"
    assert struct.unpack_from("<5H", message, 100) == (0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    assert ctx_offset % 8 == 0 and ctx_offset >= 110
    ctype, length, _ = struct.unpack_from("<HHI", message, ctx_offset)
    assert (ctype, length) == (1, 38)
    second = ctx_offset + 8 + length + (-(8 + length) % 8)
    # What Ubuntu 22.04's cifs offers, in its order: AES-128-GCM, AES-256-GCM, AES-128-CCM.
    assert struct.unpack_from("<HHIHHHH", message, second) == (2, 8, 0, 3, 2, 4, 1)
    third = second + 8 + 8
    # Every signing algorithm: AES-GMAC, AES-CMAC, HMAC-SHA256.
    assert struct.unpack_from("<HHIHHHH", message, third) == (8, 8, 0, 3, 2, 1, 0)
    assert len(message) == third + 8 + 8


async def test_responder_allowing_only_aes256_like_a_spec_server() -> None:
    async with Smb2Responder(ciphers=[0x0004]) as responder:
        result = await smb(*responder.address)
    assert result.status is Status.PASS, result.detail
    assert result.smb is not None and result.smb.cipher == "AES-256-GCM"
    assert _checks(result) == {"AES-128-GCM, AES-128-CCM": "none"}
    assert responder.chosen_ciphers == [0x0004, 0]


async def test_responder_that_checks_ciphers_only_at_session_setup_looks_like_any_server() -> None:
    """Azure Files answers AES-128-GCM to a client that offers it even when the account allows only AES-256-GCM
    (CIFS-AZ): NEGOTIATE then says nothing about the account's setting, and the result says no more than that."""
    async with Smb2Responder(ciphers=[0x0004], policy_at_negotiate=False) as azure_like:
        quirk = await smb(*azure_like.address)
    async with Smb2Responder() as all_allowed:
        default = await smb(*all_allowed.address)
    assert quirk.status is default.status is Status.PASS
    assert quirk.smb is not None and default.smb is not None
    assert (
        (quirk.smb.cipher, _checks(quirk))
        == (default.smb.cipher, _checks(default))
        == (
            "AES-128-GCM",
            {"AES-256-GCM": "AES-256-GCM"},
        )
    )


async def test_more_than_one_chosen_cipher_is_not_a_usable_answer() -> None:
    """A server chooses exactly one cipher; Linux rejects any other count ("Invalid SMB3.11 cipher count")."""

    async def two_ciphers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(4)
        message = await reader.readexactly(int.from_bytes(head[1:], "big"))
        responder = Smb2Responder()
        reply = bytearray(responder.answer(message) or b"")
        at = reply.find(struct.pack("<HHIHH", 2, 4, 0, 1, 2))
        assert at > 0
        struct.pack_into("<H", reply, at + 8, 2)
        writer.write(struct.pack(">I", len(reply)) + bytes(reply))
        await writer.drain()

    async with tcp_peer(two_ciphers) as port:
        result = await smb("127.0.0.1", port)
    assert result.reason is Reason.SMB_NOT_SMB, result.detail
    assert "a server chooses exactly one" in result.detail
