"""Importing a registry file into ``CompanyRecord``: the EDINET code list or a gBizINFO-style CSV.

``import_registry(path)`` reads the file through ``hokan.core.tabular`` (encodings, size and
cell limits, ``skip_bad_lines``), detects its kind from the header, and hands each row to its
reader — ``edinet_reader`` (the FSA's code list: CP932, a title line, 資本金 in 百万円) or
``gbizinfo_reader`` (gBizINFO's English or Japanese column names, or the camelCase job-portal
layout) — whose cells are validated with the registry's FieldSpecs (``cells``). The rows are
then merged into stored records by ``records`` (by 法人番号, else EDINET code, else normalised
name and prefecture; blanks never erase; ``records.SOURCE_PRIORITY`` decides between sources).

Within one file, rows of the same company (same 法人番号 …) are reduced to one before writing
(EDINET: the 提出義務者, listed, newest code wins; gBizINFO: the last row), so a re-import is a
no-op. A bad row is reported (row number as Excel shows it — the title line is row 1 — column,
reason) and skipped. Rows are validated first, then written per chunk of ``CHUNK_ROWS`` rows in
one transaction with bulk inserts/updates (per-row ORM saves took 31 s for the 11,374-row
EDINET file on SQLite, bulk writes about 3 s). If a chunk fails in the database, it is retried
row by row, each row in its own savepoint, and only the failing rows are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError, transaction

from hokan.core import ja
from hokan.core.errors import InputError
from hokan.core.tabular import Cell, TableLimits, check_cells, is_blank_row, read_table
from hokan.registry import edinet_reader, gbizinfo_reader
from hokan.registry.cells import CellError, header_key
from hokan.registry.records import ParsedRow, RecordIndex, write_bulk, write_rows

CHUNK_ROWS = 500
MAX_ROWS = 2_000_000  # a full gBizINFO dump has about 5 million: split it (HOKAN_IMPORT_MAX_ROWS is for lead lists)
KINDS = ("edinet", "gbizinfo")
DUPLICATE = "同じ会社の行が複数（1行だけ採用）"


@dataclass
class ImportReport:
    """What an import did.

    rows: data rows read; created/updated/unchanged: records written; skipped: {reason: rows}
    for rows that are not errors but are not imported (individuals, duplicates in the file);
    errors: one InputError per bad row (file, row number, column, reason) or unreadable line.
    """

    source: str
    kind: str = ""
    encoding: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _limits() -> TableLimits:
    """The ``HOKAN_IMPORT_*`` file limits, with the registry's own row limit (``MAX_ROWS``)."""
    from django.conf import settings

    return TableLimits(
        max_bytes=settings.HOKAN_IMPORT_MAX_BYTES,
        max_rows=MAX_ROWS,
        max_cell_chars=settings.HOKAN_IMPORT_MAX_CELL_CHARS,
        max_xlsx_unzipped_bytes=settings.HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES,
    )


def _text_cells(cells: Sequence[Cell]) -> list[str]:
    """Cells as text (an XLSX number cell 1000.0 as "1000")."""
    return ["" if c is None else str(int(c)) if isinstance(c, float) and c.is_integer() else str(c) for c in cells]


def _detect(rows: Iterator[tuple[int, list[Cell]]], kind: str | None, source: str) -> tuple[str, list[str]]:
    """(kind, header cells). Skips the EDINET title line."""
    for number, raw in rows:
        cells = _text_cells(raw)
        if is_blank_row(cells):
            continue
        first = ja.fold(cells[0]).strip() if cells else ""
        if first.startswith("ダウンロード実行日"):
            continue  # the EDINET code list's title line
        keys = {header_key(c) for c in cells}
        if header_key("EDINETコード") in keys:
            detected = "edinet"
        elif "name" in gbizinfo_reader.column_index(cells):
            detected = "gbizinfo"
        else:
            raise InputError(
                "EDINET コードリストでも gBizINFO 形式の CSV でもありません（ヘッダーに「ＥＤＩＮＥＴコード」"
                "または name / 名称 の列が必要です）",
                source=source, row=number,
            )
        if kind and kind != detected:
            raise InputError(f"--kind {kind} が指定されましたが、ファイルは {detected} 形式です", source=source)
        return detected, cells
    raise InputError("空のファイルです", source=source)


