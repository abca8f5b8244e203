"""hokan municipal import-municipalities: the real localgovjp list, idempotent; bad rows reported and skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hokan.municipal.importer import check_digit, import_municipalities, valid_lgcode
from hokan.municipal.models import Municipality

pytestmark = pytest.mark.django_db


@pytest.fixture
def localgov(shared_data: Path) -> Path:
    return shared_data / "municipal" / "localgovjp"


def test_check_digit_of_real_codes():
    assert check_digit("01100") == 2  # 札幌市 011002
    assert valid_lgcode("014702") and valid_lgcode("182079") and valid_lgcode("010006")
    assert not valid_lgcode("014703") and not valid_lgcode("14702") and not valid_lgcode("01470x")


def test_it_imports_the_real_list_and_is_idempotent(localgov):
    first = import_municipalities(localgov)
    assert first.errors == [] and first.created == Municipality.objects.count() > 1900
    otoi = Municipality.objects.get(lgcode="014702")
    assert (otoi.name, otoi.prefecture, otoi.level) == ("音威子府村", "北海道", "village")
    assert otoi.official_url == "https://www.vill.otoineppu.hokkaido.jp/"
    assert Municipality.objects.get(lgcode="010006").level == "prefecture"
    assert Municipality.objects.get(lgcode="011011").level == "ward"  # 札幌市 中央区
    assert Municipality.objects.get(name="千代田区").level == "special_ward"
    second = import_municipalities(localgov)
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)


def test_bad_rows_are_reported_by_row_and_field_and_skipped(localgov, tmp_path):
    folder = tmp_path / "localgovjp"
    folder.mkdir()
    shutil.copy(localgov / "prefjp-utf8.csv", folder)
    header = "pid,pref,cid,city,citykana,lat,lng,url,phrase,lgcode\n"
    rows = [
        "1,北海道,1470,音威子府村,おといねっぷむら,44.7,142.2,https://www.vill.otoineppu.hokkaido.jp/,x,014702",
        "1,北海道,1470,音威子府村,おといねっぷむら,44.7,142.2,https://www.vill.otoineppu.hokkaido.jp/,x,014703",  # check digit
        "18,福井県,18207,,さばえし,35.9,136.1,https://www.city.sabae.fukui.jp/,x,182079",  # no name
        "18,福井県,18208,鯖江市,さばえし,35.9,136.1,https://www.city.sabae.fukui.jp/,x,182079",  # cid ≠ code
        "18,ふくい,18207,鯖江市,さばえし,35.9,136.1,https://www.city.sabae.fukui.jp/,x,182079",  # prefecture
        "18,福井県,18207,鯖江市,さばえし,35.9,136.1,javascript:alert(1),x,182079",  # url
    ]
    (folder / "localgovjp-utf8.csv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    report = import_municipalities(folder)
    messages = [str(e) for e in report.errors]
    assert [(e.row, e.field) for e in report.errors] == [(3, "lgcode"), (4, "city"), (5, "cid"), (6, "pref"),
                                                         (7, "url")]
    assert "検査数字" in messages[0] and "localgovjp-utf8.csv" in messages[0]
    assert Municipality.objects.filter(level="village").count() == 1
    assert not Municipality.objects.filter(lgcode="182079").exists()


def test_cli_reports_counts_and_bad_rows(localgov, tmp_path):
    from hokan.municipal.command import app

    missing = CliRunner().invoke(app, ["import-municipalities", "--folder", str(tmp_path)])
    assert missing.exit_code == 1 and "prefjp-utf8.csv がありません" in missing.output
    result = CliRunner().invoke(app, ["import-municipalities", "--folder", str(localgov)])
    assert result.exit_code == 0, result.output
    assert "新規 1,9" in result.output
