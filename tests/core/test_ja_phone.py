import pytest

from hokan.core.ja import Phone, find_phones, parse_phone


@pytest.mark.parametrize(
    ("text", "national", "kind"),
    [
        # formats from company_pages/labels.json
        ("03-5339-8051", "03-5339-8051", "fixed"),
        ("06-6627-2516", "06-6627-2516", "fixed"),
        ("0173-29-2204", "0173-29-2204", "fixed"),
        ("0465-34-1155", "0465-34-1155", "fixed"),
        ("052-858-2363", "052-858-2363", "fixed"),
        ("06-4400-8401", "06-4400-8401", "fixed"),
        ("042-569-8682", "042-569-8682", "fixed"),
        ("0948-24-6315", "0948-24-6315", "fixed"),
        ("070-3803-3949", "070-3803-3949", "mobile"),
        # other forms
        ("TEL:06-6627-2516", "06-6627-2516", "fixed"),
        ("TEL.03-5339-8051", "03-5339-8051", "fixed"),
        ("TEL No. 03-5339-8051", "03-5339-8051", "fixed"),
        ("電話番号：03-5339-8051（代表）", "03-5339-8051", "fixed"),
        ("TEL：０３－５３３９－８０５１", "03-5339-8051", "fixed"),
        ("+81 3-1234-5678", "03-1234-5678", "fixed"),
        ("(03)1234-5678", "03-1234-5678", "fixed"),
        ("（０３）１２３４－５６７８", "03-1234-5678", "fixed"),
        ("03ー5339ー8051", "03-5339-8051", "fixed"),
        ("0312345678", "03-1234-5678", "fixed"),
        ("090-1234-5678", "090-1234-5678", "mobile"),
        ("080-1234-5678", "080-1234-5678", "mobile"),
        ("0120-123-456", "0120-123-456", "toll_free"),
        ("0800-123-4567", "0800-123-4567", "toll_free"),
        ("050-1234-5678", "050-1234-5678", "ip"),
        ("0570-000-123", "0570-000-123", "other"),
    ],
)
def test_it_parses_japanese_phones(text, national, kind):
    phone = parse_phone(text)
    assert phone is not None
    assert (phone.national, phone.kind) == (national, kind)


def test_it_gives_e164():
    assert parse_phone("03-5339-8051") == Phone(e164="+81353398051", national="03-5339-8051", kind="fixed")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "非公開",
        "〒141-0033",
        "1410033",
        "2020-04-01",
        "2024年3月31日",
        "10,000,000円",
        "6120001271738",
        "法人番号 6120001271738",
        "T6120001271738",
        "3,499名",
        "12345",
        "03-1234",  # too short
        "+1 212-555-0100",  # valid, but not Japanese
    ],
)
def test_it_returns_none_without_a_valid_japanese_phone(text):
    assert parse_phone(text) is None


def test_it_finds_all_phones_with_their_raw_text():
    text = "〒141-0033 東京都品川区 TEL：０３－５３３９－８０５１ FAX 03-5339-8052 法人番号6120001271738"
    found = find_phones(text)
    assert [(p.national, raw) for p, raw in found] == [
        ("03-5339-8051", "０３－５３３９－８０５１"),
        ("03-5339-8052", "03-5339-8052"),
    ]
