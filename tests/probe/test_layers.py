"""Imports inside probe/ point one way: down its floors, never in a circle (issue 12).

The import graph is read from the source (every import statement, at module level, inside a
function or under TYPE_CHECKING), so a circle cannot hide behind a function-level import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from probe.model import Protocol
from probe.registry import PROBERS
from tests.helpers import imports

PROBE = Path(__file__).resolve().parents[2] / "probe"

# The floors, lowest first. A module may import its own floor or any floor below; never one above.
# A new module must be placed here (the test says so), which is where its imports get reviewed.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaves without vocabulary",
        (
            "probe",
            "probe.defaults",
            "probe.sanitize",
            "probe.files",
            "probe.descriptors",
            "probe.redact",
            "probe.atomic",
            "probe.interrupt",
            "probe.rtt",
            "probe.importer",
            "probe.style",
            "probe.invocation",
        ),
    ),
    (
        "vocabulary and settings",
        (
            "probe.reasons",
            "probe.facts",
            "probe.model",
            "probe.settings",
            "probe.deadline",
            "probe.errors",
            "probe.system",
            "probe.targets",
        ),
    ),
    ("the check's record", ("probe.recorder",)),
    ("transport", ("probe.transport", "probe.transport.*")),
    ("probers", ("probe.probers", "probe.probers.*")),
    ("running", ("probe.registry", "probe.runner", "probe.execution")),
    (
        "outputs",
        (
            "probe.render",
            "probe.missing",
            "probe.nagios",
            "probe.prometheus",
            "probe.history",
            "probe.diff",
            "probe.progress",
            "probe.formats",
            "probe.monitoring",
            "probe.bundle",
        ),
    ),
    ("command line", ("probe.options", "probe.cli", "probe.__main__")),
]


def _floor(module: str) -> int | None:
    for i, (_, patterns) in enumerate(FLOORS):
        for pattern in patterns:
            if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1])):
                return i
    return None


def _graph(root: Path = PROBE) -> dict[str, set[str]]:
    return imports.graph(imports.modules(root))


def _upward(graph: dict[str, set[str]]) -> list[str]:
    def name(module: str) -> str:
        floor = _floor(module)
        return f"{module} ({FLOORS[floor][0] if floor is not None else 'no floor'})"

    return [
        f"{name(m)} imports {name(dep)}"
        for m, deps in sorted(graph.items())
        for dep in sorted(deps)
        if (_floor(dep) or 0) > (_floor(m) or 0)
    ]


def test_every_module_has_a_floor() -> None:
    unplaced = sorted(m for m in imports.modules(PROBE) if _floor(m) is None)
    assert not unplaced, f"place these modules in FLOORS: {unplaced}"


def test_no_import_runs_up_a_floor() -> None:
    upward = _upward(_graph())
    assert not upward, "\n".join(upward)


def test_no_import_circle() -> None:
    assert imports.circles(_graph()) == []


def test_the_engine_imports_neither_the_knowledge_layer_nor_the_lab() -> None:
    outside = set()
    for path in PROBE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                outside |= {a.name for a in node.names if a.name.split(".")[0] in ("checks", "lab")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("checks", "lab"):
                outside.add(f"{path.name}: {node.module}")
    assert not outside


def test_the_checker_sees_a_circle_behind_a_function_level_import(tmp_path: Path) -> None:
    # The two checks above can fail: a transport module that imports a prober inside a function,
    # and the prober importing it back.
    root = tmp_path / "probe"
    (root / "transport").mkdir(parents=True)
    (root / "probers").mkdir()
    for package in (root, root / "transport", root / "probers"):
        (package / "__init__.py").write_text("")
    (root / "transport" / "dial.py").write_text("def dial():\n    from probe.probers.tcp import probe_tcp\n")
    (root / "probers" / "tcp.py").write_text("from probe.transport.dial import dial\n")
    graph = _graph(root)
    assert imports.circles(graph) == [["probe.probers.tcp", "probe.transport.dial"]]
    assert _upward(graph) == ["probe.transport.dial (transport) imports probe.probers.tcp (probers)"]


@pytest.mark.parametrize("protocol", list(Protocol))
def test_every_protocol_has_its_prober(protocol: Protocol) -> None:
    assert PROBERS[protocol].__module__ == f"probe.probers.{protocol.value}"
