"""What a run is told: the probe settings, filled once by the command line and only read below it.

``paths`` says where the machine's own files are (probe.system.SystemPaths): the prober's resolver,
the machine facts and the support bundle all look at the same resolv.conf.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.defaults import DEFAULT_TIMEOUT
from probe.system import SystemPaths

__all__ = ["DEFAULT_TIMEOUT", "ProbeSettings", "SystemPaths"]


@dataclass
class ProbeSettings:
    timeout: float = DEFAULT_TIMEOUT
    # "ip", "ip:port" or "[ipv6]:port". Empty: the servers of paths.resolv_conf.
    dns_servers: list[str] = field(default_factory=list)
    ca_bundle: str | None = None
    # An explicit proxy URL (--proxy); it wins over the environment.
    proxy: str | None = None
    # Read HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and REQUESTS_CA_BUNDLE from ``env``.
    trust_env: bool = True
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    paths: SystemPaths = field(default_factory=SystemPaths)
    # Consult paths.hosts before DNS, as the system's resolver would.
    use_hosts_file: bool = False
