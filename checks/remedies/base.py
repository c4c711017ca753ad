"""What every remedy shares: the context it may fill in, and quoting for the shell that runs it.

Values the agent cannot know from inside the VM (NSG name, VNet name) stay as <placeholders>;
what it knows (resource group, region, the forwarder zones of the plan) is filled in.

Every value is shell-quoted where it is inserted (``quote``), even though checks.validate already
holds it to Azure's naming rules: a command is pasted into a shell, and a value that slipped
through must arrive as one literal argument, never as a command. A <placeholder> stays bare:
pasted unchanged, the shell refuses the redirection and runs nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from probe.sanitize import escape_controls

_PLACEHOLDER = re.compile(r"<[a-z][a-z-]*>")


@dataclass(frozen=True)
class RemedyContext:
    """What a remedy may fill in; anything unknown prints as its <placeholder>.

    Built from validated inputs and the plan (checks.diagnosis.base.Evidence.remedies); ``PLACEHOLDERS``
    knows nothing, which is how docs/troubleshooting.md shows each command's shape.
    """

    resource_group: str | None = None
    region: str | None = None
    # The conditional-forwarder zones the plan names for each private DNS zone (None: a name without one).
    forwarders: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)
    # Private-endpoint and compute-instance names, to send past a proxy.
    bypass_hosts: tuple[str, ...] = ()


PLACEHOLDERS = RemedyContext()


def quote(value: str) -> str:
    """``value`` as one shell word; control characters are escaped first, so a line stays one line."""
    if _PLACEHOLDER.fullmatch(value):
        return value
    return shlex.quote(escape_controls(value))


def powershell_quote(value: str) -> str:
    """``value`` as one PowerShell argument: bare when it is a plain name, else a literal '' string."""
    if _PLACEHOLDER.fullmatch(value) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", value):
        return value
    return "'" + escape_controls(value).replace("'", "''") + "'"


def resource_group_arg(ctx: RemedyContext) -> str:
    return quote(ctx.resource_group or "<resource-group>")


def resource_group_note(ctx: RemedyContext, what: str) -> str:
    """Explain <resource-group> when the resource group is not known."""
    return "" if ctx.resource_group else f" <resource-group> is {what}."
