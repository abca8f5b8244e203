"""設立 (incorporation, ``established_year``) and 創業/創立 (``founded_year``): different facts.

A 設立/創業 row gives its year when the cell is only a date (with a parenthetical and
"設立" allowed), or one date with a few words around it ("2002年2月1日 設立", ×0.9).

``established_year`` only, when the page has no 設立 row at all (an unreadable 設立 row means
no guessing from elsewhere): the organisation's ``foundingDate`` (0.75: it may be 設立 or
創業), else a 沿革 entry that is the company's own incorporation ("2017年10月 法人設立",
not a subsidiary's or a branch's; 0.7) when all such entries agree, else "設立 1998年…" in
the text when the page agrees (0.6). 創立 is never 設立 (labels.py).
"""

from __future__ import annotations

import re

from hokan.core.extract.page import HISTORY_CONFIDENCE, PARENS, Found, Page, distinct, first_line, pair_confidence
from hokan.core.extract.pairs import Pair
from hokan.core.ja import fold, parse_year

# An 沿革 entry that is the company's own incorporation: "法人設立", "株式会社三進社設立".
_INCORPORATION_EVENT = re.compile(
    r"^(?:(?:法人|会社|当社|弊社)(?:を)?設立|設立|"
    r"(?:株式会社|有限会社|合同会社|合資会社|合名会社)\S{1,30}?(?:を)?設立|"
    r"\S{1,30}?(?:株式会社|有限会社|合同会社|合資会社|合名会社)(?:を)?設立)(?:$|[\s、。])"
)
_NOT_OWN_INCORPORATION = re.compile(r"子会社|関連会社|合弁|グループ会社|支社|支店|営業所|現地法人|分社|準備|ビル|工場|事務所|店")
_DATE_ONLY = re.compile(
    r"(?:(?:明治|大正|昭和|平成|令和|[MTSHR])\s*(?:元|\d{1,2})|\d{4})\s*(?:年|[./-])\s*"
    r"(?:\d{1,2}\s*(?:月|[./-])?)?\s*(?:\d{1,2}\s*日?)?\s*(?:設立)?",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?:明治|大正|昭和|平成|令和)\s*(?:元|\d{1,2})\s*年|\d{4}\s*年")
_ESTABLISHED_INLINE = re.compile(r"設立(?:年月日|日)?\s*[:]?\s*((?:明治|大正|昭和|平成|令和|\d{4})[^\s,、。]{1,16})")


def _clean_date_line(line: str) -> bool:
    """True when ``line`` is only a date (optionally with a parenthetical and 設立)."""
    rest = PARENS.sub("", fold(line)).strip()
    return bool(rest) and _DATE_ONLY.fullmatch(rest) is not None


def _year_from_pair(pair: Pair) -> tuple[int, str, float] | None:
    line = first_line(pair)
    year = parse_year(line)
    if year is None:
        return None
    if _clean_date_line(line):
        return year, line, 1.0
    # "2002年2月1日 設立" style: one date and a few words around it.
    rest = PARENS.sub("", fold(line))
    others = {parse_year(m.group(0)) for m in _YEAR.finditer(rest)}
    if len(others - {None}) == 1 and len(rest) <= 24:
        return year, line, 0.9
    return None


def _year_from_rows(page: Page, kind: str, field: str) -> bool:
    """Keep ``field`` from the first readable row of ``kind``; True when one was found."""
    for pair in page.ranked(kind):
        got = _year_from_pair(pair)
        if got is None:
            continue
        year, raw, factor = got
        page.keep(field, Found(year, raw, page.pair_quote(pair, raw), pair_confidence(pair) * factor, pair.source))
        return True
    return False


def _incorporation_year(page: Page) -> tuple[int, str, Pair] | None:
    """The 沿革 entry of the company's own incorporation, when all such entries agree on the year."""
    events: list[tuple[int, str, Pair]] = []
    for pair in page.own_pairs():
        if pair.kind != "date":
            continue
        for line in pair.lines:
            text = PARENS.sub("", fold(line)).strip()
            if _INCORPORATION_EVENT.match(text) and not _NOT_OWN_INCORPORATION.search(text):
                year = parse_year(pair.label)
                if year:
                    events.append((year, line, pair))
    if events and len(distinct([y for y, _, _ in events])) == 1:
        return events[0]
    return None


def read_established(page: Page) -> None:
    """Keep ``established_year`` (int, the year of 設立; see module doc)."""
    if _year_from_rows(page, "established", "established_year"):
        return
    if any(p.kind == "established" for p in page.pairs):
        return  # a 設立 row we could not read: no guessing from elsewhere
    for value in page.structured_values("foundingDate"):
        year = parse_year(value.value)
        if year:
            page.keep("established_year", Found(year, value.value, value.quote, 0.75, value.syntax))
            return
    event = _incorporation_year(page)
    if event is not None:
        year, line, pair = event
        page.keep("established_year", Found(year, line, page.pair_quote(pair, line), HISTORY_CONFIDENCE, "history"))
        return
    page.keep_inline("established_year", _ESTABLISHED_INLINE, parse_year)


def read_founded(page: Page) -> None:
    """Keep ``founded_year`` (int, the year of 創業/創立) from a 創業 row."""
    _year_from_rows(page, "founded", "founded_year")
