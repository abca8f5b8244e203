"""Shared rate limits: at most N requests per window, across every process and machine.

Celery's ``rate_limit`` is per worker; the provider's limit (design document 000 §6:
"Rate Limit 60 req/min（Celery内で制御）") holds for the API key, whatever the number of
workers. So every LLM request first takes a slot here::

    limiter = llm_rate_limiter("perplexity")      # HOKAN_LLM_RATE_LIMIT_PER_MIN per 60 s
    client = RateLimitedClient(get_client(max_retries=0), limiter)
    client.complete_json(request)                 # waits for a slot, then calls the provider

Algorithm: a sliding-window log. A request is admitted when fewer than ``limit`` requests
were admitted in the last ``window_s`` seconds; otherwise the caller waits until the oldest
one leaves the window. In any window of ``window_s`` seconds at most ``limit`` requests are
admitted, with no burst at window edges (unlike fixed windows).

Backends:

- ``RedisRateLimiter`` (when REDIS_URL is set): a sorted set ``ratelimit:{name}`` of admission
  times, checked and updated by one Lua script (``core/lua/ratelimit_acquire.lua``), which
  Redis runs atomically; times come from the Redis server's clock, so processes on several
  machines share one clock.
- ``LocalRateLimiter`` (no Redis): the same log in memory, shared by the threads of one
  process only. Without Redis there is one worker process in practice (tasks run eagerly in
  the CLI or web process); several processes then each get the full limit.

Wait semantics: ``acquire(max_wait_s=None)`` blocks (sleeps) until a slot is free — a batch
task should simply wait. With ``max_wait_s``, it raises ``RateLimited(key, retry_after_s)``
instead of waiting longer than that (request paths that must answer fast). A slot, once
taken, is never given back: the request is assumed sent.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from hokan.core.errors import RateLimited
from hokan.core.llm.client import Completion, JsonRequest, LLMClient


class RateLimiter(Protocol):
    name: str
    limit: int
    window_s: float

    def acquire(self, *, max_wait_s: float | None = None) -> float:
        """Take a slot; return the seconds waited. Raises RateLimited past ``max_wait_s``."""
        ...


def _refuse(name: str, limit: int, window_s: float, wait_s: float) -> RateLimited:
    return RateLimited(
        f"レート制限（{window_s:g}秒あたり{limit}件）のため、{wait_s:.1f}秒後まで送信できません: {name}",
        key=name,
        retry_after_s=wait_s,
    )


class _SlidingWindow:
    """What both limiters share: ``acquire`` around their own ``_try`` (0.0 = admitted, else
    the seconds until the next free slot)."""

    name: str
    limit: int
    window_s: float
    _sleep: Callable[[float], None]

    def _try(self) -> float:
        raise NotImplementedError

    def acquire(self, *, max_wait_s: float | None = None) -> float:
        """Take a slot, sleeping until one is free; the seconds waited.

        Raises:
            RateLimited: the next free slot is further away than what is left of ``max_wait_s``.
        """
        waited = 0.0
        while True:
            wait = self._try()
            if wait == 0.0:
                return waited
            if max_wait_s is not None and waited + wait > max_wait_s:
                raise _refuse(self.name, self.limit, self.window_s, wait)
            self._sleep(wait)
            waited += wait


class LocalRateLimiter(_SlidingWindow):
    """A sliding-window limiter inside one process (thread-safe).

    name: the limit's name; limit: requests per window; window_s: window length in seconds.
    clock / sleep: monotonic seconds and a sleep function (tests may inject them).
    """

    def __init__(
        self,
        name: str,
        limit: int,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.name, self.limit, self.window_s = name, limit, window_s
        self._clock, self._sleep = clock, sleep
        self._log: deque[float] = deque()
        self._lock = threading.Lock()

    def _try(self) -> float:
        """Admit now (0.0) or return the seconds until a slot frees."""
        with self._lock:
            now = self._clock()
            while self._log and self._log[0] <= now - self.window_s:
                self._log.popleft()
            if len(self._log) < self.limit:
                self._log.append(now)
                return 0.0
            return max(self._log[0] + self.window_s - now, 1e-6)



class RedisRateLimiter(_SlidingWindow):
    """A sliding-window limiter shared through Redis by every process (see the module docstring).

    redis_client: a ``redis.Redis`` (default ``hokan.core.redis_conn.get_redis()``).
    """

    def __init__(
        self,
        name: str,
        limit: int,
        window_s: float = 60.0,
        *,
        redis_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from hokan.core.redis_conn import get_redis, load_script

        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.name, self.limit, self.window_s = name, limit, window_s
        self.redis = redis_client if redis_client is not None else get_redis()
        self.key = f"ratelimit:{name}"
        self._script = self.redis.register_script(load_script("ratelimit_acquire"))
        self._sleep = sleep
        self.last_admitted_us: int | None = None  # Redis server time of our last admission

    def _try(self) -> float:
        admitted, now_us, wait_us = self._script(
            keys=[self.key], args=[self.limit, int(self.window_s * 1_000_000), uuid.uuid4().hex]
        )
        if admitted:
            self.last_admitted_us = int(now_us)
            return 0.0
        return int(wait_us) / 1_000_000



_local: dict[tuple[str, int, float], LocalRateLimiter] = {}
_local_lock = threading.Lock()


def rate_limiter(name: str, limit: int, window_s: float = 60.0) -> RateLimiter:
    """The limiter ``name``: through Redis when REDIS_URL is set, else one per process."""
    from django.conf import settings

    if settings.REDIS_URL:
        return RedisRateLimiter(name, limit, window_s)
    with _local_lock:
        key = (name, limit, window_s)
        if key not in _local:
            _local[key] = LocalRateLimiter(name, limit, window_s)
        return _local[key]


def llm_rate_limiter(provider: str) -> RateLimiter | None:
    """The provider's limit: ``HOKAN_LLM_RATE_LIMIT_PER_MIN`` requests per 60 s (document 000
    §6: 60), named ``llm:{provider}``; None when the setting is 0 (no limit)."""
    from django.conf import settings

    per_min = int(settings.HOKAN_LLM_RATE_LIMIT_PER_MIN)
    if per_min <= 0:
        return None
    return rate_limiter(f"llm:{provider}", per_min, 60.0)


class RateLimitedClient:
    """An ``LLMClient`` that takes a slot of ``limiter`` before each ``complete_json``.

    It wraps the client (composition, not a subclass). Every request the client sends should
    take a slot: use it around a client built with ``max_retries=0`` (Celery tasks), since
    the client's own retries would send requests the limiter does not see.

    max_wait_s: passed to ``limiter.acquire`` (None = wait as long as needed).
    """

    def __init__(self, client: LLMClient, limiter: RateLimiter, *, max_wait_s: float | None = None) -> None:
        self.client = client
        self.limiter = limiter
        self.max_wait_s = max_wait_s

    @property
    def provider(self) -> str:
        return self.client.provider

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def available(self) -> bool:
        return self.client.available

    def complete_json(self, request: JsonRequest, *, timeout_s: float | None = None) -> Completion:
        """Wait for a slot, then ``client.complete_json``.

        Raises:
            RateLimited: no slot within ``max_wait_s``; nothing was sent.
            whatever ``client.complete_json`` raises.
        """
        self.limiter.acquire(max_wait_s=self.max_wait_s)
        return self.client.complete_json(request, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"RateLimitedClient({self.client!r}, {self.limiter.name}: {self.limiter.limit}/{self.limiter.window_s:g}s)"
