"""The LLM response cache (issue 7 §5, design document 002 §4): the same question is paid once.

Where it sits (docs/cache.md; ARCHITECTURE.md "How a value is made")::

    cache → budget.reserve → rate limit → provider

A hit returns before the ledger is asked: it reserves nothing, sends nothing and costs
nothing. The client wrapper is ``hokan.core.llm.cached.CachedClient``; this module is the
store and the key.

Key: ``cache_key(provider, model, request)`` is the SHA-256 (hex) of a canonical JSON of the
provider, the model and every field of the request dataclass (``JsonRequest``: system, user,
schema, schema_name, temperature, max_output_tokens, and any field added later — images,
attachments — automatically, through ``dataclasses.fields``) except ``idempotency_key``,
which names the paid work and does not change the answer. Bytes are hashed by content.

Scopes: entries, maxima and hit/miss counters are per scope (the app: "scoring",
"municipal", ...). One scope's maximum never evicts another scope's entries; the same
question asked in two scopes is paid once in each (each app's ledger pays its own calls).

Limits: an entry lives ``ttl_s`` seconds (HOKAN_LLM_CACHE_TTL_S, default 86,400 = 24 h);
beyond ``max_entries`` per scope (HOKAN_LLM_CACHE_MAX_ENTRIES, default 10,000) the least
recently used entries are evicted. Expired entries are a miss and are purged on the next put.

Backends (``get_cache()`` chooses; same interface):

- ``DatabaseCache``: tables ``LLMCacheEntry`` (unique (scope, key)) and ``LLMCacheCounter``.
  A put is one upsert (``INSERT … ON CONFLICT DO UPDATE``), so two processes storing the
  same key at once leave one row and raise nothing. Eviction after a put deletes the
  oldest-used rows beyond the maximum; two concurrent puts may evict a row or two more than
  needed, never fewer.
- ``RedisCache`` (when REDIS_URL is set): per scope a hash per entry with a Redis TTL, a
  sorted set by last use (LRU) and one by expiry, trimmed atomically by a Lua script
  (core/lua/cache_put.lua); counters in a hash, incremented by the lookup script. Redis
  being down makes every lookup a miss and every put a no-op (logged as a warning): the
  cache saves money, it must not stop the work.

Hits and misses are counted per scope, persisted in the backend (``stats(scope)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from hokan.core.llm.client import Completion, Usage
from hokan.core.models import LLMCacheCounter, LLMCacheEntry

log = logging.getLogger(__name__)

# Bump when the canonical form changes, so old entries are never read with a new meaning.
KEY_VERSION = 1
# Request fields that name the work but do not change the answer.
NOT_IN_KEY = frozenset({"idempotency_key"})


def cache_key(provider: str, model: str, request: Any) -> str:
    """SHA-256 hex (64 characters) of everything in ``request`` that changes the answer.

    request: a dataclass (``JsonRequest``); every field except ``NOT_IN_KEY`` is included.

    Raises:
        TypeError: a field holds a value with no canonical form (not JSON data, bytes,
            Decimal, a dataclass or a readable file path) — refused rather than silently left
            out of the key.
    """
    if not dataclasses.is_dataclass(request):
        raise TypeError(f"cache_key: expected a request dataclass, got {type(request).__name__}")
    fields = {f.name: _canonical(getattr(request, f.name)) for f in dataclasses.fields(request)
              if f.name not in NOT_IN_KEY}
    document = {"v": KEY_VERSION, "provider": provider, "model": model, "request": fields}
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest(), "bytes": len(bytes(value))}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__,
                "fields": {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if hasattr(value, "__fspath__"):  # a file sent by path: its content is what the model sees
        try:
            with open(value, "rb") as f:
                return {"file_sha256": hashlib.file_digest(f, "sha256").hexdigest()}
        except OSError as exc:
            raise TypeError(f"cache_key: cannot read {value}: {exc}") from exc
    raise TypeError(f"cache_key: no canonical form for {type(value).__name__}")


def as_hit(stored: Completion) -> Completion:
    """The Completion a hit returns for a stored answer: ``cached=True``, usage zero (cost 0,
    calls 0, no tokens), attempts 0 — nothing was sent, nothing is paid."""
    return dataclasses.replace(stored, usage=Usage(), attempts=0, cached=True, citations=list(stored.citations))


@dataclass(frozen=True)
class CacheStats:
    """Hits and misses of one scope since its counters were created."""

    scope: str
    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float | None:
        """hits / (hits + misses), 0.0–1.0; None before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else None


def _response_json(completion: Completion) -> dict[str, Any]:
    return {"data": completion.data, "raw_text": completion.raw_text, "citations": list(completion.citations),
            "repaired": completion.repaired}


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cost_usd": str(usage.cost_usd), "cost_source": usage.cost_source, "calls": usage.calls}


