"""Where this machine's files are: resolv.conf, hosts, systemd-resolved's upstream list, DMI, .nbvm, IMDS.

One function reads the ``AMLPROBE_*`` overrides (the lab points the agent at its own files with them)
and every reader takes its paths from it, so one run never looks at two different resolv.conf files.
(Issue 12: the engine's ``SystemPaths``, filled once by the composition root, replaces this module.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The stub resolver's configuration and the hosts file (resolv.conf(5), hosts(5)).
RESOLV_CONF = Path("/etc/resolv.conf")
HOSTS_FILE = Path("/etc/hosts")
# systemd-resolved writes the real upstream servers here while /etc/resolv.conf points at its stub.
SYSTEMD_RESOLVED_CONF = Path("/run/systemd/resolve/resolv.conf")
# Azure's DMI chassis asset tag lives here (checks.discovery.AZURE_ASSET_TAG says what it must read).
DMI_PATH = Path("/sys/class/dmi/id/chassis_asset_tag")
# A compute instance's key=value identity file (checks.discovery says which keys are read and why).
NBVM_PATH = Path("/mnt/azmnt/.nbvm")
# The instance endpoint of IMDS (learn.microsoft.com/azure/virtual-machines/instance-metadata-service;
# MicrosoftDocs/azure-compute-docs articles/virtual-machines/instance-metadata-service.md).
# 2021-02-01 is in the supported-versions list and has every field checks.discovery reads.
IMDS_URL = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"

# The variables that move each file (the lab and the tests set them).
ENV_NAMES = {
    "resolv_conf": "AMLPROBE_RESOLV_CONF",
    "hosts": "AMLPROBE_HOSTS_FILE",
    "dmi": "AMLPROBE_DMI_PATH",
    "nbvm": "AMLPROBE_NBVM_PATH",
    "imds_url": "AMLPROBE_IMDS_URL",
}


@dataclass(frozen=True)
class SystemPaths:
    resolv_conf: Path = RESOLV_CONF
    hosts: Path = HOSTS_FILE
    resolved_conf: Path = SYSTEMD_RESOLVED_CONF
    dmi: Path = DMI_PATH
    nbvm: Path = NBVM_PATH
    imds_url: str = IMDS_URL


def system_paths(env: Mapping[str, str]) -> SystemPaths:
    """The machine's files, each moved by its ``AMLPROBE_*`` variable when that is set and not empty."""

    def path(key: str, default: Path) -> Path:
        value = env.get(ENV_NAMES[key])
        return Path(value) if value else default

    return SystemPaths(
        resolv_conf=path("resolv_conf", RESOLV_CONF),
        hosts=path("hosts", HOSTS_FILE),
        dmi=path("dmi", DMI_PATH),
        nbvm=path("nbvm", NBVM_PATH),
        imds_url=env.get(ENV_NAMES["imds_url"]) or IMDS_URL,
    )
