"""Rule-based extraction of company facts from one Japanese company profile page (会社概要).

:func:`extract_profile` returns at most one value per field, each a
:class:`~hokan.core.fields.FieldValue` with method "rule". A wrong value is worse than a
missing one: every value is validated with :mod:`hokan.core.ja`, vague answers (非公開,
お問い合わせください…) count as missing, and when a page offers several different values
that no rule can tell apart, the field is left out.

Sources and their confidence (before the reductions noted below):

========================  ==========  ====================================================
source (``extractor``)    confidence  what
========================  ==========  ====================================================
``jsonld`` / microdata    0.9         Organization-like item (see structured.py);
                                      ``foundingDate`` 0.75 (設立 or 創業?), description 0.7
``table`` / ``dl``        0.9         label → value rows (pairs.py)
``block``                 0.85        div/heading rows (``<h6>社名</h6><div>…</div>``)
``text``                  0.8         ``項目：値`` lines
``link``                  0.8 / 0.7   a Facebook page link / the only ``mailto:`` address
``history``               0.7         沿革 entry "2017年10月 法人設立" (established only)
``regex``                 0.7 / 0.6   the phone next to a repeat of the head-office address /
                                      patterns over the visible text, used only when all
                                      matches on the page agree
========================  ==========  ====================================================

Reductions: a value picked among several different ones in one cell ×0.8 (×0.9 for the
only landline among free-dial/mobile numbers); the first of several unlabelled addresses
0.75; the phone of the head-office address cell ×0.95 of the address; phone rows outside the
profile table ×0.9; "約50名" ×0.9; a 設立 cell with words around the date ×0.9; a prefecture
inferred from the city ×0.95.

Choices: 設立 is ``established_year``; 創業/創立 are ``founded_year`` only (labels.py).
Among several addresses/phones the head office wins (sub-label 本社/本店/本部); FAX numbers
are never the phone. Among officers, a title with 代表 and 社長 beats 代表 alone, which beats
会長. A page listing several companies (one table each) is read from its main table only.

Quotes: for values read from the visible page, ``quote`` is a substring of
``flat(visible_text(html))`` (label and value, ≤ 200 chars). Values read from JSON-LD or link
targets are not visible text; their quote is the property as written in the page source
(``"telephone": "+81-948-24-6315"``, ``href="https://www.facebook.com/…"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from hokan.core.extract.html import element_flat, flat, parse_html, text_lines
from hokan.core.extract.labels import BRANCH, HEAD_OFFICE, is_branch, is_head_office, label_key
from hokan.core.extract.pairs import Pair, find_pairs
from hokan.core.extract.structured import StructuredValue, organisation_values
from hokan.core.fields import FieldValue
from hokan.core.ja import (
    Phone,
    company_name_key,
    company_type,
    find_phones,
    fold,
    is_vague,
    normalize_company_name,
    parse_corporate_number,
    parse_employee_count,
    parse_phone,
    parse_postal_code,
    parse_year,
    parse_yen,
    split_address,
    split_representative,
)

FIELDS: tuple[str, ...] = (
    "name", "corporate_number", "business_description", "prefecture", "city", "location", "postal_code",
    "employee_count", "revenue", "capital", "established_year", "founded_year", "phone", "contact_email",
    "website_url", "facebook_url", "representative_name", "representative_title",
)  # fmt: skip

SOURCE_CONFIDENCE = {"jsonld": 0.9, "microdata": 0.9, "table": 0.9, "dl": 0.9, "block": 0.85, "text": 0.8}
HISTORY_CONFIDENCE = 0.7
REGEX_CONFIDENCE = 0.6
MAX_QUOTE = 200
MAX_EMPLOYEES = 1_000_000

_FAX = re.compile(r"fax|ファックス|ファクス|ファクシミリ|(?<![a-z])f\s*[.:]", re.IGNORECASE)
_TEL = re.compile(r"tel|電話|phone|☎|℡", re.IGNORECASE)
_DAIHYO = re.compile(r"代表")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_IMAGE_SUFFIX = re.compile(r"\.(?:png|jpe?g|gif|webp|svg|bmp)$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"'（）()、。]+")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕")
_POSTAL_MARK = re.compile(r"〒\s*\d{3}\s*-?\s*\d{4}")
_MAP_WORDS = re.compile(
    r"\s*[\[(]?\s*(?:google\s*map|googlemap|map|地図|アクセスマップ|マップ|アクセス)\s*(?:で見る|を見る|はこちら)?\s*[\])]?\s*$",
    re.IGNORECASE,
)
_NOT_ADDRESS_LINE = re.compile(r"^(?:tel|fax|電話|e-?mail|mail|メール|url|http|アクセス|最寄|交通|営業時間|受付)", re.IGNORECASE)
_ACCESS = re.compile(r"徒歩\s*\d|駅から|駅より|最寄り?駅|出口")
# Parenthetical notes after an address that are directions, not address: （最寄駅：六本木駅）.
_ACCESS_NOTE = re.compile(r"[(（][^()（）]*(?:駅|徒歩|最寄|地図|map|マップ)[^()（）]*[)）]", re.IGNORECASE)
_CUT_AT_CONTACT = re.compile(r"\s*(?:tel|fax|電話|☎|℡)\s*[.:]?\s*[\d(（+].*$", re.IGNORECASE)
_SUBLABEL_PREFIX = re.compile(r"^[\[【〔(<＜《]([^\]】〕)>＞》]{1,30})[\]】〕)>＞》]\s*(.*)$")
_SUBLABEL_END = re.compile(r"(?:本社|本店|本部|支店|支社|営業所|工場|事業所|出張所|主たる事務所)$")
_COLON_SUBLABEL = re.compile(r"^([^:\d〒]{1,15}?)\s*:\s*(.+)$")
_CITY_START = re.compile(r"^\S{1,6}[市区郡町村]")
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
_ESTABLISHED_INLINE = re.compile(r"設立(?:年月日|日)?\s*[:]?\s*((?:明治|大正|昭和|平成|令和|\d{4})[^\s,、。]{1,16})")
_CAPITAL_INLINE = re.compile(r"資本金\s*[:]?\s*([\d,.]+\s*(?:兆|億|千万|百万|万|千)?[\d,.]*\s*(?:万|千)?円)")
_EMPLOYEES_INLINE = re.compile(r"(?:従業員数?|社員数|職員数|スタッフ数)\s*[:]?\s*((?:約)?\s*[\d,]+\s*[名人])")
_COUNT_UNIT = re.compile(r"\d\s*[名人]")
_CORPORATE_NUMBER_INLINE = re.compile(r"法人番号\s*[:]?\s*([\d\s-]{13,20})")
_PHONE_RUN = re.compile(r"[\d()\-+\s]{6,}")
_TEL_INLINE = re.compile(r"(?:tel|電話(?:番号)?|phone|☎|℡)\s*[.:]?\s*", re.IGNORECASE)
_ENGLISH_NAME = re.compile(
    r"\s*(?:[(（]\s*(?:英文|英語|英字|英名|english)[^()（）]*[)）]|[(（][A-Za-z0-9 .,&'\-]+[)）]|"
    r"[(（][^()（）]*(?:co\.|ltd|inc\b|corp|llc|company|k\.k\.)[^()（）]*[)）]|(?:\s/\s|／|/\s*(?=[A-Za-z])).*)$",
    re.IGNORECASE,
)
_FACEBOOK = re.compile(r"^https?://(?:www\.|m\.|ja-jp\.)?facebook\.com/([^?#]+)", re.IGNORECASE)
_FACEBOOK_NOT_PAGE = re.compile(
    r"^(?:sharer|share|dialog|plugins|login|tr|policy|help|privacy|legal|events/?$|home\.php)", re.IGNORECASE
)


@dataclass
class _Found:
    """One candidate value of one field, before it becomes a FieldValue."""

    value: Any
    raw: str
    quote: str
    confidence: float
    extractor: str


@dataclass
class _Page:
    html: str
    url: str | None
    root: Any
    lines: list[str]
    folded: list[str]  # fold() of each line
    flat: str
    pairs: list[Pair]
    structured: list[StructuredValue]
    main_group: int | None
    found: dict[str, _Found] = field(default_factory=dict)
    several_companies: bool = False  # tables of several companies (see _several_companies)
    hq_segment: _Segment | None = None  # the head-office part of the address cell used
    hq_key: str | None = None  # that address as prefecture+city+rest, for finding it again

    def quote(self, *options: str) -> str:
        """The first option that stands in the visible text (cut to MAX_QUOTE), else the last option."""
        for option in options:
            option = flat(option)
            if option and option in self.flat:
                return option[:MAX_QUOTE] if len(option) > MAX_QUOTE else option
        return flat(options[-1])[:MAX_QUOTE] if options else ""

    def pair_quote(self, pair: Pair, raw: str) -> str:
        """Label and value as on the page, cut to MAX_QUOTE around ``raw``."""
        quote = flat(pair.quote)
        raw = flat(raw)
        if len(quote) > MAX_QUOTE:
            pos = quote.find(raw)
            if pos < 0 or pos + len(raw) <= MAX_QUOTE:
                quote = quote[:MAX_QUOTE]
            else:
                quote = quote[pos : pos + MAX_QUOTE]  # the label is too far away: the value alone
        label_value = f"{flat(pair.label)}{flat(pair.text)}"
        return self.quote(quote, label_value, raw)


def extract_profile(html: str, *, url: str | None) -> dict[str, FieldValue]:
    """Read company facts from one profile page.

    html: the decoded page (see ``hokan.core.web.decode_html``); url: where it came from
    (stored as ``source_url`` and used to resolve relative links), or None.

    Returns ``{field: FieldValue}`` for the fields found, keys from :data:`FIELDS`. Values:
    ``employee_count``, ``capital``, ``revenue`` (int JPY), ``established_year``,
    ``founded_year`` int; ``phone`` national format ("03-5339-8051"); ``postal_code``
    "141-0033"; ``corporate_number`` 13 digits; others ``str``. Never raises on odd HTML.
    """
    root = parse_html(html)
    lines = text_lines(root)
    pairs = find_pairs(root)
    page = _Page(
        html=html,
        url=url,
        root=root,
        lines=lines,
        folded=[fold(line) for line in lines],
        flat=" ".join(lines),
        pairs=pairs,
        structured=organisation_values(html, url),
        main_group=_main_group(pairs),
    )
    page.several_companies = _several_companies(pairs, page.main_group)
    _name(page)
    _corporate_number(page)
    _address(page)
    _phone(page)
    _representative(page)
    _established(page)
    _founded(page)
    _capital(page)
    _employees(page)
    _revenue(page)
    _business(page)
    _email(page)
    _website(page)
    _facebook(page)
    return {
        name: FieldValue(
            field=name,
            value=found.value,
            raw=found.raw,
            quote=found.quote,
            source_url=url,
            method="rule",
            confidence=round(found.confidence, 3),
            extractor=found.extractor,
        )
        for name, found in page.found.items()
    }


# --- helpers ------------------------------------------------------------------------------------
def _main_group(pairs: list[Pair]) -> int | None:
    """The container holding the most labelled rows: the profile table of the page."""
    counts: dict[int, int] = {}
    for pair in pairs:
        if pair.source != "text" and pair.kind not in (None, "date"):
            counts[pair.group] = counts.get(pair.group, 0) + 1
    return max(counts, key=lambda g: counts[g]) if counts else None


def _several_companies(pairs: list[Pair], main_group: int | None) -> bool:
    """True when tables of different groups name different companies (a group-company list)."""
    names = {
        company_name_key(_clean_name(_first_line(p)) or _first_line(p))
        for p in pairs
        if p.kind == "name" and p.source != "text" and p.lines
    }
    groups = {p.group for p in pairs if p.kind == "name" and p.source != "text"}
    return len(names - {""}) > 1 and len(groups) > 1 and main_group is not None


def _own_pairs(page: _Page) -> list[Pair]:
    """All pairs, or only the main table's on a page listing several companies."""
    if page.several_companies:
        return [p for p in page.pairs if p.group == page.main_group]
    return page.pairs


