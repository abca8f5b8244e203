"""Importing a lead list from CSV (UTF-8 with or without BOM, CP932 / Shift_JIS) or XLSX.

Headers are matched to Lead columns by their Japanese or English names (``columns.COLUMNS``:
企業名, 法人番号, 業種, …). Each row is validated as a whole, then written in its own
transaction: a bad row is reported (file, row number as Excel shows it, column, reason) and
skipped, and nothing of it is written; rows already stored are never lost or half-written.

Matching an existing lead: by 法人番号, else by normalised company name (株式会社/(株)/width/
spaces folded) when exactly one lead has it. A matched lead gets the file's non-blank values
(marked "manual": a person supplied them); blank cells never erase stored values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from hokan.core import ja
from hokan.core.errors import InputError
from hokan.core.tabular import decode_csv
from hokan.core.fields import FieldValue
from hokan.leads.columns import COLUMNS
from hokan.leads.models import Lead
from hokan.leads.store import apply_values
from hokan.leads.values import clean_value

MAX_ROWS = 200_000


@dataclass
class ImportReport:
    """What an import did. errors: one InputError per skipped row (or unreadable header)."""

    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)
    ignored_headers: list[str] = field(default_factory=list)
    encoding: str = ""


def _header_key(text: str) -> str:
    return ja.fold(text).lower().replace(" ", "").replace("_", "").replace("-", "")


_HEADER_INDEX: dict[str, str] = {}
for _column in COLUMNS:
    for _name in (_column.name, _column.label, *_column.aliases):
        _HEADER_INDEX.setdefault(_header_key(_name), _column.name)


def map_headers(headers: list[str]) -> tuple[dict[int, str], list[str]]:
    """Map header cells to column names: ({cell index: column name}, [ignored headers])."""
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    for index, header in enumerate(headers):
        name = _HEADER_INDEX.get(_header_key(header or ""))
        if name is None or name in mapping.values():
            if (header or "").strip():
                ignored.append(header)
            continue
        mapping[index] = name
    return mapping, ignored


def read_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], str]:
    """(header cells, iterator of (row number, cells), encoding). Row numbers as Excel shows them.

    Raises:
        InputError: the file cannot be read, is empty or has an unknown extension.
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("ファイルが見つかりません", source=str(path))
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several unrelated types for broken files
            raise InputError(f"Excel ファイルとして読めません: {exc}", source=str(path)) from exc
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        try:
            header = [str(c) if c is not None else "" for c in next(rows)]
        except StopIteration:
            raise InputError("空のファイルです", source=str(path)) from None

        def xlsx_rows() -> Iterator[tuple[int, list[str]]]:
            for number, row in enumerate(rows, start=2):
                yield number, ["" if c is None else c for c in row]
            book.close()

        return header, xlsx_rows(), "xlsx"
    if suffix in (".csv", ".tsv", ".txt"):
        text, encoding = decode_csv(path.read_bytes(), source=str(path))
        dialect = "excel-tab" if suffix == ".tsv" else "excel"
        reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("空のファイルです", source=str(path)) from None

        def csv_rows() -> Iterator[tuple[int, list[str]]]:
            for number, row in enumerate(reader, start=2):
                yield number, row

        return header, csv_rows(), encoding
    raise InputError(f"対応していない形式です（.csv / .xlsx）: {suffix or '拡張子なし'}", source=str(path))


def parse_row(cells: list, mapping: dict[int, str], *, source: str, row: int) -> dict[str, object]:
    """Validate one row into {column: value}; blank cells are left out.

    Raises:
        InputError: the first invalid cell (naming file, row and column), or a missing 企業名.
    """
    values: dict[str, object] = {}
    for index, name in mapping.items():
        cell = cells[index] if index < len(cells) else ""
        try:
            value = clean_value(name, cell)
        except ValueError as exc:
            label = next(c.label for c in COLUMNS if c.name == name)
            raise InputError(str(exc), source=source, row=row, field=label) from None
        if value is not None:
            values[name] = value
    if "location" in values and not values.get("prefecture"):
        address = ja.split_address(str(values["location"]))
        if address is not None and address.prefecture and not address.prefecture_inferred:
            values["prefecture"] = address.prefecture
            if address.city and not values.get("city"):
                values["city"] = address.city
            values["location"] = address.rest
            if address.postal_code and not values.get("postal_code"):
                values["postal_code"] = address.postal_code
    if not values.get("name"):
        raise InputError("企業名が空です", source=source, row=row, field="企業名")
    return values


def find_existing(values: dict[str, object]) -> Lead | None:
    """The stored lead this row describes: same 法人番号, else the one lead with the same name."""
    number = values.get("corporate_number")
    if number:
        found = Lead.objects.filter(corporate_number=number).first()
        if found:
            return found
    candidates = list(Lead.objects.filter(name_key=ja.company_name_key(str(values["name"])))[:2])
    return candidates[0] if len(candidates) == 1 else None


def import_leads(path: Path, *, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a CSV/XLSX lead list. Returns the report; bad rows are in ``report.errors``.

    Raises:
        InputError: the file itself cannot be read, or no header maps to 企業名.
    """
    source = path.name
    header, rows, encoding = read_rows(path)
    mapping, ignored = map_headers(header)
    if "name" not in mapping.values():
        raise InputError(
            "見出し行に「企業名」（会社名・社名・name でも可）の列がありません: " + ", ".join(h for h in header if h),
            source=source, row=1,
        )
    report = ImportReport(source=source, ignored_headers=ignored, encoding=encoding)
    for number, cells in rows:
        if number - 1 > MAX_ROWS:
            report.errors.append(InputError(f"{MAX_ROWS:,} 行を超える分は読み込みません", source=source, row=number))
            break
        if progress:
            progress(1)
        if not any(str(c).strip() for c in cells):
            continue
        report.rows += 1
        try:
            values = parse_row(cells, mapping, source=source, row=number)
        except InputError as exc:
            report.errors.append(exc)
            continue
        _lead, outcome = store_row(values, source=source)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def store_row(values: dict[str, object], *, source: str) -> tuple[Lead, str]:
    """Write one parsed row (``parse_row``) in its own transaction, its values marked "manual".

    Matches an existing lead with ``find_existing``; blank cells are not in ``values`` and so
    never erase stored values. Returns (lead, "created" | "updated" | "unchanged"). Used by
    ``import_leads`` and by the admin's import (``hokan.leads.admin``).
    """
    with transaction.atomic():
        lead = find_existing(values)
        created = lead is None
        if created:
            lead = Lead(name=str(values["name"]))
        changed = [
            FieldValue(field=name, value=value, raw=str(value), quote="", source_url=None, method="manual",
                       confidence=1.0, extractor=f"import:{source}"[:40])
            for name, value in values.items()
            if created or getattr(lead, name) in (None, "") or _differs(getattr(lead, name), value)
        ]
        written = apply_values(lead, changed, only_missing=False)
        if created or written:
            if written:
                lead.ai_source = Lead.Source.MANUAL
            lead.save()
    if created:
        return lead, "created"
    return lead, "updated" if written else "unchanged"


def _differs(current: object, new: object) -> bool:
    if current is None or current == "":
        return True
    try:
        return int(current) != int(new)  # Decimal columns against int values
    except (TypeError, ValueError):
        return str(current) != str(new)
