import pytest

from hokan.core.ja import company_name_key, company_type, normalize_company_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("㈱セガ", "株式会社セガ"),
        ("(株)セガ", "株式会社セガ"),
        ("（株）セガ", "株式会社セガ"),
        ("セガ（株）", "セガ株式会社"),
        ("セガ ㈱", "セガ株式会社"),
        ("㈲ABC", "有限会社ABC"),
        ("ABC(有)", "ABC有限会社"),
        ("(同)なぎの木", "合同会社なぎの木"),
        ("(資)山田商店", "合資会社山田商店"),
        ("(名)山田", "合名会社山田"),
        ("(一社)日本協会", "一般社団法人日本協会"),
        ("(公財)日本財団", "公益財団法人日本財団"),
        ("株式会社ＢＦＴ", "株式会社BFT"),
        ("  株式会社 セガ  ", "株式会社セガ"),
        ("ビーダッシュ 株式会社", "ビーダッシュ株式会社"),
        ("第一日本接骨師会／第一日本鍼灸マッサージ師会", "第一日本接骨師会/第一日本鍼灸マッサージ師会"),
    ],
)
def test_it_normalizes_company_names(name, expected):
    assert normalize_company_name(name) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("㈱セガ", "セガ株式会社"),
        ("株式会社マイ・システム", "マイシステム"),
        ("株式会社ＢＦＴ", "bft"),
        ("Sony Co., Ltd.", "SONY"),
        ("ABC Inc.", "株式会社ABC"),
        ("北九州物販事業者協同組合", "北九州物販事業者"),
        ("医療法人社団 山田会", "山田会"),
    ],
)
def test_it_gives_equal_keys_for_the_same_company(a, b):
    assert company_name_key(a) == company_name_key(b)


def test_it_keeps_distinct_names_apart():
    assert company_name_key("株式会社セガ") != company_name_key("株式会社セガサミー")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("株式会社セガ", "株式会社"),
        ("㈱セガ", "株式会社"),
        ("合同会社なぎの木", "合同会社"),
        ("有限会社ABC", "有限会社"),
        ("北九州物販事業者協同組合", "協同組合"),
        ("一般社団法人日本協会", "一般社団法人"),
        ("(一社)日本協会", "一般社団法人"),
        ("特定非営利活動法人ABC", "特定非営利活動法人"),
        ("NPO法人ABC", "特定非営利活動法人"),
        ("医療法人社団 山田会", "医療法人"),
        ("第一日本接骨師会", None),
        ("", None),
    ],
)
def test_it_finds_the_legal_form(name, expected):
    assert company_type(name) == expected
