"""The provider chain: ``SEARCH_PROVIDER`` and the fallback on 0 results or an error
(document 003 §5.1 プロバイダー選択ロジック / フォールバック動作; issue 10 §2 step 2).

``search_from_settings()`` builds a ``FallbackSearch``:

- ``auto`` (default): the providers whose keys are set — Brave, then Perplexity Search, then
  Google CSE (only before 2027-01-01) — then the snapshot index when SEARCH_SNAPSHOT_DIRS is
  set. No key at all: the snapshot index alone (the embedded default, the demo).
- ``brave`` / ``perplexity`` / ``google``: that provider first (its key must be set:
  SearchConfigError otherwise; Google after its end date likewise), then the others of
  ``auto`` in their order, as fallbacks.
- ``snapshot``: the snapshot index alone.

``FallbackSearch.run`` asks each provider in turn and returns the first non-empty answer with
every attempt made (``SearchAttempt``: provider, outcome "ok" / "empty" / "error", reason,
count) for the draft's search attempts. Every provider empty or failing → ``SearchFailed``
listing each provider's reason (Japanese), e.g.
「検索に失敗しました: Brave Search API: 利用制限に達しました（HTTP 429）… / snapshot: 0件」.
A quota used up (``BudgetExceeded``) is a provider failure like any other: the next one runs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hokan.core.errors import BudgetExceeded, SearchConfigError, SearchError, SearchFailed
from hokan.core.search.base import SearchProvider, SearchResult
from hokan.core.search.providers import BraveSearch, GoogleCustomSearch, PerplexitySearch, google_cse_open
from hokan.core.search.snapshot import SnapshotSearch, SnapshotSource

__all__ = ["FallbackSearch", "PROVIDER_CHOICES", "SearchAttempt", "SearchOutcome", "search_from_settings"]

log = logging.getLogger(__name__)

PROVIDER_CHOICES = ("auto", "brave", "perplexity", "google", "snapshot")
_API_ORDER = ("brave", "perplexity", "google")


@dataclass(frozen=True)
class SearchAttempt:
    """One provider asked: outcome "ok" (results), "empty" (0件) or "error" (reason says why)."""

    provider: str
    outcome: str
    reason: str = ""
    count: int = 0


@dataclass(frozen=True)
class SearchOutcome:
    """The results of the first provider that found something, and every attempt in order."""

    results: list[SearchResult]
    attempts: list[SearchAttempt] = field(default_factory=list)

    @property
    def provider(self) -> str:
        return self.results[0].provider if self.results else ""


class FallbackSearch(SearchProvider):
    """Providers asked in order until one answers with results (module docstring)."""

    name = "auto"

    def __init__(self, providers: Sequence[SearchProvider]) -> None:
        if not providers:
            raise SearchConfigError("使える検索プロバイダがありません", provider="auto")
        self.providers = list(providers)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.providers]

    def run(self, query: str, *, site: str | None = None, count: int = 10) -> SearchOutcome:
        """Results and attempts (see the module docstring).

        Raises:
            SearchFailed: every provider failed or found nothing (``failures`` lists them).
        """
        attempts: list[SearchAttempt] = []
        for provider in self.providers:
            try:
                results = provider.search(query, site=site, count=count)
            except (SearchError, BudgetExceeded) as exc:
                log.info("search provider %s failed: %s", provider.name, exc)
                attempts.append(SearchAttempt(provider.name, "error", str(exc)))
                continue
            if results:
                attempts.append(SearchAttempt(provider.name, "ok", count=len(results)))
                return SearchOutcome(results, attempts)
            attempts.append(SearchAttempt(provider.name, "empty", "0件"))
        failures = [(a.provider, a.reason) for a in attempts]
        listing = " / ".join(f"{name}: {reason}" for name, reason in failures)
        raise SearchFailed(f"検索に失敗しました（「{query}」）: {listing}", failures=failures)

    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]:
        return self.run(query, site=site, count=count).results

    def close(self) -> None:
        for provider in self.providers:
            provider.close()


def _build(name: str, *, quota: object, today: Callable[[], dt.date]) -> SearchProvider:
    from django.conf import settings

    cache = None
    if int(settings.SEARCH_CACHE_TTL_S) > 0:
        from hokan.core.cache import get_cache

        cache = get_cache(ttl_s=int(settings.SEARCH_CACHE_TTL_S))
    common = dict(timeout_s=settings.SEARCH_TIMEOUT_S, max_wait_s=settings.SEARCH_MAX_WAIT_S,
                  max_retries=settings.SEARCH_MAX_RETRIES, rate_per_min=settings.SEARCH_RATE_LIMIT_PER_MIN,
                  quota=quota, cache=cache)
    if name == "brave":
        return BraveSearch(api_key=settings.BRAVE_SEARCH_API_KEY, base_url=settings.SEARCH_BRAVE_BASE_URL, **common)
    if name == "perplexity":
        return PerplexitySearch(api_key=settings.PERPLEXITY_API_KEY, base_url=settings.SEARCH_PERPLEXITY_BASE_URL,
                                **common)
    if name == "google":
        if not google_cse_open(today()):
            raise SearchConfigError("Google Custom Search API は 2027-01-01 に提供が終了したため使えません",
                                    provider="google")
        return GoogleCustomSearch(api_key=settings.GOOGLE_CUSTOM_SEARCH_API_KEY,
                                  engine_id=settings.GOOGLE_CUSTOM_SEARCH_ENGINE_ID,
                                  base_url=settings.SEARCH_GOOGLE_BASE_URL, today=today, **common)
    raise ValueError(name)


def _has_key(name: str) -> bool:
    from django.conf import settings

    if name == "brave":
        return bool(settings.BRAVE_SEARCH_API_KEY)
    if name == "perplexity":
        return bool(settings.PERPLEXITY_API_KEY)
    return bool(settings.GOOGLE_CUSTOM_SEARCH_API_KEY and settings.GOOGLE_CUSTOM_SEARCH_ENGINE_ID)


def snapshot_sources() -> list[SnapshotSource]:
    """SEARCH_SNAPSHOT_DIRS as sources; folders that do not exist are left out (logged)."""
    from django.conf import settings

    sources = []
    for spec in settings.SEARCH_SNAPSHOT_DIRS:
        source = SnapshotSource.parse(spec)
        if source.folder.is_dir():
            sources.append(source)
        else:
            log.warning("snapshot folder %s not found; left out of the snapshot index", source.folder)
    return sources


def search_from_settings(
    *, provider: str | None = None, quota: object = None, today: Callable[[], dt.date] = dt.date.today
) -> FallbackSearch:
    """The chain for ``provider`` (default SEARCH_PROVIDER; module docstring).

    quota: a ``SearchQuota`` (default ``LedgerQuota()``: the paid-mode monthly limits; the
    free-tier mode passes its own). today: for the Google CSE end date (tests).

    Raises:
        SearchConfigError: an unknown SEARCH_PROVIDER, the chosen provider's key missing,
            Google chosen on or after 2027-01-01, or no provider at all.
    """
    from django.conf import settings

    from hokan.core.search.quota import LedgerQuota

    choice = (provider or settings.SEARCH_PROVIDER or "auto").strip().lower()
    if choice not in PROVIDER_CHOICES:
        raise SearchConfigError(
            f"SEARCH_PROVIDER の値 {choice!r} は使えません（{' / '.join(PROVIDER_CHOICES)}）", provider=choice
        )
    quota = LedgerQuota() if quota is None else quota
    providers: list[SearchProvider] = []
    if choice not in ("auto", "snapshot"):
        if not _has_key(choice):
            setting = {"brave": "BRAVE_SEARCH_API_KEY", "perplexity": "PERPLEXITY_API_KEY",
                       "google": "GOOGLE_CUSTOM_SEARCH_API_KEY と GOOGLE_CUSTOM_SEARCH_ENGINE_ID"}[choice]
            raise SearchConfigError(f"SEARCH_PROVIDER={choice} ですが {setting} が設定されていません", provider=choice)
        providers.append(_build(choice, quota=quota, today=today))
    if choice != "snapshot":
        for name in _API_ORDER:
            if name == choice or not _has_key(name) or (name == "google" and not google_cse_open(today())):
                continue
            providers.append(_build(name, quota=quota, today=today))
    sources = snapshot_sources()
    if sources:
        providers.append(SnapshotSearch(sources))
    elif choice == "snapshot" or not providers:
        raise SearchConfigError(
            "検索プロバイダがありません: API キー（BRAVE_SEARCH_API_KEY など）も、スナップショットのフォルダ"
            "（SEARCH_SNAPSHOT_DIRS）もありません",
            provider=choice,
        )
    return FallbackSearch(providers)
