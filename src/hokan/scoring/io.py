"""Rows in (``Source``) and results out (``Sink``) of a scoring run — the seams other inputs
and outputs plug into (issue 11 §1, §2).

Rows in::

    class Source(Protocol):
        label: str                      # for messages: the file name, the sheet URL
        kind: str                       # "file", "sheet", ...
        def read(self) -> InputTable    # every row, header first; raises InputError

``FileSource(path)`` reads CSV (UTF-8, UTF-8 with BOM, CP932, UTF-16) and XLSX through
``hokan.core.tabular`` (size, row and zip-bomb limits: HOKAN_IMPORT_*). A Google Sheets source
(``hokan.scoring.sheets``, S2) returns the same ``InputTable``.

Results out::

    class Sink(Protocol):
        def write(self, cells: list[CellOutcome]) -> None     # a flush of the Writer (count / time)
        def chunk_done(self, rows: range) -> None             # every cell of these rows is stored
        def close(self) -> None                               # the run ends (also after an error)

The Writer stores every flush in the result store (``ScoringResult``) first, then calls
``write`` of each sink; a chunk is completed only after ``chunk_done`` returned. A sink that
cannot write raises: the pipeline stops with the sink's message (name the rows not written
in it). ``FileSink`` renders the output file — the input with one column per category and a
status column — from the result store, atomically (a temporary file renamed over the old
one): CSV at every finished chunk and at the end, XLSX at the end (a workbook is rewritten
whole; at chunk ends only when it has at most ``XLSX_REWRITE_MAX_ROWS`` rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hokan.core.errors import InputError
from hokan.core.tabular import TableLimits, check_cells, is_blank_row, read_table

STATUS_HEADER = "採点ステータス"  # the status column of the output (issue 11 §6)
XLSX_REWRITE_MAX_ROWS = 5_000


@dataclass
class InputTable:
    """A sheet: ``headers`` (the first row), ``rows`` (cells as text, blank rows dropped) and
    ``row_numbers`` (each row's number as the spreadsheet shows it: header = 1)."""

    headers: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    encoding: str = ""

    def column(self, name: str, *, source: str, required: bool = True) -> int | None:
        """The index of the column headed ``name`` (exact, then trimmed and case-folded).

        Raises:
            InputError: no such column (lists the headers), when ``required``.
        """
        for index, header in enumerate(self.headers):
            if header == name:
                return index
        folded = name.strip().casefold()
        for index, header in enumerate(self.headers):
            if header.strip().casefold() == folded:
                return index
        if not required:
            return None
        listed = "、".join(h for h in self.headers if h) or "（見出しなし）"
        raise InputError(f"列「{name}」がありません（見出し: {listed}）", source=source)


@dataclass(frozen=True)
class Utterance:
    """One row to score: ``index`` (0-based data row), ``row_number`` (as the sheet shows it),
    ``row_id`` (the id column's value, else the row number), ``text`` (the utterance)."""

    index: int
    row_number: int
    row_id: str
    text: str


@dataclass(frozen=True)
class CellOutcome:
    """One (row, category) result: ``score`` or ``error`` (never both blank); ``method``
    "llm" | "cache" | "stored" | "embedding"; ``cost_usd`` its share of the call (USD)."""

    row: int
    category: str
    score: float | None
    error: str = ""
    method: str = "llm"
    cost_usd: str = "0"

    @property
    def ok(self) -> bool:
        return self.score is not None and not self.error


class Source(Protocol):
    label: str
    kind: str

    def read(self) -> InputTable: ...


class Sink(Protocol):
    def write(self, cells: list[CellOutcome]) -> None: ...

    def chunk_done(self, rows: range) -> None: ...

    def close(self) -> None: ...


def _text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, (dt.datetime, dt.date)):
        return cell.isoformat()
    return str(cell)


class FileSource:
    """A CSV / TSV / XLSX file read through core.tabular (module docstring).

    max_cell_chars: the longest cell accepted (characters; default the import limit
    HOKAN_IMPORT_MAX_CELL_CHARS, or 5,000,000 for scoring: a call transcript can be long).
    """

    kind = "file"

    def __init__(self, path: Path | str, *, limits: TableLimits | None = None) -> None:
        self.path = Path(path)
        self.label = self.path.name
        self.limits = limits or scoring_limits()

    def read(self) -> InputTable:
        """Raises InputError: unreadable file, no header, a cell over the limit (names the row)."""
        table = read_table(self.path, limits=self.limits)
        headers: list[str] | None = None
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, cells in table.rows:
            if headers is None:
                headers = [_text(c).strip() for c in cells]
                continue
            if is_blank_row(cells):
                continue
            check_cells(cells, limits=self.limits, source=self.label, row=number, headers=headers)
            texts = [_text(c) for c in cells]
            texts += [""] * (len(headers) - len(texts))
            rows.append(texts)
            numbers.append(number)
        if headers is None or not any(headers):
            raise InputError("見出しの行がありません（1行目に列名を入れてください）", source=self.label)
        return InputTable(headers, rows, numbers, table.encoding)


