"""Label → value pairs of a page: tables, definition lists, div rows and ``項目：値`` lines.

:func:`find_pairs` returns every pair it can see, labelled or not (``kind`` None when the
label is unknown, ``"date"`` when the label is a date as in 沿革 lists). Which pair feeds
which field is decided by the topic modules that :mod:`hokan.core.extract.rules` runs.

Sources, in the order they are read:

- ``table``: each ``<tr>`` with ≥ 2 cells — first cell label, other cells value; a row whose
  first cell is empty continues the previous row (legacy layouts put one address or
  phone per row); ``th td th td`` rows give two pairs.
- ``dl``: each ``<dt>`` with the ``<dd>`` elements that follow it (nested ``<div>`` wrappers
  inside ``<dl>`` allowed).
- ``block``: an element whose whole text is a known label (or a date) followed by a sibling
  element holding the value (``<h6>社名</h6><div>…</div>``, ``<div class=info-name>`` +
  ``<div class=info-value>``, ``<span>`` + ``<span>``).
- ``text``: lines of the remaining visible text shaped ``項目：値``, ``【項目】値`` or
  ``項目 値`` with a known label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice

import lxml.etree

from hokan.core.extract.html import element_flat, tag_of, text_lines
from hokan.core.extract.labels import label_kind
from hokan.core.ja import fold

MAX_LABEL_CHARS = 30
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "caption"})
_NOT_BLOCK_LABEL = frozenset(
    {"html", "body", "head", "table", "tbody", "thead", "tfoot", "tr", "td", "th", "dl", "dt", "dd", "ul", "ol",
     "li", "a", "option", "select", "button", "label", "form", "nav", "header", "footer", "main", "section"}
)  # fmt: skip
# A label that is a date: 2017年10月, 平成26年10月, 1977年, 2018.4 (沿革 lists).
DATE_LABEL = re.compile(
    r"(?:(?:明治|大正|昭和|平成|令和)\s*(?:元|\d{1,2})|[12]\d{3})\s*(?:年|[./])\s*(?:\d{1,2}\s*月?)?\s*(?:\d{1,2}\s*日?)?"
)
_TEXT_COLON = re.compile(r"^[■□●○◆◇▼▲・※\[【〔(]?\s*([^:]{1,15}?)\s*[\]】〕)]?\s*:\s*(.+)$")
_TEXT_BRACKET = re.compile(r"^[\[【〔]([^\]】〕]{1,15})[\]】〕]\s*(.+)$")
_TEXT_SPACE = re.compile(r"^[■□●○◆◇▼▲・※]?\s*(\S{1,12})\s+(.+)$")
# Kinds read from "項目 値" lines (no colon): their values are checked by a strict parser.
_SPACE_KINDS = frozenset(
    {"corporate_number", "established", "founded", "capital", "employees", "hq_address", "address", "phone", "email",
     "url"}
)


@dataclass
class Pair:
    """One label and its value as shown on the page.

    label: the label text (whitespace collapsed). kind: :func:`label_kind` of it, "date"
    for 沿革-style date labels, or None. lines: the value's visible lines. quote: label and
    value as they read on the page, whitespace collapsed (checked against the page text by
    the caller). order: document position of the label (smaller = earlier). group: the id
    of the container (table, dl or parent element) — pairs of one profile table share it.
    heading: the nearest heading before the pair ("" if none). value_elements: the elements
    holding the value (for links), empty for text pairs.
    """

    label: str
    kind: str | None
    lines: list[str]
    quote: str
    order: int
    source: str
    group: int
    heading: str = ""
    value_elements: list[lxml.etree._Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The value on one line."""
        return " ".join(self.lines)


def _kind(label: str) -> str | None:
    kind = label_kind(label)
    if kind is None and DATE_LABEL.fullmatch(fold(label)):
        return "date"
    return kind


def _closest(el: lxml.etree._Element, tags: set[str]) -> lxml.etree._Element | None:
    parent = el.getparent()
    while parent is not None:
        if tag_of(parent) in tags:
            return parent
        parent = parent.getparent()
    return None


def _row_value_lines(cells: list[lxml.etree._Element]) -> list[str]:
    per_cell = [text_lines(c) for c in cells]
    per_cell = [lines for lines in per_cell if lines]
    if all(len(lines) == 1 for lines in per_cell):
        return [" ".join(lines[0] for lines in per_cell)] if per_cell else []
    return [line for lines in per_cell for line in lines]


