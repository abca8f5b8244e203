"""API keys for hokan's REST APIs: the model, the Ninja auth class and a per-key rate limit.

A key looks like ``hk_<8-char prefix>_<secret>``. Only its SHA-256 is stored; the full key is
shown once, when it is created in the admin. The prefix (stored in clear, unique) finds the
row, then the hash is compared in constant time.

Clients send it in the ``X-API-Key`` header::

    curl -H "X-API-Key: hk_ab12cd34_..." http://127.0.0.1:8000/api/leads

Answers of ``ApiKeyAuth`` (the usual HTTP meaning of the two codes):
    401 ``ApiKeyMissing``  no ``X-API-Key`` header: the client did not authenticate at all
                           (with ``WWW-Authenticate: ApiKey``).
    403 ``ApiKeyRejected`` a key was sent but is unknown, malformed or deactivated.

Rate limit: ``HOKAN_API_RATE_LIMIT_PER_MIN`` requests per key in any 60 seconds (a sliding
window; default 60; 0 turns it off), kept by ``hokan.core.ratelimit`` (key ``api:key:<id>``):
in Redis when ``REDIS_URL`` is set, else in the database — shared by every process either way.
If that store is unreachable the request is allowed (logged). Over the limit: ``RateLimited``
with the seconds until a request would be admitted, which the API turns into 429 with
``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
from typing import Any

from django.conf import settings
from django.db import DatabaseError, models
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyHeader
from redis import RedisError

from hokan.core.errors import HokanError, RateLimited
from hokan.core.ratelimit import Limiter, Rate

log = logging.getLogger(__name__)

KEY_PREFIX = "hk_"
PREFIX_LENGTH = 8
WINDOW_S = 60
# last_used_at is written at most this often per key, so that every request is not a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_key(raw_key: str) -> str:
    """SHA-256 hex digest of a full key. Keys are 256-bit random, so no salt/KDF is needed."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def split_key(raw_key: str) -> str | None:
    """The lookup prefix of ``hk_<prefix>_<secret>``, or None when the text is not shaped so."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw_key[len(KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return prefix


def new_key_material() -> tuple[str, str, str]:
    """(prefix, SHA-256 hex, full key) for a fresh key whose prefix no stored key uses."""
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    raw_key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"  # 256 random bits
    return prefix, hash_key(raw_key), raw_key


class ApiKey(models.Model):
    """One API key. ``hashed_key`` is SHA-256 of the full key; the key itself is never stored."""

    name = models.CharField("名前", max_length=100, help_text="用途・利用者（例: 営業システム連携）")
    prefix = models.CharField("キーの先頭", max_length=PREFIX_LENGTH, unique=True, editable=False)
    hashed_key = models.CharField("キーのハッシュ (SHA-256)", max_length=64, editable=False)
    active = models.BooleanField("有効", default=True, help_text="外すとこのキーは 403 で拒否されます")
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    last_used_at = models.DateTimeField("最終利用日時", null=True, blank=True, editable=False)

    class Meta:
        app_label = "core"
        verbose_name = "APIキー"
        verbose_name_plural = "APIキー"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({KEY_PREFIX}{self.prefix}_…)"

    @classmethod
    def generate(cls, name: str) -> tuple["ApiKey", str]:
        """Create and save a key. Returns (row, full key); show the full key once, it is not stored."""
        prefix, hashed, raw_key = new_key_material()
        key = cls.objects.create(name=name, prefix=prefix, hashed_key=hashed)
        return key, raw_key

    @classmethod
    def find(cls, raw_key: str) -> "ApiKey | None":
        """The row of ``raw_key`` (active or not), or None when no stored key matches."""
        prefix = split_key(raw_key)
        if prefix is None:
            return None
        key = cls.objects.filter(prefix=prefix).first()
        if key is None or not hmac.compare_digest(key.hashed_key, hash_key(raw_key)):
            return None
        return key

    def touch(self) -> None:
        """Record a use (at most once per LAST_USED_RESOLUTION)."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class ApiKeyMissing(HokanError):
    """No X-API-Key header (401)."""


class ApiKeyRejected(HokanError):
    """An X-API-Key that is unknown, malformed or deactivated (403)."""


def check_rate(key_id: int, *, now: float | None = None) -> None:
    """Count one request of key ``key_id``; raise ``RateLimited`` when over the limit.

    A sliding window (``Rate.window``): at most ``HOKAN_API_RATE_LIMIT_PER_MIN`` requests in any
    60 s, all at once if the client wants; a refused request is not counted. now: Unix seconds
    (tests); default the store's clock.

    Raises:
        RateLimited: over the limit; retry_after_s is whole seconds (at least 1) until a
            request would be admitted.
    """
    limit = int(getattr(settings, "HOKAN_API_RATE_LIMIT_PER_MIN", 60))
    if limit <= 0:
        return
    clock = None if now is None else (lambda: now)
    limiter = Limiter(f"api:key:{key_id}", rate=Rate.window(limit, WINDOW_S), clock=clock)
    try:
        limiter.acquire(max_wait_s=0)
    except RateLimited as exc:
        retry_after = max(1, math.ceil(exc.retry_after_s))
        raise RateLimited(
            f"リクエストが多すぎます（1分あたり {limit} 件まで）。{retry_after} 秒後に再度お試しください",
            key=str(key_id),
            retry_after_s=retry_after,
        ) from None
    except (RedisError, OSError, DatabaseError):  # the API stays up rather than failing closed
        log.exception("API rate limit: store unavailable, request allowed")


class ApiKeyAuth(APIKeyHeader):
    """Django Ninja auth: ``X-API-Key`` → the ``ApiKey`` row (``request.auth``).

    Raises (for the API's exception handlers):
        ApiKeyMissing: no header (401).
        ApiKeyRejected: unknown or inactive key (403).
        RateLimited: the key's per-minute limit is used up (429).
    """

    param_name = "X-API-Key"

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """The statuses this auth answers (documented in OpenAPI by ``hokan.core.api``)."""
        limited = int(getattr(settings, "HOKAN_API_RATE_LIMIT_PER_MIN", 60)) > 0
        return (401, 403, 429) if limited else (401, 403)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not key:
            raise ApiKeyMissing("APIキーがありません（X-API-Key ヘッダーで送ってください）")
        found = ApiKey.find(key.strip())
        if found is None or not found.active:
            raise ApiKeyRejected("APIキーが正しくないか、無効になっています")
        check_rate(found.pk)
        found.touch()
        return found
