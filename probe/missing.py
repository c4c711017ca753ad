"""The report's missing inputs as lines for people: what to add, with which flag, and where to find it.

The table view (probe.render) shows these lines; nagios' long output (probe.nagios) the first of them.
"""

from __future__ import annotations

from probe.model import MissingInput, Report
from probe.sanitize import printable as _p


def missing_heading(report: Report) -> str:
    if report.partial:
        return "Inputs to add (checks skipped for want of them; a partial plan was accepted)"
    return "Inputs to add (required checks were skipped: the verdict is unknown until they are given)"


def missing_line(m: MissingInput) -> str:
    env = f" or {m.env}" if m.env else ""
    checks = f"{len(m.checks)} {'check' if len(m.checks) == 1 else 'checks'}"
    need = "required" if m.required else "situational"
    return f"{_p(m.flag)} {_p(m.input.upper())}{_p(env)}: {checks} skipped ({need})"


def missing_inputs_lines(report: Report) -> list[str]:
    """A section for the table: heading, one line per input, where to find it; empty when no required check
    was skipped for want of an input (the report's missing_inputs still lists the situational ones)."""
    if not any(m.required for m in report.missing_inputs):
        return []
    out = [missing_heading(report)]
    for m in report.missing_inputs:
        out.append(f"  {missing_line(m)}")
        out.extend(f"      {_p(how, None)}" for how in m.how)
    return [*out, ""]