def _usage_from(raw: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(raw.get("input_tokens", 0)), output_tokens=int(raw.get("output_tokens", 0)),
                 cost_usd=Decimal(str(raw.get("cost_usd", "0"))), cost_source=raw.get("cost_source", "none"),
                 calls=int(raw.get("calls", 0)))


def _stored(response: dict[str, Any], usage: dict[str, Any], provider: str, model: str) -> Completion:
    return Completion(data=response["data"], usage=_usage_from(usage), provider=provider, model=model,
                      raw_text=response.get("raw_text", ""), citations=list(response.get("citations", [])),
                      repaired=bool(response.get("repaired", False)))


class DatabaseCache:
    """The cache in the project database (SQLite or PostgreSQL).

    ttl_s: seconds an entry is served; max_entries: entries kept per scope (LRU beyond).

    Raises:
        ValueError: ttl_s or max_entries below 1.
    """

    def __init__(self, *, ttl_s: int, max_entries: int) -> None:
        if ttl_s < 1 or max_entries < 1:
            raise ValueError(f"LLM cache: ttl_s and max_entries must be at least 1 (got {ttl_s}, {max_entries})")
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    def lookup(self, scope: str, key: str, *, now: dt.datetime | None = None) -> Completion | None:
        """The answer stored under ``key`` in ``scope`` if it has not expired at ``now``
        (default: the current time), as it was received — its ``usage`` is what the paid call
        cost, i.e. what this hit saves (``as_hit`` makes the hit's Completion); counts a hit
        or a miss for the scope."""
        now = now or timezone.now()
        try:
            entry = LLMCacheEntry.objects.filter(scope=scope, key=key).first()
            if entry is None or entry.expires_at <= now:
                if entry is not None:
                    LLMCacheEntry.objects.filter(pk=entry.pk, expires_at__lte=now).delete()
                self._count(scope, hits=0, misses=1)
                return None
            LLMCacheEntry.objects.filter(pk=entry.pk).update(hit_count=F("hit_count") + 1, last_used_at=now)
            self._count(scope, hits=1, misses=0)
        except OperationalError as exc:  # a locked SQLite table or a lost connection: the cache is an optimisation
            log.warning("LLM cache (database) unavailable, treated as a miss: %s", exc)
            return None
        return _stored(entry.response, entry.usage, entry.provider, entry.model)

    def note_hit(self, scope: str) -> None:
        """Count one hit served without a lookup (an answer shared in memory by ``CachedClient``);
        a database error is logged and the count dropped."""
        try:
            self._count(scope, hits=1, misses=0)
        except OperationalError as exc:
            log.warning("LLM cache (database): hit not counted: %s", exc)

    def put(self, scope: str, key: str, completion: Completion, *, now: dt.datetime | None = None) -> None:
        """Store ``completion`` under ``key`` (replacing an entry of the same key), then purge
        the scope's expired entries and evict the least recently used beyond the maximum."""
        try:
            self._put(scope, key, completion, now=now or timezone.now())
        except OperationalError as exc:
            log.warning("LLM cache (database) unavailable, answer not stored: %s", exc)

    def _put(self, scope: str, key: str, completion: Completion, *, now: dt.datetime) -> None:
        entry = LLMCacheEntry(scope=scope, key=key, provider=completion.provider, model=completion.model,
                              response=_response_json(completion), usage=_usage_json(completion.usage),
                              created_at=now, expires_at=now + dt.timedelta(seconds=self.ttl_s), last_used_at=now)
        LLMCacheEntry.objects.bulk_create(
            [entry], update_conflicts=True, unique_fields=["scope", "key"],
            update_fields=["provider", "model", "response", "usage", "created_at", "expires_at", "last_used_at"],
        )
        LLMCacheEntry.objects.filter(scope=scope, expires_at__lte=now).delete()
        excess = LLMCacheEntry.objects.filter(scope=scope).count() - self.max_entries
        if excess > 0:
            oldest = list(LLMCacheEntry.objects.filter(scope=scope).order_by("last_used_at", "pk")
                          .values_list("pk", flat=True)[:excess])
            LLMCacheEntry.objects.filter(pk__in=oldest).delete()

    def forget(self, scope: str, key: str) -> bool:
        """Delete one entry (an answer found wrong later); True if there was one."""
        deleted, _ = LLMCacheEntry.objects.filter(scope=scope, key=key).delete()
        return bool(deleted)

    def count(self, scope: str) -> int:
        """Entries stored in ``scope`` (expired ones not yet purged included)."""
        return LLMCacheEntry.objects.filter(scope=scope).count()

    def stats(self, scope: str) -> CacheStats:
        row = LLMCacheCounter.objects.filter(scope=scope).first()
        return CacheStats(scope, row.hits, row.misses) if row else CacheStats(scope)

    def _count(self, scope: str, *, hits: int, misses: int) -> None:
        bump = {"hits": F("hits") + hits, "misses": F("misses") + misses}
        if LLMCacheCounter.objects.filter(scope=scope).update(**bump):
            return
        try:
            with transaction.atomic():
                LLMCacheCounter.objects.create(scope=scope, hits=hits, misses=misses)
        except IntegrityError:  # another process created the row first
            LLMCacheCounter.objects.filter(scope=scope).update(**bump)