def _ranked(page: _Page, *kinds: str, text: bool = True) -> list[Pair]:
    """Pairs of these kinds: the main profile table first, then reading order; text pairs last.

    On pages listing several companies (one table each), only the main table counts: a
    field missing there must not be filled from another company's table.
    """
    chosen = [p for p in page.pairs if p.kind in kinds and (text or p.source != "text")]
    if page.several_companies:
        chosen = [p for p in chosen if p.group == page.main_group]
    return sorted(
        chosen,
        key=lambda p: (p.source == "text", p.group != page.main_group, kinds.index(p.kind), p.order),
    )


def _conf(pair: Pair) -> float:
    return SOURCE_CONFIDENCE.get(pair.source, 0.8)


def _structured(page: _Page, key: str) -> list[StructuredValue]:
    return [v for v in page.structured if v.key == key]


def _first_line(pair: Pair) -> str:
    return pair.lines[0] if pair.lines else ""


def _clean_date_line(line: str) -> bool:
    """True when ``line`` is only a date (optionally with a parenthetical and 設立)."""
    rest = _PARENS.sub("", fold(line)).strip()
    return bool(rest) and _DATE_ONLY.fullmatch(rest) is not None


def _set(page: _Page, name: str, found: _Found | None) -> None:
    if found is not None and name not in page.found:
        page.found[name] = found


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


