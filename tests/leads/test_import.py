"""Importing lead lists: encodings, XLSX, Japanese headers, bad rows, re-imports."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from hokan.core.errors import InputError
from hokan.leads.export_leads import export_leads
from hokan.leads.import_leads import import_leads
from hokan.leads.models import Lead, LeadFieldSource

HEADER = ["企業名", "法人番号", "業種", "所在地", "資本金", "従業員数", "設立年", "電話番号", "公式サイト"]
ROWS = [
    ["株式会社Novarise", "6120001271738", "人材", "大阪府大阪市西区北堀江1-14-24", "100万円", "", "令和6年", "06-4400-8401",
     "https://novarise-office.github.io/hp/"],
    ["株式会社セガ", "", "ゲーム", "", "1億円", "3,499名", "1960", "", "https://www.sega.co.jp/"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig", "utf-8"])
def test_it_imports_csv_in_the_encodings_excel_writes(tmp_path, encoding):
    report = import_leads(write_csv(tmp_path / "leads.csv", [HEADER, *ROWS], encoding))
    assert (report.created, report.errors) == (2, [])
    novarise = Lead.objects.get(corporate_number="6120001271738")
    assert novarise.name == "株式会社Novarise"
    assert (novarise.prefecture, novarise.city, novarise.location) == ("大阪府", "大阪市西区", "北堀江1-14-24")
    assert (int(novarise.capital), novarise.established_year, novarise.phone) == (1_000_000, 2024, "06-4400-8401")
    sega = Lead.objects.get(name="株式会社セガ")
    assert (int(sega.capital), sega.employee_count, sega.established_year) == (100_000_000, 3499, 1960)
    assert LeadFieldSource.objects.get(lead=sega, field="capital").method == "manual"


@pytest.mark.django_db
def test_it_imports_xlsx(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    sheet.append(["株式会社数値", "", "", "", 50_000_000, 12, 2001, "", ""])  # numbers as Excel stores them
    book.save(tmp_path / "leads.xlsx")
    report = import_leads(tmp_path / "leads.xlsx")
    assert (report.created, report.errors) == (3, [])
    numeric = Lead.objects.get(name="株式会社数値")
    assert (int(numeric.capital), numeric.employee_count, numeric.established_year) == (50_000_000, 12, 2001)


@pytest.mark.django_db
def test_it_reports_bad_rows_with_their_number_and_keeps_the_good_ones(tmp_path):
    rows = [
        HEADER,
        ROWS[0],
        ["", "", "", "", "", "", "", "", ""],  # blank line: ignored, not an error
        ["", "", "IT", "", "", "", "", "", ""],  # row 4: no company name
        ["株式会社誤番号", "1234567890123", "", "", "", "", "", "", ""],  # row 5: bad check digit
        ["株式会社誤電話", "", "", "", "", "", "", "12-34", ""],  # row 6: not a phone
        ROWS[1],
    ]
    report = import_leads(write_csv(tmp_path / "bad.csv", rows, "utf-8"))
    assert report.created == 2
    messages = [str(e) for e in report.errors]
    assert [e.row for e in report.errors] == [4, 5, 6]
    assert "企業名" in messages[0]
    assert "法人番号" in messages[1] and "bad.csv" in messages[1] and "5行目" in messages[1]
    assert "電話番号" in messages[2]
    assert not Lead.objects.filter(name__in=["株式会社誤番号", "株式会社誤電話"]).exists()


@pytest.mark.django_db
def test_it_updates_instead_of_duplicating_on_reimport(tmp_path):
    path = write_csv(tmp_path / "leads.csv", [HEADER, *ROWS], "utf-8")
    import_leads(path)
    again = import_leads(path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    # Same company written differently: (株), full-width letters.
    variant = write_csv(tmp_path / "v.csv", [["会社名", "従業員数"], ["（株）セガ", "3,500名"]], "utf-8")
    report = import_leads(variant)
    assert (report.created, report.updated) == (0, 1)
    assert Lead.objects.count() == 2
    assert Lead.objects.get(name="株式会社セガ").employee_count == 3500


@pytest.mark.django_db
def test_it_never_erases_a_stored_value_with_a_blank_cell(tmp_path):
    import_leads(write_csv(tmp_path / "a.csv", [HEADER, ROWS[1]], "utf-8"))
    import_leads(write_csv(tmp_path / "b.csv", [["企業名", "資本金"], ["株式会社セガ", ""]], "utf-8"))
    assert int(Lead.objects.get(name="株式会社セガ").capital) == 100_000_000


def test_it_refuses_a_file_without_a_company_name_column(tmp_path):
    path = write_csv(tmp_path / "x.csv", [["foo", "bar"], ["1", "2"]], "utf-8")
    with pytest.raises(InputError, match="企業名"):
        import_leads(path)


def test_it_refuses_an_unknown_format(tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="対応していない形式"):
        import_leads(tmp_path / "x.pdf")


@pytest.mark.django_db
@pytest.mark.parametrize("suffix,encoding", [(".csv", "utf-8-sig"), (".csv", "cp932"), (".xlsx", "")])
def test_it_exports_a_file_that_imports_back_unchanged(tmp_path, suffix, encoding):
    import_leads(write_csv(tmp_path / "in.csv", [HEADER, *ROWS], "utf-8"))
    out = tmp_path / f"out{suffix}"
    assert export_leads(out, **({"encoding": encoding} if encoding else {})) == 2
    report = import_leads(out)
    assert (report.created, report.updated, report.unchanged, report.errors) == (0, 0, 2, [])


# --- bad input: a clear error naming file / row / setting, nothing half-written (issue 8 §3) -----
def cli(*args: str):
    from typer.testing import CliRunner

    from hokan.leads.command import app

    result = CliRunner().invoke(app, list(args))
    result.flat = "".join(result.output.split())  # rich wraps long lines at the terminal width
    return result


@pytest.mark.django_db
def test_a_cell_over_the_limit_is_a_bad_row_and_the_rest_is_imported(tmp_path, settings):
    settings.HOKAN_IMPORT_MAX_CELL_CHARS = 1000
    huge = "あ" * 200_000  # beyond csv's own 131,072-character field limit
    path = write_csv(tmp_path / "big.csv", [HEADER[:3], ["株式会社大きい", "", huge], *[r[:3] for r in ROWS]], "utf-8")
    report = import_leads(path)
    assert report.created == 2
    [error] = report.errors
    assert (error.row, error.field) == (2, "業種")
    assert "HOKAN_IMPORT_MAX_CELL_CHARS" in str(error) and "big.csv" in str(error) and "200,000" in str(error)
    assert not Lead.objects.filter(name="株式会社大きい").exists()


@pytest.mark.django_db
def test_an_unclosed_quote_swallowing_the_file_is_reported_not_a_traceback(tmp_path, settings):
    settings.HOKAN_IMPORT_MAX_CELL_CHARS = 5000
    lines = ["企業名,業種", "株式会社A,IT", '株式会社B,"IT'] + [f"株式会社{i},製造" for i in range(2000)]
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    report = import_leads(path)
    assert report.created == 1
    assert [e.row for e in report.errors] == [3]
    assert "引用符" in report.errors[0].reason


@pytest.mark.django_db
def test_a_utf8_file_with_a_bom_and_one_bad_byte_names_the_line_and_byte(tmp_path):
    good = "\n".join(["企業名,業種", "株式会社A,IT", "株式会社B,製造", "株式会社C,小売"]).encode("utf-8")
    data = b"\xef\xbb\xbf" + good.replace("製造".encode(), b"\xff\xfe")  # line 3 broken
    path = tmp_path / "bom.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        import_leads(path)
    message = str(caught.value)
    assert caught.value.row == 3 and "bom.csv" in message and "UTF-8" in message
    offset = data.index(b"\xff") + 1
    assert f"{offset} バイト目" in message and "--skip-bad-lines" in message
    assert Lead.objects.count() == 0
    report = import_leads(path, skip_bad_lines=True)
    assert report.created == 2 and report.encoding == "utf-8-sig"
    assert [e.row for e in report.errors] == [3]
    assert set(Lead.objects.values_list("name", flat=True)) == {"株式会社A", "株式会社C"}


@pytest.mark.django_db
def test_a_cp932_file_with_undecodable_bytes_is_refused_then_read_without_the_bad_lines(tmp_path):
    rows = [["企業名", "業種", "所在地"]] + [[f"株式会社テスト{i}", "製造業", "東京都港区芝1-1"] for i in range(20)]
    data = bytearray(write_csv(tmp_path / "x.csv", rows, "cp932").read_bytes())
    lines = data.split(b"\n")
    for number in (5, 12):  # 0x81 0x20: a lead byte without a valid trail byte
        lines[number - 1] = lines[number - 1].replace("製造業".encode("cp932"), b"\x81\x20\x81\x20")
    path = tmp_path / "cp932.csv"
    path.write_bytes(b"\n".join(lines))
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert "cp932.csv,5行目" in result.flat and "Shift_JIS" in result.flat and "12行目（計2行）" in result.flat
    assert "Traceback" not in result.output and Lead.objects.count() == 0
    result = cli("import", str(path), "--skip-bad-lines")
    assert result.exit_code == 1  # rows were skipped: listed, and the exit code says so
    assert "cp932.csv,5行目" in result.flat and "cp932.csv,12行目" in result.flat
    assert Lead.objects.count() == 18


@pytest.mark.django_db
def test_an_xlsx_zip_bomb_is_refused_before_reading(tmp_path, settings):
    import zipfile

    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.active.append(ROWS[0])
    book.save(tmp_path / "ok.xlsx")
    # The same workbook with a sheet padded to 64 MB of blanks: about 64 KB zipped.
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(tmp_path / "ok.xlsx") as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b"</sheetData>" + b" " * (64 * 1024 * 1024))
            out.writestr(info, data)
    assert bomb.stat().st_size < 1024 * 1024
    settings.HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES = 16 * 1024 * 1024
    result = cli("import", str(bomb))
    assert result.exit_code == 2
    assert "HOKAN_IMPORT_MAX_XLSX_UNZIPPED_BYTES" in result.flat and "bomb.xlsx" in result.flat
    assert Lead.objects.count() == 0
    assert import_leads(tmp_path / "ok.xlsx").created == 1


@pytest.mark.django_db
def test_too_many_rows_are_refused_before_anything_is_stored(tmp_path, settings):
    settings.HOKAN_IMPORT_MAX_ROWS = 5
    csv_path = write_csv(tmp_path / "many.csv", [["企業名"]] + [[f"株式会社{i}"] for i in range(6)], "utf-8")
    with pytest.raises(InputError, match="HOKAN_IMPORT_MAX_ROWS"):
        import_leads(csv_path)
    book = openpyxl.Workbook()
    book.active.append(["企業名"])
    for i in range(6):
        book.active.append([f"株式会社{i}"])
    book.save(tmp_path / "many.xlsx")
    with pytest.raises(InputError, match="6 行、上限 5 行"):
        import_leads(tmp_path / "many.xlsx")
    assert Lead.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(tmp_path, settings):
    settings.HOKAN_IMPORT_MAX_BYTES = 100
    path = write_csv(tmp_path / "big.csv", [HEADER, *ROWS], "utf-8")
    with pytest.raises(InputError, match="HOKAN_IMPORT_MAX_BYTES"):
        import_leads(path)


@pytest.mark.django_db
def test_duplicate_rows_are_reported_merged_and_the_import_stays_idempotent(tmp_path):
    rows = [
        HEADER,
        ROWS[0],
        ROWS[1],
        ["株式会社Novarise", "6120001271738", "人材紹介", "", "", "15名", "", "", ""],  # row 4: same 法人番号 as row 2
        ["（株）セガ", "", "", "", "", "3,600名", "", "", ""],  # row 5: same name as row 3
    ]
    path = write_csv(tmp_path / "dup.csv", rows, "utf-8")
    report = import_leads(path)
    assert (report.rows, report.created, report.errors) == (4, 2, [])
    assert [(d.rows, d.key) for d in report.duplicates] == [((2, 4), "法人番号 6120001271738"), ((3, 5), "企業名 株式会社セガ")]
    assert report.duplicates[0].overridden == ("業種",)
    assert "2行目・4行目" in report.duplicates[0].message(report.source)
    novarise = Lead.objects.get(corporate_number="6120001271738")
    assert (novarise.industry, novarise.employee_count, int(novarise.capital)) == ("人材紹介", 15, 1_000_000)
    assert Lead.objects.get(name="株式会社セガ").employee_count == 3600
    again = import_leads(path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    result = cli("import", str(path))
    assert result.exit_code == 0 and "重複" in result.flat and "3行目・5行目" in result.flat


@pytest.mark.django_db
def test_imported_values_keep_their_provenance_with_the_time_read(tmp_path):
    import_leads(write_csv(tmp_path / "leads.csv", [HEADER, *ROWS], "utf-8"))
    source = LeadFieldSource.objects.get(lead__name="株式会社セガ", field="employee_count")
    assert (source.method, source.raw, source.extractor, source.confidence) == ("manual", "3499", "import:leads.csv", 1.0)
    assert source.observed_at is not None
    assert LeadFieldSource.objects.filter(lead__name="株式会社セガ").count() == 6  # one per non-blank cell


@pytest.mark.django_db
def test_a_second_company_with_the_same_name_and_another_number_is_not_merged(tmp_path):
    import_leads(write_csv(tmp_path / "a.csv", [["企業名", "法人番号"], ["株式会社同名", "6120001271738"]], "utf-8"))
    report = import_leads(write_csv(tmp_path / "b.csv", [["企業名", "法人番号"], ["株式会社同名", "5070001000715"]], "utf-8"))
    assert report.created == 1
    assert set(Lead.objects.values_list("corporate_number", flat=True)) == {"6120001271738", "5070001000715"}


@pytest.mark.django_db
def test_a_value_longer_than_its_column_is_a_bad_row_on_every_database(tmp_path):
    # SQLite would store 300 characters in a 255-character column; PostgreSQL would refuse the
    # whole chunk. The spec's max_length (the model's) refuses the row before either sees it.
    long_name = "株式会社" + "あ" * 300
    report = import_leads(write_csv(tmp_path / "long.csv", [["企業名"], [long_name], ["株式会社短い"]], "utf-8"))
    assert report.created == 1
    assert [(e.row, e.field) for e in report.errors] == [(2, "企業名")]
    assert "255文字以内" in report.errors[0].reason
