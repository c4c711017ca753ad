"""Protocol name -> prober. Every prober has the one signature ``ProbeFn``."""

from __future__ import annotations

import importlib

from probe.context import ProbeFn
from probe.model import Protocol

# module, function: imported on first use so `amlprobe schema` and `plan` stay fast.
_PROBERS: dict[Protocol, tuple[str, str]] = {
    Protocol.DNS: ("probe.dns", "probe_dns"),
    Protocol.TCP: ("probe.tcp", "probe_tcp"),
    Protocol.TLS: ("probe.tls", "probe_tls"),
    Protocol.UDP: ("probe.udp", "probe_udp"),
    Protocol.SMB: ("probe.smb", "probe_smb"),
    Protocol.WEBSOCKET: ("probe.websocket", "probe_websocket"),
    Protocol.HTTP: ("probe.http", "probe_http"),
}


def prober_for(protocol: Protocol) -> ProbeFn:
    module, name = _PROBERS[protocol]
    fn: ProbeFn = getattr(importlib.import_module(module), name)
    return fn