class RedisCache:
    """The cache in Redis (REDIS_URL). Keys, per scope::

        llmcache:{scope}:e:{key}   hash: response, usage, provider, model (JSON / text),
                                   created_at, expires_at (epoch s), hits; Redis TTL = ttl_s
        llmcache:{scope}:lru       sorted set of keys by last use (epoch s)
        llmcache:{scope}:exp       sorted set of keys by expiry (epoch s)
        llmcache:{scope}:stats     hash: hits, misses

    redis_client: a ``redis.Redis``; ttl_s, max_entries as for ``DatabaseCache``.
    """

    def __init__(self, *, ttl_s: int, max_entries: int, redis_client: Any) -> None:
        if ttl_s < 1 or max_entries < 1:
            raise ValueError(f"LLM cache: ttl_s and max_entries must be at least 1 (got {ttl_s}, {max_entries})")
        from hokan.core.redis_conn import load_script

        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.redis = redis_client
        self._lookup = redis_client.register_script(load_script("cache_lookup"))
        self._put = redis_client.register_script(load_script("cache_put"))

    @staticmethod
    def _keys(scope: str, key: str) -> list[str]:
        base = f"llmcache:{scope}"
        return [f"{base}:e:{key}", f"{base}:lru", f"{base}:exp", f"{base}:stats"]

    def lookup(self, scope: str, key: str, *, now: dt.datetime | None = None) -> Completion | None:
        """As ``DatabaseCache.lookup``; a Redis error is logged and taken as a miss."""
        import redis

        epoch = (now or timezone.now()).timestamp()
        try:
            raw = self._lookup(keys=self._keys(scope, key), args=[key, repr(epoch)])
        except redis.RedisError as exc:
            log.warning("LLM cache (Redis) unavailable, treated as a miss: %s", exc)
            return None
        if not raw:
            return None
        fields = dict(zip((x.decode() for x in raw[0::2]), (x.decode() for x in raw[1::2]), strict=True))
        return _stored(json.loads(fields["response"]), json.loads(fields["usage"]), fields["provider"],
                       fields["model"])

    def put(self, scope: str, key: str, completion: Completion, *, now: dt.datetime | None = None) -> None:
        """As ``DatabaseCache.put`` (one atomic script); a Redis error is logged, nothing stored."""
        import redis

        epoch = (now or timezone.now()).timestamp()
        response = json.dumps(_response_json(completion), ensure_ascii=False)
        usage = json.dumps(_usage_json(completion.usage))
        try:
            self._put(keys=self._keys(scope, key)[:3],
                      args=[key, response, usage, completion.provider, completion.model, repr(epoch), self.ttl_s,
                            self.max_entries, f"llmcache:{scope}:e:"])
        except redis.RedisError as exc:
            log.warning("LLM cache (Redis) unavailable, answer not stored: %s", exc)

    def note_hit(self, scope: str) -> None:
        """As ``DatabaseCache.note_hit``."""
        import redis

        try:
            self.redis.hincrby(f"llmcache:{scope}:stats", "hits", 1)
        except redis.RedisError as exc:
            log.warning("LLM cache (Redis): hit not counted: %s", exc)

    def forget(self, scope: str, key: str) -> bool:
        entry, lru, exp, _ = self._keys(scope, key)
        with self.redis.pipeline() as pipe:
            pipe.delete(entry).zrem(lru, key).zrem(exp, key)
            deleted, _, _ = pipe.execute()
        return bool(deleted)

    def count(self, scope: str) -> int:
        return int(self.redis.zcard(f"llmcache:{scope}:lru"))

    def stats(self, scope: str) -> CacheStats:
        raw = self.redis.hgetall(f"llmcache:{scope}:stats")
        return CacheStats(scope, int(raw.get(b"hits", 0)), int(raw.get(b"misses", 0)))


def get_cache(*, ttl_s: int | None = None, max_entries: int | None = None) -> DatabaseCache | RedisCache:
    """The configured backend: Redis when REDIS_URL is set, else the database.

    ttl_s / max_entries: None = HOKAN_LLM_CACHE_TTL_S / HOKAN_LLM_CACHE_MAX_ENTRIES (a job's
    own configuration, e.g. scoring's RunConfig, passes its values).
    """
    ttl = settings.HOKAN_LLM_CACHE_TTL_S if ttl_s is None else ttl_s
    maximum = settings.HOKAN_LLM_CACHE_MAX_ENTRIES if max_entries is None else max_entries
    if settings.REDIS_URL:
        from hokan.core.redis_conn import get_redis

        return RedisCache(ttl_s=ttl, max_entries=maximum, redis_client=get_redis())
    return DatabaseCache(ttl_s=ttl, max_entries=maximum)
