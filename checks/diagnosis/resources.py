"""Rules for the workspace's own resources: their firewalls and public network access (checks/resources.py
judges the answers), something answering in their place, and where a registry's image layers come from.
Sources: docs/sources.md, "Resource answers".
"""

from __future__ import annotations

from collections.abc import Iterable

from checks.diagnosis.base import (
    DOC_ACR_ENDPOINTS,
    DOC_FIREWALL,
    DOC_RESOURCE_FIREWALL,
    Evidence,
    Rule,
    rule,
)
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
    storage_network_rule_fix,
)
from checks.resources import via_private_endpoint
from checks.services import SERVICE_NAMES
from checks.verdicts import Verdict
from probe.model import CheckResult, Finding, Severity
from probe.reasons import Reason

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


def _endpoints(ev: Evidence, kind: str, checks: list[CheckResult]) -> tuple[list[str], list[str]]:
    """The private endpoints the resource needs, as (group ids, private DNS zones of the same index): one per
    storage service refused, the vault's, the registry's."""
    zone_of = {e.resource: e.zone for e in ev.plan.dns_expectations if e.zone}
    pairs: dict[str, str] = {}
    for c in checks:
        resource = c.labels.get("resource", "")
        group = {"key-vault": "vault", "acr": "registry"}.get(kind) or c.target.host.split(".")[1]
        if group in _STORAGE_GROUPS or kind != "storage":
            pairs.setdefault(group, zone_of.get(resource) or "<PRIVATE_DNS_ZONE>")
    return list(pairs), list(pairs.values())


def _through_private_endpoint(checks: list[CheckResult]) -> bool:
    return bool(checks) and all(via_private_endpoint(c) for c in checks)


def _by_resource(checks: list[CheckResult]) -> dict[tuple[str, str], list[CheckResult]]:
    out: dict[tuple[str, str], list[CheckResult]] = {}
    for c in checks:
        out.setdefault((c.labels.get("judge", ""), c.target.host.split(".", 1)[0]), []).append(c)
    return out


def _seen(checks: list[CheckResult]) -> str | None:
    return next((c.labels["seen_address"] for c in checks if "seen_address" in c.labels), None)


@rule(
    id="resource-network-denied",
    severity=Severity.CRITICAL,
    title="A workspace resource's firewall refuses this machine",
    cause="The storage account, key vault or registry answered an anonymous request and refused it because of where"
    " it came from: its network rules do not admit the compute (storage and the registry answer disabled public"
    " network access the same way).",
    fix="Admit the compute subnet (or the address the resource saw) in its network rules, or reach it through a"
    " private endpoint.",
    doc=DOC_RESOURCE_FIREWALL,
    remedies=(
        lambda c: private_endpoint_connection_check("storage", "<STORAGE_ACCOUNT>"),
        lambda c: resource_access_check("storage", "<STORAGE_ACCOUNT>"),
        lambda c: storage_network_rule_fix("<STORAGE_ACCOUNT>"),
        lambda c: private_endpoint_fix(c, "storage", "<STORAGE_ACCOUNT>", ["<GROUP_ID>"], ["<ZONE>"]),
        lambda c: resource_access_check("key-vault", "<KEY_VAULT>"),
        lambda c: key_vault_network_rule_fix("<KEY_VAULT>", "<ADDRESS_SEEN>"),
        lambda c: private_endpoint_fix(c, "key-vault", "<KEY_VAULT>", ["vault"], ["<ZONE>"]),
        lambda c: resource_access_check("acr", "<CONTAINER_REGISTRY>"),
        lambda c: registry_network_rule_fix("<CONTAINER_REGISTRY>", "<ADDRESS_SEEN>"),
        lambda c: private_endpoint_fix(c, "acr", "<CONTAINER_REGISTRY>", ["registry"], ["<ZONE>"]),
    ),
)
def resource_network_denied(ev: Evidence, rule: Rule) -> list[Finding]:
    """A workspace resource answered and refused this machine: its firewall (or, for storage and the registry,
    possibly disabled public network access, which answers alike)."""
    bad = ev.open(lambda r: r.reason is Verdict.HTTP_NETWORK_DENIED and "judge" in r.labels)
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
        groups, zones = _endpoints(ev, kind, checks)
        if kind == "storage":
            fixes = [
                resource_access_check("storage", name),
                storage_network_rule_fix(name),
                private_endpoint_fix(ev.remedies, "storage", name, groups, zones),
            ]
        elif kind == "key-vault":
            fixes = [
                resource_access_check("key-vault", name),
                key_vault_network_rule_fix(name, seen),
                private_endpoint_fix(ev.remedies, "key-vault", name, groups, zones),
            ]
        else:
            fixes = [
                resource_access_check("acr", name),
                registry_network_rule_fix(name, seen),
                private_endpoint_fix(ev.remedies, "acr", name, groups, zones),
            ]
        if _through_private_endpoint(checks):
            detail += (
                " This request went to the resource's private endpoint, which Azure admits whatever the public"
                " settings say: check that the private endpoint connection is approved."
            )
            fixes.insert(0, private_endpoint_connection_check(kind, name))
        findings.append(rule.finding(title, detail, ev.claim(checks), fixes, instance=f"{kind}:{name}"))
    return findings


