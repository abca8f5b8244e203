"""Every yen amount written in a Japanese text, with where it stands and how precisely it is
written. Pure, no Django.

``parse_yen`` (money.py) reads *the* amount of a field value; ``find_amounts`` finds *all*
amounts of a prose text, in every form people and LLMs write them:

- Arabic digits with thousands commas and decimals: ``1,270,000円``, ``127.5万円``, ``¥1,270,000``;
- 万進法 units, mixed: ``1億2,000万円``, ``2億98百万円``, ``1,200千円``, ``12百万円``;
- kanji numerals: ``五百万円``, ``千二百万円``, ``一億五千万円``, ``三十万円``, ``壱万円``;
- a bare 万 / 億 without 円 where the number ends (``約500万程度``, ``5万/月``), never
  ``500万件`` or ``1万人``;
- ranges ``300万〜500万円`` and ``300〜500万円`` (the first number takes the second's unit);
- per-period amounts: ``月額5万円``, ``5万円/月``, ``毎月3万円``, ``年間60万円`` (``per``).

Each :class:`Amount` carries ``precision_jpy``: the value of the last digit written
(``127万円`` → 10,000; ``1.5億円`` → 10,000,000; ``五百万円`` → 1,000,000; ``¥1,270,000`` → 1),
so a caller can tell whether a written amount is a rounding of a computed one
(:func:`is_rounding_of`).

Offsets are those of the original text (folding is one character to one character).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Period = Literal["month", "year"]

_BIG_UNITS: dict[str, int] = {"兆": 10**12, "億": 10**8, "万": 10**4}
_SMALL_UNITS: dict[str, int] = {"千": 1000, "百": 100, "十": 10}
_KANJI_DIGITS: dict[str, int] = {
    "〇": 0, "零": 0, "一": 1, "壱": 1, "二": 2, "弐": 2, "三": 3, "参": 3, "四": 4, "五": 5,
    "六": 6, "七": 7, "八": 8, "九": 9,
}

_ARABIC = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_ARABIC_UNIT = r"(?:千万|百万|兆|億|万|千|百)"
_ARABIC_AMOUNT = rf"(?:(?:{_ARABIC})\s*{_ARABIC_UNIT}\s*)*(?:{_ARABIC})?"
_KANJI_CHARS = "〇零一壱二弐三参四五六七八九十百千万億兆"
_KANJI_AMOUNT = rf"[{_KANJI_CHARS}]+"
# What may follow a bare 万/億 for it to be money ("500万程度", "5万/月"), not "500万件".
_BARE_END = r"(?=\s*(?:[、。,.)）~〜～\-]|/|／|程度|前後|ほど|くらい|ぐらい|から|以下|以上|以内|未満|規模|の(?!件|人|名|社)|で|に|を|は|が|と|も|$))"
_TILDE = r"\s*[~〜～\-ー－から]\s*"

_YEN_SIGN = re.compile(rf"[¥￥]\s*(?P<num>{_ARABIC_AMOUNT})")
_WRITTEN = re.compile(
    rf"(?<![\d.,{_KANJI_CHARS}])(?P<num>{_ARABIC_AMOUNT}|{_KANJI_AMOUNT})\s*(?P<yen>円)?"
)
_PER_BEFORE = re.compile(r"(?:月額|毎月|月々|月当たり|月あたり|ひと月|1か月|1ヶ月|一か月|一ヶ月|月)\s*(?:約|およそ)?\s*$")
_PER_BEFORE_YEAR = re.compile(r"(?:年額|年間|毎年|年当たり|年あたり)\s*(?:約|およそ)?\s*$")
_PER_AFTER = re.compile(r"^\s*(?:/|／|per\s*|毎)\s*(?:月|month)")
_PER_AFTER_YEAR = re.compile(r"^\s*(?:/|／|per\s*|毎)\s*(?:年|year)")


@dataclass(frozen=True)
class Amount:
    """One amount in a text: ``text[start:end]`` reads ``value_jpy`` (int JPY).

    precision_jpy: the value of the last digit written (see the module docstring).
    per: "month" / "year" for a periodic amount, else None.
    """

    start: int
    end: int
    value_jpy: int
    precision_jpy: int
    per: Period | None = None


def _fold(text: str) -> str:
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


ARABIC_UNITS: dict[str, int] = {"千万": 10**7, "百万": 10**6, "兆": 10**12, "億": 10**8, "万": 10**4, "千": 1000, "百": 100}


def arabic_decimal(number: str) -> tuple[Decimal, Decimal] | None:
    """("1億2,000万") -> (Decimal(120000000), Decimal(10000)): the exact value of an Arabic-digit
    number with 万進法 units (thousands commas allowed, decimals kept exact: "1.25万" -> 12500),
    and the value of its last written digit. Units must strictly decrease left to right. Zero
    is a value here (a dashboard's ``¥0``); None when ``number`` is not such a number."""
    total = Decimal(0)
    precision: Decimal | None = None
    last_unit: int | None = None
    pos = 0
    for m in re.finditer(rf"({_ARABIC})\s*({_ARABIC_UNIT})", number):
        unit = ARABIC_UNITS[m.group(2)]
        if last_unit is not None and unit >= last_unit:
            return None
        digits = m.group(1).replace(",", "")
        value = Decimal(digits)
        total += value * unit
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        precision = Decimal(unit) / (Decimal(10) ** decimals)
        last_unit, pos = unit, m.end()
    tail = number[pos:].strip()
    if tail:
        digits = tail.replace(",", "")
        try:
            value = Decimal(digits)
        except ArithmeticError:
            return None
        if last_unit is not None and value >= last_unit:
            return None
        total += value
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        precision = Decimal(1) / (Decimal(10) ** decimals)
    if precision is None:
        return None
    return total, precision


def _arabic_value(number: str) -> tuple[int, int] | None:
    """("1億2,000万") -> (120000000, 10000); units must decrease; None when not a number."""
    read = arabic_decimal(number)
    if read is None or read[0] <= 0:
        return None
    return int(read[0]), max(1, int(read[1]))


def kanji_number(text: str) -> tuple[int, int] | None:
    """A kanji numeral as (value, precision): 千二百万 -> (12000000, 1000000); None if not one."""
    if not text or any(ch not in _KANJI_CHARS for ch in text):
        return None
    total = 0
    section = 0  # below 万
    digit: int | None = None
    precision = None
    for ch in text:
        if ch in _KANJI_DIGITS:
            if digit is not None:  # 二三 is not a number we read
                return None
            digit = _KANJI_DIGITS[ch]
        elif ch in _SMALL_UNITS:
            unit = _SMALL_UNITS[ch]
            section += (1 if digit is None else digit) * unit
            precision = unit
            digit = None
        elif ch in _BIG_UNITS:
            unit = _BIG_UNITS[ch]
            value = section + (digit or 0)
            if value == 0:
                value = 1 if digit is None and section == 0 else value
            total += value * unit
            lowest = precision if digit is None and precision else 1
            precision = lowest * unit
            section, digit = 0, None
    if digit is not None:
        section += digit
        precision = 1
    total += section
    if total <= 0 or precision is None:
        return None
    return total, precision


def _read(number: str) -> tuple[int, int, str | None] | None:
    """(value, precision, last unit char) of a written number, Arabic or kanji."""
    number = number.strip()
    if not number:
        return None
    last_unit = number[-1] if number[-1] in "兆億万千百十" else None
    if re.fullmatch(_KANJI_AMOUNT, number):
        read = kanji_number(number)
    else:
        read = _arabic_value(number)
    return (read[0], read[1], last_unit) if read else None


def _period(folded: str, start: int, end: int) -> Period | None:
    before = folded[max(0, start - 8):start]
    after = folded[end:end + 8]
    if _PER_AFTER.match(after) or _PER_BEFORE.search(before):
        return "month"
    if _PER_AFTER_YEAR.match(after) or _PER_BEFORE_YEAR.search(before):
        return "year"
    return None


def find_amounts(text: str) -> list[Amount]:
    """Every yen amount in ``text``, in order (see the module docstring for the forms).

    A number counts as money when it ends in 円, starts with ¥, or ends in 万 / 億 / 兆 followed
    by an ending (``程度``, ``/月``, ``、`` …), or is the first end of a range whose other end
    does. Years (2026年), counts (500万件), percentages and phone numbers never count.
    """
    folded = _fold(text)
    found: list[Amount] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, value: int, precision: int) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        found.append(Amount(start, end, value, precision, _period(folded, start, end)))

    for m in _YEN_SIGN.finditer(folded):
        read = _read(m.group("num"))
        if read:
            add(m.start(), m.end(), read[0], read[1])
    matches = [m for m in _WRITTEN.finditer(folded) if m.group("num").strip()]
    for i, m in enumerate(matches):
        number = m.group("num").strip()
        read = _read(number)
        if read is None:
            continue
        value, precision, unit = read
        is_kanji = bool(re.fullmatch(_KANJI_AMOUNT, number))
        money = bool(m.group("yen")) or (unit in ("万", "億", "兆") and re.match(_BARE_END, folded[m.end():]) is not None)
        if is_kanji and not m.group("yen") and unit not in ("万", "億", "兆"):
            money = False
        # A range's first end: "300〜500万円" (inherits the unit) or "300万〜500万円".
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        if nxt is not None and re.fullmatch(_TILDE, folded[m.end():nxt.start()]):
            nxt_read = _read(nxt.group("num").strip())
            nxt_money = bool(nxt.group("yen")) or (
                nxt_read is not None and nxt_read[2] in ("万", "億", "兆")
                and re.match(_BARE_END, folded[nxt.end():]) is not None)
            if nxt_read and nxt_money:
                if unit is None and nxt_read[2] is not None and not is_kanji:
                    scale = {"兆": 10**12, "億": 10**8, "万": 10**4, "千": 1000, "百": 100}.get(nxt_read[2], 1)
                    value, precision = value * scale, precision * scale
                money = True
        if folded[m.start():m.end()].strip().isdigit() and re.match(r"\s*(?:年|月|日|%|％|件|人|名|社|時|分)", folded[m.end():]):
            money = False
        if money and value > 0:
            end = m.end()
            while end > m.start() and folded[end - 1].isspace():
                end -= 1
            add(m.start(), end, value, precision)
    return sorted(found, key=lambda a: a.start)


def is_rounding_of(amount: Amount, exact_jpy: int, *, max_relative_error: float = 0.05) -> bool:
    """True when ``amount`` is ``exact_jpy`` rounded (down, half or up) at its precision: less
    than one last digit away (``約127万円`` or ``128万円`` for 1,272,345 — the engine's own
    ``format_price`` rounds up to ¥10,000) and within ``max_relative_error`` (so ``約1億円`` is
    not a rounding of 127,000,000)."""
    diff = abs(amount.value_jpy - exact_jpy)
    if diff >= amount.precision_jpy:
        return False
    return exact_jpy > 0 and diff <= exact_jpy * max_relative_error
