"""One Redis client per URL and process, for the usage ledger and the shared rate limits.

``get_redis()`` returns a ``redis.Redis`` for ``settings.REDIS_URL`` (or the URL given). The
client's connection pool notices a fork and reconnects in the child (redis-py checks the
PID), so it is safe in Celery's prefork workers. ``load_script(name)`` reads a Lua script
kept next to this module in ``lua/``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import redis

LUA_DIR = Path(__file__).resolve().parent / "lua"


@functools.lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30)


def get_redis(url: str | None = None) -> redis.Redis:
    """The client for ``url`` (default ``settings.REDIS_URL``).

    Raises:
        RuntimeError: no URL given and REDIS_URL is empty (a programming error: callers
            choose the Redis backend only when REDIS_URL is set).
    """
    if url is None:
        from django.conf import settings

        url = settings.REDIS_URL
    if not url:
        raise RuntimeError("REDIS_URL is not set")
    return _client(url)


@functools.lru_cache(maxsize=None)
def load_script(name: str) -> str:
    """The text of ``lua/{name}.lua``."""
    return (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
