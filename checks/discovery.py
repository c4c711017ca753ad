"""What the machine itself says about the workspace: Azure ML compute markers, DMI and IMDS.

Every name read here comes from a public source, cited where it is used. Anything that could not be
confirmed (for example which keys ``/mnt/azmnt/.nbvm`` holds beyond ``instance`` and
``domainsuffix``) is deliberately not read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from checks.paths import DMI_PATH, IMDS_URL, NBVM_PATH, system_paths
from probe.files import read_text

# asyncio (and the engine's HTTP/1 reader, which needs it) load only when IMDS is asked: `plan` never
# does and needs no event loop (tests/probe/test_startup.py).
if TYPE_CHECKING:
    from probe.deadline import Deadline

# Azure's DMI chassis asset tag ("MSFT AZURE VM" in decimal ASCII). The same constant identifies
# Azure in cloud-init (cloudinit/sources/azure/identity.py, ChassisAssetTag.AZURE_CLOUD) and in
# Microsoft's Update Management troubleshooting doc ("Dmidecode check").
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
# IMDS answers with a few KiB; anything far larger is not IMDS.
_IMDS_MAX_BYTES = 1 << 20

# A compute instance's key=value identity file (checks.paths.NBVM_PATH, /mnt/azmnt/.nbvm). Microsoft's
# own code treats its presence as "this is a compute instance" and reads ``instance`` and
# ``domainsuffix`` from it, building the instance's URL as https://<instance>-<port>.<domainsuffix>
# (microsoft/responsible-ai-toolbox rai_core_flask/rai_core_flask/environments/azure_nb_environment.py;
# azureml-core's authentication.py and its "This is not a compute instance." check use the same path).

# Setup scripts on a compute instance "can use the following environment variables":
# CI_RESOURCE_GROUP, CI_WORKSPACE, CI_NAME, CI_LOCAL_UBUNTU_USER
# (MicrosoftDocs/azure-ai-docs articles/machine-learning/how-to-customize-compute-instance.md).
# how-to-r-deploy-an-r-model.md uses $CI_RESOURCE_GROUP and $CI_WORKSPACE in a CI terminal as-is.
CI_ENV_FIELDS = {
    "CI_NAME": "instance_name",
    "CI_WORKSPACE": "workspace_name",
    "CI_RESOURCE_GROUP": "resource_group",
}

# Set inside Azure ML jobs (compute clusters, serverless, or a job on a CI). Not in the Learn docs;
# read by Microsoft's azureml-core to rebuild the run's workspace
# (azureml.data.context_managers._CommonContextManager._get_workspace), which also takes the region
# from the first label of AZUREML_SERVICE_ENDPOINT's host.
JOB_ENV_FIELDS = {
    "AZUREML_ARM_SUBSCRIPTION": "subscription_id",
    "AZUREML_ARM_RESOURCEGROUP": "resource_group",
    "AZUREML_ARM_WORKSPACE_NAME": "workspace_name",
    "AZUREML_WORKSPACE_ID": "workspace_id",
}
JOB_SERVICE_ENDPOINT_ENV = "AZUREML_SERVICE_ENDPOINT"

# how-to-customize-compute-instance.md: an inline setup script runs in
# /mnt/batch/tasks/shared/LS_root/mounts/clusters/<ciname>/code/Users, and an uploaded one in
# /home/azureuser/cloudfiles/code/Users/<user>.
CI_MOUNTS_DIR = Path("/mnt/batch/tasks/shared/LS_root/mounts/clusters")
CI_HOME = Path("/home/azureuser")

# The system-wide environment file: CI_* may be missing from our own environment when we run
# under sudo or systemd. Whether the CI writes them there is not documented, so it is only a
# fallback for the same documented names.
ETC_ENVIRONMENT = Path("/etc/environment")

# compute.azEnvironment values (instance-metadata-service.md, "Sample 5"); IMDS's own samples
# differ in case ("AZUREPUBLICCLOUD" vs "AzurePublicCloud").
_AZ_ENVIRONMENT_CLOUD = {
    "azurepubliccloud": "public",
    "azureusgovernmentcloud": "usgov",
    "azurechinacloud": "china",
}

_SMALL_FILE_BYTES = 64 * 1024


class ImdsFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    vm_name: str | None = None
    az_environment: str | None = None
    private_ips: tuple[str, ...] = ()
    public_ips: tuple[str, ...] = ()

    @property
    def cloud(self) -> str | None:
        if not self.az_environment:
            return None
        return _AZ_ENVIRONMENT_CLOUD.get(self.az_environment.lower())


class Discovery(BaseModel):
    """Values found on this machine, keyed by Inputs field, each with its ``discovered:`` source.

    The report's ``environment["discovery"]`` is its JSON dump.
    """

    model_config = ConfigDict(extra="forbid")

    azure_vm: bool = False
    # "compute-instance", "job", or None when no Azure ML compute marker was found. On Azure ML
    # compute the VM lives in a Microsoft-managed Batch subscription, so IMDS's subscription and
    # resource group are not the workspace's ("The Batch account is in a Microsoft subscription":
    # concept-secure-network-traffic-flow, docs/sources.md S5).
    aml_compute: str | None = None
    # The compute instance's DNS suffix from .nbvm (``<instance>.<suffix>`` is its host name).
    ci_domain_suffix: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    imds: ImdsFacts | None = None
    errors: list[str] = Field(default_factory=list)

    def set(self, name: str, value: str | None, source: str) -> None:
        """Record ``value`` unless an earlier (stronger) discovery source already gave one."""
        if value and value.strip() and name not in self.values:
            self.values[name] = value.strip()
            self.sources[name] = f"discovered:{source}"


def _read_small(path: Path) -> str:
    return read_text(path, _SMALL_FILE_BYTES)


def is_azure_vm(dmi_path: Path = DMI_PATH) -> bool:
    """True iff the DMI chassis asset tag is Azure's; an unreadable file means not Azure."""
    try:
        return _read_small(dmi_path).strip() == AZURE_ASSET_TAG
    except OSError:
        return False


