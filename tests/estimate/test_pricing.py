"""The price engine (design document 004 §5), table-driven. Numbers are worked out by hand."""

from __future__ import annotations

import pytest

from hokan.estimate import pricing

BASE = {
    "step_1": "corporation", "step_2": "other", "step_3": "1_5",
    "step_4": "受発注の管理を表計算ソフトで行っており、転記ミスと確認の手間が大きな負担になっています。",
    "step_5": "internal", "step_6": "web_app", "step_7": "new", "step_8": ["admin_panel"],
    "step_9": "6months", "step_10": "pc", "step_11": "undecided", "step_12": "",
}


def answers(**changes):
    return {**BASE, **changes}


def test_it_has_the_17_categories_and_at_least_80_features():
    assert len(pricing.BASE_PRICES) == 17
    assert len(pricing.FEATURE_TO_CATEGORY) >= 80
    assert all(cat in pricing.BASE_PRICES for _label, cat in pricing.FEATURE_TO_CATEGORY.values())


@pytest.mark.parametrize(("category", "median"), [
    ("シンプルなCRUD管理画面", 500_000), ("ダッシュボード・分析", 550_000), ("検索・フィルタリング", 325_000),
    ("承認ワークフロー", 675_000), ("在庫・受発注管理", 825_000), ("決済連携", 925_000),
    ("AIチャットボット", 1_150_000), ("マルチテナント対応", 975_000), ("データ移行ツール", 625_000),
    ("存在しないカテゴリ", 500_000),
])
def test_it_uses_the_median_of_each_category(category, median):
    assert pricing.base_price(category) == median


@pytest.mark.parametrize(("step", "value", "factor"), [
    ("step_3", "1_5", 1.0), ("step_3", "6_20", 1.2), ("step_3", "21_50", 1.5), ("step_3", "51_100", 2.0),
    ("step_3", "101_plus", 2.5), ("step_3", "21-50", 1.5), ("step_3", "101+", 2.5),
    ("step_6", "web_app", 1.0), ("step_6", "mobile_app", 1.5), ("step_6", "undecided_other", 1.1),
    ("step_10", "pc", 1.0), ("step_10", "mobile", 1.0), ("step_10", "both", 1.3), ("step_10", "tablet", 1.4),
    ("step_5", "internal", 1.0), ("step_5", "client", 1.3), ("step_5", "client_b2b", 1.3),
    ("step_5", "client_b2c", 1.5), ("step_5", "undecided", 1.1),
    ("step_7", "new", 1.0), ("step_7", "migration", 1.2), ("step_7", "enhancement", 0.7), ("step_7", "undecided", 1.0),
    ("step_9", "asap", 1.15), ("step_9", "3months", 1.05), ("step_9", "6months", 1.0), ("step_9", "1year", 0.95),
    ("step_9", "undecided", 1.0),
    ("step_1", "corporation", 1.0), ("step_1", "sole_proprietor", 0.85), ("step_1", "other", 1.0),
    ("step_3", "unknown", 1.0),
])
def test_it_applies_each_factor(step, value, factor):
    result = pricing.calculate(answers(**{step: value}))
    assert result["multiplier"] == pytest.approx(factor)
    expected = pricing.round_half_up(pricing.Decimal(500_000) * pricing.Decimal(str(factor)) / pricing.Decimal("0.65"))
    assert result["features"][0]["standard_price"] == expected


def test_it_multiplies_the_factors():
    result = pricing.calculate(answers(step_3="21_50", step_6="mobile_app", step_9="asap"))
    assert result["multiplier"] == pytest.approx(1.5 * 1.5 * 1.15)


def test_it_caps_the_multiplier_at_4():
    result = pricing.calculate(answers(step_3="101_plus", step_6="mobile_app", step_10="tablet", step_5="client_b2c"))
    assert result["raw_multiplier"] == pytest.approx(2.5 * 1.5 * 1.4 * 1.5)
    assert result["multiplier"] == 4.0
    assert "multiplier_capped" in result["edge_cases"]
    # 500,000 × 4.0 / 0.65 = 3,076,923.08 → 3,077,000; × 0.6 = 1,846,200 → 1,846,000
    assert result["features"][0]["standard_price"] == 3_077_000
    assert result["features"][0]["hybrid_price"] == 1_846_000