def parse_file(
    path: Path | str,
    *,
    kind: str | None = None,
    report: ImportReport | None = None,
    skip_bad_lines: bool = False,
    limits: TableLimits | None = None,
) -> tuple[list[ParsedRow], ImportReport]:
    """Read and validate ``path`` without writing: (one ParsedRow per company, report).

    Raises:
        InputError: the file is missing, unreadable (encoding, size, rows), empty or of neither kind.
    """
    if kind is not None and kind not in KINDS:
        raise InputError(f"種類は {' / '.join(KINDS)} のいずれかです: {kind}")
    path = Path(path)
    limits = limits or _limits()
    # The EDINET code list has a title line above its header: two lines before the data.
    table = read_table(path, limits=limits, skip_bad_lines=skip_bad_lines, header_rows=2)
    report = report or ImportReport(source=str(path))
    report.encoding = table.encoding
    report.errors.extend(bad.error(path.name) for bad in table.bad_lines)
    detected, headers = _detect(table.rows, kind, str(path))
    report.kind = detected
    if detected == "edinet":
        index = edinet_reader.column_index(headers, source=str(path))

        def parse(number: int, cells: list[str]) -> ParsedRow | str:
            return edinet_reader.parse_row(number, headers, cells, index)
    else:
        index = gbizinfo_reader.column_index(headers)
        unit = gbizinfo_reader.capital_unit(headers)

        def parse(number: int, cells: list[str]) -> ParsedRow | str:
            return gbizinfo_reader.parse_row(number, headers, cells, index, capital_unit=unit)

    best: dict[tuple[str, ...], ParsedRow] = {}
    for number, raw in table.rows:
        cells = _text_cells(raw)
        if is_blank_row(cells):
            continue
        report.rows += 1
        try:
            check_cells(cells, limits=limits, source=path.name, row=number, headers=headers)
            parsed = parse(number, cells)
        except InputError as exc:
            report.errors.append(exc)
            continue
        except CellError as exc:
            report.errors.append(InputError(exc.reason, source=path.name, row=number, field=exc.header))
            continue
        if isinstance(parsed, str):
            report.skip(parsed)
            continue
        key = parsed.key()
        other = best.get(key)
        if other is None:
            best[key] = parsed
            continue
        report.skip(DUPLICATE)
        if parsed.rank >= other.rank:
            best[key] = parsed
    report.errors.sort(key=lambda e: e.row or 0)
    return sorted(best.values(), key=lambda p: p.row), report


def import_registry(
    path: Path | str,
    *,
    kind: str | None = None,
    progress: Callable[[int], None] | None = None,
    skip_bad_lines: bool = False,
) -> ImportReport:
    """Import an EDINET code list or gBizINFO-style CSV into ``CompanyRecord``.

    kind: "edinet" | "gbizinfo" | None (detect from the header). progress: called with the number
    of rows just written (for a progress bar; the total is ``ImportReport.rows`` at the end).
    skip_bad_lines: import the lines that decode and report the others (default: refuse).
    Returns the ImportReport. Bad rows are in ``report.errors`` and are not written.

    Raises:
        InputError: the file is missing, unreadable, beyond a ``HOKAN_IMPORT_*`` limit, empty or
            of neither kind. Nothing is written then.
    """
    path = Path(path)
    parsed_rows, report = parse_file(path, kind=kind, skip_bad_lines=skip_bad_lines)
    source_file = path.name
    index = RecordIndex([p.values for p in parsed_rows])
    for start in range(0, len(parsed_rows), CHUNK_ROWS):
        chunk = parsed_rows[start : start + CHUNK_ROWS]
        planned = [(parsed, *index.plan(parsed, source_file=source_file)) for parsed in chunk]
        try:
            with transaction.atomic():
                write_bulk([(record, outcome) for _, record, outcome in planned])
        except DatabaseError:
            planned = write_rows(planned, report.errors, path.name)
        for _, record, outcome in planned:
            setattr(report, outcome, getattr(report, outcome) + 1)
            index.add(record)
        if progress is not None:
            progress(len(chunk))
    return report

