"""Japanese postal codes (郵便番号): 7 digits written "NNN-NNNN"."""

from __future__ import annotations

import re

from hokan.core.ja.text import fold

# After 〒 / 郵便番号 / ZIP the hyphen is optional ("〒1410033"); without a mark the code must
# open the text and carry its hyphen ("141-0033 東京都…"), so phone fragments are not taken.
_MARKED = re.compile(r"(?:〒|郵便番号|郵便|zip(?:\s*code)?)\s*[:]?\s*(\d{3})\s*-?\s*(\d{4})(?![\d-])", re.IGNORECASE)
_LEADING = re.compile(r"^(\d{3})-(\d{4})(?![\d-])|^(\d{3})(\d{4})$")


def parse_postal_code(text: str) -> str | None:
    """Return the postal code in ``text`` as "141-0033", or None.

    Accepts ``〒141-0033``, ``〒1410033``, ``〒 141－0033``, full-width digits, ``郵便番号：…``,
    and a bare code opening the text (``141-0033 東京都…``, or exactly ``1410033``).
    """
    s = fold(text)
    m = _MARKED.search(s)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    m = _LEADING.search(s)
    if m:
        first, second = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{first}-{second}"
    return None
