import datetime as dt

import pytest

from hokan.core.ja import JaDate, parse_date, parse_year, wareki_to_year


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # formats from company_pages/labels.json
        ("1960年6月3日", JaDate(1960, 6, 3)),
        ("1997年(平成9年)11月19日", JaDate(1997, 11, 19)),
        ("1990年5月", JaDate(1990, 5, None)),
        ("令和6年12月27日", JaDate(2024, 12, 27)),
        ("2002年（平成14年）11月18日", JaDate(2002, 11, 18)),
        ("2002年2月1日", JaDate(2002, 2, 1)),
        ("2017年10月 (沿革: 法人設立)", JaDate(2017, 10, None)),
        ("1977年", JaDate(1977, None, None)),
        ("平成26年 7月25日", JaDate(2014, 7, 25)),
        ("2026年3月", JaDate(2026, 3, None)),
        # other forms
        ("1997/11/19", JaDate(1997, 11, 19)),
        ("1997.11.19", JaDate(1997, 11, 19)),
        ("1997-11-19", JaDate(1997, 11, 19)),
        ("2020/4", JaDate(2020, 4, None)),
        ("１９９７年１１月１９日", JaDate(1997, 11, 19)),
        ("令和元年5月1日", JaDate(2019, 5, 1)),
        ("昭和52年", JaDate(1977, None, None)),
        ("昭和64年1月7日", JaDate(1989, 1, 7)),
        ("H9.11.19", JaDate(1997, 11, 19)),
        ("S52", JaDate(1977, None, None)),
        ("R6/12/27", JaDate(2024, 12, 27)),
        ("明治10年", JaDate(1877, None, None)),
        ("大正3年4月", JaDate(1914, 4, None)),
        ("㍻9年", JaDate(1997, None, None)),
        ("設立:S52 (1977)", JaDate(1977, None, None)),
        ("設立 2008年3月17日 資本金1億円", JaDate(2008, 3, 17)),
        ("創業 昭和30年、設立 1960年6月3日", JaDate(1955, None, None)),
    ],
)
def test_it_parses_the_first_date(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "未定",
        "平成32年",  # 平成 ended in its 31st year
        "2020年2月30日",
        "TEL 0120-123-456",
        "03-5339-8051",
        "3,499名",
        "1億円",
        "創業100年",
        "ビルS1棟",  # a letter era must stand alone
        "R2号室",
        "M3ビル",
    ],
)
def test_it_returns_none_without_a_valid_date(text):
    assert parse_date(text) is None


def test_it_converts_to_a_date_only_when_full():
    assert JaDate(1960, 6, 3).to_date() == dt.date(1960, 6, 3)
    assert JaDate(1990, 5, None).to_date() is None
    assert JaDate(1977, None, None).to_date() is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1960年6月3日", 1960), ("平成9年", 1997), ("S52", 1977), ("1599年", None), ("2999年", None), ("なし", None)],
)
def test_it_parses_plausible_years(text, expected):
    assert parse_year(text) == expected


@pytest.mark.parametrize(
    ("era", "year", "expected"),
    [
        ("明治", 1, 1868),
        ("明治", 45, 1912),
        ("大正", 1, 1912),
        ("大正", 15, 1926),
        ("昭和", 1, 1926),
        ("昭和", 64, 1989),
        ("平成", 1, 1989),
        ("平成", 31, 2019),
        ("令和", 1, 2019),
        ("H", 9, 1997),
        ("s", 52, 1977),
        ("R", 6, 2024),
    ],
)
def test_it_converts_wareki_years(era, year, expected):
    assert wareki_to_year(era, year) == expected


@pytest.mark.parametrize(("era", "year"), [("平成", 32), ("昭和", 65), ("大正", 16), ("令和", 0), ("天保", 3), ("X", 1)])
def test_it_rejects_unknown_eras_and_out_of_range_years(era, year):
    with pytest.raises(ValueError):
        wareki_to_year(era, year)
