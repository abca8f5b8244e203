"""Importing the shared EDINET code list and gBizINFO CSVs; re-imports; bad rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from hokan.core.errors import InputError
from hokan.registry.import_registry import import_registry, parse_file
from hokan.registry.models import CompanyRecord

pytestmark = pytest.mark.django_db

# The shared EDINET file: 11,374 rows; 3,289 individuals / foreign governments are not companies,
# 7 rows share a 法人番号 with another row (renamed submitters): 8,078 companies.
EDINET_ROWS, EDINET_NOT_COMPANIES, EDINET_DUPLICATES, EDINET_COMPANIES = 11_374, 3_289, 7, 8_078


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_it_imports_the_edinet_code_list_as_published(shared_registry):
    report = shared_registry.reports["edinet_cp932"]
    assert (report.kind, report.encoding) == ("edinet", "cp932")
    assert report.rows == EDINET_ROWS
    assert report.errors == []
    assert report.skipped == {
        "個人・外国政府等（企業ではない提出者）": EDINET_NOT_COMPANIES,
        "同じ会社の行が複数（1行だけ採用）": EDINET_DUPLICATES,
    }
    assert report.created == EDINET_COMPANIES
    assert CompanyRecord.objects.filter(edinet_code__isnull=False).count() == EDINET_COMPANIES


def test_it_converts_capital_from_million_yen_and_infers_the_prefecture(shared_registry):
    record = CompanyRecord.objects.get(corporate_number="5070001000715")
    assert record.name == "カネコ種苗株式会社"
    assert record.edinet_code == "E00004"
    assert record.capital == 1_491_000_000
    assert record.evidence["capital"]["quote"] == "資本金 1491（百万円）"
    # 所在地 "前橋市古市町一丁目５０番地１２" has no prefecture: 前橋市 is the capital of 群馬県.
    assert (record.prefecture, record.city, record.location) == ("群馬県", "前橋市", "古市町一丁目50番地12")
    assert record.industry == "水産・農林業"
    assert (record.listed, record.securities_code) == (True, "13760")
    assert record.source == "edinet"


def test_it_keeps_the_current_submitter_of_a_renamed_company(shared_registry):
    # E05616 株式会社ノバレーゼ (非上場) and E32664 株式会社オンザページ (上場) share one 法人番号.
    record = CompanyRecord.objects.get(edinet_code="E32664")
    assert record.name == "株式会社オンザページ"
    assert not CompanyRecord.objects.filter(edinet_code="E05616").exists()


def test_it_skips_individuals_and_takes_no_industry_from_non_filers(shared_registry):
    assert not CompanyRecord.objects.filter(name__startswith="個人").exists()
    assert not CompanyRecord.objects.filter(industry__contains="法人").exists()
    assert not CompanyRecord.objects.filter(industry__contains="個人").exists()


def test_it_reads_the_utf8_copy_exactly_like_the_cp932_original(registry_files):
    cp932, _ = parse_file(registry_files.edinet_cp932)
    utf8, report = parse_file(registry_files.edinet_utf8)
    assert report.encoding == "utf-8"
    assert [(p.row, p.values) for p in utf8] == [(p.row, p.values) for p in cp932]


def test_it_reimports_without_duplicates_or_changes(shared_registry):
    before = CompanyRecord.objects.count()
    report = import_registry(shared_registry.edinet_cp932)
    assert (report.created, report.updated, report.unchanged) == (0, 0, EDINET_COMPANIES)
    assert CompanyRecord.objects.count() == before


def test_it_merges_gbizinfo_values_into_the_edinet_record(shared_registry):
    report = shared_registry.reports["it_companies"]
    assert (report.kind, report.rows, report.errors) == ("gbizinfo", 540, [])
    record = CompanyRecord.objects.get(corporate_number="6010001135680")
    assert record.name == "NECネッツエスアイ株式会社"  # ＮＥＣ folded
    assert record.name_key == "necネッツエスアイ"
    assert record.employee_count == 5_428
    assert record.evidence["employee_count"] == {
        "source": "gbizinfo_csv", "raw": "5428", "quote": "employee_number 5428"
    }
    assert record.website_url == "http://www.nesic.co.jp"
    assert (record.prefecture, record.city, record.location) == ("東京都", "文京区", "後楽2丁目6番1号")
    assert record.evidence["capital"]["source"] == "edinet"  # kept: gBizINFO gave no capital
    assert set(record.raw) == {"edinet", "gbizinfo_csv"}


def test_it_reads_the_camel_case_layout_with_capital_in_man_yen(shared_registry):
    report = shared_registry.reports["tochigi"]
    assert (report.rows, report.created, report.errors) == (10, 9, [])
    assert report.skipped == {"同じ会社の行が複数（1行だけ採用）": 1}  # 株式会社ユーユーワールド twice
    record = CompanyRecord.objects.get(name="株式会社インターセック")
    assert record.corporate_number is None
    assert record.capital == 10_000_000
    assert record.evidence["capital"]["quote"] == "capital 1000（万円）"
    assert (record.prefecture, record.city, record.location) == ("栃木県", "宇都宮市", "ゆいの杜5-10-13")
    assert (record.representative_title, record.representative_name) == ("代表取締役", "水沼 孝夫")
    assert record.established_year == 1992
    assert record.employee_count == 200
    assert record.website_url == "http://security-intersec.com"
    assert CompanyRecord.objects.filter(name="株式会社ユーユーワールド").count() == 1


def test_it_matches_rows_without_corporate_number_by_name_and_prefecture_on_reimport(shared_registry):
    report = import_registry(shared_registry.tochigi)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 9)


def test_it_reports_bad_rows_and_imports_the_others(tmp_path):
    path = write_csv(tmp_path / "gbiz.csv", [
        ["法人番号", "名称", "所在地", "従業員数", "資本金", "URL"],
        ["5070001000716", "株式会社誤番号", "東京都港区芝1-1", "10", "", ""],
        ["", "株式会社資本金不明", "東京都港区芝1-2", "", "たくさん", ""],
        ["", "", "東京都港区芝1-3", "", "", ""],
        ["", "株式会社正常", "大阪府大阪市北区梅田1-1-1", "12名", "1,000万円", "www.example.co.jp"],
    ])
    report = import_registry(path)
    assert [(e.row, e.field) for e in report.errors] == [(2, "法人番号"), (3, "資本金"), (4, "名称")]
    assert "チェックデジット" in report.errors[0].reason
    assert report.created == 1
    record = CompanyRecord.objects.get(name="株式会社正常")
    assert (record.capital, record.employee_count) == (10_000_000, 12)
    assert (record.prefecture, record.city) == ("大阪府", "大阪市北区")
    assert record.website_url == "https://www.example.co.jp"
    assert not CompanyRecord.objects.filter(name__in=["株式会社誤番号", "株式会社資本金不明"]).exists()


def test_it_counts_the_title_line_in_edinet_row_numbers(tmp_path):
    header = ["ＥＤＩＮＥＴコード", "提出者種別", "上場区分", "連結の有無", "資本金", "決算日", "提出者名",
              "提出者名（英字）", "提出者名（ヨミ）", "所在地", "提出者業種", "証券コード", "提出者法人番号"]
    path = write_csv(tmp_path / "EdinetcodeDlInfo.csv", [
        ["ダウンロード実行日", "2026年08月11日現在", "件数", "2件"],
        header,
        ["E99990", "内国法人・組合", "非上場", "無", "10", "3月31日", "テスト工業株式会社", "", "", "札幌市中央区北1条西2丁目",
         "機械", "", ""],
        ["X1", "内国法人・組合", "非上場", "無", "10", "3月31日", "壊れた行株式会社", "", "", "", "機械", "", ""],
    ], encoding="cp932")
    report = import_registry(path, kind="edinet")
    assert (report.kind, report.encoding, report.rows, report.created) == ("edinet", "cp932", 2, 1)
    assert [(e.row, e.field) for e in report.errors] == [(4, "ＥＤＩＮＥＴコード")]
    record = CompanyRecord.objects.get(edinet_code="E99990")
    assert (record.capital, record.prefecture, record.city) == (10_000_000, "北海道", "札幌市中央区")


def test_it_refuses_a_file_of_another_kind(tmp_path):
    path = write_csv(tmp_path / "other.csv", [["a", "b"], ["1", "2"]])
    with pytest.raises(InputError, match="EDINET コードリストでも gBizINFO"):
        import_registry(path)
    gbiz = write_csv(tmp_path / "gbiz.csv", [["name"], ["株式会社A"]])
    with pytest.raises(InputError, match="--kind edinet"):
        import_registry(gbiz, kind="edinet")


EDINET_HEADER = ["ＥＤＩＮＥＴコード", "提出者種別", "上場区分", "連結の有無", "資本金", "決算日", "提出者名",
                 "提出者名（英字）", "提出者名（ヨミ）", "所在地", "提出者業種", "証券コード", "提出者法人番号"]


def edinet_file(path: Path, *rows: list[str]) -> Path:
    return write_csv(path, [["ダウンロード実行日", "2026年08月11日現在", "件数", f"{len(rows)}件"], EDINET_HEADER, *rows],
                     encoding="cp932")


def test_it_reports_a_row_the_database_refuses_and_keeps_the_rest_of_its_chunk(tmp_path):
    # Record B: EDINET code E99981 without 法人番号. Record A: 法人番号 8000012010038 (another prefecture,
    # so not the same company by name). A later row gives E99981 the 法人番号 of A: A would get B's
    # EDINET code, which the database refuses (unique); only that row is reported.
    edinet_file(tmp_path / "first.csv",
                ["E99981", "内国法人・組合", "非上場", "無", "10", "3月31日", "重複検証株式会社", "", "", "前橋市大手町1-1", "機械", "", ""])
    write_csv(tmp_path / "gbiz.csv", [["法人番号", "名称", "所在地"],
                                      ["8000012010038", "重複検証株式会社", "東京都千代田区丸の内1-1"]])
    edinet_file(tmp_path / "second.csv",
                ["E99981", "内国法人・組合", "非上場", "無", "10", "3月31日", "重複検証株式会社", "", "", "前橋市大手町1-1",
                 "機械", "", "8000012010038"],
                ["E99982", "内国法人・組合", "非上場", "無", "20", "3月31日", "別会社検証株式会社", "", "", "", "機械", "", ""])
    assert import_registry(tmp_path / "first.csv").created == 1
    assert import_registry(tmp_path / "gbiz.csv").created == 1
    report = import_registry(tmp_path / "second.csv")
    assert [(e.row, "保存できません" in e.reason) for e in report.errors] == [(3, True)]
    assert report.created == 1
    assert CompanyRecord.objects.get(edinet_code="E99982").capital == 20_000_000
    assert CompanyRecord.objects.get(corporate_number="8000012010038").edinet_code is None


def test_a_utf8_copy_with_a_bom_and_a_bad_byte_names_the_line(tmp_path):
    data = "\ufeff法人番号,名称\n,株式会社一\n,株式会社二\n".encode("utf-8").replace("二".encode(), b"\xff")
    path = tmp_path / "gbiz.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        import_registry(path)
    assert caught.value.row == 3 and "UTF-8（BOM付き）" in str(caught.value)
    report = import_registry(path, skip_bad_lines=True)
    assert (report.created, [e.row for e in report.errors]) == (1, [3])


def test_a_cell_over_the_limit_is_a_bad_row(tmp_path, settings):
    settings.HOKAN_IMPORT_MAX_CELL_CHARS = 100
    path = write_csv(tmp_path / "gbiz.csv", [["法人番号", "名称", "業種"], ["", "株式会社長い", "あ" * 150_000],
                                             ["", "株式会社短い", "IT"]])
    report = import_registry(path)
    assert report.created == 1
    assert [(e.row, e.field) for e in report.errors] == [(2, "業種")]
    assert "HOKAN_IMPORT_MAX_CELL_CHARS" in report.errors[0].reason


def test_registry_values_are_validated_again_before_they_reach_a_lead(shared_registry):
    from hokan.registry.match import registry_values

    record = CompanyRecord.objects.get(corporate_number="5070001000715")
    record.website_url = "not a url"  # a value stored before a rule was tightened
    record.evidence["website_url"] = {"source": "edinet", "raw": "not a url", "quote": "URL not a url"}
    values = {v.field: v for v in registry_values(record, fields=("capital", "website_url", "prefecture"))}
    assert set(values) == {"capital", "prefecture"}
    assert values["capital"].value == 1_491_000_000
    assert values["capital"].observed_at == record.updated_at
