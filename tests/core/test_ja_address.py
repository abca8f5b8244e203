import pytest

from hokan.core.ja import CAPITAL_CITIES, DESIGNATED_CITIES, PREFECTURES, Address, split_address


def test_it_lists_the_47_prefectures_in_jis_order():
    assert len(PREFECTURES) == len(set(PREFECTURES)) == 47
    assert (PREFECTURES[0], PREFECTURES[12], PREFECTURES[26], PREFECTURES[46]) == ("北海道", "東京都", "大阪府", "沖縄県")


def test_it_knows_the_20_designated_cities_and_the_capitals():
    assert len(DESIGNATED_CITIES) == 20
    assert set(DESIGNATED_CITIES.values()) | set(CAPITAL_CITIES.values()) <= set(PREFECTURES)
    # every prefecture except 東京都 has its capital in one of the two tables
    assert len(set(DESIGNATED_CITIES.values()) | set(CAPITAL_CITIES.values())) == 46


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # formats from company_pages/labels.json
        (
            "〒141-0033 東京都品川区西品川一丁目1－1 住友不動産大崎ガーデンタワー",
            Address("141-0033", "東京都", "品川区", "西品川一丁目1-1 住友不動産大崎ガーデンタワー", False),
        ),
        (
            "東京都新宿区西新宿 3-7-1 新宿パークタワー 19階",
            Address(None, "東京都", "新宿区", "西新宿 3-7-1 新宿パークタワー 19階", False),
        ),
        ("〒545-0021 大阪市阿倍野区阪南町3-8-26", Address("545-0021", "大阪府", "大阪市阿倍野区", "阪南町3-8-26", True)),
        ("〒037-0632 青森県五所川原市高野字広野1番地", Address("037-0632", "青森県", "五所川原市", "高野字広野1番地", False)),
        (
            "神奈川県小田原市南鴨宮3-12-4 新清第8ビル3階 (本部事務センター)",
            Address(None, "神奈川県", "小田原市", "南鴨宮3-12-4 新清第8ビル3階 (本部事務センター)", False),
        ),
        (
            "〒467-0842 名古屋市瑞穂区妙音通4-27-1 ファーストステージ2F",
            Address("467-0842", "愛知県", "名古屋市瑞穂区", "妙音通4-27-1 ファーストステージ2F", True),
        ),
        ("〒550-0014 大阪市西区北堀江1-14-24", Address("550-0014", "大阪府", "大阪市西区", "北堀江1-14-24", True)),
        ("〒208-0013 東京都武蔵村山市大南1-11-16", Address("208-0013", "東京都", "武蔵村山市", "大南1-11-16", False)),
        ("〒192-0354 東京都八王子市松が谷17", Address("192-0354", "東京都", "八王子市", "松が谷17", False)),
        ("〒520-0113 滋賀県大津市坂本一丁目１８－４５", Address("520-0113", "滋賀県", "大津市", "坂本一丁目18-45", False)),
        ("〒820-0066 福岡県飯塚市幸袋781-258", Address("820-0066", "福岡県", "飯塚市", "幸袋781-258", False)),
        (
            "〒103-0014 東京都中央区日本橋蛎殻町2-2-1 冨田ビル",
            Address("103-0014", "東京都", "中央区", "日本橋蛎殻町2-2-1 冨田ビル", False),
        ),
        # other forms
        ("〒 141－0033　東京都　品川区西品川", Address("141-0033", "東京都", "品川区", "西品川", False)),
        ("本社所在地：東京都渋谷区幡ヶ谷2-21-4", Address(None, "東京都", "渋谷区", "幡ヶ谷2-21-4", False)),
        ("大阪府大阪市北区梅田1-1", Address(None, "大阪府", "大阪市北区", "梅田1-1", False)),
        ("京都府京都市中京区烏丸通", Address(None, "京都府", "京都市中京区", "烏丸通", False)),
        ("北海道札幌市中央区北1条西2丁目", Address(None, "北海道", "札幌市中央区", "北1条西2丁目", False)),
        ("横浜市港北区大豆戸町", Address(None, "神奈川県", "横浜市港北区", "大豆戸町", True)),
        ("東京都港区芝公園4-2-8", Address(None, "東京都", "港区", "芝公園4-2-8", False)),
        ("東京都北区王子1-1", Address(None, "東京都", "北区", "王子1-1", False)),
        ("東京都府中市宮西町", Address(None, "東京都", "府中市", "宮西町", False)),
        ("東京都町田市森野2-2-22", Address(None, "東京都", "町田市", "森野2-2-22", False)),
        ("品川区西五反田4-28-13", Address(None, "東京都", "品川区", "西五反田4-28-13", True)),
        ("津市西丸之内23-1", Address(None, "三重県", "津市", "西丸之内23-1", True)),
        ("那覇市久茂地2-2-2", Address(None, "沖縄県", "那覇市", "久茂地2-2-2", True)),
        ("千葉県市川市八幡1-1", Address(None, "千葉県", "市川市", "八幡1-1", False)),
        ("千葉県市原市国分寺台中央1", Address(None, "千葉県", "市原市", "国分寺台中央1", False)),
        ("三重県四日市市諏訪町1-5", Address(None, "三重県", "四日市市", "諏訪町1-5", False)),
        ("広島県廿日市市下平良1-11-1", Address(None, "広島県", "廿日市市", "下平良1-11-1", False)),
        ("石川県野々市市三納1-1", Address(None, "石川県", "野々市市", "三納1-1", False)),
        ("長野県大町市大町3887", Address(None, "長野県", "大町市", "大町3887", False)),
        ("新潟県十日町市千歳町3-3", Address(None, "新潟県", "十日町市", "千歳町3-3", False)),
        ("奈良県大和郡山市北郡山町", Address(None, "奈良県", "大和郡山市", "北郡山町", False)),
        ("福岡県小郡市小郡", Address(None, "福岡県", "小郡市", "小郡", False)),
        ("栃木県芳賀郡市貝町市塙1", Address(None, "栃木県", "芳賀郡市貝町", "市塙1", False)),
        ("群馬県佐波郡玉村町下新田", Address(None, "群馬県", "佐波郡玉村町", "下新田", False)),
        ("北海道上川郡東川町東町1", Address(None, "北海道", "上川郡東川町", "東町1", False)),
        ("沖縄県国頭郡東村字平良", Address(None, "沖縄県", "国頭郡東村", "字平良", False)),
        ("神奈川県", Address(None, "神奈川県", None, "", False)),
        ("北海道余市郡余市町黒川町1", Address(None, "北海道", "余市郡余市町", "黒川町1", False)),
        ("奈良県高市郡明日香村岡55", Address(None, "奈良県", "高市郡明日香村", "岡55", False)),
        ("山梨県西八代郡市川三郷町市川大門", Address(None, "山梨県", "西八代郡市川三郷町", "市川大門", False)),
        ("本社 東京都千代田区丸の内1-6-5", Address(None, "東京都", "千代田区", "丸の内1-6-5", False)),
        ("千代田区丸の内1-6-5 東京都庁前ビル", Address(None, "東京都", "千代田区", "丸の内1-6-5 東京都庁前ビル", True)),
    ],
)
def test_it_splits_addresses(text, expected):
    assert split_address(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "非公開",
        "株式会社ABC",
        "港区芝1-1",  # 港区 exists in 東京都, 名古屋市 and 大阪市
        "北区王子1-1",
        "中央区日本橋1-1",
        "西新宿3-7-1",
        "〒141-0033",
        "丸の内1-6-5 東京都庁前ビル",
    ],
)
def test_it_returns_none_without_prefecture_or_known_city(text):
    assert split_address(text) is None
