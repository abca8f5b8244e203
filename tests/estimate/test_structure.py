"""The estimate modules import each other without a circle (issue 7 §9), read from their source.

Every ``import`` / ``from … import`` of a ``hokan.estimate`` module counts, also the ones inside
functions: a deferred import that only hides a circle is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hokan.estimate

PACKAGE = Path(hokan.estimate.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hokan.estimate"):
            if node.module == "hokan.estimate":
                found.update(f"hokan.estimate.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hokan.estimate."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"hokan.estimate.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_estimate_modules_form_no_import_circle():
    graph = _graph()
    assert {"hokan.estimate.generate", "hokan.estimate.steps", "hokan.estimate.tasks"} <= set(graph)
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_the_tables_stand_alone_and_pricing_does_not_know_the_texts():
    graph = _graph()
    assert graph["hokan.estimate.tables"] == set()
    assert "hokan.estimate.catalogue" not in graph["hokan.estimate.pricing"]
    assert "hokan.estimate.tables" in graph["hokan.estimate.catalogue"]


def test_the_finder_sees_a_circle():
    """The check itself can fail: a made-up circle is found."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
