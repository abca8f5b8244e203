"""Structured data of a page (JSON-LD and microdata, read with extruct) → organisation facts.

Only items that describe an organisation are used: any schema.org type except the
page/creative-work/person/product types listed in ``_NOT_ORGANISATION`` (so Organization,
Corporation, LocalBusiness and its many subtypes such as GeneralContractor all count), at the
top level or in ``@graph``. Nested organisations (``brand``, ``provider``…) are ignored:
they may be another company.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NOT_ORGANISATION = frozenset(
    {"WebSite", "WebPage", "AboutPage", "ContactPage", "CollectionPage", "ItemPage", "FAQPage", "BreadcrumbList",
     "ListItem", "ItemList", "SiteNavigationElement", "Person", "Product", "Offer", "AggregateOffer", "Event",
     "Article", "NewsArticle", "BlogPosting", "Blog", "CreativeWork", "ImageObject", "VideoObject", "Review",
     "AggregateRating", "Rating", "SearchAction", "JobPosting", "Place", "PostalAddress", "Service", "Question",
     "Answer", "HowTo", "Recipe", "Course", "Book", "Movie", "MusicRecording", "SoftwareApplication"}
)  # fmt: skip


@dataclass(frozen=True)
class StructuredValue:
    """One property of the page's organisation item.

    key: schema.org property (``telephone``, ``taxID``, ``address``…); value: its text (for
    ``address`` the PostalAddress parts joined: region, locality, street; for ``sameAs`` one
    URL); quote: the property as written in the page source when found there, else
    ``key: value``; syntax: "jsonld" or "microdata".
    """

    key: str
    value: str
    quote: str
    syntax: str


def _types(item: dict[str, Any]) -> list[str]:
    t = item.get("@type")
    if isinstance(t, str):
        t = [t]
    if not isinstance(t, list):
        return []
    return [x.rsplit("/", 1)[-1] for x in t if isinstance(x, str)]


def _is_organisation(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    types = _types(item)
    if not types or any(t in _NOT_ORGANISATION for t in types):
        return False
    return isinstance(item.get("name"), str) or any(k in item for k in ("address", "telephone", "taxID"))


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        for key in ("@value", "value", "name", "@id", "url"):
            if isinstance(value.get(key), (str, int)):
                return str(value[key]).strip() or None
    if isinstance(value, list) and value:
        return _text(value[0])
    return None


def _address(value: Any) -> str | None:
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, dict):
        return None
    found = [value.get(k) for k in ("postalCode", "addressRegion", "addressLocality", "streetAddress")]
    parts = [p.strip() for p in found if isinstance(p, str) and p.strip()]
    if not any(isinstance(value.get(k), str) for k in ("addressRegion", "addressLocality", "streetAddress")):
        return None
    postal = value.get("postalCode")
    text = " ".join(p for p in parts if p != postal)
    return f"〒{postal} {text}" if isinstance(postal, str) and postal.strip() else text


def _source_quote(html: str, key: str, value: str) -> str:
    """The property as it stands in the page source (JSON-LD), else ``key: value``."""
    pattern = re.compile(rf'"{re.escape(key)}"\s*:\s*(?:"[^"]*"|\{{[^{{}}]*\}}|\[[^\[\]]*\])')
    for m in pattern.finditer(html):
        if value in m.group(0) or key in ("address", "sameAs", "founder"):
            return m.group(0)[:200]
    return f"{key}: {value}"[:200]


def organisation_values(html: str, url: str | None) -> list[StructuredValue]:
    """The properties of the first organisation item in the page's JSON-LD or microdata.

    Returns [] when there is none or the structured data cannot be parsed (broken JSON-LD
    is common and is not an error of ours).
    """
    import extruct  # here, not at module level: it costs ~0.2 s to import (``hokan --help``)

    try:
        data = extruct.extract(html, base_url=url, syntaxes=["json-ld", "microdata"], uniform=True, errors="ignore")
    except Exception:  # extruct surfaces parser errors of lxml/json as various types
        return []
    for syntax, key in (("jsonld", "json-ld"), ("microdata", "microdata")):
        items: list[Any] = []
        for item in data.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("@graph"), list):
                items.extend(item["@graph"])
            else:
                items.append(item)
        orgs = [item for item in items if _is_organisation(item)]
        if orgs:
            return _values(orgs[0], html, syntax)
    return []


def _values(item: dict[str, Any], html: str, syntax: str) -> list[StructuredValue]:
    out: list[StructuredValue] = []

    def add(key: str, value: str | None) -> None:
        if value:
            quote = _source_quote(html, key, value) if syntax == "jsonld" else value
            out.append(StructuredValue(key, value, quote, syntax))

    for key in ("name", "legalName", "telephone", "email", "url", "taxID", "foundingDate", "description",
                "numberOfEmployees"):  # fmt: skip
        add(key, _text(item.get(key)))
    add("address", _address(item.get("address")))
    same_as = item.get("sameAs")
    if isinstance(same_as, str):
        same_as = [same_as]
    if isinstance(same_as, list):
        for link in same_as:
            if isinstance(link, str):
                add("sameAs", link.strip())
    return out
