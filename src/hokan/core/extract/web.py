"""The company online: ``contact_email``, ``website_url`` and ``facebook_url``.

- ``contact_email`` (lower-cased): the structured ``email``; an E-mail row (or an address in a
  電話 row); else the only ``mailto:`` address of the page (0.7); else the only address in
  the text on the page's own domain (0.6; one elsewhere may be the web designer's).
  Image names that look like addresses (``info@2x.png``) are not addresses.
- ``website_url``: the structured ``url`` or a URL/ホームページ row, resolved against the
  page URL; http(s) only, host lower-cased, fragment dropped.
- ``facebook_url``: a ``sameAs`` Facebook page, else the Facebook page all links of the page
  point to (0.8). Share buttons, plugins, events and a branch's page are not the company's.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from hokan.core.extract.html import element_flat
from hokan.core.extract.labels import is_branch
from hokan.core.extract.page import REGEX_CONFIDENCE, Found, Page, distinct, pair_confidence
from hokan.core.ja import fold

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_IMAGE_SUFFIX = re.compile(r"\.(?:png|jpe?g|gif|webp|svg|bmp)$", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"'（）()、。]+")
_FACEBOOK = re.compile(r"^https?://(?:www\.|m\.|ja-jp\.)?facebook\.com/([^?#]+)", re.IGNORECASE)
_FACEBOOK_NOT_PAGE = re.compile(
    r"^(?:sharer|share|dialog|plugins|login|tr|policy|help|privacy|legal|events/?$|home\.php)", re.IGNORECASE
)


def _valid_email(text: str) -> str | None:
    m = _EMAIL.search(fold(text))
    if m is None or _IMAGE_SUFFIX.search(m.group(0)):
        return None
    return m.group(0).lower()


def read_email(page: Page) -> None:
    """Keep ``contact_email`` (see module doc)."""
    for value in page.structured_values("email"):
        email = _valid_email(value.value.removeprefix("mailto:"))
        if email:
            page.keep("contact_email", Found(email, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in page.ranked("email", "phone"):
        for line in pair.lines:
            email = _valid_email(line)
            if email:
                page.keep("contact_email", Found(email, line, page.pair_quote(pair, line), pair_confidence(pair),
                                                 pair.source))  # fmt: skip
                return
    if page.several_companies:
        return
    mailtos = []
    for a in page.root.iter("a"):
        href = (a.get("href") or "").strip()
        if href.lower().startswith("mailto:"):
            email = _valid_email(href[7:].split("?")[0])
            if email:
                mailtos.append((email, element_flat(a), href))
    if mailtos and len(distinct([m[0] for m in mailtos])) == 1:
        email, text, href = mailtos[0]
        page.keep("contact_email", Found(email, text or email, page.quote(text, f'href="{href}"'), 0.7, "link"))
        return
    # Fallback: the only address in the text, when it is on the page's own domain (an address
    # elsewhere may be the web designer's or a portal's).
    host = (urlsplit(page.url).hostname or "").lower().removeprefix("www.") if page.url else ""
    found = [(e, line) for line in page.lines if (e := _valid_email(line))]
    found = [(e, line) for e, line in found if host and (e.endswith("@" + host) or e.endswith("." + host))]
    if found and len(distinct([e for e, _ in found])) == 1:
        email, line = found[0]
        page.keep("contact_email", Found(email, line, page.quote(line), REGEX_CONFIDENCE, "regex"))


def _normal_url(href: str, base: str | None) -> str | None:
    href = href.strip()
    if base:
        href = urljoin(base, href)
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


def read_website(page: Page) -> None:
    """Keep ``website_url`` (see module doc)."""
    for value in page.structured_values("url"):
        url = _normal_url(value.value, page.url)
        if url:
            page.keep("website_url", Found(url, value.value, value.quote, 0.9, value.syntax))
            return
    for pair in page.ranked("url"):
        hrefs = [a.get("href") or "" for el in pair.value_elements for a in el.iter("a")]
        texts = [m.group(0) for m in _URL.finditer(pair.text)]
        for candidate in [*texts, *hrefs]:
            url = _normal_url(candidate, page.url)
            if url:
                raw = candidate if candidate in texts else pair.text
                page.keep("website_url", Found(url, raw, page.pair_quote(pair, raw), pair_confidence(pair),
                                               pair.source))  # fmt: skip
                return


def _facebook_page(href: str) -> str | None:
    m = _FACEBOOK.match(href.strip())
    if m is None:
        return None
    path = m.group(1).strip("/")
    if not path or _FACEBOOK_NOT_PAGE.match(path) or is_branch(unquote(path)):
        return None  # not a page, or a branch's page (〇〇-名古屋支店-123)
    if path.startswith("pages/") or path.startswith("profile.php"):
        return None if "?" in href and path.startswith("profile.php") else f"https://www.facebook.com/{path}"
    return f"https://www.facebook.com/{path.split('/')[0]}"


def read_facebook(page: Page) -> None:
    """Keep ``facebook_url`` (``https://www.facebook.com/<page>``; see module doc)."""
    found: list[tuple[str, str, str, str]] = []
    for value in page.structured_values("sameAs"):
        url = _facebook_page(value.value)
        if url:
            found.append((url, value.value, value.quote, value.syntax))
    if found:
        url, raw, quote, syntax = found[0]
        page.keep("facebook_url", Found(url, raw, quote, 0.9, syntax))
        return
    for a in page.root.iter("a"):
        href = a.get("href") or ""
        url = _facebook_page(href)
        if url:
            found.append((url, href, page.quote(element_flat(a), f'href="{href}"'), "link"))
    if found and len(distinct([f[0] for f in found])) == 1:
        url, raw, quote, extractor = found[0]
        page.keep("facebook_url", Found(url, raw, quote, 0.8, extractor))
