"""docs/troubleshooting.md is generated from the rules, remedies, catalog and reason codes, and must match them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from checks import docs
from checks.catalog import load_catalog
from checks.diagnosis import RULES, Evidence
from checks.inputs import Inputs
from checks.plan import build_plan
from checks.verdicts import Verdict
from probe.model import CheckResult, Protocol, Status, Target
from probe.reasons import Reason
from tests.helpers.deploy import REPO

DOC = REPO / "docs" / "troubleshooting.md"


def test_committed_doc_is_what_the_code_generates() -> None:
    assert DOC.read_text(encoding="utf-8") == docs.render(), (
        "docs/troubleshooting.md is stale: run `python -m checks.docs` and commit the result"
    )


def test_every_finding_and_every_reason_code_is_documented() -> None:
    text = docs.render()
    sections = re.findall(r"^### (\S+)$", text, re.M)
    assert sections == [r.id for r in RULES]
    for rule in RULES:
        body = text.split(f"### {rule.id}\n", 1)[1].split("\n### ", 1)[0]
        assert f"Severity: **{rule.severity.value}**" in body
        assert rule.cause in body and rule.fix in body and f"<{rule.doc}>" in body
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ", text, re.M)
    assert rows == [c.code for c in (*Reason, *Verdict)], "one row per reason code, every code described"


def _facts(results: list[CheckResult]) -> Evidence:
    # Nothing known about the workspace: the remedies print their <placeholders>.
    inputs = Inputs()
    return Evidence(results=results, plan=build_plan(load_catalog("public"), inputs), inputs=inputs)


def _result(protocol: Protocol, port: int, reason: Reason) -> CheckResult:
    return CheckResult(
        id=f"{protocol.value}:host.example:{port}",
        target=Target(host="host.example", port=port, protocol=protocol),
        status=Status.FAIL,
        reason=reason,
        detail="Failed in a test.",
    )


def test_documented_remediation_is_what_the_rule_really_returns() -> None:
    """The doc shows the remedies each rule declares; a real finding must carry exactly those."""
    by_id = {r.id: r for r in RULES}
    cases = {
        "udp-5831-blocked": [_result(Protocol.UDP, 5831, Reason.UDP_CLOSED)],
        "smb-445-blocked": [_result(Protocol.SMB, 445, Reason.TCP_TIMEOUT)],
        "udp-5831-unconfirmed": [_result(Protocol.UDP, 5831, Reason.UDP_OPEN_FILTERED)],
    }
    for rule_id, results in cases.items():
        rule = by_id[rule_id]
        (finding,) = rule.run(_facts(results), rule)
        assert finding.remediation == docs.remediation_shapes(rule), rule_id
        for shape in finding.remediation:
            for command in shape.commands:
                assert command in docs.render()


def test_computed_arguments_become_placeholders() -> None:
    shapes = {r.id: docs.remediation_shapes(r) for r in RULES}
    # A service tag gets an NSG rule; FQDNs without one an FQDN rule on the firewall.
    nsg, fqdn = shapes["outbound-443-blocked"]
    assert "--destination-address-prefixes <SERVICE_TAG>" in nsg.commands[0]
    assert "--resource-group <RESOURCE_GROUP>" in nsg.commands[0]
    assert "--target-fqdns <HOST>" in fqdn.commands[0]
    # Zones linked to the VNet; with a custom DNS, its forwarders too.
    link, forwarder = shapes["private-dns-zone-not-linked"]
    assert "--zone-name <ZONE>" in link.commands[0]
    assert forwarder.commands == ["Add-DnsServerConditionalForwarderZone -Name <ZONE> -MasterServers 168.63.129.16"]
    assert [s.kind for s in shapes["proxy-only-egress"]] == ["nsg_rule", "nsg_rule", "nsg_rule", "no_proxy"]
    assert shapes["unexplained-failure"] == []
    printed = " ".join(f"{s.text} {' '.join(s.commands)}" for rule_shapes in shapes.values() for s in rule_shapes)
    for leaked in ("namespace(", "None", "['", "<built-in"):
        assert leaked not in printed, "a placeholder object was printed instead of a <placeholder>"


def test_check_mode_exits_1_on_a_stale_file_and_0_on_a_fresh_one(tmp_path: Path) -> None:
    out = tmp_path / "troubleshooting.md"

    def gen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "checks.docs", "--output", str(out), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert gen("--check").returncode == 1, "a missing file is stale"
    assert gen().returncode == 0
    assert out.read_text(encoding="utf-8") == docs.render()
    assert gen("--check").returncode == 0
    out.write_text(out.read_text(encoding="utf-8").replace("critical", "CRITICAL", 1), encoding="utf-8")
    stale = gen("--check")
    assert stale.returncode == 1
    assert "python -m checks.docs" in stale.stderr
