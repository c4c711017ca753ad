"""Imports point one way: the engine, then the Azure ML knowledge, then the lab, then the composition root.

Read from the source (every import statement, at module level or inside a function, TYPE_CHECKING
blocks included): an import that runs back up, or a circle among the knowledge layer's or the lab's
modules, fails here. (Circles inside the engine are tests/probe's business: its floors.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import imports

REPO = Path(__file__).resolve().parents[1]
# Lowest first: a package may import only from itself and from those before it.
LAYERS = ("probe", "checks", "lab", "amlprobe")


def _modules() -> dict[str, Path]:
    return {name: path for package in LAYERS for name, path in imports.modules(REPO / package).items()}


def _graph() -> dict[str, set[str]]:
    return imports.graph(_modules())


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".", maxsplit=1)[0])


def test_the_graph_is_read_from_the_code() -> None:
    graph = _graph()
    # A few arrows the layout depends on, so that a broken reader cannot pass the tests below vacuously.
    assert "probe.cli" in graph["amlprobe.cli"] and "checks.cli" in graph["amlprobe.cli"]
    assert "checks.diagnosis.base" in graph["checks.diagnosis.dns"]
    assert "probe.model" in graph["checks.judge"]


def test_no_import_runs_from_a_lower_layer_up() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert upward == [], "imports that run back up: " + "; ".join(upward)


def test_no_import_circle_in_the_knowledge_layer_the_lab_or_the_root() -> None:
    graph = _graph()
    outside_engine = {m: {t for t in ts if _layer(t) > 0} for m, ts in graph.items() if _layer(m) > 0}
    assert imports.circles(outside_engine) == []


def test_the_engine_names_no_higher_module_even_as_a_string() -> None:
    # No plugin loaded by name (importlib, a registry of strings): the composition root passes the engine
    # what it needs, as values.
    higher = {name for name in _modules() if _layer(name) > 0 and "." in name}
    hits = [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for path in sorted((REPO / "probe").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(":")[0] in higher
    ]
    assert "checks.cli" in higher  # the reader sees the modules a plugin string would name
    assert hits == []


def test_no_test_imports_another_test_module() -> None:
    # Shared test code lives in tests/helpers (and fixtures in conftest.py, which pytest loads itself).
    tests = REPO / "tests"
    hits = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            hits += [
                f"{path.relative_to(REPO)}: {n}"
                for n in names
                if n.startswith("tests.") and not n.startswith("tests.helpers")
            ]
    assert hits == []
