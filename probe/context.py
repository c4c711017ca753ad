"""What every prober receives besides its target: settings, the shared resolver, the deadline."""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from probe.defaults import DEFAULT_TIMEOUT
from probe.model import CheckResult, CheckSpec, Confidence, Status
from probe.reasons import Reason
from probe.rtt import RttBook
from probe.timing import now

if TYPE_CHECKING:
    from probe.proxy import ProxyChoice
    from probe.resolve import SharedResolver

__all__ = ["DEFAULT_TIMEOUT", "ProbeContext", "ProbeFn", "ProbeSettings", "ca_bundle_in_use", "make_result"]


@dataclass
class ProbeSettings:
    timeout: float = DEFAULT_TIMEOUT
    # "ip", "ip:port" or "[ipv6]:port". Empty: the system's resolv.conf.
    dns_servers: list[str] = field(default_factory=list)
    ca_bundle: str | None = None
    # An explicit proxy URL (--proxy); it wins over the environment.
    proxy: str | None = None
    # Read HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and REQUESTS_CA_BUNDLE from ``env``.
    trust_env: bool = True
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Path of the hosts file consulted before DNS, as the system's resolver would; None: don't.
    hosts_file: str | None = None


def ca_bundle_in_use(settings: ProbeSettings) -> str | None:
    """The CA file (or directory) verification uses; None means the system default store."""
    if settings.ca_bundle:
        return settings.ca_bundle
    if settings.trust_env:
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            value = settings.env.get(var)
            if value:
                return value
    return None


@dataclass
class ProbeContext:
    settings: ProbeSettings
    resolver: SharedResolver
    # Round trips measured so far in this run (TCP connects); the UDP prober derives its wait from them.
    rtt: RttBook = field(default_factory=RttBook)
    _ssl: dict[bool, ssl.SSLContext] = field(default_factory=dict)

    def deadline(self) -> float:
        """The absolute loop time by which the calling probe must finish."""
        return now() + self.settings.timeout

    def ssl_context(self, *, verify: bool = True) -> ssl.SSLContext:
        if verify not in self._ssl:
            from probe.tls import make_ssl_context

            self._ssl[verify] = make_ssl_context(self.settings, verify=verify)
        return self._ssl[verify]

    def proxy_for(self, host: str, port: int, *, tls: bool) -> ProxyChoice | None:
        from probe.proxy import choose_proxy

        return choose_proxy(self.settings, host, port, tls=tls)


ProbeFn = Callable[[CheckSpec, ProbeContext], Awaitable[CheckResult]]


def make_result(
    spec: CheckSpec,
    status: Status,
    reason: Reason,
    detail: str,
    *,
    confidence: Confidence = Confidence.CONFIRMED,
    **fields: object,
) -> CheckResult:
    """Build a CheckResult for ``spec``; extra keyword arguments fill the optional fields."""
    return CheckResult.model_validate(
        {
            "id": spec.id,
            "target": spec.target,
            "status": status,
            "reason": reason,
            "detail": detail,
            "confidence": confidence,
            "labels": dict(spec.labels),
            "required": spec.required,
            "started_at": fields.pop("started_at", None) or datetime.now(timezone.utc),
            **fields,
        }
    )
