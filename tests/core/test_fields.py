"""core.fields: one FieldSpec per field, one validator per kind (table tests), FieldValue re-validation."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hokan.core.errors import InvalidValue
from hokan.core.fields import KINDS, FieldSpec, FieldValue, clean, clean_field_value, clean_or_none, parse_prefecture

INVALID = object()  # marker: clean raises InvalidValue

# (kind, raw, expected): expected None = missing (empty or vague), INVALID = InvalidValue.
CASES: list[tuple[str, object, object]] = [
    ("text", "  業務用　ソフトウェア ", "業務用 ソフトウェア"),
    ("text", "非公開", None),
    ("text", "", None),
    ("company_name", "㈱セガ", "株式会社セガ"),
    ("company_name", "ＡＢＣ（有）", "ABC有限会社"),
    ("company_name", "株式会社資本金不明", "株式会社資本金不明"),  # a legal form: a name, not a vague answer
    ("company_name", "不明", None),
    ("person_name", "代表取締役社長 山田 太郎", "山田 太郎"),
    ("person_name", "小笠原崇文様", "小笠原崇文"),
    ("person_name", "株式会社ABC", INVALID),
    ("person_name", "要確認", None),
    ("address", "東京都港区芝1-1-1", "東京都港区芝1-1-1"),
    ("address", "info@example.jp", INVALID),
    ("address", "56 KALLANG PUDDING ROAD #07-02 HH @ KALLANG SINGAPORE", "56 KALLANG PUDDING ROAD #07-02 HH @ KALLANG SINGAPORE"),
    ("address", "https://example.jp/access/", INVALID),
    ("address", "詳細はお問い合わせください", None),
    ("prefecture", "東京都", "東京都"),
    ("prefecture", "大阪", "大阪府"),
    ("prefecture", "北海道", "北海道"),
    ("prefecture", "東京都渋谷区", INVALID),
    ("prefecture", "ニューヨーク", INVALID),
    ("postal_code", "〒141-0033", "141-0033"),
    ("postal_code", "1410033", "141-0033"),
    ("postal_code", "１４１－００３３", "141-0033"),
    ("postal_code", "14-10033", INVALID),
    ("phone", "03-6871-7000", "03-6871-7000"),
    ("phone", "0368717000", "03-6871-7000"),
    ("phone", "TEL:06-6627-2516", "06-6627-2516"),
    ("phone", "+81 3-1234-5678", "03-1234-5678"),
    ("phone", "０３－６８７１－７０００", "03-6871-7000"),
    ("phone", "12-34", INVALID),
    ("phone", "+1 212 555 1234", INVALID),
    ("phone", "非公開", None),
    ("email", "info@example.co.jp", "info@example.co.jp"),
    ("email", "info＠example.co.jp", "info@example.co.jp"),
    ("email", "mailto:sales@example.jp", "sales@example.jp"),
    ("email", "info@example", INVALID),
    ("email", "a..b@example.jp", INVALID),
    ("email", "お問い合わせフォームよりご連絡ください", None),
    ("url", "https://www.sega.co.jp/", "https://www.sega.co.jp/"),
    ("url", "www.example.co.jp", "https://www.example.co.jp"),
    ("url", "https://日本語.jp/", "https://日本語.jp/"),
    ("url", "ftp://example.jp/", INVALID),
    ("url", "https://exa mple.jp", INVALID),
    ("url", "https://-bad-.jp", INVALID),
    ("url", "not a url", INVALID),
    ("corporate_number", "6120001271738", "6120001271738"),
    ("corporate_number", "T6120001271738", "6120001271738"),
    ("corporate_number", "1234567890123", INVALID),
    ("corporate_number", "非公開", None),
    ("amount_jpy", "1億円", 100_000_000),
    ("amount_jpy", "5,000千円", 5_000_000),
    ("amount_jpy", "¥10,000,000", 10_000_000),
    ("amount_jpy", "1,000", 1_000),
    ("amount_jpy", 50_000_000, 50_000_000),
    ("amount_jpy", 1.5e6, 1_500_000),
    ("amount_jpy", Decimal("300"), 300),
    ("amount_jpy", 2.5, INVALID),
    ("amount_jpy", "たくさん", INVALID),
    ("amount_jpy", "0", INVALID),
    ("amount_jpy", "非公開", None),
    ("amount_jpy", "要確認", None),
    ("fee", "無料", 0),
    ("fee", "300円", 300),
    ("fee", "1通300円", 300),
    ("fee", "300", 300),
    ("fee", "0", 0),
    ("fee", "手数料がかかります", INVALID),
    ("count", "3,499名", 3499),
    ("count", "約50人", 50),
    ("count", "12件", 12),
    ("count", "120", 120),
    ("count", 12, 12),
    ("count", "0", INVALID),
    ("count", "たくさん", INVALID),
    ("count", "非公開", None),
    ("year", "1960", 1960),
    ("year", "令和6年", 2024),
    ("year", "1960年6月3日", 1960),
    ("year", "19600603", 1960),
    ("year", 2001, 2001),
    ("year", dt.date(1990, 4, 1), 1990),
    ("year", "1200", INVALID),
    ("year", "昔", INVALID),
    ("date", "2026年4月1日", "2026-04-01"),
    ("date", "令和8年4月1日", "2026-04-01"),
    ("date", "2026/4/1", "2026-04-01"),
    ("date", "20260401", "2026-04-01"),
    ("date", dt.datetime(2026, 4, 1, 9, 30), "2026-04-01"),
    ("date", "2026年4月", INVALID),
    ("date", "2026年2月30日", INVALID),
    ("date", "未定", None),
    ("time_range", "8:30～17:15", "08:30-17:15"),
    ("time_range", "午前8時30分から午後5時15分", "08:30-17:15"),
    ("time_range", "平日 9時～17時半（土日祝を除く）", "平日 09:00-17:30(土日祝を除く)"),
    ("time_range", "午後1時～午後4時", "13:00-16:00"),
    ("time_range", "17:00-9:00", INVALID),
    ("time_range", "毎日", INVALID),
    ("time_range", "要確認", None),
    ("percent", "10%", Decimal("10")),
    ("percent", "１０％", Decimal("10")),
    ("percent", "0.5", Decimal("0.5")),
    ("percent", "10パーセント", Decimal("10")),
    ("percent", 8, Decimal("8")),
    ("percent", "十", INVALID),
    ("boolean", "はい", True),
    ("boolean", "なし", False),
    ("boolean", "○", True),
    ("boolean", "×", False),
    ("boolean", True, True),
    ("boolean", "多分", INVALID),
    ("boolean", "非公開", None),
]


@pytest.mark.parametrize("kind,raw,expected", CASES, ids=[f"{k}:{r!r}" for k, r, _ in CASES])
def test_it_cleans_every_kind(kind, raw, expected):
    spec = FieldSpec("f", "項目", kind)
    if expected is INVALID:
        with pytest.raises(InvalidValue) as caught:
            clean(spec, raw)
        assert caught.value.field == "f" and caught.value.label == "項目" and caught.value.reason
        assert clean_or_none(spec, raw) is None
    else:
        assert clean(spec, raw) == expected
        assert type(clean(spec, raw)) is type(expected)


def test_every_kind_has_a_case_with_a_value():
    assert {k for k, _, e in CASES if e is not None and e is not INVALID} | {"choice"} == set(KINDS)


@pytest.mark.parametrize("vague", ["非公開", "要確認", "未定", "不明", "-", "N/A", "詳細はお問い合わせください", "（非公開）"])
@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("choice", "boolean")])
def test_a_vague_answer_counts_as_missing_for_every_kind(kind, vague):
    assert clean(FieldSpec("f", "項目", kind), vague) is None


def test_it_reads_bare_numbers_in_the_input_unit():
    million = FieldSpec("capital", "資本金", "amount_jpy", unit="JPY", input_unit="百万円")
    assert clean(million, "1491") == 1_491_000_000
    assert clean(million, "1,000万円") == 10_000_000  # a cell with its own unit is read as written
    assert clean(FieldSpec("capital", "資本金", "amount_jpy", input_unit="万円"), 1000) == 10_000_000


def test_zero_is_missing_when_the_source_says_so():
    reported = FieldSpec("employee_count", "従業員数", "count", zero_is_missing=True)
    assert clean(reported, "0") is None
    assert clean(reported, 0) is None
    assert clean(FieldSpec("capital", "資本金", "amount_jpy", zero_is_missing=True), "0") is None


def test_it_enforces_bounds_and_length():
    small = FieldSpec("employee_count", "従業員数", "count", max_value=2_147_483_647)
    with pytest.raises(InvalidValue, match="大きすぎます"):
        clean(small, "3000000000")
    short = FieldSpec("industry", "業種", max_length=5)
    with pytest.raises(InvalidValue, match="5文字以内"):
        clean(short, "情報通信サービス業")
    assert clean(short, "情報通信") == "情報通信"


def test_it_refuses_nul_and_booleans_for_other_kinds():
    with pytest.raises(InvalidValue, match="NUL"):
        clean(FieldSpec("notes", "備考"), "a\x00b")
    with pytest.raises(InvalidValue, match="真偽値"):
        clean(FieldSpec("capital", "資本金", "amount_jpy"), True)


def test_choices_and_extra_boolean_words():
    tob = FieldSpec("tob_toc_type", "toB/toC", "choice",
                    choices=(("toB", "toB"), ("B2B", "toB"), ("toC", "toC"), ("toB/toC", "toB/toC")))
    assert clean(tob, "ＴＯＢ") == "toB"
    assert clean(tob, "b2b") == "toB"
    with pytest.raises(InvalidValue, match="toB / toC / toB/toC"):
        clean(tob, "toG")
    listed = FieldSpec("listed", "上場区分", "boolean", choices=(("上場", True), ("非上場", False)))
    assert (clean(listed, "上場"), clean(listed, "非上場"), clean(listed, "")) == (True, False, None)


def test_a_spec_is_checked_when_it_is_declared():
    with pytest.raises(ValueError):
        FieldSpec("f", "項目", "money")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FieldSpec("f", "項目", "amount_jpy", input_unit="ドル")
    with pytest.raises(ValueError):
        FieldSpec("f", "項目", "choice")


def test_parse_prefecture():
    assert [parse_prefecture(t) for t in ("東京都", "京都", "京都府", "ｵｵｻｶ", "")] == ["東京都", "京都府", "京都府", None, None]


def test_clean_field_value_normalises_and_keeps_provenance():
    seen = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    value = FieldValue(field="phone", value="0368717000", raw="TEL 0368717000", quote="TEL 0368717000",
                       source_url="https://example.jp/", method="ai", confidence=0.7, extractor="llm", observed_at=seen)
    cleaned = clean_field_value(FieldSpec("phone", "電話番号", "phone"), value)
    assert cleaned is not None
    assert (cleaned.value, cleaned.raw, cleaned.observed_at, cleaned.source_url) == (
        "03-6871-7000", "TEL 0368717000", seen, "https://example.jp/")
    capital = FieldSpec("capital", "資本金", "amount_jpy")
    assert clean_field_value(capital, FieldValue("capital", "非公開", "非公開", "", None, "ai", 0.3)) is None
    # A truncated answer ("5,0" of "5,000万円") is not an amount: missing, never 50 yen.
    assert clean_field_value(capital, FieldValue("capital", "5,0", "5,0", "", None, "ai", 0.3)) is None
    assert clean_field_value(capital, FieldValue("capital", "たくさん", "たくさん", "", None, "ai", 0.3)) is None
    same = FieldValue("capital", 1000, "1,000円", "", None, "rule", 0.9)
    assert clean_field_value(capital, same) is same


def test_core_fields_is_mypy_strict_clean():
    module = Path(__file__).parents[2] / "src" / "hokan" / "core" / "fields.py"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(module)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
