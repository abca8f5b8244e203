"""core never imports an app (ARCHITECTURE.md; issue 7 §9: core/admin.py imported leads)."""

from __future__ import annotations

import ast
from pathlib import Path

import hokan.core

APPS = ("leads", "estimate", "registry", "scoring", "municipal", "knowledge")


def test_no_core_module_imports_an_app():
    core = Path(hokan.core.__file__).parent
    found = []
    for path in sorted(core.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.relative_to(core)}:{node.lineno} {name}" for name in names
                      if any(name == f"hokan.{app}" or name.startswith(f"hokan.{app}.") for app in APPS)]
    assert found == []
