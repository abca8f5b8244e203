"""Validation (§8.1), vagueness (§13) and confidence (§8.2) of one extracted value.

Validation is ``core.fields.clean`` with the variable's FieldSpec (its ``validation_type`` as the
core kind) on NFKC-folded text, so ０８６－７２４－９５１２ and 〒７００－８５４６ pass; there is no
second validator here. §8.1's regexes are stricter than core's (``^\\d+円$`` for a fee), core's
are the ones used: a fee may read 1頭につき3,000円, a phone is any number libphonenumber accepts.
For a fee or a percent printed inside a phrase (返還手数料（1頭につき3,000円）, 所得割8.5%) the
first amount of the phrase is validated.

Vagueness (§13.2): a value matching one of the document's vague patterns (^詳細は, ^お問い合わせ,
による$, ^要確認, ^未定, 参照$, をご確認, によって異なる), or ``core.ja.is_vague``, is no value; a
``fee`` must hold an amount in 円 or 無料 and a ``phone`` a number of the 0AB-CD-EFGH form.

Confidence (§8.2), documented base plus the document's bonuses, at most 1.0:

- base: 0.5 for a rule value read in the office's contact block, 0.4 for a rule value read
  elsewhere on the page (a labelled fee or hours line), 0.4 for an AI value whose quote was found
  in the page (an AI value without that is never kept);
- +0.2 the page is on an official domain (``*.lg.jp``, ``www.(city|town|vill|pref).<name>[.<pref>].jp``,
  or one of the municipality's own domains passed by the caller — ``Municipality.official_url``);
- +0.1 several sources agree (:func:`agree`, when the flow merges the values of several pages);
- +0.1 the format is valid (a typed kind — phone, email, url, fee, date, time_range, percent,
  postal_code, count, boolean, address — passed ``clean``; ``text`` earns nothing here);
- +0.05 the page was updated within a year of today (Last-Modified, or a date the page prints
  next to 更新 / 掲載 / 公開; relative to the current date).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from hokan.core import ja
from hokan.core.errors import InvalidValue
from hokan.core.fields import FieldSpec, clean

BASE_BLOCK = 0.5
BASE_PAGE = 0.4
BASE_AI = 0.4
BONUS_OFFICIAL = 0.2
BONUS_AGREE = 0.1
BONUS_FORMAT = 0.1
BONUS_RECENT = 0.05

# §13.2, on folded text.
VAGUE_PATTERNS = tuple(
    re.compile(p) for p in (r"^詳細は", r"^お問い?合わ?せ", r"による$", r"^要確認", r"^未定", r"参照$", r"をご確認", r"によって異なる")
)
# What stays vague in a direction that names a means: 詳細は…, 要確認, 未定, によって異なる.
DIRECTION_VAGUE_PATTERNS = tuple(VAGUE_PATTERNS[i] for i in (0, 3, 4, 7))
_FEE_OK = re.compile(r"\d[\d,]*\s*円|無料")
_PHONE_OK = re.compile(r"\d{2,5}-\d{1,4}-\d{4}")
_FIRST_AMOUNT = {
    "fee": re.compile(r"\d[\d,]*(?:\.\d+)?\s*(?:万|千)?円|無料"),
    "percent": re.compile(r"\d+(?:\.\d+)?\s*(?:%|パーセント)"),
}
_OFFICIAL_HOST = re.compile(r"(?:^|\.)(?:lg\.jp)$|^(?:www\.)?(?:city|town|vill|pref|metro)\.[a-z0-9-]+(?:\.[a-z0-9-]+)?\.jp$")
_PAGE_DATE = re.compile(
    r"(?:更新|掲載|公開|作成)(?:日|日時)?\s*[:]?\s*((?:令和|平成)\s*(?:\d+|元)\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}\s*[年/.-]\s*\d{1,2}\s*[月/.-]\s*\d{1,2}\s*日?)"
    r"|((?:令和|平成)\s*(?:\d+|元)\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)\s*(?:更新|掲載)"
)
TYPED_KINDS = frozenset({"phone", "email", "url", "fee", "date", "time_range", "percent", "postal_code", "count",
                         "boolean", "address"})  # fmt: skip


def is_vague(field: str, text: str, *, directions: bool = False) -> bool:
    """Whether ``text`` is no value for ``field`` (module docstring, §13.2).

    directions: the variable is a direction to the reader (``FieldSpec.directions``, an
    application method): a sentence naming a means (電話または窓口でお問い合わせください) is then
    its value; §13.2's "ask us" patterns still apply to one that names none.
    """
    folded = ja.fold(text)
    if not folded or ja.is_vague(folded, directions=directions):
        return True
    patterns = DIRECTION_VAGUE_PATTERNS if directions and ja.names_a_means(folded) else VAGUE_PATTERNS
    if any(p.search(folded) for p in patterns):
        return True
    if "fee" in field and not _FEE_OK.search(folded):
        return True
    if "phone" in field and not _PHONE_OK.search(folded.replace(" ", "")):
        return True
    return False


def validate(spec: FieldSpec, text: str) -> tuple[Any, bool]:
    """``(cleaned, valid)``: the value ``core.fields.clean`` gives for ``text`` and whether it passed.

    The text is NFKC-folded first. For fee/percent the first amount of a phrase is tried when
    the whole phrase is not one. An invalid value returns ``(None, False)``; a vague one too.
    """
    folded = ja.fold(text)
    try:
        value = clean(spec, folded)
    except InvalidValue:
        pattern = _FIRST_AMOUNT.get(spec.kind)
        match = pattern.search(folded) if pattern else None
        if match is None:
            return None, False
        try:
            value = clean(spec, match.group(0))
        except InvalidValue:
            return None, False
    return value, value is not None


def is_official(url: str | None, official_domains: Iterable[str] = ()) -> bool:
    """Whether ``url`` is on an official domain of a local government (module docstring)."""
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return False
    for domain in official_domains:
        domain = (urlsplit(domain).hostname or domain).lower().strip(".") if "//" in domain else domain.lower().strip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return bool(_OFFICIAL_HOST.search(host))


def page_date(text: str, last_modified: dt.datetime | dt.date | str | None = None) -> dt.date | None:
    """When the page was last updated: ``last_modified`` (a date, datetime or HTTP-date string)
    or the first 更新/掲載/公開 date the page prints; None when neither is known."""
    if isinstance(last_modified, dt.datetime):
        return last_modified.date()
    if isinstance(last_modified, dt.date):
        return last_modified
    if isinstance(last_modified, str) and last_modified.strip():
        try:
            return parsedate_to_datetime(last_modified).date()
        except (TypeError, ValueError):
            pass
    for match in _PAGE_DATE.finditer(ja.fold(text)):
        found = ja.parse_date(match.group(1) or match.group(2))
        day = found.to_date() if found is not None else None
        if day is not None:
            return day
    return None


def is_recent(day: dt.date | None, *, today: dt.date | None = None) -> bool:
    """Updated within a year (365 days) before ``today`` (default: the current date)."""
    if day is None:
        return False
    today = today or dt.date.today()
    return dt.timedelta(0) <= today - day <= dt.timedelta(days=365) or day == today


def confidence(*, base: float, official: bool, valid_format: bool, recent: bool, agree: bool = False) -> float:
    """§8.2's score: ``base`` plus the bonuses that apply, at most 1.0 (rounded to 2 places)."""
    score = base
    score += BONUS_OFFICIAL if official else 0.0
    score += BONUS_AGREE if agree else 0.0
    score += BONUS_FORMAT if valid_format else 0.0
    score += BONUS_RECENT if recent else 0.0
    return round(min(score, 1.0), 2)
