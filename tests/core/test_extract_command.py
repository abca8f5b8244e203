"""``hokan extract page`` / ``hokan extract evaluate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hokan.core.extract.command import app

runner = CliRunner()


def test_it_prints_json_for_a_shared_page(company_pages: Path):
    page = company_pages / "shinsei_sjis.html"
    result = runner.invoke(app, ["page", str(page), "--url", "https://example.jp/gaiyou.html", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["phone"]["value"] == "0465-34-1155"
    assert data["employee_count"]["value"] == 143
    assert data["city"]["value"] == "小田原市"
    assert data["phone"]["method"] == "rule"
    assert data["phone"]["source_url"] == "https://example.jp/gaiyou.html"
    assert {"value", "raw", "quote", "source_url", "method", "confidence"} <= set(data["phone"])
    assert "株式会社新清" in result.output  # ensure_ascii=False


def test_it_prints_a_table_with_japanese_headers(company_pages: Path):
    result = runner.invoke(app, ["page", str(company_pages / "sega.html")])
    assert result.exit_code == 0, result.output
    for header in ("項目", "値", "根拠", "確度"):
        assert header in result.output
    assert "100000000" in result.output


def test_it_rejects_a_missing_file_and_a_bad_format(tmp_path: Path):
    result = runner.invoke(app, ["page", str(tmp_path / "none.html")])
    assert result.exit_code != 0
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    assert runner.invoke(app, ["page", str(page), "--format", "xml"]).exit_code != 0


def test_it_prints_the_evaluation_table(company_pages: Path):
    result = runner.invoke(app, ["evaluate", str(company_pages)])
    assert result.exit_code == 0, result.output
    assert "適合率" in result.output and "再現率" in result.output and "合計" in result.output


def test_the_cli_does_not_import_the_heavy_extraction_libraries_until_they_are_used():
    """``hokan --help`` loads the command groups; extruct (~0.2 s) must wait for an extraction."""
    import subprocess
    import sys

    code = ("import sys; from hokan import cli; cli._register_groups(); "
            "print(sorted(m for m in ('extruct', 'mf2py', 'rdflib', 'hokan.core.extract.rules') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
    from hokan.core.extract import extract_profile  # and the names still resolve on first use

    assert extract_profile("<table><tr><th>資本金</th><td>1億円</td></tr></table>", url=None)["capital"].value == 100_000_000
