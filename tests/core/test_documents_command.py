"""``hokan documents text`` / ``hokan documents engines`` through typer's CliRunner, on real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokan.core.documents.command import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path: Path) -> Path:
    settings.HOKAN_DATA_DIR = tmp_path / "data"
    return settings.HOKAN_DATA_DIR


def test_it_prints_the_pages_of_a_municipal_pdf(shared_data: Path, tmp_path: Path):
    # a long path (CI's checkout is deeper than a laptop's): the header line is never hard-wrapped
    folder = tmp_path / ("自治体の公開資料_" * 6)
    folder.mkdir()
    pdf = folder / "不法投棄処分費.pdf"
    shutil.copy(shared_data / "municipal" / "sabae_pdfs" / "不法投棄処分費.pdf", pdf)
    result = runner.invoke(app, ["text", str(pdf)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "1 ページ（テキスト層）" in result.output
    assert "不法投棄処分費" in result.output and "1,083,500" in result.output
    assert result.output.splitlines()[0].endswith("OCR: なし"), result.output


def test_it_prints_ocr_lines_of_a_screenshot_then_reads_them_from_the_cache(shared_data: Path):
    shot = shared_data / "screenshots" / "ec-cube_admin" / "admin_price_notation_4_0_3.png"
    result = runner.invoke(app, ["text", str(shot), "--format", "lines", "--engine", "ppocrv5"])
    assert result.exit_code == 0, result.output
    for text in ("1 ページ（OCR）", "確度", "お支払い合計", "3,060"):
        assert text in result.output
    again = runner.invoke(app, ["text", str(shot), "--format", "json", "--engine", "ppocrv5"])
    data = json.loads(again.output)
    assert data["from_cache"] is True and data["kind"] == "image"
    lines = [line["text"] for line in data["pages"][0]["ocr"]["lines"]]
    assert "お支払い合計" in lines and len(data["sha256"]) == 64


def test_it_reports_a_refused_file_in_japanese_without_a_traceback(tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("ただのテキスト", encoding="utf-8")
    result = runner.invoke(app, ["text", str(notes)])
    assert result.exit_code == 1
    assert "読み取れませんでした" in result.output and "対応していない形式です" in result.output
    assert "Traceback" not in result.output
    bad = runner.invoke(app, ["text", str(notes), "--ocr", "sometimes"])
    assert bad.exit_code != 0 and "auto / always / never" in bad.output


def test_it_lists_the_engines_and_whether_they_run_here():
    result = runner.invoke(app, ["engines"])
    assert result.exit_code == 0, result.output
    assert "ppocrv6" in result.output and "PP-OCRv6 small" in result.output and "PP-OCRv5" in result.output
    if shutil.which("tesseract"):
        assert "tesseract 5" in result.output
