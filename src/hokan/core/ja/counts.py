"""Head counts (従業員数): 3,499名（2020年4月1日時点）, 約50名, 120人."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from hokan.core.ja.dates import JaDate, parse_date
from hokan.core.ja.text import fold, is_vague

# A count must carry 名 or 人 (so years, dates and amounts are never counts); 約/およそ/
# 程度/以上/超 make it approximate. 千/万 multipliers: "約1.2万人".
_COUNT = re.compile(
    r"(約|およそ|凡そ|概ね|おおよそ|ca\.?|~)?\s*(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(万|千)?\s*(?:名|人)(?!\d)"
    r"\s*(以上|程度|超|強|弱|前後|ほど|余り?|位|くらい|ぐらい)?",
    re.IGNORECASE,
)
_MULTIPLIERS = {None: 1, "千": 1_000, "万": 10_000}


@dataclass(frozen=True)
class EmployeeCount:
    """count: people; approximate: written with 約/以上/程度…; as_of: the date the page
    gives for the figure (時点/現在), or None."""

    count: int
    approximate: bool
    as_of: JaDate | None


def parse_employee_count(text: str) -> EmployeeCount | None:
    """The first head count in ``text``, or None.

    ``143名（男性：66名）（女性：77名）`` → 143 (the first figure is the total);
    ``連結 1,234名 / 単体 567名`` → 1234. ``as_of`` is the first date in the text
    (``（2020年4月1日時点）``). Zero and vague answers give None.
    """
    if is_vague(text):
        return None
    s = fold(text)
    m = _COUNT.search(s)
    if m is None:
        return None
    value = Decimal(m.group(2).replace(",", "")) * _MULTIPLIERS[m.group(3)]
    if value <= 0 or value != value.to_integral_value():
        return None
    approximate = bool(m.group(1) or m.group(4))
    return EmployeeCount(int(value), approximate, parse_date(s))
