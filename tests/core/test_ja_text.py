import pytest

from hokan.core.ja import fold, fold_with_offsets, is_vague


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("東京都\u3000品川区\n 西品川", "東京都 品川区 西品川"),
        ("  padded  ", "padded"),
        ("㈱セガ", "(株)セガ"),
        ("03\u20105339\u20118051", "03-5339-8051"),
        ("1\u20122\u20133\u20144\u20155\u22126", "1-2-3-4-5-6"),
        ("０３－５３３９－８０５１", "03-5339-8051"),
        ("03ー5339ｰ8051", "03-5339-8051"),
        ("コーヒー", "コーヒー"),
        ("ｶﾞｲﾄﾞ", "ガイド"),
    ],
)
def test_it_folds_width_dashes_and_spaces(text, expected):
    assert fold(text) == expected


def test_it_maps_folded_characters_back_to_the_source():
    folded, offsets = fold_with_offsets("TEL：０３")
    assert folded == "TEL:03"
    assert offsets == [0, 1, 2, 3, 4, 5]
    folded, offsets = fold_with_offsets("㈱A")
    assert folded == "(株)A"
    assert offsets == [0, 0, 0, 1]


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "詳細はお問い合わせください",
        "詳しくはお問い合わせください。",
        "お問合せ下さい",
        "お問い合わせください",
        "要確認",
        "非公開",
        "非公開です",
        "（非公開）",
        "未公開",
        "未定",
        "不明",
        "なし",
        "無し",
        "該当なし",
        "特になし",
        "記載なし",
        "-",
        "―",
        "ー",
        "…",
        "当社規定による",
        "別紙参照",
        "会社概要を参照",
        "ホームページを参照ください",
        "TBD",
        "N/A",
        "n/a",
        "unknown",
        "「非公開」",
        "【未定】",
        "要問合せ",
        "問い合わせて下さい",
        "非開示",
        "ページに記載がありません",
        "公開されていません",
        "見つかりませんでした",
        "代表者名は不明",
    ],
)
def test_it_treats_non_values_as_vague(text):
    assert is_vague(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "1億円",
        "山田太郎",
        "東京都品川区",
        "03-5339-8051",
        "100名 詳細はお問い合わせください",
        "03-1234-5678までお問い合わせください",
        "1997年(平成9年)11月19日",
        "「ABC」",
        "(1億円)",
    ],
)
def test_it_keeps_real_values(text):
    assert is_vague(text) is False
