"""``hokan municipal extract`` / ``hokan municipal evaluate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokan.municipal.extract_command import app
from tests.fakes.site_server import FakeSite

runner = CliRunner()


@pytest.fixture
def offline(settings):
    settings.HOKAN_LLM_PROVIDER = "offline"
    settings.HOKAN_MUNICIPAL_LLM_PROVIDER = ""
    settings.HOKAN_SNAPSHOT_DIR = ""
    settings.HOKAN_FETCH_DELAY_S = 0
    return settings


@pytest.fixture(scope="module")
def service_pages(shared_data: Path) -> Path:
    folder = shared_data / "municipal" / "service_pages"
    if not (folder / "labels.json").is_file():
        pytest.skip(f"{folder}/labels.json not found")
    return folder


def test_json_of_a_real_page_with_full_width_phone_and_a_fee(offline, service_pages: Path):
    page = service_pages / "pages" / "okayama_pref_shuyo.html"
    result = runner.invoke(app, ["extract", str(page), "--url", "https://www.pref.okayama.jp/page/859555.html"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["phone"]["value"] == "086-724-9512" and data["phone"]["raw"] == "０８６－７２４－９５１２"
    assert data["fee"]["value"] == "3,000円"
    assert data["department"]["value"] == "岡山県動物愛護センター"
    assert set(data["phone"]) == {"value", "raw", "quote", "source_url", "method", "confidence"}
    assert data["phone"]["source_url"] == "https://www.pref.okayama.jp/page/859555.html"
    assert data["phone"]["confidence"] == pytest.approx(0.8)  # block 0.5 + official 0.2 + format 0.1
    assert "address" not in data and "postal_code" not in data  # the page prints none for the centre


def test_a_page_fetched_by_url_and_a_table(offline):
    html = ("<html><body><h2>問い合わせ先</h2><p>市民課</p><p>〒100-0001 東京都例市本町1-2-3</p>"
            "<p>電話：03-1234-5678</p></body></html>")
    with FakeSite() as site:
        url = site.put("/juminhyo.html", html)
        result = runner.invoke(app, ["extract", url, "--variables", "juminhyo_department,phone,postal_code"])
        table = runner.invoke(app, ["extract", url, "--format", "table", "--variables", "phone,fee"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["juminhyo_department"]["value"] == "市民課" and data["postal_code"]["value"] == "100-0001"
    assert data["phone"]["source_url"] == url
    assert table.exit_code == 0, table.output
    assert "変数" in table.stdout and "03-1234-5678" in table.stdout and "未取得: fee" in table.stdout


def test_bad_input_is_a_clear_error(offline, tmp_path: Path):
    assert runner.invoke(app, ["extract", str(tmp_path / "none.html")]).exit_code != 0
    page = tmp_path / "p.html"
    page.write_text("<p>電話 03-1234-5678</p>", encoding="utf-8")
    unknown = runner.invoke(app, ["extract", str(page), "--variables", "phone,no_such_var"])
    assert unknown.exit_code != 0 and "no_such_var" in unknown.output
    assert runner.invoke(app, ["extract", str(page), "--format", "xml"]).exit_code != 0
    # The SSRF guard refuses a link-local address: one line, exit 1, no traceback.
    blocked = runner.invoke(app, ["extract", "http://169.254.169.254/latest/meta-data/"])
    assert blocked.exit_code == 1 and "取得できませんでした" in blocked.output and "Traceback" not in blocked.output


def test_evaluate_reports_fit_held_out_and_all(offline, service_pages: Path):
    result = runner.invoke(app, ["evaluate", str(service_pages), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fit"]["pages"] + data["held_out"]["pages"] == data["all"]["pages"] == 21
    assert data["held_out"]["variables"]["合計"]["precision"] >= 0.95
    table = runner.invoke(app, ["evaluate", str(service_pages)])
    assert "適合率" in table.stdout and "調整に使っていないページ" in table.stdout
