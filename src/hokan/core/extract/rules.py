"""Rule-based extraction of company facts from one Japanese company profile page (会社概要).

:func:`extract_profile` returns at most one value per field, each a
:class:`~hokan.core.fields.FieldValue` with method "rule". A wrong value is worse than a
missing one: every value is validated with :mod:`hokan.core.ja`, vague answers (非公開,
お問い合わせください…) count as missing, and when a page offers several different values
that no rule can tell apart, the field is left out.

Sources and their confidence (before the reductions noted below):

========================  ==========  ====================================================
source (``extractor``)    confidence  what
========================  ==========  ====================================================
``jsonld`` / microdata    0.9         Organization-like item (see structured.py);
                                      ``foundingDate`` 0.75 (設立 or 創業?), description 0.7
``table`` / ``dl``        0.9         label → value rows (pairs.py)
``block``                 0.85        div/heading rows (``<h6>社名</h6><div>…</div>``)
``text``                  0.8         ``項目：値`` lines
``link``                  0.8 / 0.7   a Facebook page link / the only ``mailto:`` address
``history``               0.7         沿革 entry "2017年10月 法人設立" (established only)
``regex``                 0.7 / 0.6   the phone next to a repeat of the head-office address /
                                      patterns over the visible text, used only when all
                                      matches on the page agree
========================  ==========  ====================================================

Reductions: a value picked among several different ones in one cell ×0.8 (×0.9 for the
only landline among free-dial/mobile numbers); the first of several unlabelled addresses
0.75; the phone of the head-office address cell ×0.95 of the address; phone rows outside the
profile table ×0.9; "約50名" ×0.9; a 設立 cell with words around the date ×0.9; a prefecture
inferred from the city ×0.95.

Choices: 設立 is ``established_year``; 創業/創立 are ``founded_year`` only (labels.py).
Among several addresses/phones the head office wins (sub-label 本社/本店/本部); FAX numbers
are never the phone. Among officers, a title with 代表 and 社長 beats 代表 alone, which beats
会長. A page listing several companies (one table each) is read from its main table only.

Where each rule lives: identity.py (name, 法人番号, 事業内容), address.py (head-office address),
phone.py (TEL vs FAX, head-office phone), officers.py (representative), dates.py (設立 vs
創業, 沿革), figures.py (資本金, 売上高, 従業員数), web.py (e-mail, website, Facebook); page.py
holds the page, the ranking of rows and the numbers of the table above.

Quotes: for values read from the visible page, ``quote`` is a substring of
``flat(visible_text(html))`` (label and value, ≤ 200 chars). Values read from JSON-LD or link
targets are not visible text; their quote is the property as written in the page source
(``"telephone": "+81-948-24-6315"``, ``href="https://www.facebook.com/…"``).
"""

from __future__ import annotations

from hokan.core.extract.address import read_address
from hokan.core.extract.dates import read_established, read_founded
from hokan.core.extract.figures import MAX_EMPLOYEES, read_capital, read_employees, read_revenue
from hokan.core.extract.html import parse_html, text_lines
from hokan.core.extract.identity import read_business, read_corporate_number, read_name, several_companies
from hokan.core.extract.officers import read_representative
from hokan.core.extract.page import HISTORY_CONFIDENCE, MAX_QUOTE, REGEX_CONFIDENCE, SOURCE_CONFIDENCE, Page, main_group
from hokan.core.extract.pairs import find_pairs
from hokan.core.extract.phone import read_phone
from hokan.core.extract.structured import organisation_values
from hokan.core.extract.web import read_email, read_facebook, read_website
from hokan.core.fields import FieldValue
from hokan.core.ja import fold

__all__ = [
    "FIELDS", "HISTORY_CONFIDENCE", "MAX_EMPLOYEES", "MAX_QUOTE", "REGEX_CONFIDENCE", "SOURCE_CONFIDENCE",
    "extract_profile",
]  # fmt: skip

FIELDS: tuple[str, ...] = (
    "name", "corporate_number", "business_description", "prefecture", "city", "location", "postal_code",
    "employee_count", "revenue", "capital", "established_year", "founded_year", "phone", "contact_email",
    "website_url", "facebook_url", "representative_name", "representative_title",
)  # fmt: skip

# In this order: the phone rules use the head-office address, the representative rules the name.
_READERS = (
    read_name, read_corporate_number, read_address, read_phone, read_representative, read_established,
    read_founded, read_capital, read_employees, read_revenue, read_business, read_email, read_website,
    read_facebook,
)  # fmt: skip


def extract_profile(html: str, *, url: str | None) -> dict[str, FieldValue]:
    """Read company facts from one profile page.

    html: the decoded page (see ``hokan.core.web.decode_html``); url: where it came from
    (stored as ``source_url`` and used to resolve relative links), or None.

    Returns ``{field: FieldValue}`` for the fields found, keys from :data:`FIELDS`. Values:
    ``employee_count``, ``capital``, ``revenue`` (int JPY), ``established_year``,
    ``founded_year`` int; ``phone`` national format ("03-5339-8051"); ``postal_code``
    "141-0033"; ``corporate_number`` 13 digits; others ``str``. Never raises on odd HTML.
    """
    root = parse_html(html)
    lines = text_lines(root)
    pairs = find_pairs(root)
    page = Page(
        html=html,
        url=url,
        root=root,
        lines=lines,
        folded=[fold(line) for line in lines],
        flat=" ".join(lines),
        pairs=pairs,
        structured=organisation_values(html, url),
        main_group=main_group(pairs),
    )
    page.several_companies = several_companies(pairs, page.main_group)
    for read in _READERS:
        read(page)
    return {
        name: FieldValue(
            field=name,
            value=found.value,
            raw=found.raw,
            quote=found.quote,
            source_url=url,
            method="rule",
            confidence=round(found.confidence, 3),
            extractor=found.extractor,
        )
        for name, found in page.found.items()
    }
