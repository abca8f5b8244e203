"""API keys: only a hash is stored, the admin shows a new key once, lookups, per-key rate limit."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from hokan.core.api_keys import ApiKey, check_rate, hash_key
from hokan.core.errors import RateLimited
from tests.servers import redis_server_url  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_it_stores_only_a_hash_of_the_key():
    key, raw_key = ApiKey.generate("営業システム")
    assert raw_key.startswith(f"hk_{key.prefix}_")
    assert len(raw_key) > 40
    stored = ApiKey.objects.get()
    assert stored.hashed_key == hash_key(raw_key)
    assert raw_key not in {str(value) for value in ApiKey.objects.values().get().values()}


@pytest.mark.django_db
def test_it_finds_a_key_only_by_its_full_text():
    key, raw_key = ApiKey.generate("営業システム")
    assert ApiKey.find(raw_key) == key
    assert ApiKey.find(raw_key + "x") is None
    assert ApiKey.find(f"hk_{key.prefix}_") is None
    assert ApiKey.find("") is None
    assert ApiKey.find("hk_short_abc") is None


@pytest.mark.django_db
def test_it_shows_a_new_key_once_in_the_admin(admin_client):
    response = admin_client.post("/admin/core/apikey/add/", {"name": "営業システム", "active": "on"})
    assert response.status_code == 200
    raw_key = response.context["raw_key"]
    page = response.content.decode()
    assert raw_key in page and "今回だけ" in page
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get()
    assert (key.name, key.hashed_key) == ("営業システム", hash_key(raw_key))
    assert ApiKey.find(raw_key) == key
    change_page = admin_client.get(f"/admin/core/apikey/{key.pk}/change/").content.decode()
    assert raw_key not in change_page
    assert f"hk_{key.prefix}_…" in change_page


@pytest.mark.django_db
def test_it_deactivates_a_key_in_the_admin(admin_client, client):
    key, raw_key = ApiKey.generate("営業システム")
    assert client.get("/api/usage", headers={"X-API-Key": raw_key}).status_code == 200
    admin_client.post(f"/admin/core/apikey/{key.pk}/change/", {"name": "営業システム"})  # "active" unchecked
    assert ApiKey.objects.get().active is False
    assert client.get("/api/usage", headers={"X-API-Key": raw_key}).status_code == 403


@pytest.mark.django_db
def test_it_limits_requests_per_key_in_any_minute(settings):
    settings.HOKAN_API_RATE_LIMIT_PER_MIN = 2
    start = 1_800_000_000.0
    check_rate(1, now=start)
    check_rate(1, now=start + 1)
    with pytest.raises(RateLimited) as raised:
        check_rate(1, now=start + 15)
    assert raised.value.retry_after_s == 45  # until the first request leaves the minute
    check_rate(2, now=start + 15)  # another key has its own count
    check_rate(1, now=start + 60)  # the first request has left the window: one more
    with pytest.raises(RateLimited) as raised:
        check_rate(1, now=start + 60.5)  # a sliding window: no boundary to pass 2x the limit at
    assert raised.value.retry_after_s == 1


def test_it_can_turn_the_rate_limit_off(settings):
    settings.HOKAN_API_RATE_LIMIT_PER_MIN = 0
    for _ in range(100):
        check_rate(1, now=1_800_000_000.0)  # touches no store (no database access here)


@pytest.mark.slow
@pytest.mark.django_db
def test_it_shares_the_rate_limit_between_processes_through_redis(settings, redis_server_url):
    """With REDIS_URL the window is in Redis: another process sees this one's requests."""
    import os
    import subprocess
    import sys

    import redis

    redis.Redis.from_url(redis_server_url).flushdb()
    settings.REDIS_URL = redis_server_url
    settings.HOKAN_API_RATE_LIMIT_PER_MIN = 2
    start = 1_800_000_000.0
    check_rate(7, now=start)
    check_rate(7, now=start + 1)
    other_process = (
        "import django; django.setup()\n"
        "from hokan.core.api_keys import RateLimited, check_rate\n"
        "try:\n    check_rate(7, now=1_800_000_002.0)\nexcept RateLimited as exc:\n"
        "    print('limited', exc.retry_after_s)\nelse:\n    print('allowed')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hokan.settings", "REDIS_URL": redis_server_url,
           "HOKAN_API_RATE_LIMIT_PER_MIN": "2"}
    result = subprocess.run([sys.executable, "-c", other_process], env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.split() == ["limited", "58"]


@pytest.mark.django_db
def test_it_allows_the_request_when_the_store_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.HOKAN_API_RATE_LIMIT_PER_MIN = 1
    for _ in range(3):
        check_rate(1)  # logged, not refused: the API stays up
