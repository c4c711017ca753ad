"""The TLS issuer rule against real handshakes: lab CAs named like the real issuers, one SNI server,
the real TLS prober, then the judge and the diagnosis.

The old rule split the RFC 4514 issuer string on commas (so "O=DigiCert\\, Inc." was never an Azure CA)
and held every host to Azure's CA list (so pypi's GlobalSign and github's Sectigo read as TLS
inspection). Both regressions fail here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from checks.catalog import load_catalog
from checks.diagnosis import Evidence, diagnose
from checks.inputs import Inputs
from checks.issuers import is_azure_issuer
from checks.judge import apply_tls_issuers
from checks.plan import build_plan
from checks.verdicts import Verdict
from lab.ca import (
    AMAZON,
    AZURE_03,
    DIGICERT_2020,
    DIGICERT_SHA2,
    GEOTRUST_2022,
    GLOBALSIGN,
    GOOGLE_TRUST,
    INSPECTION,
    MICROSOFT_G2,
    SECTIGO,
    LabCA,
    Profile,
)
from lab.servers.web import sni_context
from probe.model import CheckResult, CheckSpec, Protocol, Status, Target
from probe.reasons import Reason
from probe.registry import PROBERS
from probe.runner import run_prober
from probe.transport.x509 import cert_info
from tests.helpers.probes import probe_context
from tests.helpers.report import made_up_result

INPUTS = Inputs(region="eastus")
PLAN = build_plan(load_catalog("public"), INPUTS)

# A spoof the string parser fell for: an organisation whose value contains ",O=Microsoft Corporation".
SPOOF = Profile("spoof", "Contoso Root", "Contoso Ltd", "Contoso TLS CA", "Contoso Ltd,O=Microsoft Corporation")


@pytest.mark.parametrize(
    ("profile", "azure"),
    [
        (AZURE_03, True),
        (GEOTRUST_2022, True),  # O=DigiCert\, Inc.: the escaped comma
        (DIGICERT_SHA2, True),
        (MICROSOFT_G2, True),
        (GLOBALSIGN, False),
        (SECTIGO, False),
        (AMAZON, False),
        (GOOGLE_TRUST, False),
        (INSPECTION, False),
        (SPOOF, False),
    ],
)
def test_azure_issuer_is_read_from_the_name_attributes(profile: Profile, azure: bool) -> None:
    leaf = cert_info(_cert(LabCA.like(profile).issue(["host.lab.test"]).cert_pem))
    assert is_azure_issuer(leaf) is azure
    if profile is GEOTRUST_2022:
        assert "O=DigiCert\\, Inc." in leaf.issuer and leaf.issuer_organization == "DigiCert, Inc."


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


# --- real handshakes ------------------------------------------------------------------------------------


@dataclass
class Site:
    name: str
    operator: str | None
    profile: Profile


@dataclass
class Lab:
    port: int
    bundle: str

    async def probe(self, sites: list[Site]) -> list[CheckResult]:
        ctx = probe_context(hosts={s.name: ["127.0.0.1"] for s in sites}, ca_bundle=self.bundle)
        results = []
        for s in sites:
            labels = {"operator": s.operator} if s.operator else {}
            spec = CheckSpec(
                id=f"tls:{s.name}:443", target=Target(host=s.name, port=self.port, protocol=Protocol.TLS), labels=labels
            )
            results.append(await run_prober(PROBERS[Protocol.TLS], spec, ctx))
        return results


Start = Callable[..., Awaitable[Lab]]


@pytest.fixture
async def tls_lab(tmp_path: Path) -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def start(sites: list[Site], *, untrusted: tuple[Profile, ...] = ()) -> Lab:
        cas = {s.profile.key: LabCA.like(s.profile) for s in sites}
        contexts = {}
        for key, ca in cas.items():
            issued = ca.issue([s.name for s in sites if s.profile.key == key])
            (tmp_path / f"{key}.pem").write_bytes(issued.chain_pem)
            (tmp_path / f"{key}.key").write_bytes(issued.key_pem)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(tmp_path / f"{key}.pem", tmp_path / f"{key}.key")
            contexts[key] = server_ctx
        keys = {s.name: s.profile.key for s in sites}
        first = sites[0].profile.key
        ctx = sni_context(contexts, lambda n: keys.get(n, first), first)
        bundle = tmp_path / "bundle.pem"
        bundle.write_bytes(b"".join(ca.root_pem for key, ca in cas.items() if key not in {u.key for u in untrusted}))

        async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ssl.SSLError):
                await reader.read()
            writer.close()

        server = await asyncio.start_server(drain, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        return Lab(port=server.sockets[0].getsockname()[1], bundle=str(bundle))

    yield start
    for server in servers:
        server.close()


HEALTHY = [
    Site("graph.lab.test", "microsoft", GEOTRUST_2022),
    Site("login.lab.test", "microsoft", DIGICERT_SHA2),
    Site("mgmt.lab.test", "microsoft", AZURE_03),
    Site("pypi.lab.test", "third-party", GLOBALSIGN),
    Site("github.lab.test", "third-party", SECTIGO),
    Site("raw.lab.test", "third-party", DIGICERT_2020),
    Site("pytorch.lab.test", "third-party", AMAZON),
    Site("adhoc.lab.test", None, GOOGLE_TRUST),
]


def judged(results: list[CheckResult]) -> dict[str, tuple[Status, Reason]]:
    apply_tls_issuers(results)
    return {r.target.host: (r.status, r.reason) for r in results}


async def test_real_issuers_of_a_healthy_workspace_pass(tls_lab: Start) -> None:
    lab = await tls_lab(HEALTHY)
    results = await lab.probe(HEALTHY)
    assert set(judged(results).values()) == {(Status.PASS, Reason.OK)}
    assert diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS)) == []


async def test_inspection_of_microsoft_and_third_party_hosts_alike_is_one_finding(tls_lab: Start) -> None:
    sites = [Site(s.name, s.operator, INSPECTION) for s in HEALTHY]
    lab = await tls_lab(sites)
    results = await lab.probe(sites)
    verdicts = judged(results)
    assert all(v == (Status.WARN, Verdict.TLS_UNEXPECTED_ISSUER) for h, v in verdicts.items() if h != "adhoc.lab.test")
    assert verdicts["adhoc.lab.test"] == (Status.PASS, Reason.OK)  # ad-hoc targets are not judged
    (finding,) = diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS))
    assert finding.id == "tls-inspection"
    assert "Contoso Firewall TLS Inspection CA" in finding.title
    assert "third-party hosts too (github.lab.test, pypi.lab.test, pytorch.lab.test, raw.lab.test)" in finding.detail


async def test_a_third_party_host_bypassed_by_the_inspector_is_normal(tls_lab: Start) -> None:
    sites = [Site("mgmt.lab.test", "microsoft", INSPECTION), Site("pypi.lab.test", "third-party", GLOBALSIGN)]
    lab = await tls_lab(sites)
    verdicts = judged(await lab.probe(sites))
    assert verdicts == {
        "mgmt.lab.test": (Status.WARN, Verdict.TLS_UNEXPECTED_ISSUER),
        "pypi.lab.test": (Status.PASS, Reason.OK),
    }


async def test_a_microsoft_host_with_a_public_non_azure_ca_is_flagged(tls_lab: Start) -> None:
    sites = [Site("mgmt.lab.test", "microsoft", SECTIGO)]
    lab = await tls_lab(sites)
    assert judged(await lab.probe(sites)) == {"mgmt.lab.test": (Status.WARN, Verdict.TLS_UNEXPECTED_ISSUER)}


async def test_the_trust_store_lacking_microsofts_g2_root_is_named(tls_lab: Start) -> None:
    sites = [Site("mcr.lab.test", "microsoft", MICROSOFT_G2), Site("pypi.lab.test", "third-party", GLOBALSIGN)]
    lab = await tls_lab(sites, untrusted=(MICROSOFT_G2,))
    results = await lab.probe(sites)
    assert judged(results)["mcr.lab.test"] == (Status.FAIL, Reason.TLS_UNTRUSTED)
    (finding,) = diagnose(Evidence(results=results, plan=PLAN, inputs=INPUTS))
    assert finding.id == "trust-store-lacks-microsoft-root"
    assert finding.title.startswith("The trust store lacks Microsoft TLS RSA Root G2")
    commands = [c for r in finding.remediation for c in r.commands]
    assert any("Microsoft%20TLS%20RSA%20Root%20G2.crt" in c for c in commands)
    assert "sudo update-ca-certificates" in commands


def test_an_untrusted_third_party_host_is_not_called_inspection() -> None:
    """A third-party chain this machine does not trust, with no inspector seen: not TLS inspection."""
    spec = CheckSpec(
        id="tls:pypi.org:443",
        target=Target(host="pypi.org", port=443, protocol=Protocol.TLS),
        labels={"operator": "third-party"},
    )
    leaf = cert_info(_cert(LabCA.like(GLOBALSIGN).issue(["pypi.org"]).cert_pem))
    result = made_up_result(
        spec,
        Status.FAIL,
        Reason.TLS_UNTRUSTED,
        "not trusted",
        tls={"server_name": "pypi.org", "verified": False, "leaf": leaf.model_dump(), "chain": [leaf.model_dump()]},
    )
    (finding,) = diagnose(Evidence(results=[result], plan=PLAN, inputs=INPUTS))
    assert finding.id == "unexplained-failure"


def test_the_root_fixes_paste_into_bash() -> None:
    """Syntax-checked by bash itself (never run: they would fetch from the internet and change the machine)."""
    import subprocess

    from checks.remedies import ca_store_update_fix, g2_root_fix

    for fix in (g2_root_fix(), ca_store_update_fix()):
        subprocess.run(["bash", "-n", "-c", "\n".join(fix.commands)], check=True, timeout=10)
