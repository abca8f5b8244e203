"""An LLM client that answers repeated questions from the cache (hokan.core.cache).

Order of the wrappers around a provider client (ARCHITECTURE.md "How a value is made")::

    CachedClient  →  budget (reserve / commit)  →  rate limit  →  provider client
    (this module)    (budgeted.py)                 (limited.py)

The cache is the outermost layer, so a hit returns before anything else runs: it reserves no
budget, takes no rate-limit slot, sends nothing, and its Completion says so — ``cached=True``,
``usage`` zero (cost 0, calls 0, no tokens), ``attempts`` 0. A miss goes to the wrapped
client; the answer it returns is stored when ``accept(completion)`` is true (default: any
answer that did not need repairing — a truncated answer fixed up by json-repair is used
once, not remembered). Errors of the wrapped client (LLMTransientError, BudgetExceeded,
AlreadyPaid, ...) pass through unchanged and store nothing.

Wrapping ``complete_json_budgeted`` around a CachedClient would be the wrong order (every hit
would reserve budget); give the CachedClient a budgeted client instead (``inner`` may be any
object with ``complete_json(request, *, timeout_s=None)``, ``provider``, ``model``,
``available``).

In one process, concurrent misses of the same key (duplicate rows of a sheet scored by
several threads) wait for the first: the question is asked once and the others are hits.
Across processes both may ask; the store stays consistent (one entry, see core/cache.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hokan.core.cache import DatabaseCache, RedisCache, as_hit, cache_key, get_cache
from hokan.core.llm.client import Completion, JsonRequest, LLMClient, Usage


def _not_repaired(completion: Completion) -> bool:
    return not completion.repaired


@dataclass(frozen=True)
class CacheRunStats:
    """What one CachedClient saw: hits, misses, and what the hits would have cost (``saved``,
    the original calls' usage, USD exact)."""

    hits: int
    misses: int
    saved: Usage

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


class _Flight:
    """One miss being asked in this process: the callers of the same question wait on ``done``
    and take ``completion`` (None when the leader failed or its answer was not accepted) from
    memory, without reading the store again (a SQLite table locked by the leader's write made
    the waiters fail: CI, 2026-12-01)."""

    __slots__ = ("done", "completion")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.completion: Completion | None = None


class CachedClient:
    """An ``LLMClient`` serving answers from the cache of ``scope`` before asking ``inner``.

    scope: the app ("scoring", "municipal", ...): entries and counters are kept per scope.
    cache: a backend (default ``get_cache(ttl_s=..., max_entries=...)``: Redis if REDIS_URL).
    ttl_s / max_entries: None = HOKAN_LLM_CACHE_TTL_S / HOKAN_LLM_CACHE_MAX_ENTRIES.
    accept: decides whether a miss's answer is stored (e.g. the app's validator: only
        answers that pass validation are remembered, document 002 §4.2).
    """

    def __init__(
        self,
        inner: Any,
        *,
        scope: str,
        cache: DatabaseCache | RedisCache | None = None,
        ttl_s: int | None = None,
        max_entries: int | None = None,
        accept: Callable[[Completion], bool] = _not_repaired,
    ) -> None:
        self.inner = inner
        self.scope = scope
        self.cache = cache if cache is not None else get_cache(ttl_s=ttl_s, max_entries=max_entries)
        self.accept = accept
        self._lock = threading.Lock()
        self._inflight: dict[str, _Flight] = {}
        self._hits = 0
        self._misses = 0
        self._saved = Usage()

    @property
    def provider(self) -> str:
        return str(self.inner.provider)

    @property
    def model(self) -> str:
        return str(self.inner.model)

    @property
    def available(self) -> bool:
        return bool(self.inner.available)

    def key(self, request: JsonRequest) -> str:
        """The cache key of ``request`` for this client's provider and model."""
        return cache_key(self.provider, self.model, request)

    def complete_json(self, request: JsonRequest, *, timeout_s: float | None = None) -> Completion:
        """The cached answer to ``request`` if there is one, else ``inner``'s (then stored).

        Raises: whatever ``inner.complete_json`` raises on a miss (nothing is stored).
        """
        key = self.key(request)
        with self._lock:
            leader = key not in self._inflight
            flight = self._inflight.setdefault(key, _Flight())
        if not leader:
            flight.done.wait()
            if flight.completion is not None:  # the leader's answer, handed over in memory
                with self._lock:
                    self._hits += 1
                    self._saved = self._saved + flight.completion.usage
                self.cache.note_hit(self.scope)
                return as_hit(flight.completion)
        try:
            stored = self.cache.lookup(self.scope, key)
            if stored is not None:
                with self._lock:
                    self._hits += 1
                    self._saved = self._saved + stored.usage
                return as_hit(stored)
            with self._lock:
                self._misses += 1
            completion = self.inner.complete_json(request, timeout_s=timeout_s)
            if self.accept(completion):
                self.cache.put(self.scope, key, completion)
                if leader:
                    flight.completion = completion
            return completion
        finally:
            if leader:
                with self._lock:
                    self._inflight.pop(key, None)
                flight.done.set()

    def forget(self, request: JsonRequest) -> bool:
        """Drop the stored answer to ``request`` (found wrong after it was stored)."""
        return self.cache.forget(self.scope, self.key(request))

    @property
    def stats(self) -> CacheRunStats:
        """Hits, misses and savings of this client object (the scope's persisted counters:
        ``self.cache.stats(scope)``)."""
        with self._lock:
            return CacheRunStats(self._hits, self._misses, self._saved)

    def __repr__(self) -> str:
        return f"CachedClient({self.inner!r}, scope={self.scope!r})"


def cached(
    client: LLMClient | Any,
    *,
    scope: str,
    ttl_s: int | None = None,
    max_entries: int | None = None,
    accept: Callable[[Completion], bool] = _not_repaired,
) -> LLMClient | Any:
    """``client`` behind the cache of ``scope``, or ``client`` itself when the cache is off
    (HOKAN_LLM_CACHE_ENABLED=false) or the client makes no calls (``available`` False)."""
    from django.conf import settings

    if not settings.HOKAN_LLM_CACHE_ENABLED or not client.available:
        return client
    return CachedClient(client, scope=scope, ttl_s=ttl_s, max_entries=max_entries, accept=accept)
