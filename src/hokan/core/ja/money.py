"""Yen amounts written the Japanese way: 1億円, 2億98百万円, 5,000千円, ¥10,000,000."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from hokan.core.ja.text import fold, is_vague

# Multipliers of the Japanese numbering system (万進法: 万 = 10^4, 億 = 10^8, 兆 = 10^12).
UNITS: dict[str, int] = {
    "兆": 10**12,
    "億": 10**8,
    "千万": 10**7,
    "百万": 10**6,
    "万": 10**4,
    "千": 10**3,
    "百": 10**2,
}

_NUM = r"\d+(?:\.\d+)?"
_UNIT = "|".join(UNITS)  # dict order puts 千万/百万 before 万/千
_SEGMENT = re.compile(rf"({_NUM})\s*({_UNIT})")
# Segments with units, then an optional bare number, then 円: 3億5000万円, 2億98百万円, 500円.
_AMOUNT_YEN = re.compile(rf"(?<![\d.])((?:{_NUM}\s*(?:{_UNIT})\s*)*(?:{_NUM})?)\s*円")
_AMOUNT_SIGN = re.compile(rf"¥\s*((?:{_NUM}\s*(?:{_UNIT})\s*)*(?:{_NUM})?)")
# A bare "1億" / "1,000万" is accepted only as the whole answer (optionally labelled).
_AMOUNT_ALONE = re.compile(rf"(?:資本金|資本の額)?\s*[:]?\s*((?:{_NUM}\s*(?:{_UNIT})\s*)+)")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】")
# OCR/European style "1.000万円": a dot followed by exactly three digits is a thousands mark.
_DOT_THOUSANDS = re.compile(r"(?<=\d)\.(?=\d{3}(?!\d))")
_COMMA_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _value(amount: str) -> int | None:
    """Sum "3億5000万" style segments; units must strictly decrease left to right."""
    total = Decimal(0)
    last_unit = None
    pos = 0
    for m in _SEGMENT.finditer(amount):
        unit = UNITS[m.group(2)]
        if last_unit is not None and unit >= last_unit:
            return None
        total += Decimal(m.group(1)) * unit
        last_unit, pos = unit, m.end()
    tail = amount[pos:].strip()
    if tail:
        try:
            total += Decimal(tail)
        except InvalidOperation:
            return None
        if last_unit is not None and Decimal(tail) >= last_unit:
            return None
    if total <= 0 or total != total.to_integral_value():
        return None
    return int(total)


def parse_yen(text: str) -> int | None:
    """Return the first yen amount in ``text`` as int JPY, or None.

    Accepts 円/千円/万円/百万円/億円/兆円 and mixed forms (``2億98百万円`` → 298000000),
    ``¥10,000,000``, comma or OCR-dot thousands separators (``1.000万円``), decimals
    (``1.5億円``) and full-width digits. Parentheticals (``(親会社100%出資)``,
    ``（2024年3月現在）``) are ignored; years and percentages never count as amounts.
    Never raises on ordinary text.
    """
    if is_vague(text):
        return None
    s = _PARENS.sub(" ", fold(text)).strip() or fold(text).strip("()[]【】")
    s = _COMMA_THOUSANDS.sub("", _DOT_THOUSANDS.sub("", s))
    candidates = [(m.start(), m.group(1)) for m in _AMOUNT_YEN.finditer(s) if m.group(1).strip()]
    candidates += [(m.start(), m.group(1)) for m in _AMOUNT_SIGN.finditer(s) if m.group(1).strip()]
    for _, amount in sorted(candidates):
        value = _value(amount)
        if value is not None:
            return value
    alone = _AMOUNT_ALONE.fullmatch(s.strip())
    return _value(alone.group(1)) if alone else None
