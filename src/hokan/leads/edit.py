"""A person's edit of a lead (REST API, admin): validation and the manual mark.

Every entry point validates a value the same way: ``values.clean_value`` (the import's rules,
Japanese messages), then the model field's own checks (length, integer range, digits), so a
value that passes here can be stored on SQLite and PostgreSQL alike.

Each column a person changes — or clears — gets a ``LeadFieldSource`` with method "manual"
and confidence 1.0, which protects it from every enrichment run (``store.apply_values``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from hokan.core.errors import HokanError
from hokan.core.fields import FieldValue
from hokan.leads.columns import BY_NAME
from hokan.leads.models import Lead
from hokan.leads.store import apply_values, is_blank, manual_fields
from hokan.leads.values import clean_value

# IntegerField is 32-bit on PostgreSQL; SQLite would store more, so check it on every backend.
INT32_MAX = 2_147_483_647


class FieldProblem(HokanError):
    """One invalid value. field: column name (or the unknown key); message: Japanese, names the column."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class EditInvalid(HokanError):
    """Some values of an edit are invalid; nothing was written. problems: one per bad field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def clean_field(field: str, raw: Any) -> Any:
    """Validate one column's value as a person typed it; None means "no value".

    Returns the value to store (str / int; None for blank).

    Raises:
        FieldProblem: unknown column, invalid value, or a value the column cannot hold.
    """
    column = BY_NAME.get(field)
    if column is None:
        raise FieldProblem(f"不明な項目です: {field}", field=field)
    if isinstance(raw, str) and "\x00" in raw:  # PostgreSQL cannot store NUL in text
        raise FieldProblem(f"{column.label}: 使えない文字（NUL）が含まれています", field=field)
    try:
        value = clean_value(field, raw)
    except ValueError as exc:
        raise FieldProblem(f"{column.label}: {exc}", field=field) from None
    if value is None:
        if field == "name":
            raise FieldProblem("企業名: 空にはできません", field=field)
        return None
    model_field = Lead._meta.get_field(field)
    is_int32 = model_field.get_internal_type() == "IntegerField"
    if is_int32 and isinstance(value, int) and not -INT32_MAX <= value <= INT32_MAX:
        raise FieldProblem(f"{column.label}: 値が大きすぎます: {value}", field=field)
    try:
        model_field.clean(value, None)
    except ValidationError as exc:
        raise FieldProblem(f"{column.label}: " + " ".join(exc.messages), field=field) from None
    return value


def clean_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate several columns at once ({column: raw} → {column: value or None}).

    Raises:
        EditInvalid: with every problem found (not only the first).
    """
    cleaned: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for field, raw in values.items():
        try:
            cleaned[field] = clean_field(field, raw)
        except FieldProblem as problem:
            problems.append(problem)
    if problems:
        raise EditInvalid(problems)
    return cleaned


def _same(current: object, new: object) -> bool:
    if is_blank(current) or is_blank(new):
        return is_blank(current) and is_blank(new)
    try:
        return int(current) == int(new)  # type: ignore[call-overload]  # Decimal columns vs int values
    except (TypeError, ValueError):
        return str(current) == str(new)


def changed_fields(lead: Lead, cleaned: Mapping[str, Any]) -> list[str]:
    """The columns of ``cleaned`` whose value differs from ``lead``'s (a new lead: the non-blank ones)."""
    if lead.pk is None:
        return [name for name, value in cleaned.items() if not is_blank(value)]
    return [name for name, value in cleaned.items() if not _same(getattr(lead, name), value)]


def fields_to_record(lead: Lead, cleaned: Mapping[str, Any]) -> list[str]:
    """The columns a manual edit records: the changed ones, plus the ones cleared (None) that
    are blank already but not yet marked manual — clearing a blank field says "leave it blank",
    so no enrichment run may fill it later (README: clearing protects a field)."""
    changed = changed_fields(lead, cleaned)
    if lead.pk is None:
        return changed
    cleared = [name for name, value in cleaned.items() if value is None and name not in changed]
    if cleared:
        protected = manual_fields(lead)
        changed += [name for name in cleared if name not in protected]
    return changed


def save_manual_edit(lead: Lead, cleaned: Mapping[str, Any], *, editor: str) -> list[str]:
    """Write the changed values of ``cleaned`` (from ``clean_fields``) into ``lead`` as manual.

    editor: who edited, stored as the provenance's extractor (e.g. "api:営業システム", "admin:alice").
    Saves the lead (also when new) and returns the columns written. Unchanged values keep
    their provenance (re-sending a registry value does not turn it into a manual one); a
    column cleared (None) that is blank already is recorded as a manual blank.
    """
    with transaction.atomic():
        changed = fields_to_record(lead, cleaned)
        values = [
            FieldValue(field=name, value=cleaned[name], raw="" if cleaned[name] is None else str(cleaned[name]),
                       quote="", source_url=None, method="manual", confidence=1.0, extractor=editor[:40])
            for name in changed
        ]
        written = apply_values(lead, values, only_missing=False)
        if written:
            lead.ai_source = Lead.Source.MANUAL
        lead.save()
    return written


def mark_manual(lead: Lead, fields: list[str], *, editor: str) -> None:
    """Record the current values of ``fields`` of the saved ``lead`` as entered by hand.

    For edits already written to the row (the admin's form saves the model itself); blank
    values are recorded too, so a cleared column stays cleared.
    """
    if not fields:
        return
    with transaction.atomic():
        values = [
            FieldValue(field=name, value=None if is_blank(getattr(lead, name)) else getattr(lead, name),
                       raw="" if is_blank(getattr(lead, name)) else str(getattr(lead, name)), quote="",
                       source_url=None, method="manual", confidence=1.0, extractor=editor[:40])
            for name in fields
        ]
        apply_values(lead, values, only_missing=False)
        lead.ai_source = Lead.Source.MANUAL
        lead.save()
