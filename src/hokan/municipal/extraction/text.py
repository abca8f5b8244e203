"""The text of a page as the extractors and the quote check see it.

HTML goes through ``core.extract.html`` (script/style dropped, one block per line, whitespace runs
collapsed); plain text (a PDF's text layer, OCR, Markdown) is split on newlines the same way, with
Markdown's markup taken off as a browser would show it: ``## 見出し`` → 見出し, ``- 項目`` → ・項目,
``**強調**`` → 強調, ``[文](url)`` → 文, a table row ``| 電話 | 01656-5-3019 |`` → 電話 01656-5-3019
(separator rows dropped).
``haystack`` is the reference every quote is checked against: the lines folded with
``core.ja.fold`` (NFKC, dashes as "-") with every whitespace removed, so a quote that differs
from the page only by width, dash form or spacing still counts as found, and anything else does
not.
"""

from __future__ import annotations

import re

from hokan.core.extract.html import parse_html, text_lines
from hokan.core.ja import fold

_WS = re.compile(r"\s+")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_MD_ITEM = re.compile(r"^(?:[-*+]|\d{1,2}\.)\s+")
_MD_EMPHASIS = re.compile(r"\*\*|__")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_MD_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")


def _unmark(line: str) -> str:
    """One line of plain text without its Markdown markup (module docstring)."""
    if _MD_TABLE_RULE.match(line) or _MD_RULE.match(line):
        return ""
    if line.startswith("|") and line.endswith("|"):
        line = " ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
    line = _MD_HEADING.sub("", line)
    if _MD_ITEM.match(line) and not re.match(r"^\d{1,2}\.\d", line):
        line = "・" + _MD_ITEM.sub("", line)
    return _MD_LINK.sub(r"\1", _MD_EMPHASIS.sub("", line)).strip()


def page_lines(*, html: str | None = None, text: str | None = None) -> list[str]:
    """The visible, non-empty lines of a page (``html`` wins over ``text`` when both are given)."""
    if html is not None:
        return text_lines(parse_html(html))
    lines = (_unmark(_WS.sub(" ", line).strip()) for line in (text or "").splitlines())
    return [line for line in lines if line]


def haystack(lines: list[str]) -> str:
    """The page folded and without whitespace (see the module docstring)."""
    return _WS.sub("", fold("\n".join(lines)))


def squeeze(text: str) -> str:
    """``text`` folded and without whitespace, for comparing with :func:`haystack`."""
    return _WS.sub("", fold(text))


def in_page(quote: str, page: str) -> bool:
    """Whether ``quote`` (non-empty after folding) occurs in the haystack ``page``."""
    needle = squeeze(quote)
    return bool(needle) and needle in page
