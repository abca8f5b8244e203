"""The company's phone (``phone``, national format "03-5339-8051"): TEL, never FAX.

A number right after a FAX mark ("FAX 03-…", "F.03-…") is never the phone, unless a TEL
mark stands between them. Among several numbers of one cell, one marked 代表 or 本社 wins,
else the only landline among free-dial/mobile numbers (×0.9), else the first (×0.8).

Sources in order (each only when the earlier ones give nothing):

1. the organisation's structured ``telephone`` (0.9);
2. 電話 rows of the main profile table (rows under a branch heading skipped);
3. the head-office segment of the address cell used (address.py), ×0.95 of the address;
4. phone rows outside the profile table, when they agree (×0.9);
5. the head-office address repeated elsewhere (a branch list, the footer) with a phone (0.7);
6. numbers after TEL/電話 anywhere in the text, when they all agree and are not a branch's (0.6).
"""

from __future__ import annotations

import re

from hokan.core.extract.address import CUT_AT_CONTACT, Segment, address_key, segment_address
from hokan.core.extract.labels import FAX, TEL, is_branch, is_head_office
from hokan.core.extract.page import REGEX_CONFIDENCE, Found, Page, distinct, pair_confidence
from hokan.core.extract.pairs import Pair
from hokan.core.ja import Phone, find_phones, fold, parse_phone

_DAIHYO = re.compile(r"代表")
_PHONE_RUN = re.compile(r"[\d()\-+\s]{6,}")
_TEL_INLINE = re.compile(r"(?:tel|電話(?:番号)?|phone|☎|℡)\s*[.:]?\s*", re.IGNORECASE)

# (phone, raw text of the number, the line it stands in)
_PhoneHit = tuple[Phone, str, str]


def _phones_in(lines: list[str]) -> list[_PhoneHit]:
    """Phones of ``lines`` that are not FAX numbers: (phone, raw, line)."""
    out: list[_PhoneHit] = []
    for line in lines:
        folded = fold(line)
        last_end = 0
        for phone, raw in find_phones(line):
            pos = folded.find(fold(raw), last_end)
            prefix = folded[last_end:pos] if pos >= 0 else ""
            last_end = pos + len(fold(raw)) if pos >= 0 else last_end
            if FAX.search(prefix) and not TEL.search(prefix):
                continue
            out.append((phone, raw, line))
    return out


def _choose_phone(found: list[_PhoneHit]) -> tuple[_PhoneHit, float] | None:
    if not found:
        return None
    distinct_numbers = distinct([p.national for p, _, _ in found])
    if len(distinct_numbers) == 1:
        return found[0], 1.0
    marked = [f for f in found if _DAIHYO.search(f[2]) or is_head_office(f[2])]
    if len(distinct([p.national for p, _, _ in marked])) == 1:
        return marked[0], 1.0
    fixed = [f for f in found if f[0].kind == "fixed"]
    if len(distinct([p.national for p, _, _ in fixed])) == 1:
        return fixed[0], 0.9  # one landline beside free-dial/mobile numbers: the office line
    return found[0], 0.8


def _tel_tail(line: str) -> str:
    m = re.search(r"(?:tel|電話|☎|℡).*$", line, re.IGNORECASE)
    return m.group(0) if m else ""


def read_phone(page: Page) -> None:
    """Keep ``phone`` (see module doc). Runs after address.py's :func:`read_address`."""
    rows = [p for p in page.ranked("phone", text=False) if not (p.heading and is_branch(p.heading))]
    page.keep(
        "phone",
        _from_structured(page)
        or _from_profile_rows(page, rows)
        or _from_hq_segment(page)
        or _from_other_rows(page, rows)
        or _near_hq_address(page)
        or _after_tel_marks(page),
    )


def _from_structured(page: Page) -> Found | None:
    for value in page.structured_values("telephone"):
        phone = parse_phone(value.value)
        if phone:
            return Found(phone.national, value.value, value.quote, 0.9, value.syntax)
    return None


def _from_profile_rows(page: Page, rows: list[Pair]) -> Found | None:
    for pair in rows:
        if pair.group != page.main_group:
            break  # the profile table first; other rows only after the head-office address
        chosen = _choose_phone(_phones_in(pair.lines))
        if chosen is None:
            continue
        (phone, raw, line), factor = chosen
        return Found(phone.national, raw, page.pair_quote(pair, line), pair_confidence(pair) * factor, pair.source)
    return None


def _from_hq_segment(page: Page) -> Found | None:
    """The phone in the head-office part of the address cell used for the address."""
    segment = page.hq_segment
    if segment is None:
        return None
    chosen = _choose_phone(_phones_in(segment.lines))
    if chosen is None:
        return None
    (phone, raw, line), factor = chosen
    source = page.found["prefecture"]
    return Found(phone.national, raw, page.quote(line), source.confidence * 0.95 * factor, source.extractor)


def _from_other_rows(page: Page, rows: list[Pair]) -> Found | None:
    """Phone rows outside the profile table (an access block, a footer list): only if they agree."""
    others = [(pair, found) for pair in rows if pair.group != page.main_group for found in _phones_in(pair.lines)]
    if others and len(distinct([f[0].national for _, f in others])) == 1:
        pair, (phone, raw, line) = others[0]
        return Found(phone.national, raw, page.pair_quote(pair, line), pair_confidence(pair) * 0.9, pair.source)
    return None


def _near_hq_address(page: Page) -> Found | None:
    """The head-office address repeated elsewhere (a branch list, the footer) with its phone."""
    hq_key = page.hq_key
    if not hq_key:
        return None
    near: list[_PhoneHit] = []
    for pair in page.pairs:
        if pair.source == "text" or not pair.lines:
            continue
        pick = segment_address(Segment(None, pair.lines))
        if pick and address_key(pick) == hq_key:
            near.extend(_phones_in(pair.lines))
    city = page.found["city"].value if "city" in page.found else ""
    for i, line in enumerate(page.lines):
        if city not in page.folded[i]:
            continue
        if address_key(line) == hq_key or address_key(CUT_AT_CONTACT.sub("", line)) == hq_key:
            near.extend(_phones_in([_tel_tail(line)] + page.lines[i + 1 : i + 3]))
    if len(distinct([p.national for p, _, _ in near])) == 1:
        phone, raw, line = near[0]
        return Found(phone.national, raw, page.quote(line), 0.7, "regex")
    return None


def _after_tel_marks(page: Page) -> Found | None:
    """Phones after TEL/電話 anywhere in the text, when they all agree and are not a branch's."""
    if page.several_companies:
        return None
    tel: list[_PhoneHit] = []
    for pair in page.pairs:
        if pair.source == "text" and pair.kind == "phone":
            tel.extend(_phones_in(pair.lines))
    for i, (line, folded) in enumerate(zip(page.lines, page.folded)):
        if not _TEL_INLINE.search(folded):
            continue
        if is_branch(_PHONE_RUN.sub("", folded)) or (i and is_branch(_PHONE_RUN.sub("", page.folded[i - 1]))):
            continue  # a branch's number (大阪営業所 TEL …) is not the company's phone
        for m in _TEL_INLINE.finditer(folded):
            after = folded[m.end() : m.end() + 20]
            phone = parse_phone(after)
            if phone and after.lstrip().startswith(tuple("0(+")):
                tel.append((phone, after.strip(), line))
    if tel and len(distinct([p.national for p, _, _ in tel])) == 1:
        phone, raw, line = tel[0]
        return Found(phone.national, raw, page.quote(line), REGEX_CONFIDENCE, "regex")
    return None
