"""hokan.core.web: the one way hokan talks to other hosts (web pages, APIs).

- ``fetcher_from_settings()`` → the configured ``Fetcher``; ``fetch(url)`` returns a ``Page``
  (see fetch.py: SSRF guard, robots.txt, politeness, size and time limits);
- ``guarded_client(...)`` / ``guarded_async_client(...)`` → an httpx client for API calls
  through the same guarded transport (http.py), ``socket_deadline(at)`` bounds its waits;
- ``parse_retry_after`` → seconds from a Retry-After header (every retry path uses it).
"""

from hokan.core.web.charset import decode_html
from hokan.core.web.fetch import Fetcher, LiveFetcher, Page, fetcher_from_settings
from hokan.core.web.http import guarded_async_client, guarded_client, parse_retry_after, socket_deadline
from hokan.core.web.snapshot import SnapshotFetcher
from hokan.core.web.ssrf import check_url

__all__ = [
    "Fetcher",
    "LiveFetcher",
    "Page",
    "SnapshotFetcher",
    "check_url",
    "decode_html",
    "fetcher_from_settings",
    "guarded_async_client",
    "guarded_client",
    "parse_retry_after",
    "socket_deadline",
]
