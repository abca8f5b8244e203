"""The rule extractors on the real, hand-labelled company pages of the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hokan.core.extract import extract_profile
from hokan.core.extract.evaluate import evaluate, load_pages
from hokan.core.extract.html import flat, visible_text

MIN_PRECISION = 0.95


@pytest.fixture(scope="module")
def report(company_pages: Path):
    return evaluate(company_pages)


def test_it_keeps_precision_over_all_labelled_fields(report):
    print(f"\nrule extraction on {report.pages} labelled pages\n{report.table()}")
    for m in report.mismatches:
        print(f"  {m.file} {m.field}: expected={m.expected!r} got={m.got!r}")
    assert report.pages >= 17
    total = report.total
    assert total.precision is not None and total.precision >= MIN_PRECISION
    assert total.recall is not None and total.recall >= 0.85


def test_it_keeps_precision_per_field(report):
    for name, score in report.fields.items():
        if score.precision is not None:
            assert score.precision >= 0.9, (name, score)


def test_it_never_reads_the_14_digit_corporate_number(company_pages: Path):
    html = (company_pages / "naginoki.html").read_text(encoding="utf-8")
    assert "corporate_number" not in extract_profile(html, url=None)


def test_it_quotes_the_visible_text_of_every_page(company_pages: Path):
    for label, html, url in load_pages(company_pages):
        text = flat(visible_text(html))
        for name, value in extract_profile(html, url=url).items():
            assert value.method == "rule"
            assert value.source_url == url
            assert 0 < value.confidence <= 1
            assert len(value.quote) <= 200, (label["file"], name)
            if value.extractor in ("jsonld", "microdata", "link"):
                assert value.quote in html or value.quote in text, (label["file"], name, value.quote)
            else:
                assert value.quote in text, (label["file"], name, value.quote)


def test_it_reads_json_ld_of_the_home_pages(company_pages: Path):
    html = (company_pages / "jsonld_pages" / "kitakyushu_buppan_index.html").read_text(encoding="utf-8")
    found = extract_profile(html, url="https://www.kitakyusyubuppan.com/")
    assert found["corporate_number"].value == "3290805009155"
    assert found["phone"].value == "0948-24-6315"
    assert found["city"].value == "飯塚市"
    assert found["facebook_url"].value == "https://www.facebook.com/kitakyubuppan"
    assert found["name"].extractor == "jsonld"
