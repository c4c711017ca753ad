"""End to end: every lab scenario, run as a user runs it, diagnoses its fault and nothing else.

Each scenario runs once per test session (`amlprobe lab --scenario X --format json` in a
subprocess, which builds its own network namespace); the tests below read its report.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable

import pytest

from lab.scenarios import SCENARIOS
from probe.model import CheckResult, Protocol, Report, Severity, Status
from tests.helpers.cli import ENV
from tests.helpers.netns import requires_netns
from tests.helpers.remedies import assert_explained, assert_pastes, commands_of
from tests.helpers.report import validated

pytestmark = requires_netns

PE_NET = "10.0.1."
AML_NET = "192.0.2."


@functools.cache
def run_lab(scenario: str, *extra: str) -> tuple[int, Report]:
    proc = subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab", "--scenario", scenario, "--format", "json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        check=False,
    )
    assert proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, validated(proc.stdout)


def not_passing(report: Report) -> dict[str, str]:
    return {c.id: c.reason.value for c in report.checks if c.status in (Status.FAIL, Status.WARN)}


def ids(report: Report, pred: Callable[[CheckResult], bool]) -> set[str]:
    """Ids of the probed (not skipped) checks matching ``pred``."""
    return {c.id for c in report.checks if c.status is not Status.SKIP and pred(c)}


def udp_silent(report: Report) -> dict[str, str]:
    return {i: "udp_open_filtered" for i in ids(report, lambda c: c.target.protocol is Protocol.UDP)}


def finding_ids(report: Report, *, include_info: bool = False) -> list[str]:
    return [f.id for f in report.findings if include_info or f.severity is not Severity.INFO]


def test_healthy_has_no_problem() -> None:
    code, report = run_lab("healthy")
    assert code == 0
    assert report.status.value == "ok"
    assert not_passing(report) == udp_silent(report)
    assert finding_ids(report) == []
    # Silence on tundra is all a working path shows: said plainly, as information only.
    assert finding_ids(report, include_info=True) == ["udp-5831-unconfirmed"]
    ws = [c for c in report.checks if c.target.protocol is Protocol.WEBSOCKET and c.status is not Status.SKIP]
    assert ws and all(c.status is Status.PASS for c in ws)
    smb = [c for c in report.checks if c.target.protocol is Protocol.SMB]
    assert smb and smb[0].smb is not None and smb[0].smb.dialect
    skipped = [c for c in report.checks if c.status is Status.SKIP]
    assert skipped and all(c.reason.value.startswith("skipped_") for c in skipped)
    # Of the compute-instance name variants only the live one exists; the others answer NXDOMAIN, as in
    # the real cloud, and are not applicable (the old judgement made each a finding).
    by_id = {c.id: c for c in report.checks}
    assert by_id["dns:lab-ci.eastus.instances.azureml.ms"].status is Status.PASS
    for variant in ("lab-ci.eastus.instances.ml.azure.ms", "lab-ci.eastus.instances.azureml.net"):
        nx = by_id[f"dns:{variant}"]
        assert nx.status is Status.SKIP and nx.dns is not None and nx.dns.rcode == "NXDOMAIN", nx
        assert by_id[f"tls:{variant}:443"].status is Status.SKIP
    # Every resource has a private endpoint here, and the report says so with its evidence.
    pes = report.environment["private_endpoints"]
    assert {k: v["private_endpoint"] for k, v in pes.items()} == {
        "workspace": True,
        "notebooks": True,
        "storage-blob": True,
        "storage-file": True,
        "key-vault": True,
    }
    assert "privatelink" in pes["workspace"]["evidence"]
    # With a workspace private endpoint the apps answer on their ports; the <ci>-<PORT> names do not apply.
    assert by_id["tcp:lab-ci.eastus.instances.azureml.ms:8787"].status is Status.PASS
    assert by_id["tls:lab-ci-8787.eastus.instances.azureml.ms:443"].status is Status.SKIP
    # WireServer is probed on 80 and 32526 only (the current 168.63.129.16 page).
    assert sorted(c.target.port or 0 for c in report.checks if c.target.host == "168.63.129.16") == [80, 32526]
    # The workspace's resources, asked anonymously, answer with their own challenge: reached, credentials needed.
    http = [c for c in report.checks if c.target.protocol is Protocol.HTTP]
    assert {c.target.host.split(".", 1)[1] for c in http} == {
        "blob.core.windows.net",
        "file.core.windows.net",
        "vault.azure.net",
    }
    assert all((c.status, c.reason.value) == (Status.PASS, "http_auth_required") for c in http), http
    vault = next(c for c in http if ".vault." in c.target.host)
    # Through its private endpoint the vault sees the compute's own address, and says so.
    assert vault.labels["seen_address"] == "10.0.0.5" and "through its private endpoint at 10.0.1." in vault.detail
    # SMB: what Ubuntu 22.04's client offers is agreed, AES-256-GCM alone too; the pass says what it does not test.
    assert smb[0].smb.cipher == "AES-128-GCM" and smb[0].smb.signing_algorithm == "AES-GMAC"
    assert [(c.offered, c.agreed) for c in smb[0].smb.cipher_checks] == [(["AES-256-GCM"], "AES-256-GCM")]
    assert "Mounting also needs the share's credentials or identity, which this check does not test." in smb[0].detail


HEALTHY = [name for name, s in SCENARIOS.items() if s.healthy]


@pytest.mark.parametrize("scenario", HEALTHY)
def test_healthy_documented_set_ups_raise_no_warning(scenario: str) -> None:
    code, report = run_lab(scenario)
    assert code in (0, 1)
    assert report.status.value in ("ok", "warning")
    assert finding_ids(report) == [], [(f.id, f.title) for f in report.findings]
    assert not [c.id for c in report.checks if c.status is Status.FAIL]
    assert set(report.environment["private_endpoints"]) >= {"workspace", "storage-blob", "key-vault"}


def test_no_private_endpoint_needs_no_flag() -> None:
    code, report = run_lab("no-private-endpoint")
    assert code == 0
    assert "private_endpoint" not in report.environment["inputs"]["sources"] or (
        report.environment["inputs"]["sources"]["private_endpoint"] == "default"
    )
    assert {v["private_endpoint"] for v in report.environment["private_endpoints"].values()} == {False}
    by_id = {c.id: c for c in report.checks}
    # Without a private endpoint the port travels in the host name, on 443 (responsible-ai-toolbox).
    assert by_id["tls:lab-ci-8787.eastus.instances.azureml.ms:443"].status is Status.PASS
    assert by_id["tls:lab-ci-18881.eastus.instances.azureml.ms:443"].status is Status.PASS
    for port in (8787, 18881):
        bare = by_id[f"tcp:lab-ci.eastus.instances.azureml.ms:{port}"]
        assert bare.status is Status.SKIP and "has no private endpoint" in bare.detail
    assert all(c.status is Status.PASS for c in report.checks if c.id.startswith("dns:amlprobelabsa."))


def test_hub_and_spoke_is_information_only() -> None:
    code, report = run_lab("hub-and-spoke")
    assert code == 0
    assert finding_ids(report, include_info=True) == ["dns-comparison-inconclusive", "udp-5831-unconfirmed"]
    info = report.findings[0]
    assert info.severity is Severity.INFO and "hub and spoke" in info.detail
    assert all(e.startswith("dns@reference:") for e in info.evidence)
    # The instance reported its suffix (.nbvm): only its one real name is probed.
    sources = report.environment["inputs"]["sources"]
    assert sources["instance_domain_suffix"].startswith("discovered:")
    probed = [c for c in report.checks if ":" in c.id]  # not the catalog rows the plan skipped
    ci = {c.target.host for c in probed if c.labels.get("variant_group") == "ci-host"}
    assert ci == {
        "lab-ci.eastus.instances.ml.azure.ms",
        "lab-ci-8787.eastus.instances.ml.azure.ms",
        "lab-ci-18881.eastus.instances.ml.azure.ms",
    }
    # The workspace has a private endpoint: the <ci>-<PORT> names do not apply, the ports do.
    assert {c.id for c in report.checks if "ml.azure.ms" in c.id and c.status is Status.SKIP} == {
        "dns:lab-ci-8787.eastus.instances.ml.azure.ms",
        "dns:lab-ci-18881.eastus.instances.ml.azure.ms",
        "tls:lab-ci-8787.eastus.instances.ml.azure.ms:443",
        "tls:lab-ci-18881.eastus.instances.ml.azure.ms:443",
    }


def test_manual_dns_records_pass_without_the_privatelink_cname() -> None:
    code, report = run_lab("manual-dns-records")
    assert code == 0
    ws = next(c for c in report.checks if c.id.startswith("dns:") and ".workspace.eastus.api." in c.id)
    assert ws.status is Status.PASS and ws.dns is not None and ws.dns.chain == []
    assert ws.addresses and ws.addresses[0].startswith(PE_NET)
    # Azure DNS (no zone linked) still shows the public privatelink CNAME: the endpoint exists.
    assert report.environment["private_endpoints"]["workspace"]["private_endpoint"] is True
    assert finding_ids(report, include_info=True) == ["dns-comparison-inconclusive", "udp-5831-unconfirmed"]


def test_service_endpoints_for_storage_and_key_vault() -> None:
    code, report = run_lab("service-endpoints")
    assert code == 0
    pes = {k: v["private_endpoint"] for k, v in report.environment["private_endpoints"].items()}
    assert pes == {
        "workspace": True,
        "notebooks": True,
        "storage-blob": False,
        "storage-file": False,
        "key-vault": False,
    }


def test_only_situational_rows_blocked_is_one_warning() -> None:
    code, report = run_lab("optional-blocked")
    assert code == 1
    assert report.status.value == "warning"
    assert finding_ids(report) == ["situational-endpoints-blocked"]
    f = report.findings[0]
    assert f.severity is Severity.WARNING
    blocked = {i for i, r in not_passing(report).items() if r == "tcp_timeout"}
    assert blocked and set(f.evidence) == blocked
    assert all(c.required is False for c in report.checks if c.id in blocked)
    assert "tcp:lab-ci.eastus.instances.azureml.ms:8787" in blocked
    commands = [c for r in f.remediation for c in r.commands]
    assert any("--target-fqdns" in c and "ghcr.io" in c for c in commands)


def test_nsg_blocks_443_to_aml_front_ends() -> None:
    code, report = run_lab("nsg-blocks-443")
    assert code == 2
    blocked = ids(
        report,
        lambda c: (
            c.target.port == 443
            and c.target.protocol is not Protocol.DNS
            and any(a.startswith(AML_NET) for a in c.addresses)
        ),
    )
    assert blocked
    assert not_passing(report) == {**{i: "tcp_timeout" for i in blocked}, **udp_silent(report)}
    assert finding_ids(report) == ["outbound-443-blocked"]
    (f,) = [f for f in report.findings if f.id == "outbound-443-blocked"]
    assert "AzureMachineLearning" in f.title and "dropped" in f.title
    assert set(f.evidence) == blocked
    assert any("--destination-address-prefixes AzureMachineLearning" in c for r in f.remediation for c in r.commands)


def test_udp_5831_rejected() -> None:
    code, report = run_lab("udp-5831-rejected")
    assert code == 2
    udp = ids(report, lambda c: c.target.protocol is Protocol.UDP)
    assert not_passing(report) == {i: "udp_closed" for i in udp}
    assert finding_ids(report, include_info=True) == ["udp-5831-blocked"]


def test_smb_445_blocked() -> None:
    code, report = run_lab("smb-445-blocked")
    assert code == 2
    smb = ids(report, lambda c: c.target.protocol is Protocol.SMB)
    assert not_passing(report) == {**{i: "tcp_timeout" for i in smb}, **udp_silent(report)}
    assert finding_ids(report) == ["smb-445-blocked"]
    # Storage's HTTPS still works: only the port is blocked, not the endpoint.
    assert all(
        c.status is Status.PASS
        for c in report.checks
        if c.target.protocol is Protocol.TLS and ".file." in c.target.host
    )


# The old lab answered every upgrade with 101 and stripped it by having the front end itself answer 403
# with a gateway's headers. The real front end refuses anonymous upgrades (real-world-azure.md Q1), and a
# stripping box is a real middlebox: a proxy that decrypts the instance hosts and forwards without Upgrade.


def test_websocket_stripped_by_a_decrypting_proxy_is_one_finding() -> None:
    code, report = run_lab("websocket-stripped")
    assert code == 2
    ws = [c for c in report.checks if c.target.protocol is Protocol.WEBSOCKET and c.status is not Status.SKIP]
    ci_tls = {
        c.id
        for c in report.checks
        if c.target.protocol is Protocol.TLS and ".instances." in c.target.host and c.status is not Status.SKIP
    }
    assert ws and ci_tls
    assert not_passing(report) == {
        **{c.id: "ws_intercepted" for c in ws},
        **{i: "tls_unexpected_issuer" for i in ci_tls},
        **udp_silent(report),
    }
    assert all(c.route == "proxy" and c.http is not None and c.http.via for c in ws)
    assert finding_ids(report) == ["websocket-stripped"]
    (f,) = [f for f in report.findings if f.id == "websocket-stripped"]
    assert f.title.startswith("Websocket upgrade stripped by Via: 1.1 contoso-proxy")
    assert set(f.evidence) == {c.id for c in ws} | ci_tls
    assert "Contoso Firewall TLS Inspection CA" in f.detail and "cannot be seen from here" in f.detail
    kinds = [r.kind for r in f.remediation]
    assert kinds == ["no_proxy", "tls_bypass", "client_check"]


@pytest.mark.parametrize(
    ("scenario", "status"),
    [
        ("healthy", 302),
        ("healthy-websocket-401", 401),
        ("healthy-websocket-403", 403),
        ("healthy-websocket-unmarked", 403),
    ],
)
def test_each_plausible_front_end_refusal_is_healthy(scenario: str, status: int) -> None:
    code, report = run_lab(scenario)
    assert code == 0 and report.status.value == "ok"
    assert finding_ids(report) == []
    ws = [c for c in report.checks if c.target.protocol is Protocol.WEBSOCKET and c.status is not Status.SKIP]
    assert ws and all(c.status is Status.PASS and c.reason.value == "ws_auth_required" for c in ws)
    assert all(c.http is not None and c.http.status == status and c.http.via is None for c in ws)
    assert all(c.detail.startswith("Reached the Azure ML front end") for c in ws)


def test_packages_and_vscode_with_their_real_issuers_are_clean() -> None:
    code, report = run_lab("packages-vscode")
    assert code == 0 and report.status.value == "ok"
    assert not_passing(report) == {} and report.findings == []
    issuers = {
        c.target.host: c.tls.leaf.issuer_common_name
        for c in report.checks
        if c.target.protocol is Protocol.TLS and c.tls is not None and c.tls.leaf is not None
    }
    assert issuers["pypi.org"] == "GlobalSign Atlas R3 DV TLS CA 2025 Q4"
    assert issuers["github.com"] == "Sectigo ECC Domain Validation Secure Server CA"
    assert issuers["download.pytorch.org"] == "Amazon"
    assert issuers["repo.anaconda.com"] == "WE1"
    assert issuers["raw.githubusercontent.com"] == "DigiCert TLS RSA SHA256 2020 CA1"
    front_door = "automlresources-prod-d0eaehh7g8andvav.b02.azurefd.net"
    assert issuers[front_door] == "GeoTrust Global TLS RSA4096 SHA256 2022 CA1"
    leaf = next(c.tls.leaf for c in report.checks if c.target.host == front_door and c.tls and c.tls.leaf)
    assert "O=DigiCert\\, Inc." in leaf.issuer  # the escaped comma the old parser choked on


def test_microsoft_root_missing_names_the_root() -> None:
    code, report = run_lab("microsoft-root-missing")
    assert code == 2
    untrusted = ids(report, lambda c: c.target.protocol is Protocol.TLS and c.target.host.endswith("microsoft.com"))
    assert untrusted
    assert not_passing(report) == {**{i: "tls_untrusted" for i in untrusted}, **udp_silent(report)}
    assert finding_ids(report) == ["trust-store-lacks-microsoft-root"]
    f = report.findings[0]
    assert "Microsoft TLS RSA Root G2" in f.title and set(f.evidence) == untrusted
    assert "sudo update-ca-certificates" in [c for r in f.remediation for c in r.commands]


def test_private_dns_not_linked_names_the_zones() -> None:
    code, report = run_lab("private-dns-not-linked")
    assert code == 2
    bad = not_passing(report)
    public = {i for i, r in bad.items() if r == "dns_public_address"}
    assert public and all(i.startswith("dns:") for i in public)
    assert any(".blob." in i for i in public) and any(".file." in i for i in public)
    assert any(".workspace." in i for i in public)
    assert not any(".vault." in i or "notebooks" in i for i in public)  # only storage and workspace unlinked
    assert bad == {**{i: "dns_public_address" for i in public}, **udp_silent(report)}
    assert finding_ids(report) == ["private-dns-zone-not-linked"]
    f = report.findings[0]
    for zone in (
        "privatelink.blob.core.windows.net",
        "privatelink.file.core.windows.net",
        "privatelink.api.azureml.ms",
    ):
        assert zone in f.title
    assert any("az network private-dns link vnet create" in c for r in f.remediation for c in r.commands)


def test_custom_dns_missing_forwarder() -> None:
    code, report = run_lab("custom-dns-missing-forwarder")
    assert code == 2
    bad = not_passing(report)
    nx = {i for i, r in bad.items() if r == "dns_nxdomain"}
    mismatch = {i for i, r in bad.items() if r == "dns_resolver_mismatch"}
    assert {i for i in nx if i.startswith("dns:")} == {i.replace("dns@reference:", "dns:") for i in mismatch}
    pe_hosts = {c.target.host for c in report.checks if c.id in mismatch}
    # Every other probe of those names fails for the same DNS reason, and nothing else fails.
    consequences = {c.id for c in report.checks if c.target.host in pe_hosts and c.target.protocol is not Protocol.DNS}
    assert bad == {
        **{i: "dns_nxdomain" for i in nx},
        **{i: "dns_resolver_mismatch" for i in mismatch},
        **udp_silent(report),
    }
    assert consequences <= nx
    assert finding_ids(report) == ["custom-dns-not-forwarding"]
    f = report.findings[0]
    assert set(f.evidence) >= nx | mismatch
    assert any("168.63.129.16" in c for r in f.remediation for c in r.commands)


def test_custom_dns_recursing_publicly_says_forwarders() -> None:
    code, report = run_lab("custom-dns-public-recursion")
    assert code == 2
    assert finding_ids(report) == ["custom-dns-not-forwarding"]
    f = report.findings[0]
    public = {i for i, r in not_passing(report).items() if r == "dns_public_address"}
    assert public and public <= set(f.evidence)
    commands = [c for r in f.remediation for c in r.commands]
    assert commands and all(c.startswith("Add-DnsServerConditionalForwarderZone -Name ") for c in commands)
    assert not any("private-dns link vnet create" in c for c in commands)


def test_tls_inspection_names_the_issuer() -> None:
    code, report = run_lab("tls-inspection")
    assert code == 2
    bad = not_passing(report)
    inspected = {i for i, r in bad.items() if r == "tls_unexpected_issuer"}
    assert inspected == ids(report, lambda c: c.target.protocol is Protocol.TLS)
    assert bad == {**{i: "tls_unexpected_issuer" for i in inspected}, **udp_silent(report)}
    assert finding_ids(report) == ["tls-inspection"]
    f = report.findings[0]
    assert "Contoso Firewall TLS Inspection CA" in f.title
    assert "Trusted by" in f.detail
    # Third-party hosts (ghcr.io, pkg-containers.githubusercontent.com) re-signed by the same CA: same finding.
    assert "third-party hosts too (ghcr.io, pkg-containers.githubusercontent.com)" in f.detail


def test_proxy_required_only_443_through_proxy() -> None:
    code, report = run_lab("proxy-required")
    assert code == 2
    tls = [
        c
        for c in report.checks
        if c.target.protocol in (Protocol.TLS, Protocol.WEBSOCKET) and c.status is not Status.SKIP
    ]
    assert tls and all(c.status is Status.PASS and c.route == "proxy" for c in tls)
    # Azure's platform address (168.63.129.16) is always reached directly, as in Azure.
    no_path = ids(
        report, lambda c: c.target.protocol in (Protocol.TCP, Protocol.SMB) and c.target.host != "168.63.129.16"
    )
    assert not_passing(report) == {**{i: "tcp_timeout" for i in no_path}, **udp_silent(report)}
    assert finding_ids(report) == ["proxy-only-egress"]
    assert set(report.findings[0].evidence) >= no_path


def test_dns_timeout_is_one_finding() -> None:
    code, report = run_lab("dns-timeout")
    assert code == 2
    bad = not_passing(report)
    configured_dns = ids(report, lambda c: c.id.startswith("dns:"))
    assert all(bad[i] == "dns_timeout" for i in configured_dns)
    # Everything that needed a name failed because of DNS, not for a reason of its own.
    assert {r for i, r in bad.items() if i not in configured_dns and not i.startswith("dns@")} <= {
        "dns_timeout",
        "udp_open_filtered",
    }
    # Issue 11: a resolver that does not answer is its own cause, and forwarders are no fix for it (no query
    # reaches them): ask it directly, open 53 to it, or point the VNet at one that answers.
    assert finding_ids(report) == ["dns-resolver-not-answering"]
    (f,) = [f for f in report.findings if f.id == "dns-resolver-not-answering"]
    assert [r.kind for r in f.remediation] == ["verify", "nsg_rule", "dns_servers"]
    assert not any("Forwarder" in c or "forward" in r.text for r in f.remediation for c in r.commands)
    assert "The reference resolver (168.63.129.16) answered" in f.detail
    assert any(c.startswith("dig @10.0.0.4 ") for c in commands_of([f]))


def test_missing_inputs_make_the_verdict_unknown_and_say_what_to_add() -> None:
    # Issue 11: a healthy VNet checked with only the region. It used to say OK and exit 0 with every workspace
    # check skipped; it cannot decide, and the report says which inputs to add, with their flags and sources.
    code, report = run_lab("missing-inputs")
    assert code == 3 and report.status.value == "unknown"
    assert not [c for c in report.checks if c.status is Status.FAIL]
    missing = {m.input: m for m in report.missing_inputs}
    assert {"workspace_id", "workspace_name", "storage_account", "key_vault", "instance_name"} <= {
        name for name, m in missing.items() if m.required
    }
    ws = missing["workspace_id"]
    assert (ws.flag, ws.env) == ("--workspace-id", "AMLPROBE_WORKSPACE_ID")
    assert any("properties.workspaceId" in how for how in ws.how)
    assert "aml-workspace-api" in ws.checks
    assert any("config.json" in how for how in missing["workspace_name"].how)
    # The instance's DNS suffix is only another name for what the instance name gives: not required.
    assert missing["instance_domain_suffix"].required is False
    assert report.partial is False


def test_a_partial_plan_accepted_decides_on_what_was_checked() -> None:
    code, report = run_lab("missing-inputs", "--partial")
    assert code == 0 and report.status.value == "ok" and report.partial
    assert {m.input for m in report.missing_inputs if m.required} >= {"workspace_id", "storage_account"}


def lab_table(scenario: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab", "--scenario", scenario, "--format", "table"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        check=False,
    )


def test_the_table_lists_the_inputs_to_add() -> None:
    proc = lab_table("missing-inputs")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("UNKNOWN")
    head = next(i for i, line in enumerate(lines) if line.startswith("Inputs to add"))
    assert "the verdict is unknown until they are given" in lines[head]
    assert any(line.strip().startswith("--workspace-id WORKSPACE_ID or AMLPROBE_WORKSPACE_ID:") for line in lines)
    assert any("--query properties.workspaceId" in line for line in lines[head:])


def test_storage_firewall_is_one_finding_naming_the_account() -> None:
    code, report = run_lab("storage-firewall")
    assert code == 2
    denied = ids(report, lambda c: c.target.protocol is Protocol.HTTP and ".core.windows.net" in c.target.host)
    assert denied == {"https:amlprobelabsa.blob.core.windows.net:443", "https:amlprobelabsa.file.core.windows.net:443"}
    assert not_passing(report) == {**{i: "http_network_denied" for i in denied}, **udp_silent(report)}
    assert finding_ids(report) == ["resource-network-denied"]
    (f,) = [f for f in report.findings if f.id == "resource-network-denied"]
    assert f.title.startswith("Storage account amlprobelabsa refuses this machine (blob, file)")
    assert "network rules or public network access is disabled" in f.detail and set(f.evidence) == denied
    commands = commands_of([f])
    assert "az storage account network-rule add --account-name amlprobelabsa --subnet <COMPUTE_SUBNET_ID>" in commands
    # TCP, TLS and SMB NEGOTIATE all work: only the service's own answer shows the refusal.
    smb = next(c for c in report.checks if c.target.protocol is Protocol.SMB)
    assert smb.status is Status.PASS


def test_registry_firewall_names_the_address_it_refuses() -> None:
    code, report = run_lab("registry-firewall")
    assert code == 2
    assert not_passing(report) == {"https:amlprobelabacr.azurecr.io:443": "http_network_denied", **udp_silent(report)}
    assert finding_ids(report) == ["resource-network-denied"]
    (f,) = [f for f in report.findings if f.id == "resource-network-denied"]
    # The lab routes public traffic from its NAT egress, and the registry names it, as ACR's 403 does.
    assert f.title.endswith("it saw 198.51.100.254")
    assert "az acr network-rule add --name amlprobelabacr --ip-address 198.51.100.254" in commands_of([f])
    # No private endpoint, so no data endpoint: layers come from the registry's storage, named and not probed.
    assert "registry-layers-unprobed" in finding_ids(report, include_info=True)
    assert report.environment["registry_layer_path"]["probed"] is False


def test_key_vault_with_public_access_disabled() -> None:
    code, report = run_lab("key-vault-public-access-disabled")
    assert code == 2
    vault = "https:amlprobe-lab-kv.vault.azure.net:443"
    assert not_passing(report) == {vault: "http_public_access_disabled", **udp_silent(report)}
    assert finding_ids(report) == ["resource-public-access-disabled"]
    (f,) = [f for f in report.findings if f.id == "resource-public-access-disabled"]
    assert "ForbiddenByConnection" in f.detail
    assert f.remediation[0].kind == "private_endpoint"
    assert any("--group-id vault" in c for c in f.remediation[0].commands)


def test_smb_share_allowing_only_aes256_is_one_warning() -> None:
    code, report = run_lab("smb-aes256-only")
    assert code == 1 and report.status.value == "warning"
    assert finding_ids(report) == ["smb-encryption-aes256-only"]
    (f,) = [f for f in report.findings if f.id == "smb-encryption-aes256-only"]
    smb = next(c for c in report.checks if c.target.protocol is Protocol.SMB)
    assert f.evidence == [smb.id] and smb.smb is not None and smb.smb.cipher == "AES-256-GCM"
    fix = "az storage account file-service-properties update --account-name amlprobelabsa"
    assert f'{fix} --channel-encryption "AES-128-GCM;AES-256-GCM"' in commands_of([f])


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_fix_pastes(scenario: str) -> None:
    """bash -n on every remedy command of every finding, placeholders filled; a placeholder is one <LIKE_THIS>
    word, explained in its remedy's text."""
    _code, report = run_lab(scenario)
    for finding in report.findings:
        for remediation in finding.remediation:
            assert_explained(remediation)
    commands = commands_of(report.findings)
    if commands:
        assert_pastes(commands)


