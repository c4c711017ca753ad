"""Discovery against fixture files and a real loopback IMDS server; 169.254.169.254 is never used."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from checks.discovery import (
    AZURE_ASSET_TAG,
    Discovery,
    discover,
    is_azure_vm,
    parse_imds,
    parse_key_values,
    query_imds,
)
from checks.sources import gather_inputs

# Shape and values from the IMDS doc's /metadata/instance samples (compute trimmed to what matters,
# network from "Sample 6: Retrieve network information"), with a second NIC added.
IMDS_DOC: dict[str, object] = {
    "compute": {
        "azEnvironment": "AzurePublicCloud",
        "location": "westeurope",
        "name": "examplevmname",
        "offer": "UbuntuServer",
        "osType": "Linux",
        "resourceGroupName": "macikgo-test-may-23",
        "resourceId": "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/"
        "macikgo-test-may-23/providers/Microsoft.Compute/virtualMachines/examplevmname",
        "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
        "tags": "baz:bash;foo:bar",
        "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
        "vmSize": "Standard_A3",
        "zone": "",
    },
    "network": {
        "interface": [
            {
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": "10.1.0.4", "publicIpAddress": "20.61.1.2"}],
                    "subnet": [{"address": "10.1.0.0", "prefix": "24"}],
                },
                "ipv6": {"ipAddress": [{"privateIpAddress": "fd00::4"}]},
                "macAddress": "000D3AF806EC",
            },
            {
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": "10.2.0.5", "publicIpAddress": ""}],
                    "subnet": [{"address": "10.2.0.0", "prefix": "24"}],
                },
                "ipv6": {"ipAddress": []},
                "macAddress": "000D3AF806ED",
            },
        ]
    },
}


@dataclass
class FakeImds:
    """A real HTTP server on 127.0.0.1 that answers like IMDS and records every request."""

    url: str = ""
    requests: list[dict[str, object]] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def imds() -> AsyncIterator[FakeImds]:
    fake = FakeImds(body=json.dumps(IMDS_DOC).encode())

    async def handler(request: web.Request) -> web.StreamResponse:
        fake.requests.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers)})
        if fake.hang:
            await fake.release.wait()
        if request.headers.get("Metadata") != "true":
            return web.json_response({"error": "Bad request. Required metadata header not specified"}, status=400)
        return web.Response(body=fake.body, status=fake.status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/metadata/instance", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}/metadata/instance?api-version=2021-02-01"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest.fixture
def azure_dmi(tmp_path: Path) -> Path:
    path = tmp_path / "chassis_asset_tag"
    path.write_text(AZURE_ASSET_TAG + "\n")
    return path


@pytest.fixture
def other_dmi(tmp_path: Path) -> Path:
    path = tmp_path / "other_chassis_asset_tag"
    path.write_text("Default string\n")
    return path


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, Path]:
    """Platform file locations that exist nowhere, so the real /mnt and /etc are never read."""
    return {
        "home": tmp_path / "no-home",
        "nbvm_path": tmp_path / "no-nbvm",
        "ci_mounts_dir": tmp_path / "no-mounts",
        "etc_environment": tmp_path / "no-etc-environment",
    }


def test_is_azure_vm_matches_only_the_azure_tag(azure_dmi: Path, other_dmi: Path, tmp_path: Path) -> None:
    assert is_azure_vm(azure_dmi)
    assert not is_azure_vm(other_dmi)
    assert not is_azure_vm(tmp_path / "missing")
    near_miss = tmp_path / "near"
    near_miss.write_text(AZURE_ASSET_TAG[:-1] + "8\n")
    assert not is_azure_vm(near_miss)


async def test_query_imds_reads_the_documented_fields(imds: FakeImds) -> None:
    facts = await query_imds(imds.url, timeout=1.0)
    assert facts is not None
    assert facts.region == "westeurope"
    assert facts.subscription_id == "8d10da13-8125-4ba9-a717-bf7490507b3d"
    assert facts.resource_group == "macikgo-test-may-23"
    assert facts.vm_name == "examplevmname"
    assert facts.cloud == "public"
    assert facts.private_ips == ("10.1.0.4", "fd00::4", "10.2.0.5")
    assert facts.public_ips == ("20.61.1.2",)
    (req,) = imds.requests
    assert req["headers"]["Metadata"] == "true"  # type: ignore[index]
    assert req["query"] == {"api-version": "2021-02-01"}
    assert "X-Forwarded-For" not in req["headers"]  # type: ignore[operator]


async def test_query_imds_never_uses_a_proxy(imds: FakeImds, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that refuses everything: reaching IMDS proves the request went direct.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    facts = await query_imds(imds.url, timeout=1.0)
    assert facts is not None and facts.region == "westeurope"
    assert len(imds.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"error": "Not found"}', "HTTP 404"),
        (200, b"<html>captive portal</html>", "not JSON"),
        (200, b'{"network": {}}', "no 'compute' object"),
    ],
)
async def test_query_imds_failures_become_none_with_a_reason(
    imds: FakeImds, status: int, body: bytes, expected: str
) -> None:
    imds.status, imds.body = status, body
    errors: list[str] = []
    assert await query_imds(imds.url, timeout=1.0, errors=errors) is None
    assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0]


async def test_query_imds_is_bounded(imds: FakeImds) -> None:
    imds.hang = True
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await query_imds(imds.url, timeout=0.3, errors=errors) is None
    assert loop.time() - t0 < 2.0
    assert errors == [f"IMDS {imds.url}: no answer within 0.3s"]


async def test_query_imds_refused_port() -> None:
    errors: list[str] = []
    assert await query_imds("http://127.0.0.1:9/metadata/instance", timeout=0.5, errors=errors) is None
    assert errors and errors[0].startswith("IMDS http://127.0.0.1:9/metadata/instance: ")


async def _raw_imds(answer: bytes, *, then_hang: bool = False) -> tuple[asyncio.Server, str]:
    """A loopback peer that reads the request head, sends ``answer`` and closes (or keeps silent)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if then_hang:
                await asyncio.sleep(5)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/metadata/instance?api-version=2021-02-01"