class _Collector:
    def __init__(self, root: lxml.etree._Element) -> None:
        self.root = root
        self.order: dict[lxml.etree._Element, int] = {}
        self.heading_elements: list[lxml.etree._Element] = []
        for i, el in enumerate(root.iter()):
            self.order[el] = i
            if tag_of(el) in _HEADINGS and element_flat(el):
                self.heading_elements.append(el)
        self.pairs: list[Pair] = []
        self.used: set[lxml.etree._Element] = set()
        self.groups: dict[lxml.etree._Element, int] = {}
        self.group_elements: dict[int, lxml.etree._Element] = {}

    def group_of(self, el: lxml.etree._Element) -> int:
        if el not in self.groups:
            self.groups[el] = len(self.groups)
            self.group_elements[self.groups[el]] = el
        return self.groups[el]

    def merge_single_row_groups(self) -> None:
        """Pages that wrap every row in its own <dl>/<table>/<div> get one group per row; such
        one-row containers are merged into the nearest ancestor (≤ 3 levels up) that holds
        other labelled rows, so that "the profile table" is found on them too."""
        labelled = [p for p in self.pairs if p.source != "text" and p.kind not in (None, "date")]
        counts: dict[int, int] = {}
        for pair in labelled:
            counts[pair.group] = counts.get(pair.group, 0) + 1
        for pair in labelled:
            if counts.get(pair.group, 0) != 1:
                continue
            el = self.group_elements[pair.group]
            for _ in range(3):
                el = el.getparent()
                if el is None:
                    break
                others = [
                    q for q in labelled
                    if q is not pair and q.group != pair.group and _is_ancestor(el, self.group_elements[q.group])
                ]  # fmt: skip
                if others:
                    pair.group = self.group_of(el)
                    break

    def set_headings(self) -> None:
        """Give each pair the nearest heading before it; headings used as labels do not count."""
        headings = [(self.order[el], element_flat(el)) for el in self.heading_elements if el not in self.used]
        for pair in self.pairs:
            if pair.source == "text":
                continue
            found = ""
            for position, text in headings:
                if position >= pair.order:
                    break
                found = text
            pair.heading = found

    def add(self, label_el, label: str, lines: list[str], quote: str, source: str, group_el, values) -> Pair | None:
        label = label.strip()
        if not label or len(fold(label)) > MAX_LABEL_CHARS:
            return None
        value_kind = label_kind(lines[0]) if len(lines) == 1 else None
        if value_kind is not None and value_kind != _kind(label) and _kind(label) != "date":
            return None  # a header row of labels (会社名 | 所在地 | …), not a label and its value
        index = self.order.get(label_el, 0)
        pair = Pair(
            label=label,
            kind=_kind(label),
            lines=lines,
            quote=quote,
            order=index,
            source=source,
            group=self.group_of(group_el),
            value_elements=list(values),
        )
        self.pairs.append(pair)
        return pair

    # --- tables ---------------------------------------------------------------------------
    def tables(self) -> None:
        for table in self.root.iter("table"):
            prev: Pair | None = None
            for tr in table.iter("tr"):
                if _closest(tr, {"table"}) is not table:
                    continue
                cells = [c for c in tr if tag_of(c) in ("th", "td")]
                texts = [element_flat(c) for c in cells]
                if not any(texts) or len(cells) < 2:
                    prev = None
                    continue
                self.used.add(tr)
                row_flat = element_flat(tr)
                ths = [i for i, c in enumerate(cells) if tag_of(c) == "th"]
                if len(ths) >= 2 and ths[0] == 0:
                    # th td th td: one pair per th.
                    bounds = [*ths, len(cells)]
                    for start, end in zip(bounds, bounds[1:]):
                        quote = " ".join(t for t in texts[start:end] if t)
                        self.add(cells[start], texts[start], _row_value_lines(cells[start + 1 : end]), quote,
                                 "table", table, cells[start + 1 : end])  # fmt: skip
                    prev = None
                    continue
                if not texts[0]:
                    if prev is not None:
                        prev.lines.extend(_row_value_lines(cells[1:]))
                        prev.quote = f"{prev.quote} {row_flat}".strip()
                        prev.value_elements.extend(cells[1:])
                    continue
                prev = self.add(cells[0], texts[0], _row_value_lines(cells[1:]), row_flat, "table", table, cells[1:])

    # --- definition lists -------------------------------------------------------------------
    def dls(self) -> None:
        for dl in self.root.iter("dl"):
            current: Pair | None = None
            for el in dl.iter("dt", "dd"):
                if _closest(el, {"dl"}) is not dl:
                    continue
                self.used.add(el)
                if tag_of(el) == "dt":
                    label = element_flat(el)
                    current = self.add(el, label, [], label, "dl", dl, [])
                elif current is not None:
                    current.lines.extend(text_lines(el))
                    current.quote = f"{current.quote} {element_flat(el)}".strip()
                    current.value_elements.append(el)

    # --- label element + value sibling ----------------------------------------------------------
    def blocks(self) -> None:
        for el in self.root.iter():
            tag = tag_of(el)
            if not tag or tag in _NOT_BLOCK_LABEL or el in self.used:
                continue
            if _closest(el, {"a", "dt", "th"}) is not None or el.find(".//a") is not None:
                continue
            if el.tail and el.tail.strip():
                continue
            if next(islice(el.iterdescendants(), 4, None), None) is not None:
                continue  # a label is a leaf or nearly so; skipping big subtrees keeps this linear
            label = element_flat(el)
            if not label or len(label) > 20 or _kind(label) is None:
                continue
            nxt = el.getnext()
            while nxt is not None and not tag_of(nxt):
                nxt = nxt.getnext()
            if nxt is None or tag_of(nxt) in ("a", "li", "br", "img", "script", "style"):
                continue
            value_lines = text_lines(nxt)
            if not value_lines:
                continue
            if _kind(label) != "date" and label_kind(" ".join(value_lines)) is not None:
                continue  # a run of labels (a menu), not a label and its value
            if _holds_labels(nxt):
                continue  # a heading over a whole block of rows: the rows give the pairs
            if nxt.find(".//a") is not None and all(
                (a.text_content() or "").strip() for a in nxt.iter("a")
            ) and len(element_flat(nxt)) <= sum(len((a.text_content() or "").strip()) for a in nxt.iter("a")) + 2:
                continue  # the "value" is only links: navigation, not a profile row
            self.used.update((el, nxt))
            self.add(el, label, value_lines, f"{label} {element_flat(nxt)}", "block", el.getparent(), [nxt])

    # --- 項目：値 lines of the remaining text ---------------------------------------------------------
    def text(self) -> None:
        lines = text_lines(self.root, skip=self.used)
        for number, line in enumerate(lines):
            folded = fold(line)
            for pattern in (_TEXT_COLON, _TEXT_BRACKET, _TEXT_SPACE, None):
                m = pattern.match(folded) if pattern is not None else _glued(folded)
                if m is None:
                    continue
                label, value = m.group(1), m.group(2).strip()
                kind = label_kind(label)
                if kind is None or not value:
                    continue
                if pattern in (_TEXT_SPACE, None) and kind not in _SPACE_KINDS:
                    continue  # "代表 挨拶" is a heading, not a row: only values a parser can check
                # Keep the raw (unfolded) value: cut the line after its label.
                raw_value = _raw_tail(line, value)
                pair = Pair(
                    label=label,
                    kind=kind,
                    lines=[raw_value],
                    quote=line,
                    order=len(self.order) + number,  # after every structured pair
                    source="text",
                    group=-1,
                    heading="",
                )
                self.pairs.append(pair)
                break


