"""The record store: parsed registry rows merged into ``CompanyRecord`` rows.

A row of any source (EDINET code list, gBizINFO CSV, gBizINFO API) arrives as a ``ParsedRow``
(values already validated by ``cells``). Rows are merged into existing records, never
duplicated: by 法人番号, else by EDINET code, else by (normalised name, prefecture) among
records without 法人番号. Non-blank values overwrite stored ones unless a higher-priority
source gave them (``SOURCE_PRIORITY``); blanks never erase (another source may have given the
value). ``evidence`` keeps, per column, the source, the raw cell and the quote.

- ``RecordIndex``: the stored records a file may touch, loaded once (three queries at most per
  500 keys), and ``plan`` — the merged record and "created" | "updated" | "unchanged";
- ``write_bulk``: a chunk of planned records in bulk (insert, then one executemany UPDATE,
  ``core.bulk.update_columns``);
  ``write_rows``: the fallback row by row, each in its own savepoint;
- ``upsert``: one row (API answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from hokan.core import ja
from hokan.core.bulk import update_columns
from hokan.core.errors import InputError
from hokan.registry.models import CompanyRecord

# Columns of one record that describe the address; they are replaced together, so that a split
# address is never mixed with parts of another source's address.
ADDRESS_FIELDS = ("address", "prefecture", "city", "location", "postal_code")

# When two sources give a column different values, the value of the higher one stays, whatever
# the order of imports (so re-importing either file is a no-op): the gBizINFO API (live, keyed by
# 法人番号) over the EDINET code list (the FSA's, from filings) over gBizINFO-style CSV copies
# (derived files of unknown date).
SOURCE_PRIORITY = {"gbizinfo_api": 3, "edinet": 2, "gbizinfo_csv": 1}

TRACKED = (
    "corporate_number", "name", *ADDRESS_FIELDS, "capital", "employee_count", "established_year", "industry",
    "website_url", "representative_name", "representative_title", "phone", "edinet_code", "securities_code",
    "listed", "source", "source_file", "evidence", "raw",
)  # fmt: skip  (ends with source, source_file, evidence, raw: ``RecordIndex.plan`` relies on it)


@dataclass
class ParsedRow:
    """One file row (or API answer) turned into record values.

    row: its row number (as Excel shows it); source: a ``CompanyRecord.Source`` value; values:
    {column: value}; evidence: {column: (raw, quote)}; raw: {header: cell} as published; rank:
    orders rows of the same company in one file (the highest wins).
    """

    row: int
    source: str
    values: dict[str, Any]
    evidence: dict[str, tuple[str, str]]
    raw: dict[str, str]
    rank: tuple[Any, ...] = ()

    def key(self) -> tuple[str, ...]:
        """What identifies the company within one file: 法人番号, else EDINET code, else
        (normalised name, prefecture)."""
        if self.values.get("corporate_number"):
            return ("cn", self.values["corporate_number"])
        if self.values.get("edinet_code"):
            return ("edinet", self.values["edinet_code"])
        return ("name", ja.company_name_key(self.values["name"]), self.values.get("prefecture", ""))


class RecordIndex:
    """The stored records a file may touch, loaded once: by 法人番号, EDINET code and
    (name_key, prefecture). Lookups follow ``find_existing``'s rules without a query per row."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_number: dict[str, CompanyRecord] = {}
        self.by_code: dict[str, CompanyRecord] = {}
        self.by_name: dict[tuple[str, str], list[CompanyRecord]] = {}
        self.by_pk: dict[int, CompanyRecord] = {}  # one instance per row, whichever key found it
        # find() tries 法人番号, then EDINET code, then the name: a row found by an earlier key
        # needs no later lookup, so each stage only asks for the rows still unmatched (a
        # re-import then reads each stored record once instead of three times).
        self._load("corporate_number__in", {v["corporate_number"] for v in rows if v.get("corporate_number")})
        rest = [v for v in rows if v.get("corporate_number") not in self.by_number]
        self._load("edinet_code__in", {v["edinet_code"] for v in rest if v.get("edinet_code")})
        rest = [v for v in rest if v.get("edinet_code") not in self.by_code]
        self._load("name_key__in", {ja.company_name_key(v["name"]) for v in rest} - {""})

    def _load(self, lookup: str, wanted: set[str]) -> None:
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 500):
            for record in CompanyRecord.objects.filter(**{lookup: ordered[start : start + 500]}):
                self.add(record)

    def add(self, record: CompanyRecord) -> None:
        """Index a record (a stored one, or one just written)."""
        if record.pk is not None:
            record = self.by_pk.setdefault(record.pk, record)
        if record.corporate_number:
            self.by_number[record.corporate_number] = record
        if record.edinet_code:
            self.by_code[record.edinet_code] = record
        bucket = self.by_name.setdefault((ja.company_name_key(record.name), record.prefecture), [])
        if all(r is not record for r in bucket):
            bucket.append(record)

    def find(self, values: dict[str, Any]) -> CompanyRecord | None:
        """See ``find_existing``."""
        number, code = values.get("corporate_number"), values.get("edinet_code")
        if number and number in self.by_number:
            return self.by_number[number]
        if code and code in self.by_code:
            return self.by_code[code]
        bucket = self.by_name.get((ja.company_name_key(values["name"]), values.get("prefecture", "")), [])
        for record in sorted(bucket, key=lambda r: r.pk or 0):
            if ja.company_name_key(record.name) != ja.company_name_key(values["name"]):
                continue  # renamed since it was indexed
            if record.corporate_number or (code and record.edinet_code):
                continue
            if record.prefecture != values.get("prefecture", ""):
                continue
            return record
        return None

    def plan(self, parsed: ParsedRow, *, source_file: str) -> tuple[CompanyRecord, str]:
        """(the record merged with ``parsed``, "created" | "updated" | "unchanged"); not saved."""
        record = self.find(parsed.values)
        if record is None:
            record = CompanyRecord()
            merge(record, parsed, source_file=source_file)
            return record, "created"
        before = _snapshot(record)
        merge(record, parsed, source_file=source_file)
        after = _snapshot(record)  # TRACKED ends with source, source_file, evidence, raw
        if after[:-4] == before[:-4] and after[-2:] == before[-2:]:
            # Same values: the row is "unchanged", and the record keeps naming the source (and
            # file) that last changed it, so re-importing a file or its UTF-8 copy is a no-op.
            record.source, record.source_file = before[-4], before[-3]
            return record, "unchanged"
        return record, "updated"


