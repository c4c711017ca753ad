"""What every prober receives besides its target and its record: plain data, built once per run."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.rtt import RttBook
from probe.settings import ProbeSettings
from probe.transport.resolve import SharedResolver
from probe.transport.tlsconfig import TlsContexts


@dataclass
class ProbeContext:
    settings: ProbeSettings
    # One lookup per name, shared by every probe of the run.
    resolver: SharedResolver
    # Round trips measured so far in this run (TCP connects); the UDP prober derives its wait from them.
    rtt: RttBook = field(default_factory=RttBook)
    # The run's SSL contexts (verifying, and not), built on first use from ``settings``.
    tls: TlsContexts = field(init=False)

    def __post_init__(self) -> None:
        self.tls = TlsContexts(self.settings)
