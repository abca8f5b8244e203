"""core.tabular: encodings, bad lines, limits (pure: no database)."""

from __future__ import annotations

import codecs

import pytest

from hokan.core.errors import InputError
from hokan.core.tabular import TableLimits, check_cells, decode_csv, decode_text, read_table


@pytest.mark.parametrize("encoding,name", [("utf-8", "utf-8"), ("cp932", "cp932"), ("utf-8-sig", "utf-8-sig"),
                                           ("utf-16", "utf-16")])
def test_it_decodes_the_encodings_excel_writes(encoding, name):
    text = "企業名,所在地\n株式会社セガ,東京都品川区\n"
    assert decode_csv(text.encode(encoding)) == (text, name)


def test_the_encoding_with_fewest_bad_lines_is_meant_and_named():
    good = "\n".join(f"株式会社{i},製造業" for i in range(10)).encode("cp932")
    broken = good.replace("製造業".encode("cp932"), b"\x81\x20", 1)
    with pytest.raises(InputError) as caught:
        decode_text(broken, source="a.csv")
    assert caught.value.row == 1 and "Shift_JIS" in caught.value.reason and "a.csv" in str(caught.value)
    decoded = decode_text(broken, source="a.csv", skip_bad_lines=True)
    assert decoded.encoding == "cp932"
    assert [(b.line, b.offset) for b in decoded.bad_lines] == [(1, broken.index(b"\x81\x20"))]
    assert decoded.text.split("\n")[0] == "" and decoded.text.split("\n")[1] == "株式会社1,製造業"


def test_a_bom_decides_the_encoding_and_counts_in_the_offset():
    data = codecs.BOM_UTF8 + "a,b\nc,\xe9\n".encode("utf-8").replace("\xe9".encode(), b"\xe9")
    decoded = decode_text(data, skip_bad_lines=True)
    assert decoded.encoding == "utf-8-sig"
    assert [(b.line, b.offset) for b in decoded.bad_lines] == [(2, data.index(b"\xe9"))]


def test_it_reads_tsv_and_counts_rows_against_the_limit(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("企業名\t業種\nA\tIT\n\nB\t製造\n", encoding="utf-8")
    table = read_table(path)
    assert list(table.rows) == [(1, ["企業名", "業種"]), (2, ["A", "IT"]), (3, []), (4, ["B", "製造"])]
    table = read_table(path, limits=TableLimits(max_rows=1))
    with pytest.raises(InputError, match="HOKAN_IMPORT_MAX_ROWS"):
        list(table.rows)


def test_a_broken_xlsx_is_an_input_error(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="Excel"):
        read_table(path)


def test_check_cells_names_the_column():
    with pytest.raises(InputError) as caught:
        check_cells(["ok", "x" * 11], limits=TableLimits(max_cell_chars=10), source="a.csv", row=7, headers=["A", "B"])
    assert (caught.value.row, caught.value.field) == (7, "B")