def scoring_limits() -> TableLimits:
    """The import limits (HOKAN_IMPORT_*), with cells up to 5,000,000 characters (a whole
    call transcript in one cell; the tabular default is Excel's 32,767)."""
    try:
        from django.conf import settings

        return TableLimits(max_bytes=int(settings.HOKAN_IMPORT_MAX_BYTES), max_rows=int(settings.HOKAN_IMPORT_MAX_ROWS),
                           max_cell_chars=max(5_000_000, int(settings.HOKAN_IMPORT_MAX_CELL_CHARS)),
                           max_xlsx_unzipped_bytes=int(settings.HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES))
    except Exception:  # outside Django or a setting missing: tabular's defaults
        return TableLimits(max_cell_chars=5_000_000)


def utterances(table: InputTable, *, text_column: str, id_column: str = "", source: str = "") -> list[Utterance]:
    """Every row of ``table`` as an Utterance (rows with an empty text included: they are
    reported as errors, never scored from nothing).

    Raises:
        InputError: the text or id column is missing.
    """
    text_index = table.column(text_column, source=source)
    id_index = table.column(id_column, source=source) if id_column else None
    assert text_index is not None
    found = []
    for index, (cells, number) in enumerate(zip(table.rows, table.row_numbers, strict=True)):
        text = cells[text_index] if text_index < len(cells) else ""
        row_id = cells[id_index].strip() if id_index is not None and id_index < len(cells) else ""
        found.append(Utterance(index, number, row_id or str(number), text))
    return found


# --- output files ---------------------------------------------------------------------------
@dataclass
class FileSink:
    """The output file (CSV / XLSX by its suffix), rendered from the result store.

    cells_of: () → {row index: {category: (score or None, status text)}} read from the store.
    table: the input; categories: the output columns in order; scale: "0-1" | "1-5";
    done_label: the status of a row scored in full ("完了"; the offline scorer's runs say so).
    """

    path: Path
    table: InputTable
    categories: Sequence[str]
    scale: str
    cells_of: Callable[[], dict[int, dict[str, tuple[float | None, str]]]]
    done_label: str = "完了"
    rewrites: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.suffix.lower() not in (".csv", ".xlsx"):
            raise InputError("出力ファイルは .csv か .xlsx です", source=str(self.path))

    def write(self, cells: list[CellOutcome]) -> None:
        """Nothing: the file is rendered from the result store (``chunk_done`` / ``close``)."""

    def chunk_done(self, rows: range) -> None:
        if self.path.suffix.lower() == ".csv" or len(self.table.rows) <= XLSX_REWRITE_MAX_ROWS:
            self.render()

    def close(self) -> None:
        self.render()

    def render(self) -> None:
        """Write the whole output file now (atomic replace)."""
        grid = self.cells_of()
        header = list(self.table.headers) + list(self.categories) + [STATUS_HEADER]
        lines = (list(cells) + self._scored(grid.get(index, {})) for index, cells in enumerate(self.table.rows))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(handle)
        try:
            if self.path.suffix.lower() == ".csv":
                _write_csv(Path(temp), header, lines)
            else:
                _write_xlsx(Path(temp), header, lines)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self.rewrites += 1

    def _scored(self, row: dict[str, tuple[float | None, str]]) -> list[object]:
        values: list[object] = []
        errors: list[str] = []
        for name in self.categories:
            score, status = row.get(name, (None, ""))
            values.append(format_score(score, self.scale))
            if status:
                errors.append(f"{name}: {status}")
        if not row:
            values.append("未処理")
        elif errors:
            values.append("エラー（" + "; ".join(errors)[:1000] + "）")
        elif len(row) < len(self.categories):
            values.append("処理中")
        else:
            values.append(self.done_label)
        return values


def format_score(score: float | None, scale: str) -> object:
    """A score as the output shows it: 1–5 as an integer, 0–1 with up to 3 decimals; "" for none."""
    if score is None:
        return ""
    if scale == "1-5":
        return int(round(score))
    return float(f"{score:.3f}")


def _write_csv(path: Path, header: list[str], lines: Iterable[list[object]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:  # BOM: Excel opens it as UTF-8
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(lines)


def _write_xlsx(path: Path, header: list[str], lines: Iterable[list[object]]) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("スコア")
    sheet.append(header)
    for line in lines:
        sheet.append([_xlsx_cell(v) for v in line])
    book.save(path)


def _xlsx_cell(value: object) -> object:
    # Excel keeps at most 32,767 characters per cell; a longer utterance is cut in the output
    # file only (the score was made from the whole text).
    if isinstance(value, str) and len(value) > 32_767:
        return value[:32_760] + "…"
    return value
