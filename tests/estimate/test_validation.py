"""The validators of design document 004 §7: each failure condition on its own."""

from __future__ import annotations

import copy

import pytest

from hokan.estimate.validation import (
    dynamic_questions_problems,
    estimate_output_problems,
    validate_dynamic_questions,
    validate_estimate_output,
)

GOOD_FEATURES = {"step8_features": [
    {"value": "order_management", "label": "受発注管理", "category": "在庫・受発注管理"},
    {"value": "inventory_management", "label": "在庫管理", "category": "在庫・受発注管理"},
    {"value": "sales_dashboard", "label": "売上ダッシュボード", "category": "ダッシュボード・分析"},
    {"value": "invoice_issue", "label": "請求書発行", "category": "請求・売上管理"},
    {"value": "csv_import", "label": "CSV取り込み", "category": "CSV/データインポート"},
]}

GOOD_ESTIMATE = {
    "project_name": "受発注管理システム",
    "summary": "受発注の転記作業をなくします。",
    "development_model_explanation": "標準開発とハイブリッド開発の違いです。",
    "features": [
        {"name": "受発注管理", "detail": "受注から出荷まで", "standard_price": 1_269_000, "hybrid_price": 761_000},
        {"name": "在庫管理", "detail": "在庫の把握", "standard_price": 1_269_000, "hybrid_price": 761_000},
        {"name": "売上分析", "detail": "売上の見える化", "standard_price": 846_000, "hybrid_price": 508_000},
    ],
    "discussion_agenda": ["業務の流れ", "優先順位", "セキュリティ要件"],
    "total_cost": {"standard": 3_384_000, "hybrid": 2_030_000, "message": "約135万円の削減"},
    "confidence_note": "±20%の概算です。",
}


def changed(base, path, value):
    data = copy.deepcopy(base)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def test_it_accepts_good_dynamic_questions():
    assert validate_dynamic_questions(GOOD_FEATURES)
    seven = {"step8_features": GOOD_FEATURES["step8_features"] + [
        {"value": "approval_flow", "label": "承認フロー", "category": "承認ワークフロー"},
        {"value": "mail_alert", "label": "メール通知", "category": "通知・アラート"}]}
    assert validate_dynamic_questions(seven)


@pytest.mark.parametrize(("data", "problem"), [
    ({"step8_features": "order_management"}, "not a list"),
    ({}, "not a list"),
    ({"step8_features": GOOD_FEATURES["step8_features"][:4]}, "expected 5-7"),
    ({"step8_features": GOOD_FEATURES["step8_features"] * 2}, "expected 5-7"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "category"], KeyError), "lacks value/label/category"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "機能1"), "placeholder"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "Feature A"), "placeholder"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "機能 ３"), "placeholder"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "情報が不足しています"), "refusal"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "提供できません"), "refusal"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "value"], "OrderManagement"), "snake_case"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "value"], "ab"), "snake_case"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "value"], "a" * 31), "snake_case"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "value"], "order-management"), "snake_case"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "label"], "受" * 21), "longer than 20"),
    (changed(GOOD_FEATURES, ["step8_features", 0, "category"], "在庫管理"), "category is unknown"),
])
def test_it_rejects_each_dynamic_questions_failure(data, problem):
    problems = dynamic_questions_problems(data)
    assert not validate_dynamic_questions(data)
    assert any(problem in p for p in problems), problems


def test_it_accepts_a_label_of_exactly_20_characters_and_a_value_of_30():
    data = changed(GOOD_FEATURES, ["step8_features", 0, "label"], "受" * 20)
    data = changed(data, ["step8_features", 1, "value"], "a" * 30)
    assert validate_dynamic_questions(data)


def test_it_accepts_a_good_estimate():
    assert validate_estimate_output(GOOD_ESTIMATE)


@pytest.mark.parametrize(("data", "problem"), [
    (changed(GOOD_ESTIMATE, ["summary"], KeyError), "missing fields: summary"),
    (changed(GOOD_ESTIMATE, ["total_cost"], KeyError), "missing fields: total_cost"),
    (changed(GOOD_ESTIMATE, ["features"], GOOD_ESTIMATE["features"][:2]), "3-8"),
    (changed(GOOD_ESTIMATE, ["features"], GOOD_ESTIMATE["features"] * 3), "3-8"),
    (changed(GOOD_ESTIMATE, ["discussion_agenda"], ["a", "b"]), "3-5"),
    (changed(GOOD_ESTIMATE, ["discussion_agenda"], ["a", "b", "c", "d", "e", "f"]), "3-5"),
    (changed(GOOD_ESTIMATE, ["features", 0, "detail"], KeyError), "lacks name/detail"),
    (changed(GOOD_ESTIMATE, ["total_cost", "message"], KeyError), "lacks standard/hybrid/message"),
    (changed(GOOD_ESTIMATE, ["features", 0, "standard_price"], "1,269,000円"), "not numbers"),
    (changed(GOOD_ESTIMATE, ["features", 0, "hybrid_price"], None), "not numbers"),
    (changed(GOOD_ESTIMATE, ["total_cost", "standard"], "338万円"), "total_cost prices are not numbers"),
    (changed(GOOD_ESTIMATE, ["features", 1, "name"], "受発注管理"), "duplicate feature names"),
    (changed(GOOD_ESTIMATE, ["total_cost", "standard"], 3_384_001), "sum of standard_price"),
    (changed(GOOD_ESTIMATE, ["total_cost", "hybrid"], 2_000_000), "sum of hybrid_price"),
    ("not json", "not an object"),
])
def test_it_rejects_each_estimate_failure(data, problem):
    problems = estimate_output_problems(data)
    assert not validate_estimate_output(data)
    assert any(problem in p for p in problems), problems


def test_it_checks_the_sum_with_consistent_but_changed_prices():
    # The LLM may change prices consistently: the validator passes, enforcement fixes them.
    data = changed(GOOD_ESTIMATE, ["features", 0, "standard_price"], 1_000_000)
    data = changed(data, ["total_cost", "standard"], 3_115_000)
    assert validate_estimate_output(data)


def test_it_widens_the_feature_count_to_the_priced_features():
    from hokan.estimate.validation import feature_bounds

    two = changed(GOOD_ESTIMATE, ["features"], GOOD_ESTIMATE["features"][:2])
    two = changed(two, ["total_cost"], {"standard": 2_538_000, "hybrid": 1_522_000, "message": "m"})
    assert not validate_estimate_output(two)
    assert feature_bounds(2) == (2, 8) and feature_bounds(5) == (3, 8) and feature_bounds(10) == (3, 10)
    assert validate_estimate_output(two, min_features=2, max_features=8)
