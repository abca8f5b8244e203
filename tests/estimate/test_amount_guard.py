"""Every amount the customer reads is the engine's (issue 9 §2; document 004 §8.1), in any form."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hokan.core.ja.amounts import find_amounts, is_rounding_of, kanji_number
from hokan.estimate.amount_guard import AMOUNT_PLACEHOLDER, Allowed, foreign_amounts, guard_text

ENGINE = Allowed(frozenset({1_270_000, 762_000, 508_000, 400_000, 240_000}), frozenset({3_000_000}))


@pytest.mark.parametrize(("text", "value", "precision", "per"), [
    ("最大で五百万円程度の増額", 5_000_000, 1_000_000, None),
    ("千二百万円", 12_000_000, 1_000_000, None),
    ("一億五千万円の案件", 150_000_000, 10_000_000, None),
    ("1億円", 100_000_000, 100_000_000, None),
    ("1,200千円", 1_200_000, 1_000, None),
    ("5万/月", 50_000, 10_000, "month"),
    ("月額3.5万円", 35_000, 1_000, "month"),
    ("年間60万円", 600_000, 10_000, "year"),
    ("¥1,270,000", 1_270_000, 1, None),
    ("約127万円です", 1_270_000, 10_000, None),
    ("2億98百万円", 298_000_000, 1_000_000, None),
])
def test_it_reads_every_amount_form(text, value, precision, per):
    (amount,) = find_amounts(text)
    assert (amount.value_jpy, amount.precision_jpy, amount.per) == (value, precision, per)


def test_it_reads_both_ends_of_a_range():
    assert [a.value_jpy for a in find_amounts("300〜500万円")] == [3_000_000, 5_000_000]
    assert [a.value_jpy for a in find_amounts("300万〜500万円程度")] == [3_000_000, 5_000_000]


@pytest.mark.parametrize("text", ["2026年に500万件", "従業員1万人", "一万件の受注", "十分です", "電話03-1234-5678", "120%増"])
def test_counts_years_and_phones_are_no_amounts(text):
    assert find_amounts(text) == []


def test_a_rounding_must_be_close():
    (approx,) = find_amounts("約127万円")
    (coarse,) = find_amounts("約1億円")
    assert is_rounding_of(approx, 1_272_345)
    assert not is_rounding_of(coarse, 127_000_000)  # the written unit is no licence
    assert kanji_number("二三") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("予算1.5億円の受発注DX", "受発注DX"),
    ("受発注DX（予算1.5億円）", "受発注DX"),
    ("総額は約1,000万円です。", f"総額は{AMOUNT_PLACEHOLDER}です。"),
    ("最大で五百万円程度の増額もありえます。標準開発は約127万円です。", "標準開発は約127万円です。"),
    ("保守は5万/月です。開発費は127万円。", "開発費は127万円。"),
    ("ご予算300万円以内に収まります。", "ご予算300万円以内に収まります。"),  # the customer's own budget, labelled
    ("300万円の機能もあります。", "機能もあります。"),  # the budget limit, not labelled as such
    ("ハイブリッド開発では約76万円（税別）の見込みです。", "ハイブリッド開発では約76万円（税別）の見込みです。"),
])
def test_it_keeps_only_the_engine_s_amounts_and_reads_naturally(text, expected):
    assert guard_text(text, ENGINE) == expected


def _written(value: int, form: int) -> str:
    man = value / 10_000
    if form == 0:
        return f"{value:,}円"
    if form == 1:
        return f"約{man:,.0f}万円"
    if form == 2:
        return f"¥{value:,}"
    if form == 3:
        return f"{value // 1000:,}千円"
    if form == 4:
        return f"{value / 100_000_000:.1f}億円"
    if form == 5:
        digits = "〇一二三四五六七八九"
        n = max(1, round(man))
        return ("".join(digits[int(d)] for d in str(n)) if n < 10 else f"{n}") + "万円"
    if form == 6:
        return f"{man:.0f}万/月"
    return f"{max(1, int(man) - 50)}〜{int(man) + 50}万円"


prose_amounts = st.lists(st.tuples(st.integers(10_000, 300_000_000), st.integers(0, 7)), max_size=5)
engine_prices = st.lists(st.integers(1, 3000).map(lambda k: k * 1000), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_prices, prose_amounts, st.booleans())
def test_no_foreign_amount_ever_survives(prices, drawn, one_sentence):
    hybrid = [round(p * 0.6) for p in prices]
    allowed = Allowed(frozenset({sum(prices), sum(hybrid), sum(prices) - sum(hybrid), *prices, *hybrid}))
    parts = [f"この機能は{_written(v, f)}程度です" for v, f in drawn]
    parts.append(f"標準開発では{sum(prices):,}円です")
    text = ("、".join(parts) + "。") if one_sentence else "。".join(parts) + "。"
    guarded = guard_text(text, allowed)
    assert foreign_amounts(guarded, allowed) == [], (text, guarded)
    if not one_sentence:
        assert f"{sum(prices):,}円" in guarded  # the engine's own sentence stays
