"""60 requests per minute per client IP (design document 004 §1, §12), as a Ninja throttle.

With ``REDIS_URL`` the limit is ``hokan.core.ratelimit.RedisRateLimiter`` named
``estimate:ip:<ip>`` (a sliding window kept in Redis by one Lua script), so it holds across
processes and machines. Without Redis, a fixed one-minute window counted in this process's
memory (cleared every minute, so memory stays bounded however many addresses call). If
Redis is unreachable the request is allowed and the error logged: the estimate API stays up
rather than failing closed.

Client IP: ``REMOTE_ADDR``; with ``ESTIMATE_TRUSTED_PROXIES=N`` the N-th address from the
right of ``X-Forwarded-For`` (Cloud Run's front end appends the real client address).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

log = logging.getLogger(__name__)
WINDOW_S = 60


class _MemoryCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._window = -1

    def incr(self, key: str, window: int) -> int:
        with self._lock:
            if window != self._window:
                self._counts.clear()
                self._window = window
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


_memory = _MemoryCounter()


def client_ip(request: HttpRequest) -> str:
    """The client's address (see the module docstring)."""
    hops = settings.ESTIMATE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops > 0 and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(hops, len(addresses))]
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def hit(ip: str, limit: int, now: float | None = None) -> tuple[bool, float]:
    """Count one request of ``ip``: (admitted, seconds until the next one would be)."""
    if settings.REDIS_URL:
        from hokan.core.errors import RateLimited
        from hokan.core.ratelimit import RedisRateLimiter

        try:
            RedisRateLimiter(f"estimate:ip:{ip}", limit, WINDOW_S).acquire(max_wait_s=0)
            return True, 0.0
        except RateLimited as exc:
            return False, exc.retry_after_s
        except Exception:  # redis.RedisError, OSError: fail open, see the module docstring
            log.exception("Rate limit: Redis unavailable, request allowed")
            return True, 0.0
    now = time.time() if now is None else now
    count = _memory.incr(ip, int(now // WINDOW_S))
    return count <= limit, WINDOW_S - (now % WINDOW_S)


class IPRateThrottle(BaseThrottle):
    """``ESTIMATE_RATE_LIMIT_PER_MINUTE`` (60) requests per minute per client IP."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: HttpRequest) -> bool:
        limit = settings.ESTIMATE_RATE_LIMIT_PER_MINUTE
        if limit <= 0:
            return True
        admitted, wait = hit(client_ip(request), limit)
        if not admitted:
            self._wait = wait
        return admitted

    def wait(self) -> float | None:
        return self._wait
