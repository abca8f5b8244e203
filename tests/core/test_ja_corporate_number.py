import pytest

from hokan.core.ja import is_valid_corporate_number, parse_corporate_number


@pytest.mark.parametrize("number", ["6120001271738", "3290805009155"])
def test_it_accepts_real_corporate_numbers(number):
    assert is_valid_corporate_number(number) is True


@pytest.mark.parametrize(
    "number",
    ["6120001271739", "1120001271738", "612000127173", "61200012717380", "６１２０００１２７１７３８", "", "abcdefghijklm"],
)
def test_it_rejects_invalid_corporate_numbers(number):
    assert is_valid_corporate_number(number) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6120001271738", "6120001271738"),
        ("法人番号：3290805009155", "3290805009155"),
        ("T6120001271738", "6120001271738"),
        ("登録番号 T 6 1200 0127 1738", "6120001271738"),
        ("6-1200-0127-1738", "6120001271738"),
        ("６１２０００１２７１７３８", "6120001271738"),
        ("TEL 06-4400-8401 法人番号 6120001271738", "6120001271738"),
    ],
)
def test_it_finds_a_valid_corporate_number(text, expected):
    assert parse_corporate_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "非公開",
        "91600030001120",  # 14 digits (labels.json: naginoki)
        "6120001271739",  # wrong check digit
        "61200012717380",
        "03-5339-8051",
        "10,000,000円",
    ],
)
def test_it_returns_none_without_a_valid_corporate_number(text):
    assert parse_corporate_number(text) is None
