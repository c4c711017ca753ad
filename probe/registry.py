"""Protocol -> prober: the one list of probers, as function values (blackbox_exporter's ``Probers``).

Adding a prober is its module under probe/probers/, one line here, and its test. Importing this
module imports every prober and their libraries (dnspython, cryptography): the runner loads it in
the import thread (probe.importer) while the first probes start, and no command that does not probe
imports it (`amlprobe plan`, `schema`, `--version`; tests/probe/test_startup.py).
"""

from __future__ import annotations

from probe.model import Protocol
from probe.probers import ProbeFn
from probe.probers.dns import probe_dns
from probe.probers.http import probe_http
from probe.probers.smb import probe_smb
from probe.probers.tcp import probe_tcp
from probe.probers.tls import probe_tls
from probe.probers.udp import probe_udp
from probe.probers.websocket import probe_websocket

PROBERS: dict[Protocol, ProbeFn] = {
    Protocol.DNS: probe_dns,
    Protocol.TCP: probe_tcp,
    Protocol.TLS: probe_tls,
    Protocol.UDP: probe_udp,
    Protocol.SMB: probe_smb,
    Protocol.WEBSOCKET: probe_websocket,
    Protocol.HTTP: probe_http,
}