def find_existing(values: dict[str, Any]) -> CompanyRecord | None:
    """The record these values belong to: by 法人番号, else EDINET code, else by (name_key,
    prefecture) among records without 法人番号 (and without EDINET code when ``values`` has one)."""
    return RecordIndex([values]).find(values)


def _snapshot(record: CompanyRecord) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in TRACKED)


def _may_write(evidence: dict[str, Any], name: str, source: str) -> bool:
    current = evidence.get(name)
    if not current:
        return True
    return SOURCE_PRIORITY.get(source, 0) >= SOURCE_PRIORITY.get(current.get("source", ""), 0)


def merge(record: CompanyRecord, parsed: ParsedRow, *, source_file: str) -> None:
    """Write the non-blank values of ``parsed`` into ``record`` (not saved).

    A column holding a value of a higher-priority source (``SOURCE_PRIORITY``) is kept. The
    address columns are replaced as a group: an address with a prefecture always replaces one
    without (EDINET's 所在地 often lacks it); otherwise the priority decides.
    """
    values = parsed.values
    evidence = dict(record.evidence or {})
    if record.prefecture:
        replace_address = bool(values.get("prefecture")) and _may_write(evidence, "address", parsed.source)
    else:  # anything with a prefecture, else a same-or-higher source's text
        replace_address = bool(values.get("prefecture")) or _may_write(evidence, "address", parsed.source)
    for name, value in values.items():
        if value is None or value == "":
            continue
        if name in ADDRESS_FIELDS:
            if not replace_address:
                continue
        elif name in parsed.evidence and not _may_write(evidence, name, parsed.source):
            continue
        setattr(record, name, value)
    if replace_address and any(values.get(n) for n in ADDRESS_FIELDS):
        for name in ADDRESS_FIELDS:
            if not values.get(name):
                setattr(record, name, "")
                evidence.pop(name, None)
    for name, (raw, quote) in parsed.evidence.items():
        if name in ADDRESS_FIELDS:
            if not replace_address:
                continue
        elif not _may_write(evidence, name, parsed.source):
            continue
        evidence[name] = {"source": parsed.source, "raw": raw, "quote": quote[:500]}
    record.evidence = evidence
    record.raw = {**(record.raw or {}), parsed.source: parsed.raw}
    record.source = parsed.source
    record.source_file = source_file[:500]


def upsert(parsed: ParsedRow, *, source_file: str) -> tuple[CompanyRecord, str]:
    """Create or update the record of one parsed row (a few queries per call; for single rows
    such as API results): (the saved record, "created" | "updated" | "unchanged")."""
    record, outcome = RecordIndex([parsed.values]).plan(parsed, source_file=source_file)
    if outcome != "unchanged":
        record.save()
    return record, outcome


Planned = tuple[ParsedRow, CompanyRecord, str]


def write_bulk(planned: list[tuple[CompanyRecord, str]]) -> None:
    """Write a chunk in the caller's transaction: new records in one bulk insert, changed ones in
    one executemany UPDATE. Raises DatabaseError when the database refuses any of them."""
    now = timezone.now()
    new = [record for record, outcome in planned if outcome == "created"]
    changed = [record for record, outcome in planned if outcome == "updated"]
    for record in new + changed:
        record.name_key = ja.company_name_key(record.name)
        record.updated_at = now
    if new:
        CompanyRecord.objects.bulk_create(new)
    if changed:
        update_columns(CompanyRecord, changed, (*TRACKED, "name_key", "updated_at"))


def write_rows(planned: list[Planned], errors: list[InputError], source: str) -> list[Planned]:
    """Fallback: save row by row, each in its own savepoint; a refused row is appended to
    ``errors`` (naming ``source`` and its row). Returns the rows that were saved."""
    saved = []
    with transaction.atomic():
        for parsed, record, outcome in planned:
            if outcome == "unchanged":
                saved.append((parsed, record, outcome))
                continue
            if outcome == "created":
                record.pk = None
            try:
                with transaction.atomic():
                    record.save()
            except DatabaseError as exc:
                errors.append(InputError(f"保存できません: {exc}", source=source, row=parsed.row))
                continue
            saved.append((parsed, record, outcome))
    return saved
