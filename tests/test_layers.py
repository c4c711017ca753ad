"""Imports point one way: the engine, then the Azure ML knowledge, then the lab, then the composition root.

Read from the source (every import statement, at module level or inside a function, TYPE_CHECKING
blocks included): an import that runs back up, or a circle among the knowledge layer's or the lab's
modules, fails here. (Circles inside the engine are tests/probe's business: its floors.)
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lowest first: a package may import only from itself and from those before it.
LAYERS = ("probe", "checks", "lab", "amlprobe")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from a import b`` counts as a.b when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for named in targets:
            # The deepest project module the import names (import a.b.c loads a.b.c).
            module = named
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                found.add(module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".", maxsplit=1)[0])


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


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
    assert _circles(outside_engine) == []


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
