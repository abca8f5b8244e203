"""The head-office address of a page: ``prefecture``, ``city``, ``location``, ``postal_code``.

An address cell may list several sites. It is cut into :class:`Segment` s, one per sub-label
(``[本社]``, ``【大阪支店】``, ``本社：…``, a plain "名古屋支店" line) or per full address, and
``_pick_address`` chooses among them: the one head-office segment (本社/本店/本部) wins;
a lone address is taken unless it is a branch's; among several, the first is taken only when
it has no sub-label (confidence 0.75); several labelled sites without a head office, or two
head offices, give nothing. An address must have prefecture (or one inferred from the city,
×0.95), city and a street part with a number (丁目/番地/番/号 or digits).

Sources in order: the organisation's structured ``address``; 本社/所在地 rows (rows under a
branch heading skipped); else 〒 addresses in the visible text when they all agree.
The chosen address is remembered on the page (``hq_segment``, ``hq_key``) for phone.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hokan.core.extract.html import flat
from hokan.core.extract.labels import BRANCH, FAX, HEAD_OFFICE, TEL, is_branch, is_head_office
from hokan.core.extract.page import PARENS, REGEX_CONFIDENCE, Found, Page, distinct, pair_confidence
from hokan.core.ja import find_phones, fold, parse_postal_code, split_address

_POSTAL_MARK = re.compile(r"〒\s*\d{3}\s*-?\s*\d{4}")
_MAP_WORDS = re.compile(
    r"\s*[\[(]?\s*(?:google\s*map|googlemap|map|地図|アクセスマップ|マップ|アクセス)\s*(?:で見る|を見る|はこちら)?\s*[\])]?\s*$",
    re.IGNORECASE,
)
_NOT_ADDRESS_LINE = re.compile(r"^(?:tel|fax|電話|e-?mail|mail|メール|url|http|アクセス|最寄|交通|営業時間|受付)", re.IGNORECASE)
_ACCESS = re.compile(r"徒歩\s*\d|駅から|駅より|最寄り?駅|出口")
# Parenthetical notes after an address that are directions, not address: （最寄駅：六本木駅）.
_ACCESS_NOTE = re.compile(r"[(（][^()（）]*(?:駅|徒歩|最寄|地図|map|マップ)[^()（）]*[)）]", re.IGNORECASE)
# Everything from a phone/FAX mark followed by a number: "… 5階 TEL 03-…" → "… 5階".
CUT_AT_CONTACT = re.compile(r"\s*(?:tel|fax|電話|☎|℡)\s*[.:]?\s*[\d(（+].*$", re.IGNORECASE)
_SUBLABEL_PREFIX = re.compile(r"^[\[【〔(<＜《]([^\]】〕)>＞》]{1,30})[\]】〕)>＞》]\s*(.*)$")
_SUBLABEL_END = re.compile(r"(?:本社|本店|本部|支店|支社|営業所|工場|事業所|出張所|主たる事務所)$")
_COLON_SUBLABEL = re.compile(r"^([^:\d〒]{1,15}?)\s*:\s*(.+)$")
_CITY_START = re.compile(r"^\S{1,6}[市区郡町村]")


@dataclass
class Segment:
    """A part of an address cell: an optional sub-label ([本社], 名古屋支店) and its lines."""

    sublabel: str | None
    lines: list[str]
    source: list[str] = field(default_factory=list)  # the lines as shown, sub-label included


@dataclass
class _AddressPick:
    text: str  # address text as on the page (postal code included when present)
    segment: Segment
    confidence_factor: float


def _is_contact_line(line: str) -> bool:
    folded = fold(line)
    if _NOT_ADDRESS_LINE.match(folded) or _ACCESS.search(folded):
        return True
    return bool(find_phones(folded)) and split_address(folded) is None


def _is_site_name(text: str) -> bool:
    """A bracketed sub-label names a site ([本社], 【大阪支店】), not a number or TEL/FAX."""
    return not re.fullmatch(r"[\d\s-]+", text) and not TEL.search(text) and not FAX.search(text)


def _segments(lines: list[str]) -> list[Segment]:
    segments: list[Segment] = []
    current: Segment | None = None
    previous_contact = True
    for line in lines:
        folded = fold(line)
        m = _SUBLABEL_PREFIX.match(folded) or _colon_sublabel(folded)
        if m and _is_site_name(m.group(1)):
            current = Segment(m.group(1).strip(), [], [line])
            segments.append(current)
            rest = m.group(2).strip()
            if rest:
                current.lines.append(rest)
            previous_contact = False
            continue
        plain_label = (
            not re.search(r"\d", folded)
            and len(folded) <= 20
            and "〒" not in folded
            and split_address(folded) is None
            and (BRANCH.search(folded) or HEAD_OFFICE.search(folded))
            and (current is None or previous_contact or _SUBLABEL_END.search(folded))
        )
        if plain_label:
            current = Segment(folded, [], [line])
            segments.append(current)
            previous_contact = False
            continue
        if current is None or (_starts_address(folded) and _has_full_address(current)):
            # A second full address right after a complete one is another site, not a building line.
            current = Segment(None, [])
            segments.append(current)
        current.lines.append(line)
        current.source.append(line)
        previous_contact = _is_contact_line(line)
    return segments


def _colon_sublabel(folded: str) -> re.Match[str] | None:
    """"本社：東京都…" / "大阪支店: 大阪府…": a site name and a colon before the address."""
    m = _COLON_SUBLABEL.match(folded)
    if m and (BRANCH.search(m.group(1)) or HEAD_OFFICE.search(m.group(1))):
        return m
    return None


def _has_full_address(segment: Segment) -> bool:
    text = segment_address(segment)
    return bool(text and _address_parts(text))


def _starts_address(folded: str) -> bool:
    return "〒" in folded or bool(_POSTAL_MARK.search(folded)) or split_address(folded) is not None


def segment_address(segment: Segment) -> str | None:
    """The address lines of a segment (postal code, street, building), joined by a space."""
    taken: list[str] = []
    for line in segment.lines:
        folded = fold(line)
        if not taken:
            if "〒" in folded or _POSTAL_MARK.search(folded):
                taken.append(line)
                continue
            if split_address(folded) is not None or _CITY_START.match(folded):
                taken.append(line)
                continue
            continue
        if _is_contact_line(line) or len(taken) >= 3:
            break
        if _starts_address(folded) and _address_parts(" ".join(taken)):
            break  # a second address: another site
        taken.append(line)
    if not taken:
        return None
    text = " ".join(taken)
    text = _ACCESS_NOTE.sub("", CUT_AT_CONTACT.sub("", text))
    text = _MAP_WORDS.sub("", text).strip()
    return text or None


def _address_parts(text: str):
    address = split_address(text)
    if address is None or not address.prefecture or not address.city or not address.rest:
        return None
    rest = _MAP_WORDS.sub("", PARENS.sub("", address.rest)).strip()
    if not rest or not re.search(r"\d|丁目|番地|番|号", rest):
        return None
    return address


def _pick_address(lines: list[str]) -> _AddressPick | None:
    """The head-office address among the lines of one address cell, or None (see module doc)."""
    segments = [s for s in _segments(lines)]
    with_address = [(s, a) for s in segments if (a := segment_address(s)) and _address_parts(a)]
    if not with_address:
        return None
    head = [(s, a) for s, a in with_address if s.sublabel and is_head_office(s.sublabel)]
    if len(head) == 1:
        return _AddressPick(head[0][1], head[0][0], 1.0)
    if len(head) > 1:
        return None
    if len(with_address) == 1:
        segment, text = with_address[0]
        if segment.sublabel and is_branch(segment.sublabel):
            return None  # the only address is a branch's
        return _AddressPick(text, segment, 1.0)
    first_segment, first_text = with_address[0]
    if first_segment.sublabel is None:
        # Several addresses, the first without a sub-label: listed first under 所在地/本社.
        return _AddressPick(first_text, first_segment, 0.75 / 0.9)
    return None  # several labelled sites, none the head office


def address_key(text: str) -> str | None:
    """A valid address as prefecture + city + rest without spaces (to find it again), or None."""
    address = _address_parts(text)
    if address is None:
        return None
    return re.sub(r"\s+", "", f"{address.prefecture}{address.city}{fold(address.rest)}")


def _store_address(page: Page, text: str, quote: str, confidence: float, extractor: str) -> None:
    address = _address_parts(text)
    if address is None:
        return
    factor = 0.95 if address.prefecture_inferred else 1.0
    raw = flat(text)
    page.keep("prefecture", Found(address.prefecture, raw, quote, confidence * factor, extractor))
    page.keep("city", Found(address.city, raw, quote, confidence, extractor))
    page.keep("location", Found(address.rest, raw, quote, confidence, extractor))
    postal = address.postal_code or parse_postal_code(text)
    if postal:
        page.keep("postal_code", Found(postal, raw, quote, confidence, extractor))


def read_address(page: Page) -> None:
    """Keep ``prefecture``, ``city``, ``location`` and ``postal_code`` of the head office,
    and set ``page.hq_segment`` / ``page.hq_key`` for the phone rules."""
    for value in page.structured_values("address"):
        if _address_parts(value.value):
            _store_address(page, value.value, value.quote, 0.9, value.syntax)
            page.hq_key = address_key(value.value)
            return
    for pair in page.ranked("hq_address", "address"):
        if pair.kind == "address" and pair.heading and is_branch(pair.heading):
            continue
        pick = _pick_address(pair.lines)
        if pick is None:
            continue
        confidence = pair_confidence(pair) * pick.confidence_factor
        shown = " ".join(pick.segment.source) if pick.segment.sublabel else pick.text
        _store_address(page, pick.text, page.pair_quote(pair, shown), confidence, pair.source)
        page.hq_segment = pick.segment
        page.hq_key = address_key(pick.text)
        return
    # Fallback: 〒 addresses in the visible text, when they all agree.
    if page.several_companies:
        return
    found: list[tuple[str, str]] = []
    for i, line in enumerate(page.lines):
        if "〒" not in line:
            continue
        text = segment_address(Segment(None, page.lines[i : i + 3]))
        if text and _POSTAL_MARK.search(fold(text)) and address_key(text):
            found.append((text, line))
    if found and len(distinct([address_key(t) for t, _ in found])) == 1:
        text, line = found[0]
        _store_address(page, text, page.quote(text, line), REGEX_CONFIDENCE, "regex")
        page.hq_key = address_key(text)