def _chunked(data: bytes, size: int = 100) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


async def test_query_imds_reads_a_chunked_answer() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    server, url = await _raw_imds(head + _chunked(json.dumps(IMDS_DOC).encode()))
    async with server:
        facts = await query_imds(url, timeout=1.0)
    assert facts is not None and facts.region == "westeurope" and facts.vm_name == "examplevmname"


@pytest.mark.parametrize(
    ("answer", "then_hang", "expected"),
    [
        (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n", False, "HTTP 302"),
        (b"", False, "closed without answering"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", False, "not an HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + b" " * 2_000_000, False, "larger than 1 MiB"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{", True, "no answer within 0.3s"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n", False, "cut off"),
    ],
)
async def test_query_imds_odd_answers_become_none_with_a_reason(answer: bytes, then_hang: bool, expected: str) -> None:
    server, url = await _raw_imds(answer, then_hang=then_hang)
    errors: list[str] = []
    async with server:
        assert await query_imds(url, timeout=0.3, errors=errors) is None
    assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0], errors


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/metadata", "http://127.0.0.1:9/a b", "http://127.0.0.1:99999/"])
async def test_query_imds_refuses_urls_it_cannot_ask(url: str) -> None:
    errors: list[str] = []
    assert await query_imds(url, timeout=0.3, errors=errors) is None
    assert len(errors) == 1 and errors[0].startswith(f"IMDS {url}: "), errors


def test_parse_imds_tolerates_missing_network() -> None:
    doc = copy.deepcopy(IMDS_DOC)
    del doc["network"]
    facts = parse_imds(doc)
    assert facts.region == "westeurope" and facts.private_ips == ()
    with pytest.raises(ValueError, match="compute"):
        parse_imds(["not", "a", "document"])


async def test_non_azure_dmi_sends_no_request_at_all(imds: FakeImds, other_dmi: Path, nowhere: dict[str, Path]) -> None:
    found = await discover({}, dmi_path=other_dmi, imds_url=imds.url, **nowhere)  # type: ignore[arg-type]
    assert not found.azure_vm
    assert found.imds is None
    assert imds.requests == []


async def test_env_overrides_point_discovery_at_fixtures(
    imds: FakeImds, azure_dmi: Path, nowhere: dict[str, Path]
) -> None:
    env = {"AMLPROBE_DMI_PATH": str(azure_dmi), "AMLPROBE_IMDS_URL": imds.url}
    found = await discover(env, imds_timeout=1.0, **nowhere)  # type: ignore[arg-type]
    assert found.azure_vm
    assert found.imds is not None and found.imds.region == "westeurope"
    assert len(imds.requests) == 1
    assert found.aml_compute is None
    assert json.loads(json.dumps(found.model_dump(mode="json")))["imds"]["vm_name"] == "examplevmname"


async def test_explicit_paths_win_over_env_overrides(
    imds: FakeImds, other_dmi: Path, azure_dmi: Path, nowhere: dict[str, Path]
) -> None:
    env = {"AMLPROBE_DMI_PATH": str(azure_dmi), "AMLPROBE_IMDS_URL": imds.url}
    found = await discover(env, dmi_path=other_dmi, **nowhere)  # type: ignore[arg-type]
    assert not found.azure_vm and imds.requests == []


async def test_unreachable_imds_is_recorded_not_raised(azure_dmi: Path, nowhere: dict[str, Path]) -> None:
    found = await discover(
        {},
        dmi_path=azure_dmi,
        imds_url="http://127.0.0.1:9/metadata/instance?api-version=2021-02-01",
        imds_timeout=0.5,
        **nowhere,
    )
    assert found.azure_vm and found.imds is None
    assert len(found.errors) == 1 and found.errors[0].startswith("IMDS http://127.0.0.1:9/")


async def test_compute_instance_env_vars(other_dmi: Path, nowhere: dict[str, Path]) -> None:
    env = {
        "CI_NAME": "ci-alice",
        "CI_WORKSPACE": "ws-ml",
        "CI_RESOURCE_GROUP": "rg-ml",
        "CI_LOCAL_UBUNTU_USER": "azureuser",
    }
    found = await discover(env, dmi_path=other_dmi, **nowhere)  # type: ignore[arg-type]
    assert found.aml_compute == "compute-instance"
    assert found.values == {"instance_name": "ci-alice", "workspace_name": "ws-ml", "resource_group": "rg-ml"}
    assert found.sources == {
        "instance_name": "discovered:env CI_NAME",
        "workspace_name": "discovered:env CI_WORKSPACE",
        "resource_group": "discovered:env CI_RESOURCE_GROUP",
    }


async def test_nbvm_file_names_the_instance(other_dmi: Path, nowhere: dict[str, Path], tmp_path: Path) -> None:
    nbvm = tmp_path / ".nbvm"
    nbvm.write_text("instance=ci-bob\ndomainsuffix=westeurope.instances.azureml.ms\nunrelated=x\n")
    found = await discover({}, dmi_path=other_dmi, **{**nowhere, "nbvm_path": nbvm})  # type: ignore[arg-type]
    assert found.aml_compute == "compute-instance"
    # The suffix names the instance's one real host name, so it becomes an input too.
    assert found.values == {"instance_name": "ci-bob", "instance_domain_suffix": "westeurope.instances.azureml.ms"}
    assert found.sources == {
        "instance_name": f"discovered:{nbvm}",
        "instance_domain_suffix": f"discovered:{nbvm}",
    }
    assert found.ci_domain_suffix == "westeurope.instances.azureml.ms"

    # The environment is the stronger of the two.
    found = await discover({"CI_NAME": "ci-env"}, dmi_path=other_dmi, **{**nowhere, "nbvm_path": nbvm})  # type: ignore[arg-type]
    assert found.values["instance_name"] == "ci-env"


async def test_nbvm_path_from_the_environment(other_dmi: Path, nowhere: dict[str, Path], tmp_path: Path) -> None:
    # AMLPROBE_NBVM_PATH (as AMLPROBE_DMI_PATH) lets the lab hand the agent an instance's .nbvm.
    nbvm = tmp_path / "nbvm"
    nbvm.write_text("instance=ci-lab\ndomainsuffix=eastus.instances.ml.azure.ms\n")
    where = {k: v for k, v in nowhere.items() if k != "nbvm_path"}
    found = await discover({"AMLPROBE_NBVM_PATH": str(nbvm)}, dmi_path=other_dmi, **where)  # type: ignore[arg-type]
    assert found.values["instance_domain_suffix"] == "eastus.instances.ml.azure.ms"
    inputs = gather_inputs(flags={}, config_path=None, env={}, config_json_paths=[], discovery=found)
    assert inputs.instance_domain_suffix == "eastus.instances.ml.azure.ms"
    assert inputs.sources["instance_domain_suffix"] == f"discovered:{nbvm}"


async def test_job_environment(other_dmi: Path, nowhere: dict[str, Path]) -> None:
    env = {
        "AZUREML_ARM_SUBSCRIPTION": "8d10da13-8125-4ba9-a717-bf7490507b3d",
        "AZUREML_ARM_RESOURCEGROUP": "rg-ml",
        "AZUREML_ARM_WORKSPACE_NAME": "ws-ml",
        "AZUREML_WORKSPACE_ID": "11111111-2222-3333-4444-555555555555",
        "AZUREML_SERVICE_ENDPOINT": "https://northeurope.api.azureml.ms",
    }
    found = await discover(env, dmi_path=other_dmi, **nowhere)  # type: ignore[arg-type]
    assert found.aml_compute == "job"
    assert found.values == {
        "subscription_id": "8d10da13-8125-4ba9-a717-bf7490507b3d",
        "resource_group": "rg-ml",
        "workspace_name": "ws-ml",
        "workspace_id": "11111111-2222-3333-4444-555555555555",
        "region": "northeurope",
    }
    assert found.sources["region"] == "discovered:env AZUREML_SERVICE_ENDPOINT"
    # An endpoint not of the "<region>.api.<domain>" shape gives no region.
    env["AZUREML_SERVICE_ENDPOINT"] = "https://11111111.workspace.northeurope.api.azureml.ms"
    found = await discover(env, dmi_path=other_dmi, **nowhere)  # type: ignore[arg-type]
    assert "region" not in found.values


async def test_etc_environment_and_mount_fallbacks(other_dmi: Path, nowhere: dict[str, Path], tmp_path: Path) -> None:
    etc = tmp_path / "environment"
    etc.write_text('PATH="/usr/bin"\nCI_WORKSPACE="ws-etc"\nCI_RESOURCE_GROUP=rg-etc\n')
    mounts = tmp_path / "clusters"
    (mounts / "ci-mounted").mkdir(parents=True)
    found = await discover(
        {"CI_RESOURCE_GROUP": "rg-env"},
        dmi_path=other_dmi,
        **{**nowhere, "etc_environment": etc, "ci_mounts_dir": mounts},  # type: ignore[arg-type]
    )
    assert found.values == {"resource_group": "rg-env", "workspace_name": "ws-etc", "instance_name": "ci-mounted"}
    assert found.sources["workspace_name"] == f"discovered:{etc} CI_WORKSPACE"
    assert found.sources["instance_name"] == f"discovered:{mounts}"

    # Two clusters mounted: ambiguous, so no name.
    (mounts / "ci-other").mkdir()
    found = await discover({}, dmi_path=other_dmi, **{**nowhere, "ci_mounts_dir": mounts})  # type: ignore[arg-type]
    assert "instance_name" not in found.values and found.aml_compute is None


async def test_cloudfiles_marks_a_compute_instance(other_dmi: Path, nowhere: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "azureuser"
    (home / "cloudfiles" / "code").mkdir(parents=True)
    found = await discover({}, dmi_path=other_dmi, **{**nowhere, "home": home})  # type: ignore[arg-type]
    assert found.aml_compute == "compute-instance" and found.values == {}


def test_parse_key_values() -> None:
    text = "# comment\nexport A=1\nB = 'two'\nnot a pair\nC=\"x=y\"\n"
    assert parse_key_values(text) == {"A": "1", "B": "two", "C": "x=y"}


def test_discovery_set_keeps_the_first_value() -> None:
    d = Discovery()
    d.set("region", "eastus", "first")
    d.set("region", "westus", "second")
    d.set("workspace_name", "  ", "blank")
    assert d.values == {"region": "eastus"} and d.sources == {"region": "discovered:first"}


async def test_asking_imds_loads_no_http_client(imds: FakeImds, azure_dmi: Path, tmp_path: Path) -> None:
    # Every check on an Azure VM asks IMDS before it plans: aiohttp's import (~95 ms) is not on that path.
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from checks.discovery import discover\n"
        f"env = {{'AMLPROBE_DMI_PATH': {str(azure_dmi)!r}, 'AMLPROBE_IMDS_URL': {imds.url!r}}}\n"
        "keys = ('home', 'nbvm_path', 'ci_mounts_dir', 'etc_environment')\n"
        f"nowhere = {{k: Path({str(tmp_path)!r}) / ('no-' + k) for k in keys}}\n"
        "found = asyncio.run(discover(env, imds_timeout=2.0, **nowhere))\n"
        "print(found.imds is not None and found.imds.region, 'aiohttp' in sys.modules)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().split() == ["westeurope", "False"]
    assert len(imds.requests) == 1
