"""Step 7 of the fetch flow (document 003 §4.1 step 7, §4.2, §6.1): save a draft and its version.

A run's values are merged into the stored draft by these rules:

- a manual value (an editor's, ``method == "manual"``) is never overwritten;
- a value the run found replaces the stored one; when it differs (compared by value, not by the
  page: §4.2) the change is listed in the new version and its review is reset;
- a value the editor rejected is not brought back when the run finds the same value again;
- a stored value the run did not find is kept (a page that was not found this time is no
  evidence that the fact changed); ``missing_variables`` are the service's variables left
  without a value.

Every change of values makes a ``DraftVersion`` (number = ``Draft.version``) with
``changes = [{"variable", "kind": added|changed|removed, "before", "after"}]``: the diff of the
admin. Edits by editors (``edit_value``) are versions too (reason "edit").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from hokan.core.errors import InvalidValue
from hokan.core.fields import clean
from hokan.municipal.catalogue import VariableSpec
from hokan.municipal.models import REVIEW_KEY, Draft, DraftVersion, Municipality, Service

MANUAL = "manual"


@dataclass
class ServiceOutcome:
    """What one service's run found: values ``{name: value dict}`` (``models.VALUE_KEYS``),
    errors ``[{"step", "url", "message"}]``, the queries, searches made, sources read and the
    paid LLM calls made (0 for cached or unchanged pages)."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    search_attempts: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: int = 0
    pages_read: int = 0


def iso_now() -> str:
    return timezone.now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def diff(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The changed values between two ``variables`` maps, by variable name (sorted)."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old = (before.get(name) or {}).get("value")
        new = (after.get(name) or {}).get("value")
        if old == new:
            continue
        kind = "added" if old in (None, "") else "removed" if new in (None, "") else "changed"
        changes.append({"variable": name, "kind": kind, "before": old, "after": new})
    return changes


def merge(stored: Mapping[str, dict[str, Any]], found: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stored values with a run's values merged in (module docstring)."""
    merged = {name: dict(item) for name, item in stored.items()}
    for name, item in found.items():
        current = merged.get(name)
        if current and current.get("method") == MANUAL:
            continue
        if current and current.get(REVIEW_KEY) == "rejected" and current.get("value") == item.get("value"):
            continue
        new = dict(item)
        if current and current.get("value") == new.get("value") and current.get(REVIEW_KEY):
            new[REVIEW_KEY] = current[REVIEW_KEY]
        else:
            new.setdefault(REVIEW_KEY, "")
        merged[name] = new
    return merged


def missing_of(variables: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> list[str]:
    """The names without a usable value (none, empty, or rejected by the editor)."""
    out = []
    for name in names:
        item = variables.get(name) or {}
        if item.get("value") in (None, "") or item.get(REVIEW_KEY) == "rejected":
            out.append(name)
    return out


def _new_version(draft: Draft, reason: str, changes: list[dict[str, Any]], user: str = "") -> DraftVersion:
    draft.version += 1
    return DraftVersion.objects.create(draft=draft, number=draft.version, reason=reason, variables=draft.variables,
                                       missing_variables=draft.missing_variables, changes=changes, created_by=user)


def save_draft(municipality: Municipality, service: Service, outcome: ServiceOutcome,
               variable_names: Sequence[str], *, reason: str = "run") -> tuple[Draft, list[dict[str, Any]]]:
    """Merge ``outcome`` into the draft of (municipality, service), creating it when new; a new
    version when values changed (or for the first save). Returns (draft, changes)."""
    with transaction.atomic():
        draft, created = Draft.objects.select_for_update().get_or_create(municipality=municipality, service=service)
        before = draft.variables or {}
        merged = merge(before, outcome.values)
        changes = diff(before, merged)
        draft.variables = merged
        draft.missing_variables = missing_of(merged, variable_names)
        draft.errors = outcome.errors
        draft.search_attempts += outcome.search_attempts
        draft.queries = outcome.queries
        draft.sources = outcome.sources
        if changes and draft.status != Draft.Status.DRAFT:
            draft.status = Draft.Status.DRAFT  # a changed approved draft needs a new review
        if created or changes:
            _new_version(draft, reason if not created else "run", changes)
        draft.save()
    return draft, changes


def manual_value(spec: VariableSpec | None, value: str) -> dict[str, Any]:
    """An editor's value (method manual, confidence 1.0), validated by the variable's field spec.

    Raises InvalidValue when the value does not pass the variable's validation_type."""
    text = value.strip()
    cleaned: Any = text
    if spec is not None and text:
        cleaned = clean(spec.field_spec, text)
        if cleaned is None:
            raise InvalidValue(f"{spec.label}: 値が空です", field=spec.name, label=spec.label, raw=text)
    return {"value": cleaned if isinstance(cleaned, (str, int, float, bool)) else str(cleaned), "raw": text,
            "quote": "", "source_url": None, "confidence": 1.0, "method": MANUAL, "extracted_at": iso_now(),
            "validated": bool(text), REVIEW_KEY: "approved"}


def edit_value(draft: Draft, name: str, value: str, *, spec: VariableSpec | None, user: str = "") -> Draft:
    """Set variable ``name`` to the editor's ``value`` (manual, never overwritten by a run); an
    empty value clears it. A new version (reason "edit"). Raises InvalidValue."""
    item = manual_value(spec, value) if value.strip() else None
    with transaction.atomic():
        draft = Draft.objects.select_for_update().get(pk=draft.pk)
        before = draft.variables or {}
        after = {k: dict(v) for k, v in before.items()}
        if item is None:
            after[name] = {"value": None, "raw": "", "quote": "", "source_url": None, "confidence": 1.0,
                           "method": MANUAL, "extracted_at": iso_now(), "validated": False, REVIEW_KEY: ""}
        else:
            after[name] = item
        names = list(dict.fromkeys([*draft.service.variables.values_list("name", flat=True), *after]))
        draft.variables = after
        draft.missing_variables = missing_of(after, names)
        _new_version(draft, "edit", diff(before, after), user)
        draft.save()
    return draft


def review_value(draft: Draft, name: str, decision: str, *, user: str = "") -> Draft:
    """Mark one value approved or rejected (decision "approved" | "rejected" | ""). A rejected
    value counts as missing. Raises KeyError for a variable without a value, ValueError for a
    bad decision."""
    if decision not in ("approved", "rejected", ""):
        raise ValueError(f"bad decision {decision!r}")
    with transaction.atomic():
        draft = Draft.objects.select_for_update().get(pk=draft.pk)
        if name not in draft.variables:
            raise KeyError(name)
        variables = {k: dict(v) for k, v in draft.variables.items()}
        variables[name][REVIEW_KEY] = decision
        names = list(dict.fromkeys([*draft.service.variables.values_list("name", flat=True), *variables]))
        draft.variables = variables
        draft.missing_variables = missing_of(variables, names)
        draft.save(update_fields=["variables", "missing_variables", "updated_at"])
    return draft


def set_status(draft: Draft, status: str, *, user: str = "") -> Draft:
    """Approve or reject the whole draft (or put it back to draft)."""
    Draft.objects.filter(pk=draft.pk).update(status=status, reviewed_by=user[:150], reviewed_at=timezone.now(),
                                             updated_at=timezone.now())
    draft.refresh_from_db()
    return draft
