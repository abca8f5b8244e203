"""Company figures: ``capital`` and ``revenue`` (int JPY), ``employee_count`` (int).

A cell must state one figure: a 資本金 cell with a 増資 history ("1,000万円→3,000万円"), a
売上高 cell with several years or segments, or "正社員30名 パート20名" give nothing, since
which one is meant is a guess. "約50名" is taken ×0.9. Without a row, 資本金 and 従業員数 are
read from the structured ``numberOfEmployees`` (employees, 0.9) or from "資本金 1,000万円" /
"従業員数 50名" in the text when the page agrees (0.6); a row we could not read means no
guessing from elsewhere. Revenue is read from rows only.
"""

from __future__ import annotations

import re

from hokan.core.extract.page import PARENS, Found, Page, first_line, pair_confidence
from hokan.core.ja import fold, parse_employee_count, parse_yen

MAX_EMPLOYEES = 1_000_000

_CAPITAL_INLINE = re.compile(r"資本金\s*[:]?\s*([\d,.]+\s*(?:兆|億|千万|百万|万|千)?[\d,.]*\s*(?:万|千)?円)")
_CAPITAL_CHANGE = re.compile(r"増資|減資|変更")
_EMPLOYEES_INLINE = re.compile(r"(?:従業員数?|社員数|職員数|スタッフ数)\s*[:]?\s*((?:約)?\s*[\d,]+\s*[名人])")
_COUNT_UNIT = re.compile(r"\d\s*[名人]")


def _one_amount(line: str) -> bool:
    """True when ``line`` holds a single amount outside parentheses (no 増資 history)."""
    rest = PARENS.sub("", fold(line))
    return rest.count("円") <= 1 and not re.search(r"増資|減資|→|⇒|から", rest)


def _employee_count(text: str) -> int | None:
    """The employee count written in ``text`` when it is plausible (1 … MAX_EMPLOYEES - 1)."""
    count = parse_employee_count(text)
    return count.count if count and 0 < count.count < MAX_EMPLOYEES else None


def read_capital(page: Page) -> None:
    """Keep ``capital`` (資本金, int JPY)."""
    for pair in page.ranked("capital"):
        line = first_line(pair)
        if not _one_amount(line):
            continue
        yen = parse_yen(line)
        if yen is None or yen < 1:
            continue
        page.keep("capital", Found(yen, line, page.pair_quote(pair, line), pair_confidence(pair), pair.source))
        return
    if any(p.kind == "capital" for p in page.pairs):
        return
    page.keep_inline("capital", _CAPITAL_INLINE, parse_yen, skip=_CAPITAL_CHANGE)


def read_revenue(page: Page) -> None:
    """Keep ``revenue`` (売上高, int JPY) from a row stating one amount."""
    for pair in page.ranked("revenue"):
        amount_lines = [line for line in pair.lines if parse_yen(line) is not None]
        if len(amount_lines) != 1 or not _one_amount(amount_lines[0]):
            continue  # several years or segments: which one is "the" revenue is a guess
        line = amount_lines[0]
        yen = parse_yen(line)
        if yen is None or yen < 1:
            continue
        page.keep("revenue", Found(yen, line, page.pair_quote(pair, line), pair_confidence(pair), pair.source))
        return


def read_employees(page: Page) -> None:
    """Keep ``employee_count`` (従業員数, int)."""
    for pair in page.ranked("employees"):
        line = first_line(pair)
        count = parse_employee_count(line)
        if count is None or not 0 < count.count < MAX_EMPLOYEES:
            continue
        if len(_COUNT_UNIT.findall(PARENS.sub("", fold(line)))) > 1:
            continue  # "正社員30名 パート20名", "連結 1,234名 / 単体 567名": which total is meant is a guess
        factor = 0.9 if count.approximate else 1.0
        page.keep("employee_count", Found(count.count, line, page.pair_quote(pair, line),
                                          pair_confidence(pair) * factor, pair.source))  # fmt: skip
        return
    if any(p.kind == "employees" for p in page.pairs):
        return
    for value in page.structured_values("numberOfEmployees"):
        if value.value.isdigit() and 0 < int(value.value) < MAX_EMPLOYEES:
            page.keep("employee_count", Found(int(value.value), value.value, value.quote, 0.9, value.syntax))
            return
    page.keep_inline("employee_count", _EMPLOYEES_INLINE, _employee_count)