_GLUED_VALUE_START = re.compile(r"[\d〒(+]|(?:明治|大正|昭和|平成|令和)|\S{2,3}[都道府県]")


def _glued(folded: str) -> re.Match[str] | None:
    """"設立2001年4月" / "資本金1,000万円": a label glued to a value that starts like one."""
    for size in range(2, min(8, len(folded) - 1) + 1):
        head, tail = folded[:size], folded[size:]
        # The value pattern first: one cheap regex match rules most prefixes out before the
        # label is classified (same result, the two tests are independent).
        if _GLUED_VALUE_START.match(tail) and label_kind(head) in _SPACE_KINDS:
            return re.match(rf"^({re.escape(head)})(.+)$", folded)
    return None


def _is_ancestor(ancestor: lxml.etree._Element, el: lxml.etree._Element) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.getparent()
    return False


def _holds_labels(el: lxml.etree._Element) -> bool:
    """True when a descendant of ``el`` is a known label on its own (a nested profile block)."""
    for child in el.iterdescendants():
        if not tag_of(child) or tag_of(child) in ("br", "a", "img"):
            continue
        text = element_flat(child)
        if text and len(text) <= 20 and label_kind(text) is not None:
            return True
    return False


def _raw_tail(line: str, folded_value: str) -> str:
    """The end of ``line`` that folds to ``folded_value`` (fallback: the folded value)."""
    for start in range(len(line)):
        if fold(line[start:]) == folded_value:
            return line[start:].strip()
    return folded_value


def find_pairs(root: lxml.etree._Element) -> list[Pair]:
    """Every label → value pair of the page (see the module docstring), in reading order."""
    collector = _Collector(root)
    collector.tables()
    collector.dls()
    collector.blocks()
    collector.text()
    collector.merge_single_row_groups()
    collector.set_headings()
    return sorted(collector.pairs, key=lambda p: p.order)
