"""Matching leads against the shared registry, and the values it gives."""

from __future__ import annotations

import pytest

from hokan.registry.match import match_lead, registry_values
from hokan.registry.models import CompanyRecord

pytestmark = pytest.mark.django_db


def test_it_matches_by_corporate_number_first(shared_registry):
    result = match_lead(corporate_number="5070001000715", name="全然違う名前株式会社", prefecture="東京都")
    assert result.status == "corporate_number"
    assert result.record.name == "カネコ種苗株式会社"


@pytest.mark.parametrize("name", [
    "株式会社サカタのタネ", "(株)サカタのタネ", "㈱サカタのタネ", "株式会社　サカタ の タネ", "（株）　サカタのタネ",
    "サカタのタネ",
])
def test_it_matches_name_variants(shared_registry, name):
    result = match_lead(corporate_number="", name=name, prefecture="神奈川県")
    assert result.status == "name", name
    assert result.record.corporate_number == "6020001008662"


def test_it_matches_full_width_names(shared_registry):
    result = match_lead(corporate_number="", name="ＮＥＣネッツエスアイ（株）")
    assert (result.status, result.record.corporate_number) == ("name", "6010001135680")


def test_it_uses_the_prefecture_to_tell_namesakes_apart(shared_registry):
    # Two listed 株式会社アルファ: 横浜市 (神奈川県) and 岡山市 (岡山県).
    unknown = match_lead(corporate_number="", name="株式会社アルファ")
    assert unknown.status == "ambiguous"
    assert unknown.record is None
    assert {r.corporate_number for r in unknown.candidates} == {"1020001005862", "6260001000380"}
    assert "複数" in unknown.message
    known = match_lead(corporate_number="", name="株式会社アルファ", prefecture="岡山県")
    assert (known.status, known.record.corporate_number) == ("name", "6260001000380")
    assert match_lead(corporate_number="", name="株式会社アルファ", prefecture="北海道").status == "not_found"


def test_it_reports_an_ambiguous_name_and_fills_nothing(shared_registry):
    # ＮＴＴ株式会社 has two EDINET codes with two 法人番号, both in 千代田区.
    result = match_lead(corporate_number="", name="NTT株式会社", prefecture="東京都")
    assert result.status == "ambiguous"
    assert len(result.candidates) == 2
    assert result.values() == []


def test_it_does_not_match_another_legal_form_or_another_corporate_number(shared_registry):
    assert match_lead(corporate_number="", name="有限会社サカタのタネ").status == "not_found"
    # A valid 法人番号 the registry lacks: a namesake with a different number is not the lead.
    assert match_lead(corporate_number="8000012010038", name="株式会社サカタのタネ").status == "not_found"


def test_it_finds_nothing_for_unknown_or_empty_names(shared_registry):
    assert match_lead(corporate_number="", name="存在しない架空商事株式会社").status == "not_found"
    assert match_lead(corporate_number="", name="株式会社").status == "not_found"


def test_it_gives_registry_values_with_quote_source_and_confidence(shared_registry):
    record = CompanyRecord.objects.get(corporate_number="5070001000715")
    values = {v.field: v for v in registry_values(record, fields=["corporate_number", "capital", "prefecture",
                                                                    "employee_count", "industry"])}
    assert set(values) == {"corporate_number", "capital", "prefecture", "industry"}  # no employees in EDINET
    capital = values["capital"]
    assert (capital.value, capital.raw, capital.quote) == (1_491_000_000, "1491", "資本金 1491（百万円）")
    assert capital.source_url == "https://disclosure2.edinet-fsa.go.jp/#E00004"
    assert (capital.method, capital.confidence, capital.extractor) == ("registry", 0.95, "registry:edinet")
    assert values["prefecture"].value == "群馬県"
    assert values["prefecture"].quote == "所在地 前橋市古市町一丁目５０番地１２"


def test_it_names_gbizinfo_as_the_source_of_its_values_and_lowers_confidence_for_names(shared_registry):
    result = match_lead(corporate_number="", name="NECネッツエスアイ株式会社")
    values = {v.field: v for v in result.values()}
    assert set(values) == {"corporate_number", "prefecture", "city", "location", "capital", "employee_count",
                           "industry", "website_url"}
    employees = values["employee_count"]
    assert (employees.value, employees.quote) == (5_428, "employee_number 5428")
    assert employees.source_url == "https://info.gbiz.go.jp/hojin/ichiran?hojinBango=6010001135680"
    assert {v.confidence for v in values.values()} == {0.85}
    assert values["website_url"].value == "http://www.nesic.co.jp"


def test_it_refuses_columns_the_registry_does_not_hold(shared_registry):
    record = CompanyRecord.objects.get(corporate_number="5070001000715")
    with pytest.raises(KeyError):
        registry_values(record, fields=["revenue"])
