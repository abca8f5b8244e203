"""The text of a page as the extractors and the quote check see it.

HTML goes through ``core.extract.html`` (script/style dropped, one block per line, whitespace runs
collapsed); plain text (a PDF's text layer, OCR, Markdown) is split on newlines the same way.
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


def page_lines(*, html: str | None = None, text: str | None = None) -> list[str]:
    """The visible, non-empty lines of a page (``html`` wins over ``text`` when both are given)."""
    if html is not None:
        return text_lines(parse_html(html))
    lines = (_WS.sub(" ", line).strip() for line in (text or "").splitlines())
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