def _text(value: object) -> str | None:
    # IMDS reports every primitive as a string and absent values as "".
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_imds(doc: object) -> ImdsFacts:
    """The facts amlprobe needs from an /metadata/instance document; ValueError if it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("compute"), dict):
        raise ValueError("not an IMDS instance document (no 'compute' object)")
    compute: dict[str, Any] = doc["compute"]
    private: list[str] = []
    public: list[str] = []
    network = doc.get("network")
    interfaces = network.get("interface") if isinstance(network, dict) else None
    for nic in interfaces if isinstance(interfaces, list) else []:
        if not isinstance(nic, dict):
            continue
        for family in ("ipv4", "ipv6"):
            block = nic.get(family)
            addresses = block.get("ipAddress") if isinstance(block, dict) else None
            for entry in addresses if isinstance(addresses, list) else []:
                if not isinstance(entry, dict):
                    continue
                if (ip := _text(entry.get("privateIpAddress"))) and ip not in private:
                    private.append(ip)
                if (ip := _text(entry.get("publicIpAddress"))) and ip not in public:
                    public.append(ip)
    return ImdsFacts(
        region=_text(compute.get("location")),
        subscription_id=_text(compute.get("subscriptionId")),
        resource_group=_text(compute.get("resourceGroupName")),
        vm_name=_text(compute.get("name")),
        az_environment=_text(compute.get("azEnvironment")),
        private_ips=tuple(private),
        public_ips=tuple(public),
    )


def _imds_request(url: str) -> tuple[str, int, bytes]:
    """(host, port, request) for a GET of ``url`` with IMDS's required ``Metadata: true`` header."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or any(c in url for c in " \t\r\n"):
        raise ValueError("not an http:// URL")
    host, port = parts.hostname, parts.port or 80  # .port raises ValueError for a bad one
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = f"[{host}]" if ":" in host else host
    if port != 80:
        authority += f":{port}"
    head = f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nMetadata: true\r\nAccept: application/json\r\n"
    return host, port, (head + "Connection: close\r\n\r\n").encode("ascii")


async def _fetch_imds(url: str, deadline: Deadline) -> ImdsFacts:
    """One plain HTTP/1.1 GET, straight to IMDS: never through a proxy (instance-metadata-service.md,
    "Proxies"), and without an HTTP client library (aiohttp's import alone costs about 95 ms, on the way
    to every check on an Azure VM). The engine's HTTP/1 reader parses the answer, bounded."""
    import asyncio  # noqa: PLC0415 - only when IMDS is asked (start-up of `plan`)

    from probe.transport.http1 import read_body, read_response_head  # noqa: PLC0415 - likewise

    host, port, request = _imds_request(url)
    reader, writer = await deadline.within(asyncio.open_connection(host, port))
    try:
        writer.write(request)
        await deadline.within(writer.drain())
        head, rest = await read_response_head(reader, deadline)
        if head.status != 200:
            raise ValueError(f"IMDS answered HTTP {head.status}")
        body, more = await read_body(reader, head, rest, deadline, limit=_IMDS_MAX_BYTES + 1)
    finally:
        writer.close()
    if len(body) > _IMDS_MAX_BYTES:
        raise ValueError("IMDS answer is larger than 1 MiB")
    if more:  # the body stopped short: the deadline passed, or a chunk was malformed
        if deadline.remaining() <= 0:
            raise TimeoutError
        raise ValueError("IMDS answer was cut off")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"IMDS answer is not JSON: {exc}") from None
    return parse_imds(doc)


