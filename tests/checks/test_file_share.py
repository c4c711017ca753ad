"""The file share's SMB security settings, judged on what the real SMB prober gets from samba smbd and the lab's
responder: an account allowing every Azure Files cipher, AES-256-GCM only (as a spec-following server answers,
and as Azure Files answers), and a server with no cipher in common with the Linux client.

The old probe offered AES-128 only, so an AES-256-only share looked like any other: these tests fail on that.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.catalog import load_catalog
from checks.diagnosis import Evidence, diagnose
from checks.inputs import Inputs
from checks.interpret import interpret
from checks.plan import build_plan
from lab.servers.smb import Smb2Responder
from probe.model import CheckResult, CheckSpec, Protocol, Severity, Status
from probe.probers.smb import probe_smb
from probe.reasons import Reason
from probe.runner import run_prober
from tests.helpers.probes import probe_context
from tests.helpers.remedies import assert_pastes
from tests.helpers.smbd import Smbd, requires_smbd, running_smbd

SA = "amlprobelabsa"
INPUTS = Inputs(region="eastus", storage_account=SA, resource_group="rg-ml")
PLAN = build_plan(load_catalog("public"), INPUTS)
SMB = next(s for s in PLAN.checks if s.target.protocol is Protocol.SMB)
HOST = SMB.target.host


async def negotiate(host: str, port: int) -> CheckResult:
    spec = CheckSpec.model_validate({**SMB.model_dump(), "target": {**SMB.target.model_dump(), "port": port}})
    return await run_prober(probe_smb, spec, probe_context(timeout=2.0, hosts={HOST: [host]}))


def judged(result: CheckResult) -> tuple[CheckResult, list[str]]:
    results, findings, _ = interpret([result], PLAN, INPUTS)
    return results[0], [f.id for f in findings if f.severity is not Severity.INFO]


@pytest.fixture(scope="module")
def samba_aes256(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smbd]:
    extra = {"server smb3 encryption algorithms": "AES-256-GCM", "server smb encrypt": "required"}
    with running_smbd(tmp_path_factory.mktemp("smbd-aes256"), extra) as server:
        yield server


@requires_smbd
async def test_samba_with_every_cipher_is_a_pass_worded_honestly(tmp_path: Path) -> None:
    with running_smbd(tmp_path) as server:
        result = await negotiate(server.host, server.port)
    result, ids = judged(result)
    assert (result.status, ids) == (Status.PASS, [])
    assert "Mounting also needs the share's credentials or identity, which this check does not test." in result.detail
    # What this NEGOTIATE cannot show about Azure Files, said where it matters.
    assert "checks the account's SMB settings" in result.detail


@requires_smbd
async def test_samba_allowing_only_aes256_gcm_is_one_warning_with_a_fix_that_pastes(samba_aes256: Smbd) -> None:
    result, _ = judged(await negotiate(samba_aes256.host, samba_aes256.port))
    findings = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert [(f.id, f.severity) for f in findings] == [("smb-encryption-aes256-only", Severity.WARNING)]
    (finding,) = findings
    assert f"The file share of {SA} accepts only AES-256-GCM" in finding.title
    commands = {c for r in finding.remediation for c in r.commands}
    fix = f"az storage account file-service-properties update --account-name {SA}"
    assert f'{fix} --channel-encryption "AES-128-GCM;AES-256-GCM"' in commands
    assert_pastes(commands)


async def test_the_lab_responder_allowing_only_aes256_is_the_same_finding() -> None:
    async with Smb2Responder(ciphers=[0x0004]) as responder:
        result = await negotiate(*responder.address)
    assert judged(result)[1] == ["smb-encryption-aes256-only"]


async def test_azure_files_agreeing_aes128_for_an_aes256_account_is_not_claimed_either_way() -> None:
    """Azure Files agrees AES-128-GCM even when the account allows only AES-256-GCM (CIFS-AZ): nothing in the
    NEGOTIATE tells it from an account allowing both, so no finding is made, and the pass says why."""
    async with Smb2Responder(ciphers=[0x0004], policy_at_negotiate=False) as responder:
        result = await negotiate(*responder.address)
    result, ids = judged(result)
    assert (result.status, ids) == (Status.PASS, [])
    assert "has been seen to agree AES-128-GCM here even when the account allows only AES-256-GCM" in result.detail


@requires_smbd
async def test_no_cipher_in_common_with_the_linux_client_is_critical(tmp_path: Path) -> None:
    extra = {"server smb3 encryption algorithms": "AES-256-CCM", "server smb encrypt": "required"}
    with running_smbd(tmp_path, extra) as server:
        result = await negotiate(server.host, server.port)
    assert result.reason is Reason.SMB_NO_COMMON_CIPHER
    findings = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert [(f.id, f.severity) for f in findings] == [("smb-no-common-security", Severity.CRITICAL)]
    assert findings[0].title.startswith("Port 445 answers, but with no cipher in common with a Linux client")
    assert_pastes({c for r in findings[0].remediation for c in r.commands})


async def test_no_dialect_in_common_is_the_same_finding_not_a_block() -> None:
    async with Smb2Responder(dialects=[]) as responder:
        result = await negotiate(*responder.address)
    assert judged(result)[1] == ["smb-no-common-security"]