@rule(
    id="resource-public-access-disabled",
    severity=Severity.CRITICAL,
    title="A workspace resource has public network access disabled",
    cause="The key vault refused the request with ForbiddenByConnection: public network access is disabled and the"
    " request did not come through an approved private endpoint.",
    fix="Reach it through a private endpoint in the compute's VNet (with its private DNS zone), or enable public"
    " access for chosen networks.",
    doc=DOC_RESOURCE_FIREWALL,
    remedies=(
        lambda c: private_endpoint_connection_check("key-vault", "<KEY_VAULT>"),
        lambda c: private_endpoint_fix(c, "key-vault", "<KEY_VAULT>", ["vault"], ["<ZONE>"]),
        lambda c: key_vault_public_access_fix("<KEY_VAULT>"),
        lambda c: key_vault_network_rule_fix("<KEY_VAULT>", "<ADDRESS_SEEN>"),
    ),
)
def resource_public_access_disabled(ev: Evidence, rule: Rule) -> list[Finding]:
    """The key vault says its public network access is disabled and this request did not come through an
    approved private endpoint (ForbiddenByConnection)."""
    bad = ev.open(lambda r: r.reason is Verdict.HTTP_PUBLIC_ACCESS_DISABLED and "judge" in r.labels)
    findings = []
    for (kind, name), checks in sorted(_by_resource(bad).items()):
        service = SERVICE_NAMES[kind]
        detail = f"{checks[0].detail} {_CONSEQUENCE[kind]}"
        groups, zones = _endpoints(ev, kind, checks)
        fixes = [
            private_endpoint_fix(ev.remedies, "key-vault", name, groups, zones),
            key_vault_public_access_fix(name),
            key_vault_network_rule_fix(name, _seen(checks)),
        ]
        if _through_private_endpoint(checks):
            detail += " The request went to a private address: its private endpoint connection may not be approved."
            fixes.insert(0, private_endpoint_connection_check("key-vault", name))
        title = f"The {service} {name} has public network access disabled, and this machine reaches its public endpoint"
        findings.append(rule.finding(title, detail, ev.claim(checks), fixes, instance=f"{kind}:{name}"))
    return findings


@rule(
    id="resource-request-intercepted",
    severity=Severity.CRITICAL,
    title="Something in between answers for a workspace resource",
    cause="A proxy, a block page or Azure Firewall (HTTP 470) answered the request to the storage account, key vault"
    " or registry instead of the service.",
    fix="Allow the resource's name on the firewall (an application rule) or send it past the proxy.",
    doc=DOC_FIREWALL,
    remedies=(
        proxy_bypass_fix,
        lambda c: firewall_fqdn_fix(c, ["<HOST>"], "443", why="the firewall or proxy answers for them itself"),
    ),
)
def resource_request_intercepted(ev: Evidence, rule: Rule) -> list[Finding]:
    """Something in between (a proxy, a block page, Azure Firewall's 470) answered for a workspace resource."""
    bad = ev.open(
        lambda r: (
            r.reason in (Verdict.HTTP_INTERCEPTED, Reason.PROXY_AUTH_REQUIRED)
            and "judge" in r.labels
            and r.http is not None
        )
    )
    if not bad:
        return []
    hosts = sorted({c.target.host for c in bad})
    fixes = [firewall_fqdn_fix(ev.remedies, hosts, "443", why="the firewall or proxy answers for them itself")]
    if any(c.route == "proxy" for c in bad):
        fixes.insert(0, proxy_bypass_fix(ev.remedies))
    return [
        rule.finding(
            f"Requests to the workspace's resources are answered by something in between ({_names(bad)})",
            bad[0].detail,
            ev.claim(bad),
            fixes,
        )
    ]


@rule(
    id="resource-answer-inconclusive",
    severity=Severity.WARNING,
    title="Who answered for a workspace resource cannot be told",
    cause="The answer carries neither the service's marks (its request id, error code or challenge) nor a middlebox's.",
    fix="Read the check's detail; ask the same URL from a machine known to reach the service and compare.",
    doc=DOC_RESOURCE_FIREWALL,
)
def resource_answer_inconclusive(ev: Evidence, rule: Rule) -> list[Finding]:
    unsure = ev.open(lambda r: r.reason is Verdict.HTTP_INCONCLUSIVE and "judge" in r.labels)
    if not unsure:
        return []
    return [
        rule.finding(
            f"Who answered for the workspace's resources cannot be told ({_names(unsure)})",
            unsure[0].detail,
            ev.claim(unsure),
            [],
        )
    ]


@rule(
    id="registry-layers-unprobed",
    severity=Severity.INFO,
    title="Image layers come from the registry's storage account, which is not probed",
    cause="Without a dedicated data endpoint or a private endpoint a registry serves layers from its own storage"
    " account (*.blob.core.windows.net), whose name only an authenticated pull learns.",
    fix="Allow *.blob.core.windows.net on 443 (Storage service tag) for pulls, or give the registry a dedicated data"
    " endpoint a firewall can name.",
    doc=DOC_ACR_ENDPOINTS,
    remedies=(lambda c: registry_endpoints_check(c, "<CONTAINER_REGISTRY>"),),
)
def registry_layers_unprobed(ev: Evidence, rule: Rule) -> list[Finding]:
    """Say where image layers come from when that path cannot be probed without credentials."""
    layers = ev.registry_layers
    if layers is None or layers["probed"] is not False:
        return []
    registry = layers["registry"]
    fixes = [registry_endpoints_check(ev.remedies, registry)] if registry else []
    return [
        rule.finding(
            f"Image layers come from the registry's storage account ({layers['path']}), which is not probed",
            layers["why"],
            [e for e in layers["evidence"] if any(r.id == e for r in ev.results)],
            fixes,
        )
    ]
