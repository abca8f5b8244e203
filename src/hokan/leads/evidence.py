"""Gathering evidence about a company from its own site ($0): fetch, extract with the rules.

``gather_site_evidence(website_url, fetcher)`` returns an ``Evidence``: the best rule value
per field, the pages read (for grounding the LLM's quotes later), the URLs fetched and the
fetch errors. It writes nothing and changes nothing outside what it returns.

Which pages (bounded: at most 1 + MAX_PROFILE_PAGES + PROBE_LIMIT requests per site):

1. the given URL;
2. the profile pages it links to (会社概要, 企業情報, company, about, …), at most
   MAX_PROFILE_PAGES;
3. when that gave one page at most and the first page is not a profile page itself (it shows
   fewer than three of PROFILE_SIGNS), a few common profile paths under the page's folder,
   then under the host root, until one answers (at most PROBE_LIMIT).

Per field the value of highest confidence wins; on a tie the profile page beats the homepage;
an address or a representative is taken whole from one page (``GROUPS``,
``hokan.core.extract.merge``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from hokan.core.errors import FetchError
from hokan.core.extract import extract_profile, find_profile_links
from hokan.core.extract.merge import best_per_field
from hokan.core.fields import FieldValue
from hokan.core.web import Fetcher, Page

logger = logging.getLogger("hokan.leads.enrich")

# Columns filled together from one piece of evidence, so that one address or one person is
# never stitched together from two pages.
GROUPS: tuple[tuple[str, ...], ...] = (
    ("location", "prefecture", "city", "postal_code"),
    ("representative_name", "representative_title"),
)
# Where profile pages usually live, tried relative to the site when the homepage cannot be
# fetched or links to none. Bounded: at most PROBE_LIMIT extra requests per lead.
COMMON_PROFILE_PATHS = (
    "company/", "company/outline/", "company/profile/", "about/", "corporate/", "company.html",
    "gaiyou.html", "gaiyo.html", "outline.html", "about.html", "profile.html", "company/outline.html",
)
PROBE_LIMIT = 6
# Fields only a profile page has: a homepage showing three of them is the profile page.
PROFILE_SIGNS = frozenset({"capital", "established_year", "representative_name", "employee_count", "location",
                           "corporate_number"})
MAX_PROFILE_PAGES = 2


@dataclass
class Evidence:
    """What a site gave. values: {field: best rule FieldValue}; pages: the pages read, in the
    order read; fetched: their final URLs; fetch_errors: "URL: reason" per failed request."""

    values: dict[str, FieldValue] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)


def site_root(url: str) -> str:
    """The base URL that relative profile paths are tried against (a directory URL)."""
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    return f"{parts.scheme}://{parts.netloc}{path or '/'}"


def probe_urls(base: str, *, skip: set[str]) -> list[str]:
    """Common profile-page URLs to try for a site: under the page's folder, then the host root."""
    urls: list[str] = []
    for root in dict.fromkeys((site_root(base), urljoin(base, "/"))):
        for path in COMMON_PROFILE_PATHS:
            url = urljoin(root, path)
            if url not in skip and url not in urls:
                urls.append(url)
    return urls


def gather_site_evidence(website_url: str, fetcher: Fetcher) -> Evidence:
    """Fetch the site and extract with the rules (see the module docstring). Never raises for
    a page that cannot be fetched: it is listed in ``fetch_errors``."""
    evidence = Evidence()
    per_page: list[dict[str, FieldValue]] = []

    def read(url: str) -> bool:
        try:
            page = fetcher.fetch(url)
        except FetchError as exc:
            evidence.fetch_errors.append(f"{url}: {exc}")
            logger.info("fetch failed for %s: %s", url, exc)
            return False
        evidence.fetched.append(page.final_url)
        evidence.pages.append(page)
        per_page.append(extract_profile(page.text, url=page.final_url))
        return True

    links: list[str] = []
    if read(website_url):
        home = evidence.pages[0]
        links = [u for u in find_profile_links(home.text, home.final_url) if u != home.final_url]
    for url in links[:MAX_PROFILE_PAGES]:
        read(url)
    home_is_profile = bool(per_page) and len(PROFILE_SIGNS.intersection(per_page[0])) >= 3
    if len(evidence.pages) <= 1 and not home_is_profile:
        base = evidence.pages[0].final_url if evidence.pages else website_url
        for url in probe_urls(base, skip={website_url, base})[:PROBE_LIMIT]:
            if read(url):
                break
    # Profile pages first, so that on equal confidence they win over the homepage.
    evidence.values = best_per_field(per_page[1:] + per_page[:1], groups=GROUPS)
    return evidence
