"""Where this machine's files are, as the Azure layer reads them.

The one home of the machine's paths is the engine's ``probe.system.SystemPaths`` (resolv.conf, hosts,
systemd-resolved's upstream list, DMI, and the IMDS and .nbvm overrides), filled once from the
``AMLPROBE_*`` overrides: the command line puts it in ``ProbeSettings.paths``, so the prober's
resolver, the machine facts and the bundle all read the same files. This module adds only what the
engine cannot know: where an Azure machine's own files really are (a compute instance's .nbvm, IMDS).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from probe.system import SystemPaths

_ENGINE = SystemPaths()
# The stub resolver's configuration and the hosts file (resolv.conf(5), hosts(5)).
RESOLV_CONF = Path(_ENGINE.resolv_conf)
HOSTS_FILE = Path(_ENGINE.hosts)
# systemd-resolved writes the real upstream servers here while /etc/resolv.conf points at its stub.
SYSTEMD_RESOLVED_CONF = Path(_ENGINE.resolved_conf)
# Azure's DMI chassis asset tag lives here (checks.discovery.AZURE_ASSET_TAG says what it must read).
DMI_PATH = Path(_ENGINE.dmi_asset_tag)
# A compute instance's key=value identity file (checks.discovery says which keys are read and why).
NBVM_PATH = Path("/mnt/azmnt/.nbvm")
# The instance endpoint of IMDS (learn.microsoft.com/azure/virtual-machines/instance-metadata-service;
# MicrosoftDocs/azure-compute-docs articles/virtual-machines/instance-metadata-service.md).
# 2021-02-01 is in the supported-versions list and has every field checks.discovery reads.
IMDS_URL = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"


def system_paths(env: Mapping[str, str]) -> SystemPaths:
    """The machine's files, each moved by its ``AMLPROBE_*`` variable when that is set and not empty.

    ``nbvm`` and ``imds_url`` stay None unless overridden: their reader (checks.discovery) falls back
    to NBVM_PATH and IMDS_URL.
    """
    return SystemPaths.from_env(env)
