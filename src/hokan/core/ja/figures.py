"""Every figure printed in a line of a dashboard or a sales export, read exactly. Pure, no Django.

``find_amounts`` (amounts.py) finds the yen amounts of prose; ``find_figures`` finds *every*
number a screen shows, with its unit, in the forms dashboards print them (issue 12 §2):

- money: ``¥1,234,567``, ``￥1,000``, ``1,234円``, ``-¥120``, ``¥-120``, ``▲¥500``, ``¥1.2万``,
  ``3億円``, ``1億2,000万円``, ``$1,234.56`` / ``US$12`` (unit "USD");
- counts with 万進法 or English multipliers: ``1.2万``, ``3億``, ``12.5K``, ``1.2M``, ``2B``,
  ``4,567件``, ``1,234人``, ``12名``, ``3個``, ``100pt``; a bare integer is a count;
- ``12.3%``, ``+1.5%``, ``-0.8%`` (unit "percent"), ``2.5倍`` (unit "ratio");
- clock readings ``01:23:45`` / ``12:34`` (unit "clock": a duration or a time of day, which
  only the label can tell — see :func:`clock_seconds`), ``1時間23分45秒`` / ``45分`` (seconds);
- dates ``2026/11/30``, ``2026-11-30``, ``2026年11月30日`` (unit "date", ISO text);
- lengths and weights ``16mm``, ``64cm``, ``2kg`` (the unit as printed).

Full-width digits, ``￥``, ``％`` and dash variants are folded first (``text.fold_with_offsets``);
an OCR space after a thousands comma (``4, 567件``) is closed. A number that cannot be read
exactly is not returned (never guessed): ``1.234.567`` (an OCR misread of the thousands commas),
``cube-09`` or ``iPhone15`` (codes), a 万進法 number whose units do not decrease.

Values are exact ``Decimal`` (``1.25万`` is 12500, ``$12.34`` is 12.34); offsets are those of
the original text, so ``text[start:end]`` is the figure as printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from hokan.core.ja.amounts import arabic_decimal
from hokan.core.ja.text import fold_with_offsets

#: English magnitude suffixes (``12.5K``, ``1.2M``, ``2B``).
EN_MULTIPLIERS: dict[str, int] = {"K": 10**3, "k": 10**3, "M": 10**6, "B": 10**9}

#: Suffixes that make a number a count (件 orders, 人/名 people, 個/点/本/枚 items, 回 times).
COUNT_SUFFIXES = ("ポイント", "件", "人", "名", "個", "点", "回", "本", "枚", "pt")
#: Physical units printed as they are.
MEASURE_SUFFIXES = ("mm", "cm", "km", "kg", "g", "m")

_NUM = r"(?:\d{1,3}(?:,\s?\d{3})+|\d+)(?:\.\d+)?"
_JA = r"(?:千万|百万|兆|億|万|千)"
_FIGURE = re.compile(
    rf"""
    (?P<sign>[-+▲△]\s?)?
    (?P<cur>US\$|\$|¥)?\s?
    (?P<sign2>-\s?)?
    (?P<num>(?:{_NUM}\s?{_JA})+(?:{_NUM}(?=\s?円))?|{_NUM})
    (?!\d|[.,]\d)
    (?P<en>[KkMB](?![A-Za-z]))?
    (?:\s?(?P<suf>%|円|倍|{"|".join(COUNT_SUFFIXES)}|{"|".join(MEASURE_SUFFIXES)}(?![A-Za-z])))?
    """,
    re.VERBOSE,
)
_DATE = re.compile(r"(?<!\d)(\d{4})(?:([/\-.])(\d{1,2})\2(\d{1,2})|年\s?(\d{1,2})\s?月\s?(\d{1,2})\s?日)(?!\d)")
_CLOCK = re.compile(r"(?<![\d:.,])(\d{1,3}):([0-5]\d)(?::([0-5]\d))?(?![\d:])")
_JA_DURATION = re.compile(r"(?<![\d.,])(?:(\d+)\s?時間)?\s?(?:(\d+)\s?分)?\s?(?:(\d+)\s?秒)?(?!\d)")


@dataclass(frozen=True)
class Figure:
    """One figure of a text: ``text[start:end]`` (``shown``) reads ``value`` in ``unit``.

    unit: "JPY", "USD", "count", "number" (a bare number with decimals), "percent", "ratio",
    "seconds", "clock" (``h:mm[:ss]`` / ``m:ss``; ``parts`` holds its fields), "date" (``value``
    is ISO ``YYYY-MM-DD`` text), or a measure ("mm", "cm", "km", "kg", "g", "m").
    value: exact Decimal (str for dates). precision: the value of the last digit written
    (``1.2万`` -> 1000, ``¥1,234`` -> 1), None for clocks and dates. multiplier: "万", "億", "K",
    "M" … when one was printed.
    """

    start: int
    end: int
    shown: str
    value: Decimal | str
    unit: str
    precision: Decimal | None = None
    multiplier: str | None = None
    parts: tuple[int, ...] = ()


def clock_seconds(parts: tuple[int, ...], *, duration: bool) -> int:
    """Seconds of a clock reading. As a duration ``h:mm:ss`` or ``m:ss`` (``12:34`` = 754 s); as a
    time of day ``h:mm[:ss]`` since midnight (``14:00`` = 50400 s)."""
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return parts[0] * 60 + parts[1] if duration else parts[0] * 3600 + parts[1] * 60


def find_figures(text: str) -> list[Figure]:
    """Every figure in ``text``, in order (forms in the module docstring). Never raises."""
    folded, offsets = fold_with_offsets(text)
    taken: list[tuple[int, int]] = []
    found: list[Figure] = []

    def original(start: int, end: int) -> tuple[int, int, str]:
        o_start = offsets[start]
        o_end = offsets[end - 1] + 1
        return o_start, o_end, text[o_start:o_end]

    def add(start: int, end: int, value: Decimal | str, unit: str, **extra: object) -> None:
        if start >= end or any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        o_start, o_end, shown = original(start, end)
        found.append(Figure(o_start, o_end, shown, value, unit, **extra))  # type: ignore[arg-type]

    for m in _DATE.finditer(folded):
        month, day = (m.group(3), m.group(4)) if m.group(2) else (m.group(5), m.group(6))
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            add(m.start(), m.end(), f"{m.group(1)}-{int(month):02d}-{int(day):02d}", "date")
    for m in _CLOCK.finditer(folded):
        if _code_before(folded, m.start()):
            continue
        parts = tuple(int(g) for g in m.groups() if g is not None)
        add(m.start(), m.end(), Decimal(0), "clock", parts=parts)
    for m in _JA_DURATION.finditer(folded):
        if not any(m.groups()) or _code_before(folded, m.start()):
            continue
        if m.group(1) and not (m.group(2) or m.group(3)) and folded[m.end():m.end() + 1] == "帯":
            continue
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        add(start, m.end(), Decimal(h * 3600 + mi * 60 + s), "seconds", precision=Decimal(1))
    for m in _FIGURE.finditer(folded):
        figure = _general(folded, m)
        if figure is not None:
            start, end, value, unit, extra = figure
            add(start, end, value, unit, **extra)
    return sorted(found, key=lambda f: f.start)


def _code_before(folded: str, start: int) -> bool:
    """A letter, digit or ``.`` right before (``v2``, ``cube-09``, ``1.2.3``): part of a code."""
    before = folded[start - 1:start] if start else ""
    if before and (before.isascii() and (before.isalnum() or before in "._")):
        return True
    if before == "," and start >= 2 and folded[start - 2].isdigit():
        return True  # "1,23": a broken thousands group
    return before == "-" and start >= 2 and folded[start - 2].isascii() and folded[start - 2].isalnum()


def _general(folded: str, m: re.Match[str]) -> tuple[int, int, Decimal, str, dict[str, object]] | None:
    start = m.start()
    while folded[start].isspace():  # "vs last -31.5%": the optional separators took the space
        start += 1
    sign_text = (m.group("sign") or "").strip()
    sign_glued = bool(m.group("sign")) and start == m.start()
    if sign_text and sign_glued and start and (folded[start - 1].isalnum() and folded[start - 1].isascii()):
        start += len(m.group("sign"))  # "A-1": the hyphen belongs to the code
        sign_text = ""
        if not m.group("cur"):
            return None
    elif _code_before(folded, start):
        return None
    end = m.end()
    if end < len(folded) and folded[end].isascii() and folded[end].isalpha() and not m.group("suf"):
        return None  # "3D", "15th": a word, not a figure
    number = re.sub(r",\s", ",", m.group("num"))
    read = arabic_decimal(number.replace(" ", ""))
    if read is None:
        return None
    value, precision = read
    japanese = re.search(_JA, number)
    multiplier: str | None = japanese.group(0) if japanese else None
    if m.group("en"):
        if japanese:
            return None
        multiplier = "K" if m.group("en") == "k" else m.group("en")
        value *= EN_MULTIPLIERS[m.group("en")]
        precision *= EN_MULTIPLIERS[m.group("en")]
    negative = sign_text in ("-", "▲", "△") or bool(m.group("sign2"))
    if negative:
        value = -value
    cur, suf = m.group("cur"), m.group("suf")
    if cur == "¥" or suf == "円":
        unit = "JPY"
    elif cur in ("$", "US$"):
        unit = "USD"
    elif suf == "%":
        unit = "percent"
    elif suf == "倍":
        unit = "ratio"
    elif suf in MEASURE_SUFFIXES:
        unit = suf
    elif suf in COUNT_SUFFIXES or value == value.to_integral_value():
        unit = "count"
    else:
        unit = "number"
    if value == value.to_integral_value():
        value = Decimal(int(value))
    # Trim the spaces the optional separators may have taken at either end.
    while start < end and folded[start].isspace():
        start += 1
    while end > start and folded[end - 1].isspace():
        end -= 1
    return (start, end, value, unit, {"precision": precision, "multiplier": multiplier})
