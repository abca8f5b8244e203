"""Importing a lead list from CSV (UTF-8 with or without BOM, UTF-16, CP932 / Shift_JIS) or XLSX.

Headers are matched to Lead columns by their Japanese or English names (``columns.COLUMNS``:
企業名, 法人番号, 業種, …); every cell is validated with the column's FieldSpec
(``hokan.core.fields.clean``).

The import reads and validates the whole file first, then writes (``import_leads``):

1. **Read** through ``hokan.core.tabular`` within the ``HOKAN_IMPORT_*`` limits (file size,
   rows, cell length, unzipped XLSX size): a file beyond them, or with bytes no encoding reads,
   is refused before anything is stored (``--skip-bad-lines`` imports the readable lines and
   lists the others).
2. **Validate** each row as a whole: a bad row is reported (file, row number as Excel shows it,
   column, reason) and skipped; nothing of it is written.
3. **Merge duplicates**: rows of the same company in one file (same 法人番号, else the same
   normalised name) become one (later rows' non-blank cells win) and are reported with their
   row numbers, so the file's outcome does not depend on row order and a re-import is a no-op.
4. **Write** per chunk of ``CHUNK_ROWS`` companies in one transaction: one query per chunk finds
   the stored leads, new leads are bulk-inserted, changed ones updated column by column
   (``executemany``), provenance rows upserted in one statement. If the database refuses a
   chunk, it is written again company by company (``store_row``) and only the failing ones are
   reported.

Matching an existing lead: by 法人番号, else by normalised company name (株式会社/(株)/width/
spaces folded) when exactly one lead has it and it has no other 法人番号. A matched lead gets the
file's non-blank values (marked "manual": a person supplied them); blank cells never erase
stored values. Memory: the parsed values of every company of the file (about 1 KB each).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from hokan.core import ja
from hokan.core.bulk import update_columns
from hokan.core.errors import InputError
from hokan.core.fields import FieldValue
from hokan.core.tabular import TableLimits, check_cells, is_blank_row, read_table
from hokan.leads.columns import BY_NAME, COLUMNS
from hokan.leads.models import Lead
from hokan.leads.store import apply_values, upsert_manual_sources
from hokan.leads.values import address_values, clean_value

CHUNK_ROWS = 1000


@dataclass(frozen=True)
class DuplicateRows:
    """Rows of one file that describe the same company, merged into one.

    rows: their row numbers (as Excel shows them), first to last; key: what made them one
    (「法人番号 6120001271738」 or 「企業名 セガ」); overridden: labels of the columns whose value a
    later row replaced.
    """

    rows: tuple[int, ...]
    key: str
    overridden: tuple[str, ...] = ()

    def message(self, source: str) -> str:
        rows = "・".join(f"{r}行目" for r in self.rows)
        text = f"{source}: {rows}は同じ企業（{self.key}）のため1件にまとめました"
        if self.overridden:
            text += f"（後の行の値を採用: {'、'.join(self.overridden)}）"
        return text


@dataclass
class ImportReport:
    """What an import did. rows: data rows read; created/updated/unchanged: leads (a company
    given by several rows counts once); errors: one InputError per skipped row (bad value,
    unreadable line) — the file itself being unreadable raises instead; duplicates: rows merged
    because they describe one company."""

    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)
    duplicates: list[DuplicateRows] = field(default_factory=list)
    ignored_headers: list[str] = field(default_factory=list)
    encoding: str = ""


def import_limits() -> TableLimits:
    """The ``HOKAN_IMPORT_*`` settings as TableLimits."""
    return TableLimits(
        max_bytes=settings.HOKAN_IMPORT_MAX_BYTES,
        max_rows=settings.HOKAN_IMPORT_MAX_ROWS,
        max_cell_chars=settings.HOKAN_IMPORT_MAX_CELL_CHARS,
        max_xlsx_unzipped_bytes=settings.HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES,
    )


def _header_key(text: str) -> str:
    return ja.fold(text).lower().replace(" ", "").replace("_", "").replace("-", "")


_HEADER_INDEX: dict[str, str] = {}
for _column in COLUMNS:
    for _name in (_column.name, _column.label, *_column.aliases):
        _HEADER_INDEX.setdefault(_header_key(_name), _column.name)


def map_headers(headers: Sequence[object]) -> tuple[dict[int, str], list[str]]:
    """Map header cells to column names: ({cell index: column name}, [ignored headers])."""
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    for index, cell in enumerate(headers):
        header = "" if cell is None else str(cell)
        name = _HEADER_INDEX.get(_header_key(header))
        if name is None or name in mapping.values():
            if header.strip():
                ignored.append(header)
            continue
        mapping[index] = name
    return mapping, ignored


def parse_row(cells: Sequence[object], mapping: dict[int, str], *, source: str, row: int) -> dict[str, object]:
    """Validate one row into {column: value}; blank cells are left out.

    A 所在地 with a written prefecture fills 都道府県 / 市区町村 / 郵便番号 when those cells are blank.

    Raises:
        InputError: the first invalid cell (naming file, row and column), or a missing 企業名.
    """
    values: dict[str, object] = {}
    for index, name in mapping.items():
        cell = cells[index] if index < len(cells) else ""
        try:
            value = clean_value(name, cell)
        except ValueError as exc:
            raise InputError(str(exc), source=source, row=row, field=BY_NAME[name].label) from None
        if value is not None:
            values[name] = value
    if "location" in values and not values.get("prefecture"):
        split = address_values(str(values["location"]), require_city=False)
        if split:
            values["prefecture"] = split["prefecture"]
            values["location"] = split["location"]
            for name in ("city", "postal_code"):
                if split.get(name) and not values.get(name):
                    values[name] = split[name]
    if not values.get("name"):
        raise InputError("企業名が空です", source=source, row=row, field="企業名")
    return values


def find_existing(values: dict[str, object]) -> Lead | None:
    """The stored lead this row describes: same 法人番号, else the one lead with the same name
    (and no other 法人番号)."""
    number = values.get("corporate_number")
    if number:
        found = Lead.objects.filter(corporate_number=number).order_by("pk").first()
        if found:
            return found
    candidates = list(Lead.objects.filter(name_key=ja.company_name_key(str(values["name"])))[:2])
    if len(candidates) == 1 and (not candidates[0].corporate_number or not number):
        return candidates[0]
    return None


# --- reading and merging ---------------------------------------------------------------------
@dataclass
class _Company:
    """The rows of one company in the file, merged."""

    rows: list[int]
    values: dict[str, object]
    key: str
    name_key: str
    overridden: list[str] = field(default_factory=list)

    def add(self, row: int, values: dict[str, object]) -> None:
        self.rows.append(row)
        for name, value in values.items():
            if name in self.values and self.values[name] != value and BY_NAME[name].label not in self.overridden:
                self.overridden.append(BY_NAME[name].label)
            self.values[name] = value


class _Companies:
    """Groups a file's rows by company: by 法人番号, else by normalised name when that name
    belongs to exactly one group so far (the rules of ``find_existing``)."""

    def __init__(self) -> None:
        self.all: list[_Company] = []
        self.by_number: dict[str, _Company] = {}
        self.by_name: dict[str, list[_Company]] = {}

    def add(self, row: int, values: dict[str, object]) -> None:
        number = str(values.get("corporate_number") or "")
        name_key = ja.company_name_key(str(values["name"]))
        company = self.by_number.get(number) if number else None
        if company is None:
            named = self.by_name.get(name_key, [])
            numbers = {str(c.values.get("corporate_number") or "") for c in named}
            if len(named) == 1 and (not number or numbers == {""}):
                company = named[0]
        if company is None:
            key = f"法人番号 {number}" if number else f"企業名 {values['name']}"
            company = _Company([row], dict(values), key, name_key)
            self.all.append(company)
            self.by_name.setdefault(name_key, []).append(company)
        else:
            company.add(row, values)
        if number:
            self.by_number.setdefault(number, company)


def import_leads(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    skip_bad_lines: bool = False,
    limits: TableLimits | None = None,
) -> ImportReport:
    """Import a CSV/XLSX lead list (see the module docstring). Returns the report; bad rows are in
    ``report.errors``, merged duplicates in ``report.duplicates``.

    progress: called with the number of rows just written. skip_bad_lines: import the lines that
    decode and report the others (default: refuse the file). limits: default ``import_limits()``.

    Raises:
        InputError: the file itself cannot be read (missing, unknown format, beyond a limit,
            undecodable bytes without ``skip_bad_lines``), or no header maps to 企業名. Nothing
            is written then.
    """
    source = path.name
    limits = limits or import_limits()
    table = read_table(path, limits=limits, skip_bad_lines=skip_bad_lines)
    try:
        _, header = next(table.rows)
    except StopIteration:
        raise InputError("空のファイルです", source=source) from None
    headers = ["" if h is None else str(h) for h in header]
    mapping, ignored = map_headers(headers)
    if "name" not in mapping.values():
        raise InputError(
            "見出し行に「企業名」（会社名・社名・name でも可）の列がありません: " + ", ".join(h for h in headers if h),
            source=source, row=1,
        )
    report = ImportReport(source=source, ignored_headers=ignored, encoding=table.encoding)
    report.errors.extend(bad.error(source) for bad in table.bad_lines)
    companies = _Companies()
    for number, cells in table.rows:  # raises InputError past max_rows: nothing is written yet
        if is_blank_row(cells):
            continue
        report.rows += 1
        try:
            check_cells(cells, limits=limits, source=source, row=number, headers=headers)
            values = parse_row(cells, mapping, source=source, row=number)
        except InputError as exc:
            report.errors.append(exc)
            continue
        companies.add(number, values)
    report.errors.sort(key=lambda e: e.row or 0)
    report.duplicates = [DuplicateRows(tuple(c.rows), c.key, tuple(c.overridden)) for c in companies.all
                         if len(c.rows) > 1]
    claimed: set[int] = set()
    for start in range(0, len(companies.all), CHUNK_ROWS):
        chunk = companies.all[start : start + CHUNK_ROWS]
        before = set(claimed)
        try:
            with transaction.atomic():
                outcomes = _write_chunk(chunk, source=source, claimed=claimed)
        except DatabaseError:
            claimed = before  # the rolled-back chunk's ids may be given out again
            outcomes = _write_one_by_one(chunk, source=source, report=report, claimed=claimed)
        for outcome in outcomes:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress:
            progress(sum(len(c.rows) for c in chunk))
    return report


# --- writing ---------------------------------------------------------------------------------
def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _match(chunk: list[_Company], claimed: set[int]) -> list[Lead | None]:
    """The stored lead of each company (``find_existing``'s rules, two queries per chunk, rows
    locked for the chunk's transaction). A lead is matched by one company of the import at most."""
    numbers = sorted({str(c.values["corporate_number"]) for c in chunk if c.values.get("corporate_number")})
    by_number: dict[str, Lead] = {}
    for part in _chunks(numbers):
        for lead in Lead.objects.select_for_update().filter(corporate_number__in=part).order_by("-pk"):
            by_number[lead.corporate_number] = lead  # the lowest pk wins, as .first()
    keys = sorted({c.name_key for c in chunk if str(c.values.get("corporate_number") or "") not in by_number} - {""})
    by_name: dict[str, list[Lead]] = {}
    for part in _chunks(keys):
        for lead in Lead.objects.select_for_update().filter(name_key__in=part).order_by("pk"):
            by_name.setdefault(lead.name_key, []).append(lead)
    matched: list[Lead | None] = []
    for company in chunk:
        number = str(company.values.get("corporate_number") or "")
        lead = by_number.get(number) if number else None
        if lead is None:
            named = by_name.get(company.name_key, [])
            if len(named) == 1 and (not named[0].corporate_number or not number):
                lead = named[0]
        if lead is not None and lead.pk in claimed:
            lead = None  # another company of this file took it: this one is new
        if lead is not None:
            claimed.add(lead.pk)
        matched.append(lead)
    return matched


def _differs(current: object, new: object) -> bool:
    if current is None or current == "":
        return True
    try:
        return int(current) != int(new)  # type: ignore[call-overload]  # Decimal columns vs int values
    except (TypeError, ValueError):
        return str(current) != str(new)


def _manual(name: str, value: object, source: str, now: Any) -> FieldValue:
    return FieldValue(field=name, value=value, raw=str(value), quote="", source_url=None, method="manual",
                      confidence=1.0, extractor=f"import:{source}"[:40], observed_at=now)


def _write_chunk(chunk: list[_Company], *, source: str, claimed: set[int]) -> list[str]:
    """Write one chunk in the caller's transaction: insert the new leads, per-column-set UPDATEs
    of the changed ones, one provenance upsert. Returns "created" | "updated" | "unchanged" per
    company."""
    now = timezone.now()
    outcomes: list[str] = []
    new: list[_Company] = []
    changed: dict[tuple[str, ...], list[Lead]] = {}
    sources: list[tuple[int, str, object]] = []
    for company, lead in zip(chunk, _match(chunk, claimed)):
        if lead is None:
            new.append(company)
            outcomes.append("created")
            continue
        written = [n for n, v in company.values.items() if _differs(getattr(lead, n), v)]
        if not written:
            outcomes.append("unchanged")
            continue
        for name in written:
            setattr(lead, name, company.values[name])
        changed.setdefault(tuple(sorted(written)), []).append(lead)
        sources.extend((lead.pk, name, company.values[name]) for name in written)
        outcomes.append("updated")
    for company, pk in zip(new, _insert_leads(new, now)):
        claimed.add(pk)
        sources.extend((pk, name, value) for name, value in company.values.items())
    for columns, leads in changed.items():
        _update_columns(leads, columns, now)
    upsert_manual_sources(sources, extractor=f"import:{source}", observed_at=now)
    return outcomes


def _insert_leads(companies: list[_Company], now: Any) -> list[int]:
    """INSERT the new leads (executemany; the ids read back by their unique public_id) and return
    their ids in order. Every column is written as ``bulk_create`` would (model defaults, a new
    public_id, created/updated at ``now``, name_key, ai_source "manual"); only str, int and bool
    values skip Django's per-value preparation, which was 80 % of a bulk_create here."""
    if not companies:
        return []
    fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
    plain = {"CharField", "TextField", "IntegerField", "BigIntegerField", "BooleanField", "PositiveIntegerField"}

    def prep(f: Any, value: object) -> object:
        if value is None or (f.get_internal_type() in plain and isinstance(value, (str, int, bool))):
            return value
        return f.get_db_prep_save(value, connection)

    fixed = {f.attname: prep(f, f.get_default()) for f in fields if f.attname != "public_id"}
    fixed.update(created_at=prep(Lead._meta.get_field("created_at"), now), ai_source=Lead.Source.MANUAL.value)
    fixed["updated_at"] = fixed["created_at"]
    by_name = {f.attname: f for f in fields}
    public_id = by_name["public_id"]
    rows = []
    keys = []
    for company in companies:
        row = dict(fixed, name_key=company.name_key, public_id=prep(public_id, uuid.uuid4()))
        for name, value in company.values.items():
            row[name] = prep(by_name[name], value)
        rows.append([row[f.attname] for f in fields])
        keys.append(row["public_id"])
    quote = connection.ops.quote_name
    table = quote(Lead._meta.db_table)
    sql = (f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    ids: dict[object, int] = {}
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            cursor.execute(
                f"SELECT {quote('id')}, {quote(public_id.column)} FROM {table} "
                f"WHERE {quote(public_id.column)} IN ({', '.join(['%s'] * len(part))})", part,
            )
            ids.update((key, pk) for pk, key in cursor.fetchall())
    return [ids[key] for key in keys]


def _update_columns(leads: list[Lead], columns: tuple[str, ...], now: Any) -> None:
    """Write ``columns`` (the ones the file changed), ai_source, updated_at (and name_key with the
    name) of ``leads``: one executemany (``core.bulk.update_columns``), so a concurrent run's
    values in the other columns stay."""
    for lead in leads:
        lead.ai_source = Lead.Source.MANUAL
        lead.updated_at = now
        if "name" in columns:
            lead.name_key = ja.company_name_key(lead.name)
    update_columns(Lead, leads, [*columns, "ai_source", "updated_at", *(("name_key",) if "name" in columns else ())])


def _write_one_by_one(chunk: list[_Company], *, source: str, report: ImportReport, claimed: set[int]) -> list[str]:
    """Fallback for a chunk the database refused: each company in its own transaction; the
    failing ones are reported with their rows."""
    outcomes = []
    for company in chunk:
        try:
            lead, outcome = store_row(company.values, source=source)
        except DatabaseError as exc:
            rows = "・".join(f"{r}行目" for r in company.rows[1:])
            report.errors.append(InputError(f"保存できません: {exc}" + (f"（{rows}も同じ企業）" if rows else ""),
                                            source=source, row=company.rows[0]))
            continue
        claimed.add(lead.pk)
        outcomes.append(outcome)
    return outcomes


def store_row(values: dict[str, object], *, source: str) -> tuple[Lead, str]:
    """Write one parsed row (``parse_row``) in its own transaction, its values marked "manual".

    Matches an existing lead with ``find_existing``; blank cells are not in ``values`` and so
    never erase stored values. Returns (lead, "created" | "updated" | "unchanged"). Used by the
    admin's import (``hokan.leads.admin``) and as the import's fallback for a refused chunk.
    """
    with transaction.atomic():
        lead = find_existing(values)
        created = lead is None
        if created:
            lead = Lead(name=str(values["name"]))
        now = timezone.now()
        changed = [
            _manual(name, value, source, now)
            for name, value in values.items()
            if created or _differs(getattr(lead, name), value)
        ]
        written = apply_values(lead, changed, only_missing=False)
        if created or written:
            if written:
                lead.ai_source = Lead.Source.MANUAL
            lead.save()
    if created:
        return lead, "created"
    return lead, "updated" if written else "unchanged"
