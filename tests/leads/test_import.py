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
