"""hokan.core.web: the one way hokan fetches a URL (live or from an offline snapshot).

Use ``fetcher_from_settings()`` to get the configured ``Fetcher`` and call ``fetch(url)``;
see fetch.py for the safety rules (SSRF guard, robots.txt, politeness, size and time limits).
"""

from hokan.core.web.charset import decode_html
from hokan.core.web.fetch import Fetcher, LiveFetcher, Page, fetcher_from_settings
from hokan.core.web.snapshot import SnapshotFetcher
from hokan.core.web.ssrf import check_url

__all__ = ["Fetcher", "LiveFetcher", "Page", "SnapshotFetcher", "check_url", "decode_html", "fetcher_from_settings"]
