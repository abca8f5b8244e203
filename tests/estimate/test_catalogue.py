"""The Fallback adapter's templates (§6.6): 7 industries + a generic one, valid by §7."""

from __future__ import annotations

import pytest

from hokan.estimate import pricing
from hokan.estimate.adapters import FallbackAdapter
from hokan.estimate.validation import estimate_output_problems, feature_bounds, validate_dynamic_questions

INDUSTRIES = ["manufacturing", "retail", "healthcare", "logistics", "construction", "food_service", "education",
              "finance", None]


@pytest.mark.parametrize("industry", INDUSTRIES)
def test_it_offers_valid_default_features_per_industry(industry):
    features = FallbackAdapter().generate_dynamic_questions({"step_2": industry})
    assert validate_dynamic_questions({"step8_features": features})
    assert all(f["value"] in pricing.FEATURE_TO_CATEGORY for f in features)


def test_it_has_different_lists_for_the_seven_industries():
    lists = {tuple(f["value"] for f in FallbackAdapter().generate_dynamic_questions({"step_2": i})) for i in INDUSTRIES}
    assert len(lists) == 8  # seven industries + the generic list (finance and None share it)


@pytest.mark.parametrize("industry", INDUSTRIES)
def test_it_writes_a_valid_template_estimate(industry):
    user_input = {"step_2": industry, "step_8": ["order_management", "inventory_management", "dashboard"],
                  "step_4": "在庫の確認に時間がかかっています", "step_11": "1m_3m"}
    calculated = pricing.calculate(user_input)
    estimate = FallbackAdapter().generate_estimate(user_input, calculated)
    low, high = feature_bounds(len(calculated["features"]))
    assert estimate_output_problems(estimate, min_features=low, max_features=high) == []
    assert estimate["total_cost"]["standard"] == calculated["total_standard"]
    details = [f["detail"] for f in estimate["features"]]
    assert len(set(details)) == len(details)  # two features of one category are told apart
    assert any("セキュリティ" in item for item in estimate["discussion_agenda"])
    assert "万円" in estimate["total_cost"]["message"]


def test_it_passes_the_audit_through_unchanged():
    estimate = {"project_name": "x"}
    assert FallbackAdapter().audit_estimate(estimate, {}) == estimate