def test_list_describes_every_scenario() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab", "--list"], capture_output=True, text=True, env=ENV, check=False
    )
    assert proc.returncode == 0
    for name in (
        "healthy",
        "no-private-endpoint",
        "hub-and-spoke",
        "manual-dns-records",
        "service-endpoints",
        "optional-blocked",
        "nsg-blocks-443",
        "udp-5831-rejected",
        "smb-445-blocked",
        "healthy-websocket-401",
        "healthy-websocket-403",
        "healthy-websocket-unmarked",
        "packages-vscode",
        "websocket-stripped",
        "private-dns-not-linked",
        "custom-dns-missing-forwarder",
        "custom-dns-public-recursion",
        "tls-inspection",
        "microsoft-root-missing",
        "proxy-required",
        "storage-firewall",
        "registry-firewall",
        "key-vault-public-access-disabled",
        "smb-aes256-only",
        "dns-timeout",
    ):
        assert f"  {name}\n" in proc.stdout


def test_unknown_scenario_is_exit_3() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "amlprobe", "lab", "--scenario", "nope"],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "unknown lab scenario" in proc.stderr


def test_table_view_says_which_resources_have_private_endpoints() -> None:
    proc = lab_table("service-endpoints")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = lines.index("Private endpoints (per resource, from DNS unless you said)")
    section = lines[start + 1 : lines.index("", start)]
    assert any(line.startswith("  workspace: yes (") and "privatelink.api.azureml.ms" in line for line in section)
    assert any(line.startswith("  storage-blob: no (") and "no privatelink CNAME" in line for line in section)
    assert any(line.startswith("  key-vault: no (") for line in section)
