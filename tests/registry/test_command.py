"""``hokan registry import`` and ``hokan registry lookup`` (the typer sub-app, on the test database)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hokan.registry.command import app

pytestmark = pytest.mark.django_db
runner = CliRunner()


def test_it_imports_a_file_and_prints_a_japanese_summary(registry_files):
    result = runner.invoke(app, ["import", str(registry_files.tochigi), "--kind", "gbizinfo"])
    assert result.exit_code == 0, result.output
    assert "10 行" in result.output
    assert "同じ会社の行が複数（1行だけ採用） 1 行" in result.output


def test_it_lists_bad_rows_and_exits_with_1(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("法人番号,名称\n5070001000716,株式会社誤番号\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "2行目" in result.output
    assert "チェックデジット" in result.output


def test_it_looks_up_a_name_and_shows_values_with_their_source(shared_registry):
    result = runner.invoke(app, ["lookup", "(株)サカタのタネ"])
    assert result.exit_code == 0, result.output
    assert "社名で一致: 株式会社サカタのタネ（6020001008662）" in result.output
    assert "13,500,000,000" in result.output


def test_it_shows_the_candidates_of_an_ambiguous_name(shared_registry):
    result = runner.invoke(app, ["lookup", "株式会社アルファ"])
    assert result.exit_code == 1
    assert "補完しません" in result.output
    assert "6260001000380" in result.output


def test_an_edinet_file_with_undecodable_bytes_is_refused_then_read_without_them(tmp_path):
    from hokan.registry.models import CompanyRecord
    from tests.registry.test_import import edinet_file

    rows = [["E9997%d" % i, "内国法人・組合", "非上場", "無", "10", "3月31日", f"文字化け検証{i}株式会社", "", "",
             "札幌市中央区北1条西2丁目", "機械", "", ""] for i in range(5)]
    path = edinet_file(tmp_path / "EdinetcodeDlInfo.csv", *rows)
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace("機械".encode("cp932"), b"\x81\x20")  # line 5 (3rd company): a lead byte alone
    path.write_bytes(b"\n".join(lines))
    result = runner.invoke(app, ["import", str(path)])
    flat = "".join(result.output.split())
    assert result.exit_code == 2
    assert "EdinetcodeDlInfo.csv,5行目" in flat and "--skip-bad-lines" in flat and "何も保存していません" in flat
    assert not CompanyRecord.objects.filter(edinet_code__startswith="E9997").exists()
    result = runner.invoke(app, ["import", str(path), "--skip-bad-lines"])
    flat = "".join(result.output.split())
    assert result.exit_code == 1, result.output  # the skipped line is listed: exit 1
    assert "5行目" in flat and "読み飛ばしました" in flat
    assert set(CompanyRecord.objects.filter(edinet_code__startswith="E9997").values_list("edinet_code", flat=True)) == {
        "E99970", "E99971", "E99973", "E99974"}
