"""What a run is told: the probe settings, and where this machine keeps the files amlprobe reads.

Both are filled once, by the composition root (the command line), and only read below it: the
prober's resolver, the machine facts and the support bundle all look at the same resolv.conf.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.defaults import DEFAULT_TIMEOUT

__all__ = ["DEFAULT_TIMEOUT", "ProbeSettings", "SystemPaths"]


@dataclass(frozen=True)
class SystemPaths:
    """The machine's own files (and its metadata endpoint), each overridable for the lab and tests.

    ``from_env`` reads the overrides (AMLPROBE_RESOLV_CONF, ...); nothing else reads those variables.
    ``imds_url`` and ``nbvm`` are None unless overridden: the layer that reads them knows where the
    real ones are.
    """

    resolv_conf: str = "/etc/resolv.conf"
    hosts: str = "/etc/hosts"
    # systemd-resolved writes the real upstream servers here while /etc/resolv.conf points at its stub.
    resolved_conf: str = "/run/systemd/resolve/resolv.conf"
    dmi_asset_tag: str = "/sys/class/dmi/id/chassis_asset_tag"
    imds_url: str | None = None
    nbvm: str | None = None

    # field -> the environment variable that overrides it
    OVERRIDES = {
        "resolv_conf": "AMLPROBE_RESOLV_CONF",
        "hosts": "AMLPROBE_HOSTS_FILE",
        "resolved_conf": "AMLPROBE_RESOLVED_CONF",
        "dmi_asset_tag": "AMLPROBE_DMI_PATH",
        "imds_url": "AMLPROBE_IMDS_URL",
        "nbvm": "AMLPROBE_NBVM_PATH",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SystemPaths:
        """The defaults, with every non-empty AMLPROBE_* override of ``env`` applied."""
        given = {name: value for name, var in cls.OVERRIDES.items() if (value := env.get(var))}
        return cls(**given)


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