async def query_imds(url: str = IMDS_URL, timeout: float = 2.0, *, errors: list[str] | None = None) -> ImdsFacts | None:
    """Ask IMDS for this VM's facts; None on any failure (its one-line reason appended to ``errors``)."""
    import asyncio  # noqa: PLC0415 - only when IMDS is asked (start-up of `plan`)

    from probe.deadline import Deadline  # noqa: PLC0415 - likewise
    from probe.errors import ProbeFailure  # noqa: PLC0415 - likewise

    try:
        deadline = Deadline.after(timeout)
        return await deadline.within(_fetch_imds(url, deadline))
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        reason = f"no answer within {timeout:g}s"
    except (OSError, ValueError, EOFError, ProbeFailure) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
    if errors is not None:
        errors.append(f"IMDS {url}: {reason}")
    return None


def parse_key_values(text: str) -> dict[str, str]:
    """``KEY=value`` lines (comments, blanks and surrounding quotes ignored), as in .nbvm and /etc/environment."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        out[key] = value.strip().strip("'\"")
    return out


def _region_from_service_endpoint(url: str) -> str | None:
    # e.g. https://eastus.api.azureml.ms: only the "<region>.api.<domain>" shape is trusted.
    try:
        host = urlsplit(url if "://" in url else f"https://{url}").hostname or ""
    except ValueError:
        return None
    labels = host.split(".")
    if len(labels) >= 3 and labels[1] == "api" and labels[0]:
        return labels[0]
    return None


def _single_subdirectory(path: Path) -> str | None:
    try:
        names = [p.name for p in path.iterdir() if p.is_dir()]
    except OSError:
        return None
    return names[0] if len(names) == 1 else None


async def discover(
    env: Mapping[str, str],
    *,
    dmi_path: Path | None = None,
    imds_url: str | None = None,
    home: Path = CI_HOME,
    nbvm_path: Path | None = None,
    ci_mounts_dir: Path = CI_MOUNTS_DIR,
    etc_environment: Path = ETC_ENVIRONMENT,
    imds_timeout: float = 2.0,
    use_imds: bool = True,
) -> Discovery:
    """Collect what this machine says about its workspace. Never raises for missing or odd files.

    ``dmi_path``, ``imds_url`` and ``nbvm_path`` default to the machine's (probe.system.SystemPaths
    through checks.paths: the real locations, or the lab's through AMLPROBE_DMI_PATH, AMLPROBE_IMDS_URL,
    AMLPROBE_NBVM_PATH). IMDS is only asked when the DMI tag says this is an Azure VM, and ``use_imds`` is
    true (``amlprobe plan`` promises not to touch the network).
    """
    found = Discovery()
    paths = system_paths(env)

    # Strongest first: the process environment, then files written by the platform.
    for name, field_name in CI_ENV_FIELDS.items():
        if env.get(name, "").strip():
            found.aml_compute = "compute-instance"
            found.set(field_name, env[name], f"env {name}")
    for name, field_name in JOB_ENV_FIELDS.items():
        if env.get(name, "").strip():
            found.aml_compute = found.aml_compute or "job"
            found.set(field_name, env[name], f"env {name}")
    if endpoint := env.get(JOB_SERVICE_ENDPOINT_ENV, "").strip():
        found.aml_compute = found.aml_compute or "job"
        found.set("region", _region_from_service_endpoint(endpoint), f"env {JOB_SERVICE_ENDPOINT_ENV}")

    nbvm_path = nbvm_path or Path(paths.nbvm or NBVM_PATH)
    try:
        nbvm = parse_key_values(_read_small(nbvm_path))
    except FileNotFoundError:
        nbvm = None
    except OSError as exc:
        nbvm = None
        found.errors.append(f"{nbvm_path}: {exc.strerror or exc}")
    if nbvm is not None:
        found.aml_compute = "compute-instance"
        found.set("instance_name", nbvm.get("instance"), str(nbvm_path))
        found.ci_domain_suffix = nbvm.get("domainsuffix") or None
        # The suffix names the one real compute-instance host (<instance>.<suffix>); Microsoft's own
        # code builds the instance's URLs from it (responsible-ai-toolbox azure_nb_environment.py).
        found.set("instance_domain_suffix", found.ci_domain_suffix, str(nbvm_path))

    try:
        system_env = parse_key_values(_read_small(etc_environment))
    except OSError:
        system_env = {}
    for name, field_name in CI_ENV_FIELDS.items():
        if system_env.get(name):
            found.aml_compute = "compute-instance"
            found.set(field_name, system_env[name], f"{etc_environment} {name}")

    if ci_name := _single_subdirectory(ci_mounts_dir):
        found.aml_compute = "compute-instance"
        found.set("instance_name", ci_name, str(ci_mounts_dir))
    if found.aml_compute is None and (home / "cloudfiles" / "code").is_dir():
        found.aml_compute = "compute-instance"

    found.azure_vm = is_azure_vm(dmi_path or Path(paths.dmi_asset_tag))
    if found.azure_vm and use_imds:
        url = imds_url or paths.imds_url or IMDS_URL
        found.imds = await query_imds(url, imds_timeout, errors=found.errors)
    return found
