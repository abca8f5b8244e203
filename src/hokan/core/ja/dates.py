"""Dates as Japanese pages write them: western (1997年11月19日, 1997/11/19) and 和暦 (平成9年, H9.11.19)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from hokan.core.ja.text import fold

# Japanese eras (元号) since 明治: name, one-letter abbreviation, first western year, and the
# last year number the era reached. Start dates (Gregorian) per the 内閣府/国立公文書館
# tables: 明治 1868-01-25 (元年 = 1868, 改元 1868-10-23 retroactive to 1/1 明治元年),
# 大正 1912-07-30, 昭和 1926-12-25, 平成 1989-01-08, 令和 2019-05-01.
# 明治45 = 大正元 = 1912, 大正15 = 昭和元 = 1926, 昭和64 = 平成元 = 1989, 平成31 = 令和元 = 2019.
ERAS: dict[str, tuple[str, int, int | None]] = {
    "明治": ("M", 1868, 45),
    "大正": ("T", 1912, 15),
    "昭和": ("S", 1926, 64),
    "平成": ("H", 1989, 31),
    "令和": ("R", 2019, None),  # open-ended: up to next year
}
_ERA_BY_LETTER = {letter: name for name, (letter, _, _) in ERAS.items()}


def wareki_to_year(era: str, year: int) -> int:
    """Convert a 和暦 year to the western year: ``wareki_to_year("平成", 9)`` → 1997.

    ``era`` is an era name (明治, 大正, 昭和, 平成, 令和; ㍻-style ligatures are folded) or its
    letter (M, T, S, H, R, either case). ``year`` must be 1 (元年) up to the era's last
    year: 明治45, 大正15, 昭和64, 平成31; 令和 up to the current year + 1.
    Raises ValueError for an unknown era or a year out of that range (e.g. 平成32).
    """
    name = fold(era)
    name = _ERA_BY_LETTER.get(name.upper(), name)
    if name not in ERAS:
        raise ValueError(f"unknown era: {era!r}")
    _, start, last = ERAS[name]
    if last is None:
        last = dt.date.today().year + 1 - start + 1
    if not 1 <= year <= last:
        raise ValueError(f"{name}{year}年 is outside {name}1–{last}")
    return start + year - 1


@dataclass(frozen=True)
class JaDate:
    """A possibly partial date: ``month`` and ``day`` are None when the text omits them."""

    year: int
    month: int | None = None
    day: int | None = None

    def to_date(self) -> dt.date | None:
        """The full ``datetime.date``, or None when month or day is missing."""
        if self.month is None or self.day is None:
            return None
        return dt.date(self.year, self.month, self.day)


_ERA_NAMES = "|".join(ERAS)
_MD = r"(?:\s*(\d{1,2})\s*(?:月|[./-])(?:\s*(\d{1,2})(?:\s*日|(?![\d年月])))?)?"
_WAREKI = re.compile(
    rf"(?:({_ERA_NAMES})\s*|(?<![A-Za-z])([MTSHRmtshr]))(元|\d{{1,2}})(?![\dA-Za-z])\s*(?:年|[./-](?=\s*\d))?"
    + _MD
)
# A letter era ("S52", "H9.11.19") must stand alone: "S1棟" or "R2号室" are not dates.
_LETTER_ERA_END = re.compile(r"\s*(?:$|[\s()、。,/])")
# 1997年(平成9年)11月19日: a parenthetical right after 年 is skipped.
_WESTERN_KANJI = re.compile(
    r"(?<!\d)([12]\d{3})\s*年\s*(?:\([^()]{0,12}\)\s*)?(?:(\d{1,2})\s*月(?:\s*(\d{1,2})\s*日)?)?"
)
_WESTERN_NUMERIC = re.compile(r"(?<![\d./-])([12]\d{3})([./-])(\d{1,2})(?:\2(\d{1,2}))?(?![\d./-]*\d)")


def _make(year: int, month: str | None, day: str | None) -> JaDate | None:
    m = int(month) if month else None
    d = int(day) if day and m else None
    try:
        dt.date(year, m or 1, d or 1)
    except ValueError:
        return None
    return JaDate(year, m, d)


def _candidates(s: str) -> Iterator[tuple[int, JaDate | None]]:
    for m in _WAREKI.finditer(s):
        era = m.group(1) or m.group(2)
        if m.group(2) and not _LETTER_ERA_END.match(s, m.end()):
            continue
        n = 1 if m.group(3) == "元" else int(m.group(3))
        try:
            year = wareki_to_year(era, n)
        except ValueError:
            continue
        yield m.start(), _make(year, m.group(4), m.group(5))
    for m in _WESTERN_KANJI.finditer(s):
        yield m.start(), _make(int(m.group(1)), m.group(2), m.group(3))
    for m in _WESTERN_NUMERIC.finditer(s):
        yield m.start(), _make(int(m.group(1)), m.group(3), m.group(4))


def parse_date(text: str) -> JaDate | None:
    """Return the first date in ``text`` (by position), or None.

    Western: ``1960年6月3日``, ``1997年(平成9年)11月19日``, ``1997/11/19``, ``1997.11.19``,
    ``1997-11-19``, ``1990年5月``, ``1977年``. 和暦: ``平成26年 7月25日``, ``令和元年5月1日``,
    ``昭和52年``, ``H9.11.19``, ``S52``, ``R6/12/27`` (明治/大正 too). Full-width digits are
    folded. Impossible dates (2月30日, 平成32年) are skipped.
    """
    s = fold(text)
    found = [(pos, d) for pos, d in _candidates(s) if d is not None]
    return min(found, key=lambda item: item[0])[1] if found else None


def parse_year(text: str) -> int | None:
    """Year of :func:`parse_date`, or None unless 1600 ≤ year ≤ this year + 1."""
    date = parse_date(text)
    if date is None or not 1600 <= date.year <= dt.date.today().year + 1:
        return None
    return date.year
