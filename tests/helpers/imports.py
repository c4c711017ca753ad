"""The project's import graph, read from the source.

Every import statement counts, at module level, inside a function or under TYPE_CHECKING, so a circle
cannot hide behind a function-level import. tests/test_layers.py (between packages) and
tests/probe/test_layers.py (the engine's floors) judge the graph.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package directory ``root``, by dotted name (the package itself included)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports, wherever the import statement is.

    ``from a import b`` counts as a.b when that is a module; ``import a.b.c`` as the deepest known module.
    """
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for named in names:
            name = named
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def graph(found: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``found`` it imports."""
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found
