"""The one exception tree (issue 7 §9): every exception class defined in hokan is a
``HokanError``, and the tree drawn in ``hokan.core.errors``' docstring is exactly the code's."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest
from django.db.models import Model

import hokan
from hokan.core import errors
from hokan.core.errors import HokanError, TransientError

# Exception classes that are not HokanErrors, each with the reason. Keep this short: an entry
# must be a private signal that never leaves its module.
NOT_HOKAN_ERRORS = {
    "hokan.core.budget._ReopenLost": "private signal inside one transaction of the ledger; caught there",
    "hokan.core.pipeline._Failure": "private wrapper between pipeline stages; raised as PipelineError",
}

TREE_LINE = re.compile(
    r"^(?P<prefix>(?:[│ ]   |├── |└── )*)(?P<name>[A-Z]\w*)(?:\((?P<attrs>[^)]*)\))?"
    r"(?:\s+\[also (?P<also>[^\]]+)\])?(?:\s+(?P<module>[a-z_][\w.]*))?\s*$"
)


def _modules() -> list[ModuleType]:
    modules = [hokan]
    for info in pkgutil.walk_packages(hokan.__path__, "hokan."):
        if info.name.rsplit(".", 1)[-1] == "__main__":  # runs the CLI when imported
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _classes_in(owner: object, module_name: str) -> list[type]:
    found = []
    for value in vars(owner).values():
        if inspect.isclass(value) and value.__module__ == module_name and value is not owner:
            if issubclass(value, BaseException):
                found.append(value)
            if not issubclass(value, Model):  # Django makes each model's DoesNotExist / MultipleObjectsReturned
                found += _classes_in(value, module_name)  # nested classes
    return found


@pytest.fixture(scope="module")
def exception_classes() -> dict[str, type]:
    """Every exception class defined in a hokan module: {"hokan.x.y.Name": class}."""
    classes = {}
    for module in _modules():
        for cls in _classes_in(module, module.__name__):
            classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return classes


def _tree() -> list[tuple[str, str, str | None, list[str], str | None]]:
    """The docstring's tree lines: (group, class name, parent name or None for a root line,
    names after ``[also``, module under ``hokan.`` or None)."""
    lines = (errors.__doc__ or "").splitlines()
    rows: list[tuple[str, str, str | None, list[str], str | None]] = []
    group = ""
    in_block = False
    stack: list[str] = []
    for line in lines:
        if line.endswith("::") and not line.startswith(" "):
            group, in_block, stack = line[:-2].strip(), True, []
            continue
        if not in_block or not line.strip():
            continue
        if not line.startswith("    "):
            in_block = False
            continue
        match = TREE_LINE.match(line[4:])
        assert match, f"tree line not understood: {line!r}"
        depth = len(match["prefix"]) // 4
        name = match["name"]
        parent = stack[depth - 1] if depth else None
        stack[depth:] = [name]
        also = [part.strip() for part in (match["also"] or "").split(",") if part.strip()]
        rows.append((group, name, parent, also, match["module"]))
    return rows


def test_every_exception_class_of_hokan_is_a_hokan_error(exception_classes):
    outside = sorted(name for name, cls in exception_classes.items()
                     if not issubclass(cls, HokanError) and name not in NOT_HOKAN_ERRORS)
    assert outside == [], "make these HokanError subclasses (a builtin as a second base if callers catch it)"
    stale = sorted(set(NOT_HOKAN_ERRORS) - set(exception_classes))
    assert stale == [], "allow-listed classes that no longer exist"
    assert "hokan.core.errors.InvalidValue" in exception_classes  # the walk found the modules


def test_the_tree_in_the_docstring_is_the_code_both_ways(exception_classes):
    rows = _tree()
    groups = {group for group, *_ in rows}
    assert {"core", "registry", "leads", "estimate"} <= groups
    documented: dict[str, type] = {}
    for group, name, parent, also, module in rows:
        if parent is None and module is None:  # a root that refers to a class drawn above
            assert name in documented, f"{group}: root {name} is not drawn in an earlier group"
            continue
        assert module, f"{name}: the module that defines it is missing"
        assert name not in documented, f"{name} is drawn twice"
        cls = getattr(importlib.import_module(f"hokan.{module}"), name, None)
        assert inspect.isclass(cls) and cls.__module__ == f"hokan.{module}", f"{name}: not defined in hokan.{module}"
        bases = [documented[parent]] if parent else [Exception]
        bases += [documented.get(other) or getattr(builtins, other) for other in also]
        assert set(cls.__bases__) == set(bases), (
            f"{name}: the tree says bases {[b.__name__ for b in bases]}, the code {[b.__name__ for b in cls.__bases__]}")
        if group != "core":
            assert module.split(".")[0] == group, f"{name} (hokan.{module}) is drawn under {group}"
        documented[name] = cls
    assert documented["HokanError"] is HokanError
    in_code = {f"{cls.__module__}.{cls.__qualname__}" for cls in exception_classes.values() if issubclass(cls, HokanError)}
    in_tree = {f"{cls.__module__}.{cls.__qualname__}" for cls in documented.values()}
    assert sorted(in_code - in_tree) == [], "HokanErrors missing from the tree in hokan/core/errors.py"
    assert sorted(in_tree - in_code) == []


def test_transient_errors_share_one_base_that_says_how_long_to_wait():
    from hokan.estimate.mail import MailUnavailable
    from hokan.estimate.notion import NotionUnavailable
    from hokan.registry.errors import RegistryRateLimited, RegistryUnavailable

    waits = {
        errors.LLMTransientError("429", provider="openai", retry_after_s=2.5, status_code=429): 2.5,
        errors.LLMDeadlineExceeded("late", provider="openai", deadline_s=30.0, attempts=3): None,
        errors.FetchTimeout("timed out", url="https://example.jp/"): None,
        errors.RateLimited("busy", key="llm:openai", retry_after_s=4.0): 4.0,
        RegistryRateLimited("429", retry_after_s=60.0): 60.0,
        RegistryUnavailable("503", status_code=503): None,
        NotionUnavailable("429", status_code=429, retry_after_s=1.0): 1.0,
        MailUnavailable("503", status_code=503): None,
    }
    for exc, wait in waits.items():
        assert isinstance(exc, TransientError), type(exc).__name__
        assert exc.retry_after_s == wait, type(exc).__name__
    # What is never worth retrying is not transient.
    for final in (errors.LLMConfigError("no key", provider="openai"),
                  errors.LLMRequestError("400", provider="openai", status_code=400),
                  errors.FetchBlocked("private", url="http://10.0.0.1/", reason="private address")):
        assert not isinstance(final, TransientError)
