"""Diagnosis rules for the workspace's own resources: their firewalls (checks/resources.py judges the
answers), the file share's SMB security settings, and where a registry's image layers come from.

Registered in checks.diagnose.RULES, which runs them in order with the others; each rule claims the checks
it explains. Sources: docs/sources.md, "Resource answers" and "SMB".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from checks.addresses import is_ip, is_private
from checks.remedies import (
    firewall_fqdn_fix,
    key_vault_network_rule_fix,
    key_vault_public_access_fix,
    private_endpoint_connection_check,
    private_endpoint_fix,
    proxy_bypass_fix,
    registry_endpoints_check,
    registry_network_rule_fix,
    resource_access_check,
    smb_channel_encryption_fix,
    smb_settings_check,
    storage_network_rule_fix,
)
from checks.services import SERVICE_NAMES
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Protocol
from probe.reasons import Reason

if TYPE_CHECKING:
    from checks.diagnose import Facts, Rule

# What a resource's refusal stops, for the finding's detail (real-world-azure.md Q7 #1, #7).
_CONSEQUENCE = {
    "storage": "The compute cannot read or write the workspace's data there, and a compute instance whose file share"
    " cannot be mounted fails to create (StorageMountError).",
    "key-vault": "Jobs and the compute cannot read the workspace's secrets (connections, credentials of datastores).",
    "acr": "Environment images cannot be pulled or built: jobs fail before they start.",
}
# Private-endpoint group ids (sub-resources) of a storage account: its services' names.
_STORAGE_GROUPS = frozenset({"blob", "file", "queue", "table", "dfs"})


def _names(checks: Iterable[CheckResult]) -> str:
    return ", ".join(sorted({c.target.host for c in checks}))


def _endpoints(facts: Facts, kind: str, checks: list[CheckResult]) -> tuple[list[str], list[str]]:
    """The private endpoints the resource needs, as (group ids, private DNS zones of the same index): one per
    storage service refused, the vault's, the registry's."""
    zone_of = {e.resource: e.zone for e in facts.plan.dns_expectations if e.zone}
    pairs: dict[str, str] = {}
    for c in checks:
        resource = c.labels.get("resource", "")
        group = {"key-vault": "vault", "acr": "registry"}.get(kind) or c.target.host.split(".")[1]
        if group in _STORAGE_GROUPS or kind != "storage":
            pairs.setdefault(group, zone_of.get(resource) or "<private-dns-zone>")
    return list(pairs), list(pairs.values())


def _through_private_endpoint(checks: list[CheckResult]) -> bool:
    peers = [(c.peer or "").rsplit(":", 1)[0].strip("[]") for c in checks]
    return bool(peers) and all(is_ip(p) and is_private(p) for p in peers)


def _by_resource(checks: list[CheckResult]) -> dict[tuple[str, str], list[CheckResult]]:
    out: dict[tuple[str, str], list[CheckResult]] = {}
    for c in checks:
        out.setdefault((c.labels.get("judge", ""), c.target.host.split(".", 1)[0]), []).append(c)
    return out


def _seen(checks: list[CheckResult]) -> str | None:
    return next((c.labels["seen_address"] for c in checks if "seen_address" in c.labels), None)


def rule_resource_network_denied(facts: Facts, rule: Rule) -> list[Finding]:
    """A workspace resource answered and refused this machine: its firewall (or, for storage and the registry,
    possibly disabled public network access, which answers alike)."""
    bad = facts.open(lambda r: r.reason is Verdict.HTTP_NETWORK_DENIED and "judge" in r.labels)
    findings = []
    for (kind, name), checks in sorted(_by_resource(bad).items()):
        service = SERVICE_NAMES[kind]
        seen = _seen(checks)
        if kind == "storage":
            services = ", ".join(sorted({c.target.host.split(".")[1] for c in checks}))
            title = (
                f"Storage account {name} refuses this machine ({services}): its network rules, or public network"
                " access disabled"
            )
        else:
            title = f"The {service} {name} refuses this machine: its firewall" + (
                " (or public network access disabled)" if kind == "acr" else ""
            )
            if seen:
                title += f"; it saw {seen}"
        detail = f"{checks[0].detail} {_CONSEQUENCE[kind]}"
        groups, zones = _endpoints(facts, kind, checks)
        if kind == "storage":
            fixes = [
                resource_access_check("storage", name),
                storage_network_rule_fix(name),
                private_endpoint_fix(facts, "storage", name, groups, zones),
            ]
        elif kind == "key-vault":
            fixes = [
                resource_access_check("key-vault", name),
                key_vault_network_rule_fix(name, seen),
                private_endpoint_fix(facts, "key-vault", name, groups, zones),
            ]
        else:
            fixes = [
                resource_access_check("acr", name),
                registry_network_rule_fix(name, seen),
                private_endpoint_fix(facts, "acr", name, groups, zones),
            ]
        if _through_private_endpoint(checks):
            detail += (
                " This request went to the resource's private endpoint, which Azure admits whatever the public"
                " settings say: check that the private endpoint connection is approved."
            )
            fixes.insert(0, private_endpoint_connection_check(kind, name))
        findings.append(rule.finding(title, detail, facts.claim(checks), fixes))
    return findings


def rule_resource_public_access_disabled(facts: Facts, rule: Rule) -> list[Finding]:
    """The key vault says its public network access is disabled and this request did not come through an
    approved private endpoint (ForbiddenByConnection)."""
    bad = facts.open(lambda r: r.reason is Verdict.HTTP_PUBLIC_ACCESS_DISABLED and "judge" in r.labels)
    findings = []
    for (kind, name), checks in sorted(_by_resource(bad).items()):
        service = SERVICE_NAMES[kind]
        detail = f"{checks[0].detail} {_CONSEQUENCE[kind]}"
        groups, zones = _endpoints(facts, kind, checks)
        fixes = [
            private_endpoint_fix(facts, "key-vault", name, groups, zones),
            key_vault_public_access_fix(name),
            key_vault_network_rule_fix(name, _seen(checks)),
        ]
        if _through_private_endpoint(checks):
            detail += " The request went to a private address: its private endpoint connection may not be approved."
            fixes.insert(0, private_endpoint_connection_check("key-vault", name))
        title = f"The {service} {name} has public network access disabled, and this machine reaches its public endpoint"
        findings.append(rule.finding(title, detail, facts.claim(checks), fixes))
    return findings


def rule_resource_intercepted(facts: Facts, rule: Rule) -> list[Finding]:
    """Something in between (a proxy, a block page, Azure Firewall's 470) answered for a workspace resource."""
    bad = facts.open(
        lambda r: (
            r.reason in (Verdict.HTTP_INTERCEPTED, Reason.PROXY_AUTH_REQUIRED)
            and "judge" in r.labels
            and r.http is not None
        )
    )
    if not bad:
        return []
    hosts = sorted({c.target.host for c in bad})
    fixes = [firewall_fqdn_fix(facts, hosts, "443", why="the firewall or proxy answers for them itself")]
    if any(c.route == "proxy" for c in bad):
        fixes.insert(0, proxy_bypass_fix(facts))
    return [
        rule.finding(
            f"Requests to the workspace's resources are answered by something in between ({_names(bad)})",
            bad[0].detail,
            facts.claim(bad),
            fixes,
        )
    ]


def rule_resource_inconclusive(facts: Facts, rule: Rule) -> list[Finding]:
    unsure = facts.open(lambda r: r.reason is Verdict.HTTP_INCONCLUSIVE and "judge" in r.labels)
    if not unsure:
        return []
    return [
        rule.finding(
            f"Who answered for the workspace's resources cannot be told ({_names(unsure)})",
            unsure[0].detail,
            facts.claim(unsure),
            [],
        )
    ]


def _account(r: CheckResult) -> str:
    return r.target.host.split(".", 1)[0]


def rule_smb_no_common_security(facts: Facts, rule: Rule) -> list[Finding]:
    """Port 445 answers SMB, but with no dialect or no cipher in common with what a Linux client offers."""
    bad = facts.open(
        lambda r: (
            r.target.protocol is Protocol.SMB
            and r.reason in (Reason.SMB_NO_COMMON_CIPHER, Reason.SMB_NO_COMMON_DIALECT)
        )
    )
    if not bad:
        return []
    what = "cipher" if bad[0].reason is Reason.SMB_NO_COMMON_CIPHER else "SMB dialect"
    return [
        rule.finding(
            f"Port 445 answers, but with no {what} in common with a Linux client: the file share cannot be mounted",
            f"{bad[0].detail} Azure Files supports SMB 3.1.1, 3.0 and 2.1 and the ciphers AES-128-CCM, AES-128-GCM and"
            " AES-256-GCM, all of which the Linux client offers, so whatever answered is not an Azure Files endpoint"
            " as documented (a middlebox, another server), or its settings exclude every one of them.",
            facts.claim(bad),
            [smb_settings_check(_account(bad[0]))],
        )
    ]


def _refuses_aes128(r: CheckResult) -> bool:
    if r.smb is None or r.target.protocol is not Protocol.SMB or r.labels.get("resource") != "storage-file":
        return False
    return (
        any(c.agreed == "none" and set(c.offered) == {"AES-128-GCM", "AES-128-CCM"} for c in r.smb.cipher_checks)
        and r.smb.cipher == "AES-256-GCM"
    )


def rule_smb_aes256_only(facts: Facts, rule: Rule) -> list[Finding]:
    """The file share accepts only AES-256-GCM: Microsoft asks for AES-128-GCM to be enabled for mounts to work."""
    bad = facts.open(_refuses_aes128)
    if not bad:
        return []
    account = _account(bad[0])
    return [
        rule.finding(
            f"The file share of {account} accepts only AES-256-GCM: Linux mounts that start with AES-128-GCM fail",
            f'{bad[0].detail} Offered AES-128-GCM or AES-128-CCM alone, it agreed none. Microsoft: "To successfully'
            " mount or access a file share, the AES-128-GCM encryption algorithm should be enabled for all storage"
            ' accounts" (AKS troubleshooting, minimum encryption). A default Linux client offers AES-128-GCM first;'
            " Azure Files has been seen to agree it and then refuse the session (mount error 13), and Linux kernels"
            " before 5.13 do not offer AES-256-GCM at all. Microsoft's client-side workaround (options cifs"
            " require_gcm_256=1) is for clients you mount from yourself; Azure ML compute mounts the share itself, so"
            " the fix is the account's setting.",
            facts.claim(bad),
            [smb_channel_encryption_fix(account), smb_settings_check(account)],
        )
    ]


def rule_registry_layers_unprobed(facts: Facts, rule: Rule) -> list[Finding]:
    """Say where image layers come from when that path cannot be probed without credentials."""
    layers = facts.environment.get("registry_layer_path") or {}
    if layers.get("probed") is not False:
        return []
    registry = str(layers.get("registry") or "")
    fixes = [registry_endpoints_check(facts, registry)] if registry else []
    return [
        rule.finding(
            f"Image layers come from the registry's storage account ({layers['path']}), which is not probed",
            str(layers["why"]),
            [e for e in layers.get("evidence", []) if any(r.id == e for r in facts.results)],
            fixes,
        )
    ]
