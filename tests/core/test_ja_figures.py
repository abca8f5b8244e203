"""hokan.core.ja.figures: every figure of a dashboard line, exact (issue 12 §2)."""

from decimal import Decimal

import pytest

from hokan.core.ja.amounts import arabic_decimal
from hokan.core.ja.figures import clock_seconds, find_figures


def one(text):
    figures = find_figures(text)
    assert len(figures) == 1, figures
    return figures[0]


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("¥1,234,567", Decimal(1234567), "JPY"),
        ("￥２，１６０", Decimal(2160), "JPY"),
        ("1,234円", Decimal(1234), "JPY"),
        ("¥0", Decimal(0), "JPY"),
        ("-¥120", Decimal(-120), "JPY"),
        ("¥-120", Decimal(-120), "JPY"),
        ("- ￥100", Decimal(-100), "JPY"),
        ("▲¥500", Decimal(-500), "JPY"),
        ("¥1.2万", Decimal(12000), "JPY"),
        ("3億円", Decimal(300_000_000), "JPY"),
        ("1億2,000万円", Decimal(120_000_000), "JPY"),
        ("$1,234.56", Decimal("1234.56"), "USD"),
        ("1.2万", Decimal(12000), "count"),
        ("1.25万", Decimal(12500), "count"),
        ("3億", Decimal(300_000_000), "count"),
        ("12.5K", Decimal(12500), "count"),
        ("1.2M", Decimal(1_200_000), "count"),
        ("4,567件", Decimal(4567), "count"),
        ("4, 567 件", Decimal(4567), "count"),
        ("１２３人", Decimal(123), "count"),
        ("100pt", Decimal(100), "count"),
        ("12.3%", Decimal("12.3"), "percent"),
        ("+1.5%", Decimal("1.5"), "percent"),
        ("-0.8％", Decimal("-0.8"), "percent"),
        ("2.5倍", Decimal("2.5"), "ratio"),
        ("1時間23分45秒", Decimal(5025), "seconds"),
        ("45分", Decimal(2700), "seconds"),
        ("16mm", Decimal(16), "mm"),
        ("12.34", Decimal("12.34"), "number"),
    ],
)
def test_it_reads_each_form_exactly(text, value, unit):
    figure = one(text)
    assert (figure.value, figure.unit) == (value, unit)
    assert text[figure.start:figure.end] == figure.shown


def test_clocks_are_left_to_the_label_and_dates_are_iso():
    figures = find_figures("配信 2026/11/30 14:00〜 平均 12:34 合計 01:23:45")
    assert [(f.shown, f.unit) for f in figures] == [
        ("2026/11/30", "date"), ("14:00", "clock"), ("12:34", "clock"), ("01:23:45", "clock")]
    assert figures[0].value == "2026-11-30"
    assert clock_seconds(figures[1].parts, duration=False) == 14 * 3600
    assert clock_seconds(figures[2].parts, duration=True) == 12 * 60 + 34
    assert clock_seconds(figures[3].parts, duration=True) == 5025
    assert one("2026年3月5日").value == "2026-03-05"


def test_every_figure_of_a_line_in_order_with_a_value_shown_twice_twice():
    figures = find_figures("税率８％対象 ￥3,160  16mm × 16mm")
    assert [(f.shown, f.value, f.unit) for f in figures] == [
        ("８％", Decimal(8), "percent"), ("￥3,160", Decimal(3160), "JPY"),
        ("16mm", Decimal(16), "mm"), ("16mm", Decimal(16), "mm")]


@pytest.mark.parametrize(
    "text",
    ["1.234.567", "¥23.184.400", "18,00(", "1,23", "cube-09", "iPhone15", "v2", "3D", "A-1", "1億2万3億", "12.5KB"],
)
def test_what_cannot_be_read_exactly_is_not_returned(text):
    assert find_figures(text) == []


def test_signs_and_multipliers_are_kept():
    figure = one("前回比 -1.3%")
    assert (figure.shown, figure.value) == ("-1.3%", Decimal("-1.3"))
    assert one("vs last -31.5%").value == Decimal("-31.5")  # a word before the space is no code
    assert one("1.2万").multiplier == "万" and one("1.2万").precision == Decimal(1000)
    assert one("12.5K").multiplier == "K"


def test_arabic_decimal_keeps_zero_and_decimals_exact():
    assert arabic_decimal("0") == (Decimal(0), Decimal(1))
    assert arabic_decimal("1.25万") == (Decimal(12500), Decimal(100))
    assert arabic_decimal("1億2,000万") == (Decimal(120_000_000), Decimal(10_000))
    assert arabic_decimal("2万3億") is None
