"""Writing values into a Lead together with their provenance.

The one rule that matters: a column whose provenance is "manual" is never written by a
run (registry, rule or ai), even when it is blank.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from hokan.core import ja
from hokan.core.fields import FieldValue
from hokan.leads.models import Lead, LeadFieldSource


def is_blank(value: object) -> bool:
    return value is None or value == ""


def blank_q(field: str) -> Q:
    """A filter for leads whose column ``field`` is blank (NULL for number columns, "" for text)."""
    if Lead._meta.get_field(field).null:
        return Q(**{f"{field}__isnull": True})
    return Q(**{field: ""})


def search_q(text: str) -> Q:
    """Leads whose 企業名, 法人番号, 電話番号 or 公式サイト contains ``text`` (a phone typed
    without hyphens, 「0368717000」, also finds 03-6871-7000)."""
    text = text.strip()
    query = (Q(name__icontains=text) | Q(corporate_number__startswith=text) | Q(phone__contains=text)
             | Q(website_url__icontains=text))
    phone = ja.parse_phone(text)
    if phone is not None:
        query |= Q(phone=phone.national)
    return query


def _blank(field: str) -> object:
    """The stored form of "no value": None for nullable (number) columns, "" for text."""
    return None if Lead._meta.get_field(field).null else ""


def manual_fields(lead: Lead) -> set[str]:
    """Columns a person entered or cleared by hand (protected from every run)."""
    return set(lead.sources.filter(method="manual").values_list("field", flat=True))


def missing_fields(lead: Lead, fields: Iterable[str]) -> list[str]:
    """Columns among ``fields`` that are blank and not protected by a manual edit."""
    protected = manual_fields(lead)
    return [name for name in fields if name not in protected and is_blank(getattr(lead, name))]


SOURCE_FIELDS = ("method", "source_url", "raw", "quote", "confidence", "extractor", "observed_at", "updated_at")
_UPSERT_BATCH = 1000


def upsert_sources(rows: Iterable[tuple[int, FieldValue]]) -> int:
    """Insert or replace the provenance rows of (lead id, value) pairs; returns how many.

    One ``INSERT … ON CONFLICT (lead, field) DO UPDATE`` per 1,000 rows, with the parameters
    built straight from the values (SQLite and PostgreSQL; Django's ``bulk_create`` spent 90 % of
    an import's write time preparing them one field at a time). Long texts are cut to what the
    columns and the admin hold: source URL 1,000, raw and quote 2,000, extractor 40 characters.
    """
    ops = connection.ops
    adapted: dict[object, object] = {}

    def when(value: object) -> object:  # the import gives one timestamp to thousands of rows
        if value not in adapted:
            adapted[value] = ops.adapt_datetimefield_value(value)
        return adapted[value]

    now = when(timezone.now())
    return _upsert_params([
        (lead_id, value.field, value.method, (value.source_url or "")[:1000], value.raw[:2000], value.quote[:2000],
         float(value.confidence), value.extractor[:40], when(value.observed_at), now)
        for lead_id, value in rows
    ])


def upsert_manual_sources(rows: Iterable[tuple[int, str, object]], *, extractor: str, observed_at: dt.datetime) -> int:
    """The provenance of values a person supplied (an import): (lead id, column, value) rows,
    method "manual", confidence 1.0, raw = the value as text, no quote or URL. Returns how many.
    The same upsert as ``upsert_sources``, without a FieldValue per value."""
    ops = connection.ops
    seen, now = ops.adapt_datetimefield_value(observed_at), ops.adapt_datetimefield_value(timezone.now())
    extractor = extractor[:40]
    return _upsert_params([(lead_id, name, "manual", "", str(value)[:2000], "", 1.0, extractor, seen, now)
                           for lead_id, name, value in rows])


def _upsert_params(params: list[tuple[object, ...]]) -> int:
    if not params:
        return 0
    ops = connection.ops
    if connection.vendor not in ("sqlite", "postgresql"):
        LeadFieldSource.objects.bulk_create(
            [LeadFieldSource(lead_id=p[0], field=p[1], method=p[2], source_url=p[3], raw=p[4], quote=p[5],
                             confidence=p[6], extractor=p[7], observed_at=p[8]) for p in params],
            update_conflicts=True, unique_fields=["lead", "field"], update_fields=SOURCE_FIELDS,
        )
        return len(params)
    quote = ops.quote_name
    meta = LeadFieldSource._meta
    columns = [quote(meta.get_field(name).column) for name in ("lead", "field", *SOURCE_FIELDS)]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:])
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}, {columns[1]}) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(params), _UPSERT_BATCH):
            cursor.executemany(sql, params[start : start + _UPSERT_BATCH])
    return len(params)


def apply_values(lead: Lead, values: Iterable[FieldValue], *, only_missing: bool = True) -> list[str]:
    """Write ``values`` into ``lead`` (not saved) and upsert their provenance rows (saved).

    only_missing: write only into blank columns (the enrichment job); False overwrites
        (a person's import or edit, with method "manual").
    Returns the names of the columns written. Manual columns are never written by a value that
    is not itself manual — not even when blank (a person cleared it on purpose). The caller
    saves ``lead`` inside the same transaction (a new lead is saved here, to own the rows).

    Queries: one select of the lead's manual marks and one upsert of the provenance rows,
    whatever the number of values (it was one update_or_create per value).
    """
    values = list(values)
    protected = manual_fields(lead) if lead.pk and any(v.method != "manual" for v in values) else set()
    written: dict[str, FieldValue] = {}
    for value in values:
        if value.method != "manual" and value.field in protected:
            continue
        current = getattr(lead, value.field)
        if only_missing and not is_blank(current):
            continue
        setattr(lead, value.field, _blank(value.field) if value.value is None else value.value)
        written[value.field] = value
    if written and lead.pk is None:
        lead.save()
    upsert_sources([(lead.pk, value) for value in written.values()])
    return list(written)
