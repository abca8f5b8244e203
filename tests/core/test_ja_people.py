import pytest

from hokan.core.ja import Representative, split_representative


@pytest.mark.parametrize(
    ("text", "title", "name"),
    [
        # formats from company_pages/labels.json
        ("代表取締役社長COO 杉野 行雄", "代表取締役社長COO", "杉野 行雄"),
        ("代表取締役社長 平島 信一", "代表取締役社長", "平島 信一"),
        ("野網 一", None, "野網 一"),
        ("小笠原崇文", None, "小笠原崇文"),
        ("代表取締役社長 大塚 光二", "代表取締役社長", "大塚 光二"),
        ("第一日本接骨師会 会長 永瀬 徹也", "会長", "永瀬 徹也"),
        ("代表取締役 齋藤浩輝", "代表取締役", "齋藤浩輝"),
        ("代表取締役 今井英介", "代表取締役", "今井英介"),
        ("代表取締役社長 田原春 公之", "代表取締役社長", "田原春 公之"),
        ("代表理事 大保 俊博", "代表理事", "大保 俊博"),
        ("佐久田 樹", None, "佐久田 樹"),
        # other forms
        ("代表取締役　CEO　山田太郎", "代表取締役 CEO", "山田太郎"),
        ("代表社員 山田太郎", "代表社員", "山田太郎"),
        ("理事長 山田 花子", "理事長", "山田 花子"),
        ("社長 山田太郎", "社長", "山田太郎"),
        ("代表 山田太郎", "代表", "山田太郎"),
        ("President & CEO 山田 太郎", "President & CEO", "山田 太郎"),
        ("代表取締役社長兼CEO 田中 一郎", "代表取締役社長兼CEO", "田中 一郎"),
        ("代表取締役社長執行役員 田中一郎", "代表取締役社長執行役員", "田中一郎"),
        ("代表取締役　山田　太郎（ヤマダ　タロウ）", "代表取締役", "山田 太郎"),
        ("山田太郎様", None, "山田太郎"),
        ("山田 太郎 氏", None, "山田 太郎"),
        ("代表者：山田太郎", None, "山田太郎"),
        ("山田太郎 代表取締役", "代表取締役", "山田太郎"),
        ("〇〇理事会 会長 佐藤 二郎", "会長", "佐藤 二郎"),
        ("株式会社ABC 代表取締役 鈴木 一郎", "代表取締役", "鈴木 一郎"),
        ("代表取締役会長 山田太郎 / 代表取締役社長 鈴木一郎", "代表取締役会長", "山田太郎"),
        ("代表取締役 ジョン・スミス", "代表取締役", "ジョン・スミス"),
        ("CEO John Smith", "CEO", "John Smith"),
        ("President/CEO 山田 太郎", "President/CEO", "山田 太郎"),
        ("代表取締役 阿部 一郎", "代表取締役", "阿部 一郎"),
        ("服部半蔵", None, "服部半蔵"),
        ("小室 哲哉", None, "小室 哲哉"),
    ],
)
def test_it_splits_title_and_name(text, title, name):
    assert split_representative(text) == Representative(title, name)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "未定",
        "非公開",
        "代表取締役 非公開",
        "代表取締役",
        "株式会社ABC",
        "代表取締役 3名",
        "山田太郎、鈴木一郎",  # several bare names: no guess
        "山田・鈴木",
        "寿限無寿限無五劫の擦り切れ海砂利水魚",
        "代表取締役 山田太郎事務所",
    ],
)
def test_it_returns_none_when_no_person_name_remains(text):
    assert split_representative(text) is None