def test_it_does_not_cap_exactly_4():
    # 2.0 × 1.3 × ... : 51_100 (2.0) × tablet (1.4) × client_b2b (1.3) = 3.64 < 4
    result = pricing.calculate(answers(step_3="51_100", step_10="tablet", step_5="client_b2b"))
    assert result["multiplier"] == pytest.approx(3.64)
    assert "multiplier_capped" not in result["edge_cases"]


@pytest.mark.parametrize(("industry", "factor", "standard"), [
    ("healthcare", 1.15, 885_000),   # 500,000 × 1.15 / 0.65 = 884,615.4
    ("logistics", 1.05, 808_000),    # 807,692.3
    ("manufacturing", 1.0, 769_000),  # 769,230.8
    ("retail", 1.0, 769_000),
    ("other", 1.0, 769_000),
    ("not_an_industry", 1.0, 769_000),
])
def test_it_applies_the_industry_factor(industry, factor, standard):
    result = pricing.calculate(answers(step_2=industry))
    assert result["industry_multiplier"] == factor
    assert result["features"][0]["standard_price"] == standard


def test_it_rounds_half_up_to_1000_yen_and_sums_the_rounded_prices():
    assert pricing.round_half_up(pricing.Decimal("1500")) == 2000
    assert pricing.round_half_up(pricing.Decimal("2499.99")) == 2000
    assert pricing.round_half_up(pricing.Decimal("2500")) == 3000
    result = pricing.calculate(answers(step_8=["order_management", "dashboard", "csv_import"], step_3="21_50",
                                       step_2="healthcare", step_9="3months"))
    # multiplier 1.575, industry 1.15: 825,000 → 2,298,894.2 → 2,299,000 → hybrid 1,379,400 → 1,379,000
    assert [f["standard_price"] for f in result["features"]] == [2_299_000, 1_533_000, 906_000]
    assert [f["hybrid_price"] for f in result["features"]] == [1_379_000, 920_000, 544_000]
    assert result["total_standard"] == 2_299_000 + 1_533_000 + 906_000
    assert result["total_hybrid"] == 1_379_000 + 920_000 + 544_000


def test_it_resolves_features_in_the_documented_order():
    result = pricing.calculate(answers(
        step_8=["order_management", "ai_thing", "mystery"],
        step_8_categories={"order_management": "決済連携", "ai_thing": "AIチャットボット", "mystery": "ない"},
    ))
    got = [(f["value"], f["category"], f["category_source"]) for f in result["features"]]
    assert got == [("order_management", "在庫・受発注管理", "table"),
                   ("ai_thing", "AIチャットボット", "ai"),
                   ("mystery", "シンプルなCRUD管理画面", "default")]
    assert "unknown_feature:mystery" in result["edge_cases"]


def test_it_accepts_step_8_as_a_comma_string_and_drops_duplicates():
    result = pricing.calculate(answers(step_8="dashboard, csv_import,dashboard"))
    assert [f["value"] for f in result["features"]] == ["dashboard", "csv_import"]


def test_it_prices_industry_defaults_when_no_feature_is_selected():
    result = pricing.calculate(answers(step_8=[], step_2="manufacturing"))
    assert len(result["features"]) == 3
    assert "no_features_selected" in result["edge_cases"]


# hybrid prices at multiplier 1.0: admin_panel 461,000; dashboard 508,000; order_management 761,000
@pytest.mark.parametrize(("budget", "features", "status"), [
    ("under_500k", ["admin_panel"], "within_budget"),          # 461,000 ≤ 500,000
    ("under_500k", ["dashboard"], "slightly_over"),            # 508,000 / 500,000 = 1.016
    ("under_500k", ["order_management"], "significantly_over"),  # 1.522
    ("500k_1m", ["admin_panel", "admin_panel"], "within_budget"),
    ("10m_plus", ["ai_chatbot"], "within_budget"),
    ("undecided", ["admin_panel"], "not_checked"),
])
def test_it_checks_the_budget(budget, features, status):
    assert pricing.calculate(answers(step_11=budget, step_8=features))["budget_status"] == status


