"""The web search APIs: Brave (primary), Perplexity Search (fallback), Google Custom Search
(legacy fallback until 2027-01-01). Wire formats as documented by each provider; every request
through ``HttpSearchProvider`` (guarded client, shared limiter, Retry-After, ledger).

- Brave Web Search: ``GET /res/v1/web/search`` with header ``X-Subscription-Token``; query
  parameters ``q`` (≤ 400 characters, 50 words), ``count`` (≤ 20), ``country=JP``,
  ``search_lang=jp`` (Brave's code for Japanese is "jp", not "ja"), ``ui_lang=ja-JP``;
  answer ``web.results[]`` with ``url``, ``title``, ``description`` (``<strong>`` highlights).
  Only successful requests are billed (Brave's response-headers page).
  https://api-dashboard.search.brave.com/app/documentation/web-search/query
- Perplexity Search API: ``POST /search`` with ``Authorization: Bearer``; JSON body ``query``,
  ``max_results`` (1–20), ``search_domain_filter`` (list of domains, ≤ 20),
  ``search_language_filter`` (ISO 639-1 codes: ["ja"]), ``country`` ("JP"); answer
  ``results[]`` with ``url``, ``title``, ``snippet`` (also ``date``, ``last_updated``).
  https://docs.perplexity.ai/api-reference/search-post
- Google Custom Search JSON API: ``GET /customsearch/v1`` with ``key``, ``cx``, ``q``, ``num``
  (≤ 10), ``lr=lang_ja``, ``gl=jp``, ``siteSearch`` + ``siteSearchFilter=i``; answer
  ``items[]`` with ``link``, ``title``, ``snippet`` (no ``items`` = 0 results). Quota errors
  come as 429 or as 403 with reason ``rateLimitExceeded`` / ``dailyLimitExceeded`` /
  ``userRateLimitExceeded`` / ``quotaExceeded``. Closed to new customers; Google ends it on
  **2027-01-01** (``GOOGLE_CSE_END``): from that day the provider refuses to run
  (SearchConfigError) and ``auto`` leaves it out. https://developers.google.com/custom-search/v1/overview
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx

from hokan.core.errors import SearchConfigError
from hokan.core.search.base import HttpSearchProvider, SearchResult

__all__ = ["BraveSearch", "GOOGLE_CSE_END", "GoogleCustomSearch", "PerplexitySearch", "google_cse_open"]

# Google: "The Custom Search JSON API ... will be discontinued on January 1, 2027" (existing
# customers only; closed to new ones).
GOOGLE_CSE_END = dt.date(2027, 1, 1)


def google_cse_open(today: dt.date) -> bool:
    """True before 2027-01-01 (``GOOGLE_CSE_END``), the day Google ends the JSON API."""
    return today < GOOGLE_CSE_END


def _need_key(key: str, setting: str, label: str, provider: str) -> str:
    if not key:
        raise SearchConfigError(f"{label} の API キーが設定されていません（環境変数 {setting}）", provider=provider)
    return key


class BraveSearch(HttpSearchProvider):
    """Brave Web Search (module docstring). api_key: ``BRAVE_SEARCH_API_KEY``; other arguments
    as ``HttpSearchProvider``. Raises SearchConfigError without a key."""

    name = "brave"
    label = "Brave Search API"
    max_count = 20

    def __init__(self, *, api_key: str, base_url: str = "https://api.search.brave.com", **kwargs: Any) -> None:
        key = _need_key(api_key, "BRAVE_SEARCH_API_KEY", self.label, self.name)
        super().__init__(base_url=base_url, headers={"X-Subscription-Token": key}, **kwargs)

    def _request(self, http: httpx.Client, query: str, site: str | None, count: int) -> httpx.Response:
        q = f"{query} site:{site}" if site else query
        params = {"q": q[:400], "count": str(count), "country": "JP", "search_lang": "jp", "ui_lang": "ja-JP"}
        return http.get("/res/v1/web/search", params=params)

    def _auth_refused(self, response: httpx.Response) -> bool:
        # Brave answers an unknown token with 422 and error code SUBSCRIPTION_TOKEN_INVALID.
        return super()._auth_refused(response) or (
            response.status_code == 422 and "SUBSCRIPTION_TOKEN_INVALID" in response.text)

    def _parse(self, data: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
        web = data.get("web") or {}
        return [(r.get("url"), r.get("title"), r.get("description")) for r in web.get("results") or []
                if isinstance(r, dict)]


class PerplexitySearch(HttpSearchProvider):
    """The Perplexity Search API (module docstring). api_key: ``PERPLEXITY_API_KEY``."""

    name = "perplexity"
    label = "Perplexity Search API"
    max_count = 20

    def __init__(self, *, api_key: str, base_url: str = "https://api.perplexity.ai", **kwargs: Any) -> None:
        key = _need_key(api_key, "PERPLEXITY_API_KEY", self.label, self.name)
        super().__init__(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, **kwargs)

    def _request(self, http: httpx.Client, query: str, site: str | None, count: int) -> httpx.Response:
        body: dict[str, Any] = {"query": query, "max_results": count, "country": "JP",
                                "search_language_filter": ["ja"]}
        if site:
            body["search_domain_filter"] = [site]
        return http.post("/search", json=body)

    def _parse(self, data: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
        return [(r.get("url"), r.get("title"), r.get("snippet")) for r in data.get("results") or []
                if isinstance(r, dict)]


_GOOGLE_QUOTA_REASONS = {"rateLimitExceeded", "dailyLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GoogleCustomSearch(HttpSearchProvider):
    """Google Custom Search JSON API, legacy fallback (module docstring). api_key / engine_id:
    ``GOOGLE_CUSTOM_SEARCH_API_KEY`` / ``GOOGLE_CUSTOM_SEARCH_ENGINE_ID``; today: the date
    (injectable; default ``datetime.date.today``) compared with ``GOOGLE_CSE_END``.

    Raises SearchConfigError without key or engine id, and from 2027-01-01 on every search.
    """

    name = "google"
    label = "Google Custom Search API"
    max_count = 10

    def __init__(self, *, api_key: str, engine_id: str, base_url: str = "https://www.googleapis.com",
                 today: Callable[[], dt.date] = dt.date.today, **kwargs: Any) -> None:
        self.api_key = _need_key(api_key, "GOOGLE_CUSTOM_SEARCH_API_KEY", self.label, self.name)
        self.engine_id = _need_key(engine_id, "GOOGLE_CUSTOM_SEARCH_ENGINE_ID", self.label + "（検索エンジンID）",
                                   self.name)
        self.today = today
        super().__init__(base_url=base_url, **kwargs)

    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]:
        if not google_cse_open(self.today()):
            raise SearchConfigError(
                f"Google Custom Search API は {GOOGLE_CSE_END:%Y-%m-%d} に提供が終了したため使いません"
                "（Brave Search か Perplexity Search のキーを設定してください）",
                provider=self.name,
            )
        return super().search(query, site=site, count=count)

    def _request(self, http: httpx.Client, query: str, site: str | None, count: int) -> httpx.Response:
        params = {"key": self.api_key, "cx": self.engine_id, "q": query, "num": str(count), "lr": "lang_ja",
                  "gl": "jp"}
        if site:
            params.update(siteSearch=site, siteSearchFilter="i")
        return http.get("/customsearch/v1", params=params)

    def _auth_refused(self, response: httpx.Response) -> bool:
        # Google answers a wrong key with 400 and reason keyInvalid.
        return super()._auth_refused(response) or (response.status_code == 400 and "keyInvalid" in response.text)

    def _transient_status(self, response: httpx.Response) -> bool:
        if response.status_code == 403:
            try:
                errors = response.json()["error"]["errors"]
                return any(e.get("reason") in _GOOGLE_QUOTA_REASONS for e in errors)
            except (ValueError, KeyError, TypeError, AttributeError):
                return False
        return super()._transient_status(response)

    def _parse(self, data: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
        return [(r.get("link"), r.get("title"), r.get("snippet")) for r in data.get("items") or []
                if isinstance(r, dict)]
