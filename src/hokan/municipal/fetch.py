"""Step 3 of the fetch flow (document 003 §4.1 step 5, §5.4): fetch a search result through core.web.

``fetch_page`` asks the configured ``Fetcher`` (``hokan.core.web.fetcher_from_settings``: the live
fetcher with its SSRF guard, robots.txt, politeness and charset detection incl. Shift_JIS/EUC-JP,
or the snapshot fetcher offline). A transient failure (a timeout, a 429 or 5xx answer) is tried
again up to ``retries`` times (§5.4 「3回リトライ後、スキップしてエラー記録」, default
HOKAN_MUNICIPAL_FETCH_RETRIES = 3) after 1, 2, 4 … seconds (``sleep`` is injectable so tests never
wait); a final failure raises the last ``FetchError`` for the caller to record and skip. A refusal
(SSRF, robots.txt, 404, too large) is not retried.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from hokan.core.errors import FetchError, FetchStatusError, TransientError
from hokan.core.web.fetch import Fetcher, Page


def retryable(error: FetchError) -> bool:
    """A timeout, a 408/429 or a 5xx answer: worth another attempt."""
    if isinstance(error, TransientError):
        return True
    return isinstance(error, FetchStatusError) and (error.status_code in (408, 429) or error.status_code >= 500)


def fetch_page(fetcher: Fetcher, url: str, *, retries: int | None = None,
               sleep: Callable[[float], None] | None = None) -> tuple[Page, int]:
    """(the page, attempts made) for ``url``.

    Raises:
        FetchError: the last error after ``1 + retries`` attempts, or at once for a refusal.
    """
    import time

    retries = int(settings.HOKAN_MUNICIPAL_FETCH_RETRIES) if retries is None else retries
    sleep = sleep or time.sleep
    attempt = 0
    while True:
        attempt += 1
        try:
            return fetcher.fetch(url), attempt
        except FetchError as exc:
            if attempt > retries or not retryable(exc):
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            wait = getattr(exc, "retry_after_s", None)
            sleep(min(float(wait), 30.0) if wait else float(2 ** (attempt - 1)))