@pytest.mark.parametrize(("total", "budget", "status"), [
    (500_000, "under_500k", "within_budget"),          # equal to the limit
    (500_001, "under_500k", "slightly_over"),
    (650_000, "under_500k", "slightly_over"),          # ratio exactly 1.3
    (650_001, "under_500k", "significantly_over"),
    (1_300_000, "500k_1m", "slightly_over"),
    (3_900_001, "1m_3m", "significantly_over"),
    (5_000_000, "3m_5m", "within_budget"),
    (13_000_000, "5m_10m", "slightly_over"),
    (99_000_000, "10m_plus", "within_budget"),
    (99_000_000, "undecided", "not_checked"),
    (99_000_000, None, "not_checked"),
])
def test_it_classifies_the_budget_at_its_boundaries(total, budget, status):
    assert pricing.check_budget(total, budget)["status"] == status


def test_it_reports_the_overrun_percentage():
    budget = pricing.check_budget(560_000, "under_500k")
    assert budget["over_percent"] == 12
    assert "約12%超過" in budget["message"]


@pytest.mark.parametrize(("total", "message"), [
    (500_001, "ご予算をわずかに超過しています。"),        # 0.0002 %: never "約0%"
    (502_499, "ご予算をわずかに超過しています。"),        # 0.4998 %
    (502_500, "ご予算を約1%超過しています。"),            # 0.5 % rounds half up to 1
    (649_000, "ご予算を約30%超過しています。"),
    (5_010_000, "ご予算をわずかに超過しています。"),      # 0.2 % over the 3m_5m limit
])
def test_it_never_says_about_zero_percent_over(total, message):
    budget = pricing.check_budget(total, "3m_5m" if total > 1_000_000 else "under_500k")
    assert budget["message"].startswith(message)
    assert "約0%" not in budget["message"]


@pytest.mark.parametrize("step_8", [5, True, 1.5, {"a": "b"}])
def test_it_refuses_a_step_8_that_is_not_a_list_naming_the_step(step_8):
    from hokan.core.errors import InputError

    with pytest.raises(InputError) as raised:
        pricing.calculate(answers(step_8=step_8))
    assert raised.value.field == "step_8" and "ステップ8「機能」" in str(raised.value)


@pytest.mark.parametrize(("changes", "level", "label", "count"), [
    ({}, "high", "±20%", 0),
    ({"step_5": "undecided"}, "medium", "±30%", 1),
    ({"step_4": "短い"}, "medium", "±30%", 1),
    ({"step_6": "undecided_other", "step_7": "undecided"}, "medium", "±30%", 2),
    ({"step_6": "undecided_other", "step_7": "undecided", "step_9": "undecided"}, "low", "±50%", 3),
    ({"step_5": "undecided", "step_6": "undecided_other", "step_7": "undecided", "step_9": "undecided",
      "step_4": ""}, "low", "±50%", 5),
])
def test_it_rates_the_confidence(changes, level, label, count):
    confidence = pricing.calculate(answers(**changes))["confidence"]
    assert (confidence["level"], confidence["range_label"], confidence["undecided_count"]) == (level, label, count)


def test_it_counts_a_challenges_text_of_exactly_30_characters_as_enough():
    assert pricing.assess_confidence(answers(step_4="あ" * 30))["level"] == "high"
    assert pricing.assess_confidence(answers(step_4="あ" * 29))["level"] == "medium"


@pytest.mark.parametrize(("step_4", "step_12", "hints"), [
    ("個人情報を扱うので暗号化が必要です", "", ["セキュリティ要件の確認"]),
    ("", "24時間止まらないようにしたい", ["高可用性要件の確認"]),
    ("", "SLAを定めたい", ["高可用性要件の確認"]),
    ("英語対応が必要", "多言語にしたい", ["多言語対応の確認"]),
    ("セキュリティと冗長化と多言語", "", ["セキュリティ要件の確認", "高可用性要件の確認", "多言語対応の確認"]),
    ("在庫の数を正しく把握したい", "", []),
])
def test_it_detects_nfr_keywords(step_4, step_12, hints):
    assert pricing.detect_nfr_hints(step_4, step_12) == hints
    result = pricing.calculate(answers(step_4=step_4, step_12=step_12))
    for hint in hints:
        assert hint in result["discussion_hints"]


def test_it_formats_prices_like_the_document():
    assert pricing.format_price(1_200_000) == "120万円"
    assert pricing.format_price(1_200_001) == "121万円"
    assert pricing.format_price(0) == "0万円"
