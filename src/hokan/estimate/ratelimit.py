"""60 requests per minute per client IP (design document 004 §1, §12), as a Ninja throttle.

A thin class over ``hokan.core.ratelimit``: a sliding window (``Rate.window``) of
``ESTIMATE_RATE_LIMIT_PER_MINUTE`` requests in any 60 s, keyed ``estimate:ip:<ip>``, kept in
Redis when ``REDIS_URL`` is set and else in the database — one limit for every web worker
and machine (never per process, which let two workers admit twice the limit). If the store is
unreachable the request is allowed and the error logged: the estimate API stays up rather than
failing closed.

Client IP: ``REMOTE_ADDR``; with ``ESTIMATE_TRUSTED_PROXIES=N`` the N-th address from the
right of ``X-Forwarded-For`` (Cloud Run's front end appends the real client address).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from ninja.throttling import BaseThrottle
from redis import RedisError

from hokan.core.errors import RateLimited
from hokan.core.ratelimit import Limiter, Rate

log = logging.getLogger(__name__)
WINDOW_S = 60


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
    """Count one request of ``ip`` against ``limit`` per minute: (admitted, seconds until the
    next one would be; 0.0 when admitted). now: Unix seconds (tests); default the store's clock."""
    clock = None if now is None else (lambda: now)
    try:
        Limiter(f"estimate:ip:{ip}", rate=Rate.window(limit, WINDOW_S), clock=clock).acquire(max_wait_s=0)
    except RateLimited as exc:
        return False, exc.retry_after_s
    except (RedisError, OSError, DatabaseError):  # fail open, see the module docstring
        log.exception("Rate limit: store unavailable, request allowed")
    return True, 0.0


class IPRateThrottle(BaseThrottle):
    """``ESTIMATE_RATE_LIMIT_PER_MINUTE`` (60) requests per minute per client IP.

    One instance serves every request of the API: the wait of a refusal, read by Ninja's
    ``wait()`` right after ``allow_request``, is kept per thread.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        self._local.wait = None
        limit = settings.ESTIMATE_RATE_LIMIT_PER_MINUTE
        if limit <= 0:
            return True
        admitted, wait = hit(client_ip(request), limit)
        if not admitted:
            self._local.wait = wait
        return admitted

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)
