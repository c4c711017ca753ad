"""The human view of `amlprobe plan`: what would be probed, and what is skipped and why."""

from __future__ import annotations

from collections.abc import Sequence

from checks.plan import Plan
from probe.sanitize import printable


def _table(headers: tuple[str, ...], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = []
    for row in [list(headers), *map(list, rows)]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def render_plan_table(plan: Plan) -> str:
    """The human view of `amlprobe plan`: what would be probed, and what is skipped and why."""
    lines = [f"amlprobe plan: cloud {plan.cloud}; scenarios: {', '.join(plan.scenarios)}", ""]

    lines.append(f"Checks to run ({len(plan.checks)}):")
    rows: list[tuple[str, ...]] = []
    for spec in plan.checks:
        req = "yes" if spec.required else "no"
        via = f" via {', '.join(spec.dns_servers)}" if spec.dns_servers else ""
        when = spec.labels.get("when_private_endpoint")
        pe = spec.labels.get("pe_resource", "")
        only = {"true": f"{pe} has a PE", "false": f"{pe} has no PE"}.get(when or "", "-")
        rows.append((spec.id + via, req, only, spec.labels.get("entry", "")))
    lines += _table(("CHECK", "REQUIRED", "ONLY IF", "CATALOG ENTRY"), rows)

    if plan.dns_expectations:
        lines += [
            "",
            f"Private DNS expectations ({len(plan.dns_expectations)}; whether a resource has a private endpoint (PE)"
            " is decided from DNS at run time):",
        ]
        rows = [
            (
                e.name,
                "private if PE" if e.expect == "evidence" else e.expect,
                e.zone or "-",
                e.privatelink_name or ("undocumented" if e.zone else "-"),
            )
            for e in plan.dns_expectations
        ]
        lines += _table(("NAME", "EXPECT", "ZONE", "PRIVATELINK CNAME"), rows)

    if plan.variant_groups:
        lines += ["", "Variant groups (sources disagree; all are probed; one that does not exist is no fault):"]
        for group, ids in plan.variant_groups.items():
            lines.append(f"  {group}: {', '.join(ids)}")

    if plan.skipped:
        lines += ["", f"Skipped ({len(plan.skipped)}):"]
        rows = []
        for s in plan.skipped:
            ports = ",".join(str(p) for p in s.ports) or "-"
            why = f"needs {', '.join(s.needs)}" if s.needs else s.note
            rows.append((s.id, s.host, f"{s.protocol}/{ports}", why))
        lines += _table(("CATALOG ENTRY", "HOST", "PROTO/PORT", "WHY"), rows)
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  {printable(w)}" for w in plan.warnings)]
    return "\n".join(lines) + "\n"
