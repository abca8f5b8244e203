"""Reading the tables people bring (CSV, TSV, XLSX) without tracebacks, bombs or lost rows.

Pure (no Django). Used by every importer (lead lists, the company registry, the admin). The
guarantees, in the order they apply:

1. **Size first.** A file larger than ``TableLimits.max_bytes`` is refused before it is read; an
   XLSX whose unzipped parts exceed ``max_xlsx_unzipped_bytes`` (a zip bomb: 1 MB on disk, 1 GB
   of sheet XML) or whose sheet declares more than ``max_rows`` rows is refused before a single
   row is parsed. XML is parsed through defusedxml (openpyxl uses it when installed), so entity
   expansion ("billion laughs") is refused too.
2. **Encodings.** CSV bytes are UTF-8 with a BOM, UTF-16 with a BOM (Excel's 「Unicode テキスト」),
   UTF-8, or CP932 (Excel's 「CSV」 on Japanese Windows and the FSA's EDINET code list; a
   superset of Shift_JIS). When no encoding decodes the whole file, the one with fewest bad lines
   is meant; the file is refused naming the first bad line and its byte offset — or, with
   ``skip_bad_lines``, those lines are blanked and reported (``Decoded.bad_lines``) and the rest
   is read. Splitting the bytes on LF is safe in both UTF-8 and CP932 (0x0A is never a trail byte).
3. **Cells.** Any cell size up to the file size is parsed (``csv.field_size_limit`` is raised,
   never lowered); a cell over ``max_cell_chars`` is a bad row for the importer
   (``check_cells``), not a traceback — often an unclosed quote that swallowed the lines after it.
4. **Rows.** More than ``max_rows`` data rows raise ``InputError`` while reading; importers read
   everything before they write, so nothing is stored from a refused file.

Every error is an ``InputError`` naming the file, the row (as Excel numbers them: the first line
is 1) and, where a setting decides, the setting's name.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hokan.core.errors import InputError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
ENCODING_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8（BOM付き）", "cp932": "Shift_JIS（CP932）", "utf-16": "UTF-16"}


@dataclass(frozen=True)
class TableLimits:
    """What an import reads at most (settings ``HOKAN_IMPORT_*``, see README).

    max_bytes: the file on disk, bytes. max_rows: data rows (the header not counted).
    max_cell_chars: one cell, characters (32,767 is Excel's own limit per cell).
    max_xlsx_unzipped_bytes: all parts of an XLSX once unzipped, bytes.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_rows: int = 200_000
    max_cell_chars: int = 32_767
    max_xlsx_unzipped_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class BadLine:
    """A line that could not be decoded: line (1-based, as an editor numbers it), offset (byte
    offset in the file of its first undecodable byte, 0-based), encoding it was read as."""

    line: int
    offset: int
    encoding: str

    def error(self, source: str) -> InputError:
        label = ENCODING_LABELS.get(self.encoding, self.encoding)
        return InputError(
            f"{label} として読めないバイトがあるため、この行を読み飛ばしました（{self.offset + 1:,} バイト目）",
            source=source, row=self.line,
        )


@dataclass
class Decoded:
    """Decoded CSV text: text, encoding ("utf-8-sig" | "utf-16" | "utf-8" | "cp932"), and the
    lines blanked because they did not decode (only with ``skip_bad_lines``)."""

    text: str
    encoding: str
    bad_lines: list[BadLine] = field(default_factory=list)


def decode_text(data: bytes, *, source: str = "", skip_bad_lines: bool = False) -> Decoded:
    """Decode CSV bytes (see the module docstring, 2.).

    Raises:
        InputError: no encoding decodes every line, and ``skip_bad_lines`` is off: names the first
            bad line, its byte offset, how many lines are bad, and the option that reads the rest.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            if name == "utf-16":
                try:
                    return Decoded(data.decode("utf-16"), name)
                except UnicodeDecodeError as exc:
                    raise InputError(f"UTF-16 として読めません（{exc.start + 1:,} バイト目）", source=source) from None
            return _decode_lines(data, len(bom), ("utf-8",), name, source=source, skip_bad_lines=skip_bad_lines)
    return _decode_lines(data, 0, ("utf-8", "cp932"), "", source=source, skip_bad_lines=skip_bad_lines)


def decode_csv(data: bytes, *, source: str = "") -> tuple[str, str]:
    """Decode CSV bytes: (text, encoding name). Strict: see ``decode_text``.

    Raises:
        InputError: some line decodes in no encoding (names ``source``, the line and byte offset).
    """
    decoded = decode_text(data, source=source)
    return decoded.text, decoded.encoding


def _decode_lines(
    data: bytes, start: int, encodings: Sequence[str], bom_name: str, *, source: str, skip_bad_lines: bool
) -> Decoded:
    body = data[start:]
    for encoding in encodings:
        try:
            return Decoded(body.decode(encoding), bom_name or encoding)
        except UnicodeDecodeError:
            continue
    # No encoding reads every byte: the one with the fewest bad lines is the file's (ties: first).
    best: tuple[str, list[str], list[BadLine]] | None = None
    for encoding in encodings:
        lines, bad = _lines(body, start, encoding)
        if best is None or len(bad) < len(best[2]):
            best = (encoding, lines, bad)
    assert best is not None
    encoding, lines, bad = best
    name = bom_name or encoding
    if not skip_bad_lines:
        first = bad[0]
        label = ENCODING_LABELS.get(name, name)
        more = ""
        if len(bad) > 1:
            listed = "、".join(f"{b.line:,}行目" for b in bad[1:6]) + ("…" if len(bad) > 6 else "")
            more = f"。ほかにも読めない行があります: {listed}（計 {len(bad):,} 行）"
        raise InputError(
            f"{label} として読めないバイトがあります（{first.offset + 1:,} バイト目）{more}。"
            "読める行だけを取り込むには --skip-bad-lines を付けてください（読めない行は一覧に表示します）",
            source=source, row=first.line,
        )
    return Decoded("\n".join(lines), name, [BadLine(b.line, b.offset, name) for b in bad])


def _lines(body: bytes, start: int, encoding: str) -> tuple[list[str], list[BadLine]]:
    lines: list[str] = []
    bad: list[BadLine] = []
    offset = start
    for number, raw in enumerate(body.split(b"\n"), start=1):
        try:
            lines.append(raw.decode(encoding))
        except UnicodeDecodeError as exc:
            lines.append("")  # a blank line keeps the line numbers of the rest
            bad.append(BadLine(number, offset + exc.start, encoding))
        offset += len(raw) + 1
    return lines, bad


# --- tables ----------------------------------------------------------------------------------
Cell = object  # str from CSV; str, int, float, datetime, bool or None from XLSX


@dataclass
class Table:
    """A file's rows: rows yields (row number as Excel shows it, cells) for every line after the
    header-less start (number 1 = the first line); encoding: the CSV encoding or "xlsx";
    bad_lines: lines blanked by ``skip_bad_lines``. ``rows`` raises InputError past ``max_rows``."""

    rows: Iterator[tuple[int, list[Cell]]]
    encoding: str
    bad_lines: list[BadLine] = field(default_factory=list)


def read_table(
    path: Path, *, limits: TableLimits = TableLimits(), skip_bad_lines: bool = False, header_rows: int = 1
) -> Table:
    """Open a CSV / TSV / XLSX file as a Table (first sheet of a workbook).

    header_rows: lines before the data that ``max_rows`` does not count (the EDINET code list has
    a title line above its header: 2).

    Raises:
        InputError: missing file, unknown extension, file or unzipped XLSX too large, too many
            rows declared, undecodable bytes (without ``skip_bad_lines``), a broken workbook.
    """
    source = path.name
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("ファイルが見つかりません", source=str(path))
    if suffix not in CSV_SUFFIXES + XLSX_SUFFIXES:
        raise InputError(f"対応していない形式です（.csv / .tsv / .xlsx）: {suffix or '拡張子なし'}", source=str(path))
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputError(
            f"ファイルが大きすぎます（{size:,} バイト、上限 {limits.max_bytes:,} バイト: 設定 HOKAN_IMPORT_MAX_BYTES）",
            source=source,
        )
    if suffix in XLSX_SUFFIXES:
        return _read_xlsx(path, limits, header_rows)
    decoded = decode_text(path.read_bytes(), source=source, skip_bad_lines=skip_bad_lines)
    first_line = decoded.text[: decoded.text.find("\n")] if "\n" in decoded.text else decoded.text
    tab = suffix == ".tsv" or (suffix == ".txt" and "\t" in first_line and "," not in first_line)
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_bytes))
    reader = csv.reader(io.StringIO(decoded.text, newline=""), dialect="excel-tab" if tab else "excel")
    return Table(_counted(_csv_rows(reader, source), limits, header_rows, source), decoded.encoding,
                 decoded.bad_lines)


def _csv_rows(reader: Iterator[list[str]], source: str) -> Iterator[tuple[int, list[Cell]]]:
    number = 0
    try:
        for number, row in enumerate(reader, start=1):
            yield number, list(row)
    except csv.Error as exc:  # e.g. NUL bytes in the stream (a binary file renamed .csv)
        raise InputError(f"CSV として読めません: {exc}", source=source, row=number + 1) from None


def _counted(rows: Iterator[tuple[int, list[Cell]]], limits: TableLimits, header_rows: int,
             source: str) -> Iterator[tuple[int, list[Cell]]]:
    data_rows = 0
    for number, cells in rows:
        if number > header_rows and not is_blank_row(cells):
            data_rows += 1
            if data_rows > limits.max_rows:
                raise InputError(
                    f"行数が多すぎます（上限 {limits.max_rows:,} 行: 設定 HOKAN_IMPORT_MAX_ROWS）。ファイルを分けて取り込んでください",
                    source=source, row=number,
                )
        yield number, cells


def _read_xlsx(path: Path, limits: TableLimits, header_rows: int) -> Table:
    source = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"Excel ファイルとして読めません（zip 形式ではありません: {exc}）", source=source) from None
    if unzipped > limits.max_xlsx_unzipped_bytes:
        # zipfile never inflates a member past its declared size (it stops and fails the CRC), so
        # the declared sizes bound what openpyxl can read.
        raise InputError(
            f"Excel ファイルの展開後の大きさが上限を超えています（{unzipped:,} バイト、上限 "
            f"{limits.max_xlsx_unzipped_bytes:,} バイト: 設定 HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES）",
            source=source,
        )
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        declared = sheet.max_row  # from the sheet's <dimension>, when it has one
    except Exception as exc:  # openpyxl raises several unrelated types for broken files
        raise InputError(f"Excel ファイルとして読めません: {type(exc).__name__}: {exc}", source=source) from None
    if declared is not None and declared - header_rows > limits.max_rows:
        book.close()
        raise InputError(
            f"行数が多すぎます（{declared - header_rows:,} 行、上限 {limits.max_rows:,} 行: 設定 HOKAN_IMPORT_MAX_ROWS）。"
            "ファイルを分けて取り込んでください",
            source=source,
        )

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        try:
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, ["" if c is None else c for c in row]
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"Excel ファイルとして読めません: {type(exc).__name__}: {exc}", source=source) from None
        finally:
            book.close()

    return Table(_counted(rows(), limits, header_rows, source), "xlsx")


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else ("" if cell is None else str(cell))


def check_cells(cells: Sequence[Cell], *, limits: TableLimits, source: str, row: int,
                headers: Sequence[str] = ()) -> None:
    """Refuse a row with a cell longer than ``limits.max_cell_chars``.

    Raises:
        InputError: naming file, row, the column's header (or its position) and the setting.
    """
    for index, cell in enumerate(cells):
        if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
            name = headers[index] if index < len(headers) and headers[index] else f"{index + 1}列目"
            raise InputError(
                f"セルが長すぎます（{len(cell):,} 文字、上限 {limits.max_cell_chars:,} 文字: 設定 "
                "HOKAN_IMPORT_MAX_CELL_CHARS）。引用符（\"）が閉じていないと、後の行まで1つのセルになります",
                source=source, row=row, field=name,
            )


def is_blank_row(cells: Sequence[Cell]) -> bool:
    """True when every cell is empty or whitespace."""
    return not any(_text(c).strip() for c in cells)
