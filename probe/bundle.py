"""The evidence bundle for a support ticket: the report plus the machine's network facts, redacted.

Every member goes through ``probe.redact`` before it is packed; REDACTIONS.txt says what was
removed (kind, member, line), never the value. The tarball is written atomically and readable by
its owner only: even redacted, it describes the network.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from typing import TYPE_CHECKING, Any

import psutil

from probe import __version__
from probe.atomic import write_atomic
from probe.files import MAX_CONFIG_BYTES, read_text
from probe.formats import FORMATS, RenderOptions
from probe.model import Report
from probe.redact import redact_text
from probe.style import GENERIC, ReportStyle
from probe.system import SystemPaths

if TYPE_CHECKING:
    from probe.execution import PlannedRun

COMMAND_TIMEOUT = 3.0
IP_COMMANDS = (
    ("route", "show", "table", "all"),
    ("-6", "route", "show", "table", "all"),
    ("rule", "show"),
    ("-6", "rule", "show"),
    ("address", "show"),
)
# Variables that change how this machine connects: proxies, trust stores and amlprobe's own settings,
# plus what the planning layer names (ReportStyle.bundle_env: its platform's agents and identities).
# Anything else in the environment stays out of the bundle.
_ENV_NAMES = (
    r".*proxy.*|SSL_CERT_(?:FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|AMLPROBE_.*|LANG|LC_ALL|TZ"
)
_DEPENDENCIES = ("aiohttp", "dnspython", "pydantic", "psutil", "cryptography", "asyncio-dgram")


def default_bundle_path(hostname: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9.-]", "_", hostname) or "host"
    return f"amlprobe-bundle-{host}-{stamp}.tar.gz"


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        return f"(no answer within {COMMAND_TIMEOUT:g} s)\n"
    except OSError as exc:
        return f"(could not run: {exc.strerror or exc})\n"
    text = out.stdout + (out.stderr if out.returncode else "")
    return text if out.returncode == 0 else f"{text}(exit status {out.returncode})\n"


def routes_text() -> str:
    ip = shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.access(p, os.X_OK)), None)
    if ip is None:
        return "The ip command (iproute2) is not installed: no routes collected.\n"
    sections = []
    for args in IP_COMMANDS:
        sections.append(f"$ ip {' '.join(args)}\n{_run([ip, *args])}")
    return "\n".join(sections)


def listening_sockets() -> dict[str, Any]:
    """TCP listeners and bound UDP sockets, with the owning process when visible."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError) as exc:
        return {"error": f"not collected: {type(exc).__name__}: {exc}", "sockets": []}
    rows = []
    for c in conns:
        tcp = c.type == socket.SOCK_STREAM
        if (tcp and c.status != psutil.CONN_LISTEN) or (not tcp and c.raddr):
            continue
        name = None
        if c.pid:
            try:
                name = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):
                name = None
        rows.append(
            {
                "protocol": "tcp" if tcp else "udp",
                "family": "ipv6" if c.family == socket.AF_INET6 else "ipv4",
                "address": c.laddr.ip if c.laddr else None,
                "port": c.laddr.port if c.laddr else None,
                "pid": c.pid,
                "process": name,
            }
        )
    rows.sort(key=lambda r: (r["protocol"], r["port"] or 0, r["address"] or ""))
    return {"sockets": rows}


def environ_text(env: Mapping[str, str], extra: str = "") -> str:
    names = re.compile(f"(?i)^(?:{_ENV_NAMES}{'|' + extra if extra else ''})$")
    lines = [f"{k}={v.replace(chr(10), chr(92) + 'n')}" for k, v in sorted(env.items()) if names.match(k)]
    head = "# The environment variables that affect connections (others are left out).\n"
    return head + "".join(line + "\n" for line in lines)


def version_text() -> str:
    lines = [f"amlprobe {__version__}", f"python {platform.python_version()} ({platform.python_implementation()})"]
    lines.append(f"platform {platform.platform()}")
    for dist in _DEPENDENCIES:
        try:
            lines.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{dist} (not installed)")
    return "\n".join(lines) + "\n"


def _read(path: str) -> str:
    try:
        return read_text(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        return f"(could not read {path}: {exc.strerror or exc})\n"


def plan_document(planned: PlannedRun) -> dict[str, Any]:
    """What the run set out to do: the checks it probed and the ones it skipped without probing."""
    return {
        "checks": [s.model_dump(mode="json") for s in planned.specs],
        "skipped": [
            {"id": r.id, "target": r.target.model_dump(mode="json"), "reason": r.reason.value, "detail": r.detail}
            for r in planned.preset
        ],
    }


def collect_members(
    report: Report,
    planned: PlannedRun,
    *,
    env: Mapping[str, str],
    paths: SystemPaths,
    style: ReportStyle = GENERIC,
) -> dict[str, str]:
    """The bundle's files, before redaction, in the order they are packed."""
    options = RenderOptions(style=style)
    return {
        "report.json": FORMATS["json"](report, options),
        "report.txt": FORMATS["table"](report, options),
        "plan.json": json.dumps(plan_document(planned), indent=2) + "\n",
        "environment.json": json.dumps(report.environment, indent=2, default=str) + "\n",
        "environ.txt": environ_text(env, style.bundle_env),
        "resolv.conf": _read(paths.resolv_conf),
        "routes.txt": routes_text(),
        "listening.json": json.dumps(listening_sockets(), indent=2) + "\n",
        "version.txt": version_text(),
    }


def redact_members(members: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Redact every member; return them plus one line per redaction, ``member: kind at line N``."""
    clean: dict[str, str] = {}
    found: list[str] = []
    for name, text in members.items():
        clean[name], hits = redact_text(text)
        found += [f"{name}: {hit}" for hit in hits]
    return clean, found


def redactions_text(found: list[str]) -> str:
    head = (
        "amlprobe replaced these secrets with <redacted:KIND> before packing this bundle.\n"
        "The values are not in the bundle; each line says where one was.\n\n"
    )
    return head + ("".join(f"{line}\n" for line in found) if found else "Nothing was redacted.\n")


def pack(members: Mapping[str, str], folder: str) -> bytes:
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = len(data), int(now), 0o644
            info.uname = info.gname = "amlprobe"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_bundle(
    path: str,
    report: Report,
    planned: PlannedRun,
    *,
    env: Mapping[str, str],
    paths: SystemPaths,
    style: ReportStyle = GENERIC,
) -> list[str]:
    """Collect, redact, pack and atomically write the bundle; return what was redacted. Raises OSError."""
    members, found = redact_members(collect_members(report, planned, env=env, paths=paths, style=style))
    members["REDACTIONS.txt"] = redactions_text(found)
    folder = os.path.basename(path)
    for suffix in (".tar.gz", ".tgz"):
        folder = folder.removesuffix(suffix)
    write_atomic(path, pack(members, folder or "amlprobe-bundle"), mode=0o600)
    return found
