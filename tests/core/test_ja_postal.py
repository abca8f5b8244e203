import pytest

from hokan.core.ja import parse_postal_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("〒141-0033 東京都品川区西品川一丁目1－1", "141-0033"),
        ("〒1410033", "141-0033"),
        ("〒１４１－００３３", "141-0033"),
        ("〒 141－0033", "141-0033"),
        ("郵便番号：545-0021", "545-0021"),
        ("141-0033 東京都品川区", "141-0033"),
        ("1410033", "141-0033"),
    ],
)
def test_it_parses_postal_codes(text, expected):
    assert parse_postal_code(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "東京都品川区", "03-1234-5678", "TEL 141-0033", "〒141-00333", "〒14-0033", "2024-0401"],
)
def test_it_returns_none_without_a_postal_code(text):
    assert parse_postal_code(text) is None
