"""法人番号 (corporate number): 13 digits, the first being a check digit."""

from __future__ import annotations

import re

from hokan.core.ja.text import fold

# 13 digits, optionally after the インボイス登録番号 prefix "T", written plain or grouped
# 1-4-4-4 with spaces/hyphens; a 14th digit on either side disqualifies the run.
_CANDIDATE = re.compile(r"(?<![\d-])T?\s*(\d)[ -]?(\d{4})[ -]?(\d{4})[ -]?(\d{4})(?!\d|-\d)")


def is_valid_corporate_number(s: str) -> bool:
    """True when ``s`` is exactly 13 ASCII digits with a correct check digit.

    Rule (法人番号の指定等に関する省令 第2条 / 国税庁「法人番号の構成」): the first digit is the
    check digit of the 12-digit base P; counting n = 1 from the lowest (rightmost) digit of P,
    Q_n = 1 for odd n and 2 for even n, and check digit = 9 − (Σ P_n × Q_n mod 9).
    """
    if len(s) != 13 or not s.isascii() or not s.isdigit():
        return False
    base = s[1:]
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base), start=1))
    return int(s[0]) == 9 - total % 9


def parse_corporate_number(text: str) -> str | None:
    """The first valid 法人番号 in ``text`` as 13 digits, or None.

    Accepts full-width digits, a "T" invoice prefix (T6120001271738) and space/hyphen
    grouping. Runs of 14+ digits and numbers with a wrong check digit give None.
    """
    for m in _CANDIDATE.finditer(fold(text)):
        number = "".join(m.groups())
        if is_valid_corporate_number(number):
            return number
    return None
