"""mypy in ``make test`` (issue 7 §9): ``python -m mypy`` with pyproject.toml's ``[tool.mypy]``
checks all of ``hokan.core`` (django-stubs' plugin for the models), and ``hokan.core.ja``,
``hokan.core.fields`` and ``hokan.core.budget`` with every per-module flag of ``--strict``.
The cache (``.mypy_cache``) keeps a second run at a few seconds."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
STRICT_MODULES = {"hokan.core.ja", "hokan.core.ja.*", "hokan.core.fields", "hokan.core.budget"}
# The flags --strict turns on that may be set per module (mypy 1.10-2.x); warn_redundant_casts
# is global only and set globally.
STRICT_FLAGS = {
    "disallow_any_generics", "disallow_subclassing_any", "disallow_untyped_calls", "disallow_untyped_defs",
    "disallow_incomplete_defs", "check_untyped_defs", "disallow_untyped_decorators", "warn_unused_ignores",
    "warn_return_any", "no_implicit_reexport", "strict_equality", "extra_checks",
}


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def test_the_configuration_checks_core_and_the_strict_modules_strictly():
    config = _config()
    assert config["packages"] == ["hokan.core"] and config["warn_redundant_casts"] is True
    strict = [o for o in config["overrides"] if STRICT_MODULES & set(o["module"])]
    assert len(strict) == 1 and set(strict[0]["module"]) == STRICT_MODULES
    assert {flag for flag, on in strict[0].items() if on is True} == STRICT_FLAGS
    ignored = {m for o in config["overrides"] if o.get("ignore_errors") for m in o["module"]}
    assert not ignored & STRICT_MODULES


@pytest.mark.slow
def test_core_type_checks():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
