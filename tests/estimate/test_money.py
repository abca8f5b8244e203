"""Money, property-based (design document 004 §5.6, §7.2 check 4, §8.1, §11.2).

Over random answers: every price is a whole ¥1,000, hybrid = round_half_up(standard × 0.6), and
the totals are the sums of the rounded feature prices — so §7.2 check 4 always holds, for the
engine's own data, for the fallback template, and for ANY answer of an LLM once
``enforce_calculated_prices`` has run (whatever prices, feature count or amounts in its texts).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from hokan.estimate import pricing
from hokan.estimate.adapters import FallbackAdapter
from hokan.core.ja.amounts import find_amounts
from hokan.estimate.amount_guard import AMOUNT_PLACEHOLDER, engine_amounts, foreign_amounts
from hokan.estimate.generate import enforce_calculated_prices, engine_cost_message
from hokan.estimate.sanitizer import sanitize
from hokan.estimate.answers import STEP_CHOICES
from hokan.estimate.validation import estimate_output_problems, feature_bounds

KNOWN_FEATURES = sorted(pricing.FEATURE_TO_CATEGORY)
CATEGORIES = sorted(pricing.BASE_PRICES)
SUM_PROBLEMS = ("sum of standard_price differs from total_cost.standard",
                "sum of hybrid_price differs from total_cost.hybrid")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

unknown_feature = st.from_regex(r"[a-z][a-z_]{2,20}", fullmatch=True)
feature_list = st.lists(st.one_of(st.sampled_from(KNOWN_FEATURES), unknown_feature), max_size=12)


@st.composite
def answers(draw):
    """A random, valid questionnaire (steps 1-12) plus AI categories for some unknown features."""
    result = {f"step_{n}": draw(st.sampled_from(sorted(choices))) for n, choices in STEP_CHOICES.items()}
    result["step_3"] = draw(st.sampled_from([result["step_3"], result["step_3"].replace("_", "-")]))
    result["step_4"] = draw(st.text(max_size=80))
    result["step_8"] = draw(st.one_of(feature_list, feature_list.map(",".join)))
    result["step_12"] = draw(st.text(max_size=40))
    chosen = pricing.feature_values(result["step_8"])
    categories = {} if not chosen else draw(st.dictionaries(
        st.sampled_from(chosen), st.one_of(st.sampled_from(CATEGORIES), st.text(max_size=8)), max_size=4))
    return result, categories


yen = st.integers(min_value=-10**9, max_value=10**10)
price = st.one_of(yen, st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e10),
                  st.text(max_size=8))
amount_text = st.one_of(
    st.integers(min_value=1, max_value=99_999).map(lambda n: f"合計は約{n}万円です。"),
    st.integers(min_value=1, max_value=10**9).map(lambda n: f"総額¥{n:,}となります。"),
    st.integers(min_value=1, max_value=10**9).map(lambda n: f"{n:,}円でご提供します。"),
    st.text(max_size=30),
)


@st.composite
def llm_answer(draw):
    """Any §6.4-shaped answer an LLM might give: wrong prices, wrong totals, any feature count."""
    features = draw(st.lists(st.fixed_dictionaries({
        "name": st.text(min_size=1, max_size=12), "detail": amount_text,
        "standard_price": price, "hybrid_price": price}), max_size=10))
    names = set()
    for i, feature in enumerate(features):  # distinct names: duplicates are the LLM's problem, not money's
        while feature["name"] in names:
            feature["name"] += str(i)
        names.add(feature["name"])
    return {
        "project_name": "業務システム", "summary": draw(amount_text), "development_model_explanation": "説明",
        "features": features, "discussion_agenda": ["確認1", "確認2", "確認3"],
        "total_cost": {"standard": draw(price), "hybrid": draw(price), "message": draw(amount_text)},
        "confidence_note": draw(amount_text),
    }


def _calculate(drawn):
    raw, categories = drawn
    return pricing.calculate(sanitize(raw, categories))


@PROPERTY
@given(answers())
def test_it_always_sums_the_rounded_feature_prices(drawn):
    calc = _calculate(drawn)
    assert calc["features"], "the engine prices at least the industry's default features"
    assert calc["total_standard"] == sum(f["standard_price"] for f in calc["features"])
    assert calc["total_hybrid"] == sum(f["hybrid_price"] for f in calc["features"])
    assert calc["multiplier"] <= 4.0
    for f in calc["features"]:
        assert f["standard_price"] % 1000 == 0 and f["hybrid_price"] % 1000 == 0
        assert f["hybrid_price"] == pricing.round_half_up(Decimal(f["standard_price"]) * Decimal("0.6"))
        assert f["category"] in pricing.BASE_PRICES


@PROPERTY
@given(answers(), llm_answer())
def test_it_makes_any_llm_answer_carry_the_engine_prices(drawn, answer):
    calc = _calculate(drawn)
    enforced = enforce_calculated_prices(answer, calc)
    twice = enforce_calculated_prices(enforced, calc)  # §8.1: enforced again after the audit

    for out in (enforced, twice):
        assert [(f["standard_price"], f["hybrid_price"]) for f in out["features"]] == [
            (f["standard_price"], f["hybrid_price"]) for f in calc["features"]]
        assert (out["total_cost"]["standard"], out["total_cost"]["hybrid"]) == (calc["total_standard"],
                                                                                calc["total_hybrid"])
        low, high = feature_bounds(len(calc["features"]))
        problems = estimate_output_problems(out, min_features=low, max_features=high)
        assert not [p for p in problems if p in SUM_PROBLEMS or "price" in p], problems
    assert twice == enforced  # enforcing is idempotent
    # every yen amount left in the texts is one the engine computed (or the neutral placeholder)
    texts = [enforced["summary"], enforced["confidence_note"], enforced["total_cost"]["message"],
             *(f["detail"] for f in enforced["features"])]
    allowed = engine_amounts(calc)
    for text in texts:
        assert not foreign_amounts(text, allowed), (text, [text[a.start:a.end] for a in find_amounts(text)])


@PROPERTY
@given(answers())
def test_it_keeps_the_fallback_template_texts_as_written(drawn):
    raw, categories = drawn
    user_input = sanitize(raw, categories)
    calc = pricing.calculate(user_input)
    template = FallbackAdapter().generate_estimate(user_input, calc)
    enforced = enforce_calculated_prices(template, calc)
    assert enforced["total_cost"]["message"] == template["total_cost"]["message"]  # its amounts are the engine's
    assert enforced["summary"] == template["summary"]
    low, high = feature_bounds(len(calc["features"]))
    assert estimate_output_problems(enforced, min_features=low, max_features=high) == []


def test_it_replaces_a_cost_message_with_the_llm_s_own_amounts():
    calc = pricing.calculate(sanitize({"step_1": "corporation", "step_2": "retail", "step_3": "1_5",
                                       "step_8": ["order_management"], "step_11": "undecided"}))
    standard = calc["total_standard"]
    answer = {"features": [{"name": "受注", "detail": "月120万件の受注を管理します。費用は約3万程度です。",
                            "standard_price": 1, "hybrid_price": 1}],
              "total_cost": {"standard": 1, "hybrid": 1, "message": "総額わずか10万円！"},
              "summary": f"受注を効率化します。費用は5万円です。標準開発では{standard:,}円です。",
              "confidence_note": "５００円"}
    out = enforce_calculated_prices(answer, calc)
    assert out["total_cost"]["message"] == engine_cost_message(calc)
    assert pricing.format_price(standard) in out["total_cost"]["message"]
    assert out["summary"] == f"受注を効率化します。標準開発では{standard:,}円です。"  # the engine's amount stays
    assert out["features"][0]["detail"] == "月120万件の受注を管理します。"  # a count is no amount
    assert out["confidence_note"] == AMOUNT_PLACEHOLDER
