"""Split a Japanese address into postal code, prefecture, city (市区町村) and the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hokan.core.ja.postal import parse_postal_code
from hokan.core.ja.text import fold

# The 47 prefectures in JIS X 0401 code order (01 北海道 … 47 沖縄県).
PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県",
    "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県",
    "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県",
    "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県",
    "徳島県", "香川県", "愛媛県", "高知県",
    "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip

# The 20 政令指定都市 (designated cities, 地方自治法 第252条の19; list per 総務省
# 「指定都市一覧」, 熊本市 designated 2012 as the latest), which have wards (区).
DESIGNATED_CITIES: dict[str, str] = {
    "札幌市": "北海道", "仙台市": "宮城県", "さいたま市": "埼玉県", "千葉市": "千葉県",
    "横浜市": "神奈川県", "川崎市": "神奈川県", "相模原市": "神奈川県", "新潟市": "新潟県",
    "静岡市": "静岡県", "浜松市": "静岡県", "名古屋市": "愛知県", "京都市": "京都府",
    "大阪市": "大阪府", "堺市": "大阪府", "神戸市": "兵庫県", "岡山市": "岡山県",
    "広島市": "広島県", "北九州市": "福岡県", "福岡市": "福岡県", "熊本市": "熊本県",
}  # fmt: skip

# 都道府県庁所在地 (prefectural capitals, per 国土地理院/総務省) that are not designated
# cities; each name is borne by one municipality only, so the prefecture can be inferred.
CAPITAL_CITIES: dict[str, str] = {
    "青森市": "青森県", "盛岡市": "岩手県", "秋田市": "秋田県", "山形市": "山形県",
    "福島市": "福島県", "水戸市": "茨城県", "宇都宮市": "栃木県", "前橋市": "群馬県",
    "富山市": "富山県", "金沢市": "石川県", "福井市": "福井県", "甲府市": "山梨県",
    "長野市": "長野県", "岐阜市": "岐阜県", "津市": "三重県", "大津市": "滋賀県",
    "奈良市": "奈良県", "和歌山市": "和歌山県", "鳥取市": "鳥取県", "松江市": "島根県",
    "山口市": "山口県", "徳島市": "徳島県", "高松市": "香川県", "松山市": "愛媛県",
    "高知市": "高知県", "佐賀市": "佐賀県", "長崎市": "長崎県", "大分市": "大分県",
    "宮崎市": "宮崎県", "鹿児島市": "鹿児島県", "那覇市": "沖縄県",
}  # fmt: skip

# The 23 special wards of 東京都 (特別区, 地方自治法 第281条).
TOKYO_WARDS: tuple[str, ...] = (
    "千代田区", "中央区", "港区", "新宿区", "文京区", "台東区", "墨田区", "江東区",
    "品川区", "目黒区", "大田区", "世田谷区", "渋谷区", "中野区", "杉並区", "豊島区",
    "北区", "荒川区", "板橋区", "練馬区", "足立区", "葛飾区", "江戸川区",
)  # fmt: skip
# Wards whose names designated cities reuse (中央区: 札幌・千葉・神戸・大阪…, 港区: 名古屋・大阪,
# 北区: many); a text starting with them does not identify Tokyo.
_AMBIGUOUS_WARDS = frozenset({"中央区", "港区", "北区"})

# Municipalities whose names contain 市/郡/町/村 inside, which the shortest-suffix rule
# below would cut wrongly (from 総務省「全国地方公共団体コード」).
_TRICKY_CITIES: tuple[str, ...] = (
    "四日市市", "廿日市市", "野々市市", "大和郡山市", "小郡市", "郡山市", "郡上市",
)  # fmt: skip
_TRICKY_TOWNS: tuple[str, ...] = ("玉村町", "大町町")  # in 佐波郡 (群馬), 杵島郡 (佐賀)

_INFERABLE: dict[str, str] = {
    **DESIGNATED_CITIES,
    **CAPITAL_CITIES,
    **{ward: "東京都" for ward in TOKYO_WARDS if ward not in _AMBIGUOUS_WARDS},
}
_POSTAL = re.compile(r"^(?:〒|郵便番号)?\s*[:]?\s*\d{3}\s*-?\s*\d{4}\s*")
_LABEL = re.compile(r"^(?:本社|本店|本部|所在地|住所|事業所)+\s*[:]?\s*")
_MAX_LABEL = 15  # chars of an unknown label allowed before the prefecture
_MAX_CITY_NAME = 7  # longest city names: いちき串木野市, つくばみらい市, かすみがうら市
_COUNTY = re.compile(r"^([^\s\d-]{1,5}?郡)([^\s\d-]{1,5}?[町村])")
_WARD = re.compile(r"^([^\s\d-]{1,4}?区)")
_NAME = re.compile(r"[^\s\d-]+")


@dataclass(frozen=True)
class Address:
    """A split address. ``rest`` is 町名・番地・建物 (width-folded, may be "").

    prefecture_inferred is True when the text had no prefecture and it was inferred
    from a designated city, a prefectural capital or an unambiguous Tokyo ward.
    """

    postal_code: str | None
    prefecture: str | None
    city: str | None
    rest: str
    prefecture_inferred: bool


def _split_city(s: str, prefecture: str) -> tuple[str | None, str]:
    """Split the 市区町村 off the start of ``s`` (the text after the prefecture)."""
    if prefecture == "東京都":
        for ward in TOKYO_WARDS:
            if s.startswith(ward):
                return ward, s[len(ward) :]
    for name in _TRICKY_CITIES:
        if s.startswith(name):
            return name, s[len(name) :]
    county = _COUNTY.match(s)
    if county is not None:
        town = next((t for t in _TRICKY_TOWNS if s[county.end(1) :].startswith(t)), None)
        if town is not None:
            name = county.group(1) + town
            return name, s[len(name) :]
    shi = s.find("市", 1)  # from index 1 so 市川市/市原市 are not cut at their first 市
    in_county_name = s[shi + 1 : shi + 2] == "郡"  # 余市郡余市町, 高市郡明日香村
    before_county = county is None or shi < len(county.group(1))
    if 0 < shi <= _MAX_CITY_NAME and not in_county_name and before_county and _NAME.fullmatch(s[:shi]):
        name, rest = s[: shi + 1], s[shi + 1 :]
        if name in DESIGNATED_CITIES:
            ward_match = _WARD.match(rest.lstrip())
            if ward_match is not None:
                return name + ward_match.group(1), rest.lstrip()[ward_match.end() :]
        return name, rest
    if county is not None:
        return county.group(0), s[county.end() :]
    return None, s


def _find_prefecture(s: str) -> tuple[str | None, bool]:
    """(prefecture, inferred) for the start of ``s``. A prefecture opening the text wins,
    then an inferable city opening it, then a prefecture after a short digit-free prefix
    (an unknown label such as "本社 "); a prefecture further in (a building named
    東京都庁前ビル) is ignored."""
    for pref in PREFECTURES:
        if s.startswith(pref):
            return pref, False
    for name, pref in _INFERABLE.items():
        if s.startswith(name):
            return pref, True
    hits = [(s.find(p), p) for p in PREFECTURES if p in s]
    if hits:
        index, pref = min(hits)
        if index <= _MAX_LABEL and not any(c.isdigit() for c in s[:index]):
            return pref, False
    return None, False


def split_address(text: str) -> Address | None:
    """Split ``text`` into an :class:`Address`, or None without prefecture or known city.

    ``〒545-0021 大阪市阿倍野区阪南町3-8-26`` → postal "545-0021", prefecture "大阪府"
    (inferred), city "大阪市阿倍野区", rest "阪南町3-8-26". The city is 〇〇市 (with its
    ward for designated cities), a Tokyo special ward, or 〇〇郡〇〇町/村.
    """
    s = fold(text)
    postal_code = parse_postal_code(s)
    s = _LABEL.sub("", _POSTAL.sub("", _LABEL.sub("", s))).strip()
    prefecture, inferred = _find_prefecture(s)
    if prefecture is None:
        return None
    if not inferred:
        s = s[s.index(prefecture) + len(prefecture) :].strip()
    city, rest = _split_city(s, prefecture)
    return Address(postal_code, prefecture, city, rest.strip(), inferred)
