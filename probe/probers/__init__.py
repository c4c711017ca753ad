"""The probers: one module per protocol, each holding its probe and the sentences it reports.

Every prober has the one signature ``ProbeFn``: it reads its target from the spec, uses the run's
context (settings, shared resolver, SSL contexts), and reports through the check's Recorder, whose
deadline it only reads. A prober reads as its protocol: dial, exchange, judge. The map from
protocol to prober is ``probe.registry.PROBERS``, which imports them all, so a prober's module stays
light: what needs a heavy library loads in the import thread when used (``tlscerts``, cryptography).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

from probe.model import CheckResult, CheckSpec
from probe.recorder import Recorder
from probe.transport.context import ProbeContext

ProbeFn: TypeAlias = Callable[[CheckSpec, ProbeContext, Recorder], Awaitable[CheckResult]]
