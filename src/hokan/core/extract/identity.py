"""Which company a page is about: its name (商号), 法人番号 and business (事業内容).

- ``name``: JSON-LD/microdata ``name``/``legalName`` with a legal form, else the first 会社名
  row whose value is one company name (English names in parentheses or after "/" dropped).
  A cell naming two organisations gives no name; a "会社概要" row counts only with a legal form.
- ``corporate_number``: ``taxID``, a 法人番号 row, else "法人番号 1234567890123" in the text
  when the page agrees.
- ``business_description``: the 事業内容 row (≤ 1000 chars, vague lines dropped), else the
  organisation's ``description`` (0.7).
- :func:`several_companies` tells a group-company page (one table per company) apart.
"""

from __future__ import annotations

import re

from hokan.core.extract.labels import label_key
from hokan.core.extract.page import REGEX_CONFIDENCE, Found, Page, distinct, first_line, pair_confidence
from hokan.core.extract.pairs import Pair
from hokan.core.ja import company_name_key, company_type, fold, is_vague, normalize_company_name, parse_corporate_number

_CORPORATE_NUMBER_INLINE = re.compile(r"法人番号\s*[:]?\s*([\d\s-]{13,20})")
_ENGLISH_NAME = re.compile(
    r"\s*(?:[(（]\s*(?:英文|英語|英字|英名|english)[^()（）]*[)）]|[(（][A-Za-z0-9 .,&'\-]+[)）]|"
    r"[(（][^()（）]*(?:co\.|ltd|inc\b|corp|llc|company|k\.k\.)[^()（）]*[)）]|(?:\s/\s|／|/\s*(?=[A-Za-z])).*)$",
    re.IGNORECASE,
)


def clean_name(text: str) -> str | None:
    """``text`` as a normalised company name without its English name, or None when it is
    empty, vague, longer than 60 chars or looks like code/numbers/a URL."""
    text = _ENGLISH_NAME.sub("", fold(text)).strip()
    if not text or is_vague(text) or len(text) > 60 or re.search(r"\d{3,}|[{}<>=;|]|https?:", text):
        return None
    return normalize_company_name(text)


def several_companies(pairs: list[Pair], main_group: int | None) -> bool:
    """True when tables of different groups name different companies (a group-company list)."""
    names = {
        company_name_key(clean_name(first_line(p)) or first_line(p))
        for p in pairs
        if p.kind == "name" and p.source != "text" and p.lines
    }
    groups = {p.group for p in pairs if p.kind == "name" and p.source != "text"}
    return len(names - {""}) > 1 and len(groups) > 1 and main_group is not None


def read_name(page: Page) -> None:
    """Keep ``name`` (normalised company name) when the page states it."""
    for value in page.structured_values("name") + page.structured_values("legalName"):
        name = clean_name(value.value)
        if name and company_type(name):
            page.keep("name", Found(name, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in page.ranked("name"):
        names = [line for line in pair.lines if company_type(line)]
        if len(distinct([normalize_company_name(n) for n in names])) > 1:
            continue  # two organisations in one cell (会社名 A / 会社名 B): no guess
        if len(pair.lines) > 1 and not names:
            continue  # several lines, none a company name
        raw = first_line(pair)
        name = clean_name(raw)
        if name is None:
            continue
        if label_key(pair.label).endswith("概要") and not company_type(name):
            continue  # "会社概要" over a row: only a name with a legal form is the name
        if not company_type(name) and len(name) > 40:
            continue
        page.keep("name", Found(name, raw, page.pair_quote(pair, raw), pair_confidence(pair), pair.source))
        return


def read_corporate_number(page: Page) -> None:
    """Keep ``corporate_number`` (13 validated digits) when the page states it."""
    for value in page.structured_values("taxID"):
        number = parse_corporate_number(value.value)
        if number:
            page.keep("corporate_number", Found(number, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in page.ranked("corporate_number"):
        number = parse_corporate_number(first_line(pair))
        if number:
            raw = first_line(pair)
            page.keep("corporate_number", Found(number, raw, page.pair_quote(pair, raw), pair_confidence(pair),
                                                pair.source))  # fmt: skip
            return
    inline = page.inline_value(_CORPORATE_NUMBER_INLINE, parse_corporate_number)
    if inline is not None:
        number, line = inline  # raw: the 13 digits, not the line
        page.keep("corporate_number", Found(number, number, page.quote(line), REGEX_CONFIDENCE, "regex"))


def read_business(page: Page) -> None:
    """Keep ``business_description`` (the 事業内容 lines joined by newlines, ≤ 1000 chars)."""
    for pair in page.ranked("business"):
        lines = [line for line in pair.lines if not is_vague(line)]
        if not lines:
            continue
        value = "\n".join(lines)[:1000]
        raw = " ".join(lines)
        page.keep("business_description", Found(value, raw, page.pair_quote(pair, raw), pair_confidence(pair),
                                                pair.source))  # fmt: skip
        return
    for item in page.structured_values("description"):
        if not is_vague(item.value):
            page.keep("business_description", Found(item.value[:1000], item.value, item.quote, 0.7, item.syntax))
            return
