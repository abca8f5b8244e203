"""One page being read by the rule extractors, and how candidate values are ranked and kept.

:class:`Page` holds the parsed page (visible lines, label → value pairs, structured data) and
the values found so far (``found``: field → :class:`Found`, the first value kept per field).
The topic modules (identity.py, address.py, phone.py, officers.py, dates.py, figures.py,
web.py) read from it and add to ``found``; rules.py builds it and runs them in order.

The confidence of each source is listed in rules.py; the numbers live here because every
topic module uses them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hokan.core.extract.html import flat
from hokan.core.extract.pairs import Pair
from hokan.core.extract.structured import StructuredValue

if TYPE_CHECKING:
    from hokan.core.extract.address import Segment

SOURCE_CONFIDENCE = {"jsonld": 0.9, "microdata": 0.9, "table": 0.9, "dl": 0.9, "block": 0.85, "text": 0.8}
HISTORY_CONFIDENCE = 0.7
REGEX_CONFIDENCE = 0.6
MAX_QUOTE = 200

# Parenthetical notes of a value: （平成10年）, [本社], 【英文】, 〔注〕.
PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|〔[^〔〕]*〕")


@dataclass
class Found:
    """One candidate value of one field, before it becomes a FieldValue."""

    value: Any
    raw: str
    quote: str
    confidence: float
    extractor: str


@dataclass
class Page:
    """A page as the rules see it: html, url, lxml root, visible lines (and their fold()),
    their flat text, label → value pairs, structured (JSON-LD/microdata) values, the group
    of the main profile table, and the values found so far."""

    html: str
    url: str | None
    root: Any
    lines: list[str]
    folded: list[str]  # fold() of each line
    flat: str
    pairs: list[Pair]
    structured: list[StructuredValue]
    main_group: int | None
    found: dict[str, Found] = field(default_factory=dict)
    several_companies: bool = False  # tables of several companies (see identity.several_companies)
    hq_segment: Segment | None = None  # the head-office part of the address cell used
    hq_key: str | None = None  # that address as prefecture+city+rest, for finding it again

    def keep(self, name: str, found: Found | None) -> None:
        """Store ``found`` for field ``name`` unless that field already has a value."""
        if found is not None and name not in self.found:
            self.found[name] = found

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

    def own_pairs(self) -> list[Pair]:
        """All pairs, or only the main table's on a page listing several companies."""
        if self.several_companies:
            return [p for p in self.pairs if p.group == self.main_group]
        return self.pairs

    def ranked(self, *kinds: str, text: bool = True) -> list[Pair]:
        """Pairs of these kinds: the main profile table first, then reading order; text pairs last.

        On pages listing several companies (one table each), only the main table counts: a
        field missing there must not be filled from another company's table.
        """
        chosen = [p for p in self.pairs if p.kind in kinds and (text or p.source != "text")]
        if self.several_companies:
            chosen = [p for p in chosen if p.group == self.main_group]
        return sorted(
            chosen,
            key=lambda p: (p.source == "text", p.group != self.main_group, kinds.index(p.kind), p.order),
        )

    def structured_values(self, key: str) -> list[StructuredValue]:
        """The page organisation's structured values of schema.org property ``key``."""
        return [v for v in self.structured if v.key == key]

    def inline_value(
        self, pattern: re.Pattern[str], parse: Callable[[str], Any], *, skip: re.Pattern[str] | None = None
    ) -> tuple[Any, str] | None:
        """A value written inline in the visible text ("資本金 1,000万円"), when the page agrees.

        ``pattern`` is searched in every folded line (lines where ``skip`` matches are passed
        over); ``parse`` turns its group 1 into a value, or a falsy one to drop the match.
        Returns (value, line of its first match) when all kept matches give the same value,
        else None. None on a page listing several companies: the text may be another's.
        """
        if self.several_companies:
            return None
        found: list[tuple[Any, str]] = []
        for line, folded in zip(self.lines, self.folded):
            if skip is not None and skip.search(folded):
                continue
            for m in pattern.finditer(folded):
                value = parse(m.group(1))
                if value:
                    found.append((value, line))
        if found and len(distinct([v for v, _ in found])) == 1:
            return found[0]
        return None

    def keep_inline(
        self, name: str, pattern: re.Pattern[str], parse: Callable[[str], Any], *, skip: re.Pattern[str] | None = None
    ) -> None:
        """Keep field ``name`` from :meth:`inline_value` (raw and quote: the line; REGEX_CONFIDENCE)."""
        inline = self.inline_value(pattern, parse, skip=skip)
        if inline is not None:
            value, line = inline
            self.keep(name, Found(value, line, self.quote(line), REGEX_CONFIDENCE, "regex"))


def main_group(pairs: list[Pair]) -> int | None:
    """The container holding the most labelled rows: the profile table of the page."""
    counts: dict[int, int] = {}
    for pair in pairs:
        if pair.source != "text" and pair.kind not in (None, "date"):
            counts[pair.group] = counts.get(pair.group, 0) + 1
    return max(counts, key=lambda g: counts[g]) if counts else None


def pair_confidence(pair: Pair) -> float:
    """The confidence of a value read from ``pair`` (by its source, see SOURCE_CONFIDENCE)."""
    return SOURCE_CONFIDENCE.get(pair.source, 0.8)


def first_line(pair: Pair) -> str:
    """The first value line of ``pair``, or ""."""
    return pair.lines[0] if pair.lines else ""


def distinct(values: list[Any]) -> list[Any]:
    """``values`` without repeats, in first-seen order (values need not be hashable)."""
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out
