import pytest

from hokan.core.ja import EmployeeCount, JaDate, parse_employee_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # formats from company_pages/labels.json
        ("3,499名（2020年4月1日時点)", EmployeeCount(3499, False, JaDate(2020, 4, 1))),
        ("4名", EmployeeCount(4, False, None)),
        ("143名（男性：66名）（女性：77名）（内、パートアルバイト・嘱託105名）", EmployeeCount(143, False, None)),
        ("408名（2020年4月時点）", EmployeeCount(408, False, JaDate(2020, 4, None))),
        ("94名（2024年5月現在）", EmployeeCount(94, False, JaDate(2024, 5, None))),
        # other forms
        ("約50名", EmployeeCount(50, True, None)),
        ("120人", EmployeeCount(120, False, None)),
        ("従業員数：１２０名", EmployeeCount(120, False, None)),
        ("連結 1,234名 / 単体 567名", EmployeeCount(1234, False, None)),
        ("グループ全体 約3,000名", EmployeeCount(3000, True, None)),
        ("50名以上", EmployeeCount(50, True, None)),
        ("約1.2万人", EmployeeCount(12000, True, None)),
        ("2024年4月1日現在 120名", EmployeeCount(120, False, JaDate(2024, 4, 1))),
    ],
)
def test_it_parses_employee_counts(text, expected):
    assert parse_employee_count(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "非公開", "お問い合わせください", "2020年4月", "2020年4月1日時点", "1億円", "0名", "03-1234-5678", "120"],
)
def test_it_never_takes_a_date_or_a_bare_number_as_a_count(text):
    assert parse_employee_count(text) is None
