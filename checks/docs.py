"""Generate docs/troubleshooting.md from the code it documents, so the two cannot drift.

Sources: ``checks.diagnose.RULES`` (one section per finding id: severity, cause, fix, doc), the
remedies each rule calls (read from the rule's source and called with placeholders, so the command
shape shown is the one the code prints), the packaged catalog (the docs a finding may link instead
of the rule's own) and the reason codes' own meanings (``probe.reasons.Reason``, ``checks.verdicts.Verdict``).

    python -m checks.docs            # rewrite docs/troubleshooting.md
    python -m checks.docs --check    # exit 1 when the file differs from what the code says
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from checks import remedies
from checks.catalog import CLOUDS, load_catalog
from checks.diagnose import RULES, Rule
from checks.verdicts import Verdict
from probe.model import Remediation
from probe.reasons import Reason

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
GENERATOR = "python -m checks.docs"

# Placeholder names for remedy parameters whose value the rule computes at run time.
_PLACEHOLDER_NAMES = {"tag": "service-tag", "zones": "zone", "hosts": "host", "names": "host"}


def _remedy_functions() -> dict[str, Callable[..., Remediation]]:
    return {
        name: fn
        for name, fn in vars(remedies).items()
        if inspect.isfunction(fn) and fn.__module__ == remedies.__name__ and not name.startswith("_")
    }


def _placeholder_facts() -> Any:
    # What a remedy may read from Facts, with nothing known: every value becomes a <placeholder>.
    inputs = SimpleNamespace(resource_group=None, region=None)
    return SimpleNamespace(inputs=inputs, plan=None, results=[], environment={})


def _placeholder(param: inspect.Parameter) -> object:
    word = _PLACEHOLDER_NAMES.get(param.name, param.name.replace("_", "-"))
    annotation = str(param.annotation)
    return [f"<{word}>"] if annotation.startswith("list") else f"<{word}>"


def _call_shape(fn: Callable[..., Remediation], call: ast.Call) -> Remediation:
    """Call ``fn`` as ``call`` does, literals kept and everything computed replaced by placeholders."""
    params = list(inspect.signature(fn).parameters.values())
    by_name = {p.name: p for p in params}
    args: list[object] = []
    kwargs: dict[str, object] = {}

    def value(node: ast.expr, param: inspect.Parameter) -> object:
        if param.name == "facts":
            return _placeholder_facts()
        try:
            return ast.literal_eval(node)
        except ValueError:
            return _placeholder(param)

    for index, node in enumerate(call.args):
        args.append(value(node, params[index]))
    for kw in call.keywords:
        if kw.arg is not None:
            kwargs[kw.arg] = value(kw.value, by_name[kw.arg])
    return fn(*args, **kwargs)


def remediation_shapes(rule: Rule) -> list[Remediation]:
    """The remedies ``rule`` offers, in the order its source calls them, with placeholders."""
    functions = _remedy_functions()
    tree = ast.parse(textwrap.dedent(inspect.getsource(rule.run)))
    calls = [
        (node.lineno, node.col_offset, functions[node.func.id], node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions
    ]
    shapes: list[Remediation] = []
    for _line, _col, fn, call in sorted(calls, key=lambda c: (c[0], c[1])):
        shape = _call_shape(fn, call)
        if shape not in shapes:
            shapes.append(shape)
    return shapes


def links_catalog_doc(rule: Rule) -> bool:
    """Whether the rule's findings may carry the failing endpoint's own doc instead of ``rule.doc``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(rule.run)))
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "finding"
        and any(kw.arg == "doc" for kw in node.keywords)
        for node in ast.walk(tree)
    )


def catalog_docs() -> dict[str, list[str]]:
    """Every doc URL of the packaged catalog (all clouds) -> the ids of the entries citing it."""
    docs: dict[str, set[str]] = {}
    for cloud in CLOUDS:
        catalog = load_catalog(cloud)
        for entry in [*catalog.endpoints, *catalog.private_dns]:
            docs.setdefault(entry.doc, set()).add(entry.id)
    return {url: sorted(ids) for url, ids in sorted(docs.items())}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _remedy_block(shape: Remediation) -> list[str]:
    lines = [f"- `{shape.kind}`: {shape.text}"]
    if shape.commands:
        lines += ["", "  ```sh", *(f"  {c}" for c in shape.commands), "  ```"]
    return lines


def _rule_section(rule: Rule) -> list[str]:
    out = [
        f"### {rule.id}",
        "",
        f"**{rule.title}.** Severity: **{rule.severity.value}**.",
        "",
        f"**What it means.** {rule.cause}",
        "",
        f"**Fix.** {rule.fix}",
        "",
    ]
    shapes = remediation_shapes(rule)
    if shapes:
        out += ["**Remediation** (the finding's `remediation`; amlprobe fills in each `<...>` it knows):", ""]
        for shape in shapes:
            out += [*_remedy_block(shape), ""]
    else:
        out += ["**Remediation:** none offered: the finding's detail names the failing check.", ""]
    doc = f"**Documentation:** <{rule.doc}>"
    if links_catalog_doc(rule):
        doc += " (a finding links the failing endpoint's own catalog doc instead, when it has one)"
    return [*out, doc, ""]


def render() -> str:
    out = [
        f"<!-- Generated by `{GENERATOR}` from checks/diagnose.py, checks/remedies.py, checks/data/*.toml",
        f"     probe/reasons.py and checks/verdicts.py. Do not edit by hand: run `{GENERATOR}`. -->",
        "",
        "# Troubleshooting amlprobe findings",
        "",
        "A report's `findings` name root causes. Each has an `id` (below), a `severity`, the `evidence`"
        " (ids of the checks it explains) and a `remediation`. The rules run in this order, and each"
        " claims the checks it explains, so a later rule never reports a consequence of an earlier cause:"
        " with DNS down, the failed TCP probes are evidence of `dns-unavailable`, not findings of their own.",
        "",
        "| id | severity | finding |",
        "| --- | --- | --- |",
        *(f"| [{r.id}](#{r.id}) | {r.severity.value} | {_cell(r.title)} |" for r in RULES),
        "",
        "## Findings",
        "",
    ]
    for rule in RULES:
        out += _rule_section(rule)
    out += [
        "## Reason codes",
        "",
        "Every check carries one `reason`. Codes are stable: monitoring and scripts may match on them.",
        "",
        "| reason | meaning |",
        "| --- | --- |",
        *(f"| `{code.code}` | {_cell(code.meaning)} |" for code in (*Reason, *Verdict)),
        "",
        "## Documentation cited by the endpoint catalog",
        "",
        "The requirement each probed endpoint comes from (`checks/data/*.toml`, all clouds).",
        "",
        "| documentation | catalog entries |",
        "| --- | --- |",
    ]
    for url, ids in catalog_docs().items():
        shown = ", ".join(f"`{i}`" for i in ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        out.append(f"| <{url}> | {shown} |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description="Generate docs/troubleshooting.md.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs; write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            print(f"{args.output} is out of date: run `{GENERATOR}`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
