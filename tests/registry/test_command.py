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
