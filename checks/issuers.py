"""Who issues the certificates of the hosts Azure ML needs, from checks/data/trust.toml.

The issuer rule applies to hosts Microsoft operates (the catalog's ``operator``): they must show a CA
Azure uses (learn.microsoft.com/azure/security/fundamentals/azure-ca-details). A third-party host may
show any CA this machine trusts, except one that re-signs the Microsoft hosts (docs/sources.md, "Who
issues the certificates").
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from checks import toml
from checks.verdicts import Verdict
from probe.model import CertInfo, CheckResult
from probe.reasons import Reason


@functools.cache
def trust_data() -> dict[str, Any]:
    text = resources.files("checks").joinpath("data/trust.toml").read_text()
    data: dict[str, Any] = toml.loads(text)
    return data


def is_azure_issuer(cert: CertInfo) -> bool:
    """``cert`` was issued by a CA Azure uses (trust.toml), judged on the issuer's own name attributes.

    Never on the RFC 4514 string: there the real Azure CA "GeoTrust Global TLS RSA4096 SHA256 2022 CA1"
    reads ``O=DigiCert\\, Inc.``, and splitting it on commas loses the organisation.
    """
    data = trust_data()
    org = (cert.issuer_organization or "").casefold()
    cn = (cert.issuer_common_name or "").casefold()
    if org and org in {o.casefold() for o in data["issuer_organizations"]}:
        return True
    return bool(cn) and any(cn.startswith(p.casefold()) for p in data["issuer_common_name_prefixes"])


def operator(result: CheckResult) -> str | None:
    """Who runs the host, from the catalog row ("microsoft", "third-party"); None for ad-hoc targets."""
    return result.labels.get("operator")


def issuer_cn(cert: CertInfo) -> str:
    return cert.issuer_common_name or cert.issuer


def inspecting_issuers(results: list[CheckResult]) -> set[str]:
    """Issuers (full names) seen on Microsoft-operated hosts that are not Azure CAs: what re-signs traffic."""
    return {
        r.tls.leaf.issuer
        for r in results
        if operator(r) == "microsoft"
        and r.reason in (Verdict.TLS_UNEXPECTED_ISSUER, Reason.TLS_UNTRUSTED)
        and r.tls is not None
        and r.tls.leaf is not None
        and not is_azure_issuer(r.tls.leaf)
    }