# --- name ---------------------------------------------------------------------------------------
def _clean_name(text: str) -> str | None:
    text = _ENGLISH_NAME.sub("", fold(text)).strip()
    if not text or is_vague(text) or len(text) > 60 or re.search(r"\d{3,}|[{}<>=;|]|https?:", text):
        return None
    return normalize_company_name(text)


def _name(page: _Page) -> None:
    for value in _structured(page, "name") + _structured(page, "legalName"):
        name = _clean_name(value.value)
        if name and company_type(name):
            _set(page, "name", _Found(name, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in _ranked(page, "name"):
        names = [line for line in pair.lines if company_type(line)]
        if len(_distinct([normalize_company_name(n) for n in names])) > 1:
            continue  # two organisations in one cell (会社名 A / 会社名 B): no guess
        if len(pair.lines) > 1 and not names:
            continue  # several lines, none a company name
        raw = _first_line(pair)
        name = _clean_name(raw)
        if name is None:
            continue
        if label_key(pair.label).endswith("概要") and not company_type(name):
            continue  # "会社概要" over a row: only a name with a legal form is the name
        if not company_type(name) and len(name) > 40:
            continue
        _set(page, "name", _Found(name, raw, page.pair_quote(pair, raw), _conf(pair), pair.source))
        return


# --- 法人番号 -----------------------------------------------------------------------------------
def _corporate_number(page: _Page) -> None:
    for value in _structured(page, "taxID"):
        number = parse_corporate_number(value.value)
        if number:
            _set(page, "corporate_number", _Found(number, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in _ranked(page, "corporate_number"):
        number = parse_corporate_number(_first_line(pair))
        if number:
            raw = _first_line(pair)
            _set(page, "corporate_number", _Found(number, raw, page.pair_quote(pair, raw), _conf(pair), pair.source))
            return
    if page.several_companies:
        return
    numbers = []
    for line, folded in zip(page.lines, page.folded):
        for m in _CORPORATE_NUMBER_INLINE.finditer(folded):
            number = parse_corporate_number(m.group(1))
            if number:
                numbers.append((number, line))
    if len(_distinct([n for n, _ in numbers])) == 1:
        number, line = numbers[0]
        _set(page, "corporate_number", _Found(number, number, page.quote(line), REGEX_CONFIDENCE, "regex"))


# --- address ------------------------------------------------------------------------------------
@dataclass
class _Segment:
    """A part of an address cell: an optional sub-label ([本社], 名古屋支店) and its lines."""

    sublabel: str | None
    lines: list[str]
    source: list[str] = field(default_factory=list)  # the lines as shown, sub-label included


@dataclass
class _AddressPick:
    text: str  # address text as on the page (postal code included when present)
    segment: _Segment
    confidence_factor: float


def _is_contact_line(line: str) -> bool:
    folded = fold(line)
    if _NOT_ADDRESS_LINE.match(folded) or _ACCESS.search(folded):
        return True
    return bool(find_phones(folded)) and split_address(folded) is None


def _is_site_name(text: str) -> bool:
    """A bracketed sub-label names a site ([本社], 【大阪支店】), not a number or TEL/FAX."""
    return not re.fullmatch(r"[\d\s-]+", text) and not _TEL.search(text) and not _FAX.search(text)


def _segments(lines: list[str]) -> list[_Segment]:
    segments: list[_Segment] = []
    current: _Segment | None = None
    previous_contact = True
    for line in lines:
        folded = fold(line)
        m = _SUBLABEL_PREFIX.match(folded) or _colon_sublabel(folded)
        if m and _is_site_name(m.group(1)):
            current = _Segment(m.group(1).strip(), [], [line])
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
            current = _Segment(folded, [], [line])
            segments.append(current)
            previous_contact = False
            continue
        if current is None or (_starts_address(folded) and _has_full_address(current)):
            # A second full address right after a complete one is another site, not a building line.
            current = _Segment(None, [])
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


def _has_full_address(segment: _Segment) -> bool:
    text = _segment_address(segment)
    return bool(text and _address_parts(text))


def _starts_address(folded: str) -> bool:
    return "〒" in folded or bool(_POSTAL_MARK.search(folded)) or split_address(folded) is not None


def _segment_address(segment: _Segment) -> str | None:
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
    text = _ACCESS_NOTE.sub("", _CUT_AT_CONTACT.sub("", text))
    text = _MAP_WORDS.sub("", text).strip()
    return text or None


def _address_parts(text: str):
    address = split_address(text)
    if address is None or not address.prefecture or not address.city or not address.rest:
        return None
    rest = _MAP_WORDS.sub("", _PARENS.sub("", address.rest)).strip()
    if not rest or not re.search(r"\d|丁目|番地|番|号", rest):
        return None
    return address


def _pick_address(lines: list[str]) -> _AddressPick | None:
    segments = [s for s in _segments(lines)]
    with_address = [(s, _segment_address(s)) for s in segments]
    with_address = [(s, a) for s, a in with_address if a and _address_parts(a)]
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


def _address_key(text: str) -> str | None:
    address = _address_parts(text)
    if address is None:
        return None
    return re.sub(r"\s+", "", f"{address.prefecture}{address.city}{fold(address.rest)}")


def _store_address(page: _Page, text: str, quote: str, confidence: float, extractor: str) -> None:
    address = _address_parts(text)
    if address is None:
        return
    factor = 0.95 if address.prefecture_inferred else 1.0
    raw = flat(text)
    _set(page, "prefecture", _Found(address.prefecture, raw, quote, confidence * factor, extractor))
    _set(page, "city", _Found(address.city, raw, quote, confidence, extractor))
    _set(page, "location", _Found(address.rest, raw, quote, confidence, extractor))
    postal = address.postal_code or parse_postal_code(text)
    if postal:
        _set(page, "postal_code", _Found(postal, raw, quote, confidence, extractor))


def _address(page: _Page) -> None:
    for value in _structured(page, "address"):
        if _address_parts(value.value):
            _store_address(page, value.value, value.quote, 0.9, value.syntax)
            page.hq_key = _address_key(value.value)
            return
    for pair in _ranked(page, "hq_address", "address"):
        if pair.kind == "address" and pair.heading and is_branch(pair.heading):
            continue
        pick = _pick_address(pair.lines)
        if pick is None:
            continue
        confidence = _conf(pair) * pick.confidence_factor
        shown = " ".join(pick.segment.source) if pick.segment.sublabel else pick.text
        _store_address(page, pick.text, page.pair_quote(pair, shown), confidence, pair.source)
        page.hq_segment = pick.segment
        page.hq_key = _address_key(pick.text)
        return
    # Fallback: 〒 addresses in the visible text, when they all agree.
    if page.several_companies:
        return
    found: list[tuple[str, str]] = []
    for i, line in enumerate(page.lines):
        if "〒" not in line:
            continue
        text = _segment_address(_Segment(None, page.lines[i : i + 3]))
        if text and _POSTAL_MARK.search(fold(text)) and _address_key(text):
            found.append((text, line))
    if found and len(_distinct([_address_key(t) for t, _ in found])) == 1:
        text, line = found[0]
        _store_address(page, text, page.quote(text, line), REGEX_CONFIDENCE, "regex")
        page.hq_key = _address_key(text)


# --- phone ----------------------------------------------------------------------------------------
def _phones_in(lines: list[str], *, label_is_fax: bool = False) -> list[tuple[Phone, str, str]]:
    """Phones of ``lines`` that are not FAX numbers: (phone, raw, line)."""
    out: list[tuple[Phone, str, str]] = []
    if label_is_fax:
        return out
    for line in lines:
        folded = fold(line)
        last_end = 0
        for phone, raw in find_phones(line):
            pos = folded.find(fold(raw), last_end)
            prefix = folded[last_end:pos] if pos >= 0 else ""
            last_end = pos + len(fold(raw)) if pos >= 0 else last_end
            if _FAX.search(prefix) and not _TEL.search(prefix):
                continue
            out.append((phone, raw, line))
    return out


def _choose_phone(found: list[tuple[Phone, str, str]]) -> tuple[tuple[Phone, str, str], float] | None:
    if not found:
        return None
    distinct = _distinct([p.national for p, _, _ in found])
    if len(distinct) == 1:
        return found[0], 1.0
    marked = [f for f in found if _DAIHYO.search(f[2]) or is_head_office(f[2])]
    if len(_distinct([p.national for p, _, _ in marked])) == 1:
        return marked[0], 1.0
    fixed = [f for f in found if f[0].kind == "fixed"]
    if len(_distinct([p.national for p, _, _ in fixed])) == 1:
        return fixed[0], 0.9  # one landline beside free-dial/mobile numbers: the office line
    return found[0], 0.8


def _phone(page: _Page) -> None:
    for value in _structured(page, "telephone"):
        phone = parse_phone(value.value)
        if phone:
            _set(page, "phone", _Found(phone.national, value.value, value.quote, 0.9, value.syntax))
            return
    rows = [p for p in _ranked(page, "phone", text=False) if not (p.heading and is_branch(p.heading))]
    for pair in rows:
        if pair.group != page.main_group:
            break  # the profile table first; other rows only after the head-office address
        chosen = _choose_phone(_phones_in(pair.lines))
        if chosen is None:
            continue
        (phone, raw, line), factor = chosen
        _set(page, "phone", _Found(phone.national, raw, page.pair_quote(pair, line), _conf(pair) * factor, pair.source))
        return
    segment = page.hq_segment
    if segment is not None:
        chosen = _choose_phone(_phones_in(segment.lines))
        if chosen is not None:
            (phone, raw, line), factor = chosen
            source = page.found["prefecture"]
            _set(page, "phone", _Found(phone.national, raw, page.quote(line), source.confidence * 0.95 * factor,
                                       source.extractor))  # fmt: skip
            return
    # Phone rows outside the profile table (an access block, a footer list): only if they agree.
    others = [(pair, found) for pair in rows if pair.group != page.main_group for found in _phones_in(pair.lines)]
    if others and len(_distinct([f[0].national for _, f in others])) == 1:
        pair, (phone, raw, line) = others[0]
        _set(page, "phone", _Found(phone.national, raw, page.pair_quote(pair, line), _conf(pair) * 0.9, pair.source))
        return
    hq_key = page.hq_key
    if hq_key:
        # The head-office address repeated elsewhere (a branch list, the footer) with its phone.
        near: list[tuple[Phone, str, str]] = []
        for pair in page.pairs:
            if pair.source == "text" or not pair.lines:
                continue
            pick = _segment_address(_Segment(None, pair.lines))
            if pick and _address_key(pick) == hq_key:
                near.extend(_phones_in(pair.lines))
        city = page.found["city"].value if "city" in page.found else ""
        for i, line in enumerate(page.lines):
            if city not in page.folded[i]:
                continue
            if _address_key(line) == hq_key or _address_key(_CUT_AT_CONTACT.sub("", line)) == hq_key:
                near.extend(_phones_in([_tel_tail(line)] + page.lines[i + 1 : i + 3]))
        if len(_distinct([p.national for p, _, _ in near])) == 1:
            phone, raw, line = near[0]
            _set(page, "phone", _Found(phone.national, raw, page.quote(line), 0.7, "regex"))
            return
    # Fallback: phones after TEL/電話 anywhere in the text, when they all agree.
    if page.several_companies:
        return
    tel: list[tuple[Phone, str, str]] = []
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
    if tel and len(_distinct([p.national for p, _, _ in tel])) == 1:
        phone, raw, line = tel[0]
        _set(page, "phone", _Found(phone.national, raw, page.quote(line), REGEX_CONFIDENCE, "regex"))


def _tel_tail(line: str) -> str:
    m = re.search(r"(?:tel|電話|☎|℡).*$", line, re.IGNORECASE)
    return m.group(0) if m else ""


# --- representative ----------------------------------------------------------------------------
def _title_score(title: str | None) -> float:
    if not title:
        return 1.0
    t = fold(title)
    if "代表" in t and "社長" in t:
        return 3.0
    if "代表" in t or "社長" in t or "理事長" in t or t.upper().startswith("CEO"):
        return 2.0
    if "会長" in t:
        return 1.5
    return 0.0


# Words that follow 代表 in headings and menus (代表挨拶, 代表メッセージ) and are no one's name.
_NOT_A_NAME = re.compile(
    r"挨拶|あいさつ|メッセージ|紹介|プロフィール|略歴|経歴|理念|方針|番号|電話|氏名|名前|写真|ブログ|コラム|インタビュー|"
    r"対談|就任|より|から|について|取締役|役員|者"
)


def _person(text: str, company_key: str = ""):
    rep = split_representative(text)
    if rep is None or _NOT_A_NAME.search(rep.name):
        return None
    key = company_name_key(rep.name)
    if company_key and key and key in company_key:
        return None  # "代表者: munico" on munico's page names the company, not a person
    return rep


def _representative(page: _Page) -> None:
    # (group priority, title score, -order) → best; group: 代表者 rows 3, title rows 2, 役員 rows 1.
    company_key = company_name_key(str(page.found["name"].value)) if "name" in page.found else ""
    entries: list[tuple[tuple[float, float, int], str | None, str, str, Pair]] = []
    for pair in _own_pairs(page):
        if pair.kind == "representative":
            for i, line in enumerate(pair.lines):
                rep = _person(line, company_key)
                if rep:
                    key = (3, _title_score(rep.title), -(pair.order * 100 + i))
                    entries.append((key, rep.title, rep.name, line, pair))
        elif pair.kind == "rep_title" and pair.lines:
            line = pair.lines[0]
            rep = _person(f"{pair.label} {line}", company_key)
            if rep and fold(rep.name).replace(" ", "") in fold(line).replace(" ", ""):
                title = rep.title or fold(pair.label)
                entries.append(((2, _title_score(title), -pair.order * 100), title, rep.name, line, pair))
        elif pair.kind == "officers":
            for i, line in enumerate(pair.lines):
                rep = _person(line, company_key)
                if rep and rep.title and _title_score(rep.title) >= 2:
                    key = (1, _title_score(rep.title), -(pair.order * 100 + i))
                    entries.append((key, rep.title, rep.name, line, pair))
    if not entries:
        return
    # Text pairs (項目：値 lines, often footers) only when no row names a representative.
    structured = [e for e in entries if e[4].source != "text"]
    entries = structured or entries
    entries.sort(key=lambda e: e[0], reverse=True)
    best = entries[0]
    rivals = [e for e in entries[1:] if e[0][:2] == best[0][:2] and e[2].replace(" ", "") != best[2].replace(" ", "")]
    factor = 0.8 if rivals else 1.0
    _, title, name, line, pair = best
    confidence = _conf(pair) * factor
    quote = page.pair_quote(pair, line)
    _set(page, "representative_name", _Found(name, line, quote, confidence, pair.source))
    if title:
        _set(page, "representative_title", _Found(title, line, quote, confidence, pair.source))


# --- 設立 / 創業 -------------------------------------------------------------------------------
def _year_from_pair(pair: Pair) -> tuple[int, str, float] | None:
    line = _first_line(pair)
    year = parse_year(line)
    if year is None:
        return None
    if _clean_date_line(line):
        return year, line, 1.0
    # "2002年2月1日 設立" style: one date and a few words around it.
    rest = _PARENS.sub("", fold(line))
    others = {parse_year(m.group(0)) for m in re.finditer(r"(?:明治|大正|昭和|平成|令和)\s*(?:元|\d{1,2})\s*年|\d{4}\s*年", rest)}
    if len(others - {None}) == 1 and len(rest) <= 24:
        return year, line, 0.9
    return None


def _established(page: _Page) -> None:
    for pair in _ranked(page, "established"):
        got = _year_from_pair(pair)
        if got is None:
            continue
        year, raw, factor = got
        _set(page, "established_year", _Found(year, raw, page.pair_quote(pair, raw), _conf(pair) * factor, pair.source))
        return
    if any(p.kind == "established" for p in page.pairs):
        return  # a 設立 row we could not read: no guessing from elsewhere
    for value in _structured(page, "foundingDate"):
        year = parse_year(value.value)
        if year:
            _set(page, "established_year", _Found(year, value.value, value.quote, 0.75, value.syntax))
            return
    events: list[tuple[int, str, Pair]] = []
    for pair in _own_pairs(page):
        if pair.kind != "date":
            continue
        for line in pair.lines:
            text = _PARENS.sub("", fold(line)).strip()
            if _INCORPORATION_EVENT.match(text) and not _NOT_OWN_INCORPORATION.search(text):
                year = parse_year(pair.label)
                if year:
                    events.append((year, line, pair))
    if events and len(_distinct([y for y, _, _ in events])) == 1:
        year, line, pair = events[0]
        _set(page, "established_year", _Found(year, line, page.pair_quote(pair, line), HISTORY_CONFIDENCE, "history"))
        return
    if page.several_companies:
        return
    inline: list[tuple[int, str]] = []
    for line, folded in zip(page.lines, page.folded):
        for m in _ESTABLISHED_INLINE.finditer(folded):
            year = parse_year(m.group(1))
            if year:
                inline.append((year, line))
    if inline and len(_distinct([y for y, _ in inline])) == 1:
        year, line = inline[0]
        _set(page, "established_year", _Found(year, line, page.quote(line), REGEX_CONFIDENCE, "regex"))


def _founded(page: _Page) -> None:
    for pair in _ranked(page, "founded"):
        got = _year_from_pair(pair)
        if got is None:
            continue
        year, raw, factor = got
        _set(page, "founded_year", _Found(year, raw, page.pair_quote(pair, raw), _conf(pair) * factor, pair.source))
        return


# --- amounts and counts ----------------------------------------------------------------------
def _one_amount(line: str) -> bool:
    """True when ``line`` holds a single amount outside parentheses (no 増資 history)."""
    rest = _PARENS.sub("", fold(line))
    return rest.count("円") <= 1 and not re.search(r"増資|減資|→|⇒|から", rest)


def _capital(page: _Page) -> None:
    for pair in _ranked(page, "capital"):
        line = _first_line(pair)
        if not _one_amount(line):
            continue
        yen = parse_yen(line)
        if yen is None or yen < 1:
            continue
        _set(page, "capital", _Found(yen, line, page.pair_quote(pair, line), _conf(pair), pair.source))
        return
    if any(p.kind == "capital" for p in page.pairs):
        return
    if page.several_companies:
        return
    found = []
    for line, folded in zip(page.lines, page.folded):
        if re.search(r"増資|減資|変更", folded):
            continue
        for m in _CAPITAL_INLINE.finditer(folded):
            yen = parse_yen(m.group(1))
            if yen:
                found.append((yen, line))
    if found and len(_distinct([y for y, _ in found])) == 1:
        yen, line = found[0]
        _set(page, "capital", _Found(yen, line, page.quote(line), REGEX_CONFIDENCE, "regex"))


def _revenue(page: _Page) -> None:
    for pair in _ranked(page, "revenue"):
        amount_lines = [line for line in pair.lines if parse_yen(line) is not None]
        if len(amount_lines) != 1 or not _one_amount(amount_lines[0]):
            continue  # several years or segments: which one is "the" revenue is a guess
        line = amount_lines[0]
        yen = parse_yen(line)
        if yen is None or yen < 1:
            continue
        _set(page, "revenue", _Found(yen, line, page.pair_quote(pair, line), _conf(pair), pair.source))
        return


def _employees(page: _Page) -> None:
    for pair in _ranked(page, "employees"):
        line = _first_line(pair)
        count = parse_employee_count(line)
        if count is None or not 0 < count.count < MAX_EMPLOYEES:
            continue
        if len(_COUNT_UNIT.findall(_PARENS.sub("", fold(line)))) > 1:
            continue  # "正社員30名 パート20名", "連結 1,234名 / 単体 567名": which total is meant is a guess
        factor = 0.9 if count.approximate else 1.0
        _set(page, "employee_count", _Found(count.count, line, page.pair_quote(pair, line), _conf(pair) * factor,
                                            pair.source))  # fmt: skip
        return
    if any(p.kind == "employees" for p in page.pairs):
        return
    for value in _structured(page, "numberOfEmployees"):
        if value.value.isdigit() and 0 < int(value.value) < MAX_EMPLOYEES:
            _set(page, "employee_count", _Found(int(value.value), value.value, value.quote, 0.9, value.syntax))
            return
    if page.several_companies:
        return
    found = []
    for line, folded in zip(page.lines, page.folded):
        for m in _EMPLOYEES_INLINE.finditer(folded):
            count = parse_employee_count(m.group(1))
            if count and 0 < count.count < MAX_EMPLOYEES:
                found.append((count.count, line))
    if found and len(_distinct([c for c, _ in found])) == 1:
        count, line = found[0]
        _set(page, "employee_count", _Found(count, line, page.quote(line), REGEX_CONFIDENCE, "regex"))


# --- text fields and links -------------------------------------------------------------------
def _business(page: _Page) -> None:
    for pair in _ranked(page, "business"):
        lines = [line for line in pair.lines if not is_vague(line)]
        if not lines:
            continue
        value = "\n".join(lines)[:1000]
        raw = " ".join(lines)
        _set(page, "business_description", _Found(value, raw, page.pair_quote(pair, raw), _conf(pair), pair.source))
        return
    for value in _structured(page, "description"):
        if not is_vague(value.value):
            _set(page, "business_description", _Found(value.value[:1000], value.value, value.quote, 0.7, value.syntax))
            return


def _valid_email(text: str) -> str | None:
    m = _EMAIL.search(fold(text))
    if m is None or _IMAGE_SUFFIX.search(m.group(0)):
        return None
    return m.group(0).lower()


def _email(page: _Page) -> None:
    for value in _structured(page, "email"):
        email = _valid_email(value.value.removeprefix("mailto:"))
        if email:
            _set(page, "contact_email", _Found(email, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in _ranked(page, "email", "phone"):
        for line in pair.lines:
            email = _valid_email(line)
            if email:
                _set(page, "contact_email", _Found(email, line, page.pair_quote(pair, line), _conf(pair), pair.source))
                return
    if page.several_companies:
        return
    mailtos = []
    for a in page.root.iter("a"):
        href = (a.get("href") or "").strip()
        if href.lower().startswith("mailto:"):
            email = _valid_email(href[7:].split("?")[0])
            if email:
                mailtos.append((email, element_flat(a), href))
    if mailtos and len(_distinct([m[0] for m in mailtos])) == 1:
        email, text, href = mailtos[0]
        _set(page, "contact_email", _Found(email, text or email, page.quote(text, f'href="{href}"'), 0.7, "link"))
        return
    # Fallback: the only address in the text, when it is on the page's own domain (an address
    # elsewhere may be the web designer's or a portal's).
    host = (urlsplit(page.url).hostname or "").lower().removeprefix("www.") if page.url else ""
    found = [(e, line) for line in page.lines if (e := _valid_email(line))]
    found = [(e, line) for e, line in found if host and (e.endswith("@" + host) or e.endswith("." + host))]
    if found and len(_distinct([e for e, _ in found])) == 1:
        email, line = found[0]
        _set(page, "contact_email", _Found(email, line, page.quote(line), REGEX_CONFIDENCE, "regex"))


def _normal_url(href: str, base: str | None) -> str | None:
    href = href.strip()
    if base:
        href = urljoin(base, href)
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _website(page: _Page) -> None:
    for value in _structured(page, "url"):
        url = _normal_url(value.value, page.url)
        if url:
            _set(page, "website_url", _Found(url, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in _ranked(page, "url"):
        hrefs = [a.get("href") or "" for el in pair.value_elements for a in el.iter("a")]
        texts = [m.group(0) for m in _URL.finditer(pair.text)]
        for candidate in [*texts, *hrefs]:
            url = _normal_url(candidate, page.url)
            if url:
                raw = candidate if candidate in texts else pair.text
                _set(page, "website_url", _Found(url, raw, page.pair_quote(pair, raw), _conf(pair), pair.source))
                return


def _facebook(page: _Page) -> None:
    found: list[tuple[str, str, str, str]] = []
    for value in _structured(page, "sameAs"):
        url = _facebook_page(value.value)
        if url:
            found.append((url, value.value, value.quote, value.syntax))
    if found:
        url, raw, quote, syntax = found[0]
        _set(page, "facebook_url", _Found(url, raw, quote, 0.9, syntax))
        return
    for a in page.root.iter("a"):
        href = a.get("href") or ""
        url = _facebook_page(href)
        if url:
            found.append((url, href, page.quote(element_flat(a), f'href="{href}"'), "link"))
    if found and len(_distinct([f[0] for f in found])) == 1:
        url, raw, quote, extractor = found[0]
        _set(page, "facebook_url", _Found(url, raw, quote, 0.8, extractor))


def _facebook_page(href: str) -> str | None:
    m = _FACEBOOK.match(href.strip())
    if m is None:
        return None
    path = m.group(1).strip("/")
    if not path or _FACEBOOK_NOT_PAGE.match(path) or is_branch(unquote(path)):
        return None  # not a page, or a branch's page (〇〇-名古屋支店-123)
    if path.startswith("pages/") or path.startswith("profile.php"):
        return None if "?" in href and path.startswith("profile.php") else f"https://www.facebook.com/{path}"
    return f"https://www.facebook.com/{path.split('/')[0]}"
