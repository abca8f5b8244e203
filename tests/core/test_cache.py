"""core.cache and core.llm.cached: the key, TTL, LRU maximum, counters per scope, on the database
and on Redis; the client wrapper against the fake provider (tests/fakes/openai_server.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from hokan.core.budget import DatabaseLedger, Limits
from hokan.core.cache import DatabaseCache, RedisCache, cache_key, get_cache
from hokan.core.errors import LLMTransientError
from hokan.core.llm import JsonRequest, OpenAICompatClient, complete_json_budgeted
from hokan.core.llm.cached import CachedClient, cached
from hokan.core.llm.client import Completion, Usage
from hokan.core.models import LLMCacheEntry
from tests.fakes.openai_server import Reply
from tests.servers import redis_server_url  # noqa: F401  (fixture)

# Every test may touch the database (the "database" backend is a parametrised fixture, and
# pytest-django only sets up its test database for tests that are marked).
pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}


def request(user: str = "配送が遅い", **changes) -> JsonRequest:
    base = JsonRequest(system="0から1で採点", user=user, schema=SCHEMA, schema_name="score",
                       idempotency_key="row:1")
    return dataclasses.replace(base, **changes)


def answer(score: float = 0.8, cost: str = "0.0123") -> Completion:
    return Completion(data={"score": score}, usage=Usage(100, 20, Decimal(cost), "provider", 1), provider="openai",
                      model="gpt-4.1-mini", raw_text=f'{{"score": {score}}}')


# --- the key ---------------------------------------------------------------------------------------
def test_the_key_changes_with_everything_that_changes_the_answer_and_not_with_the_work_key():
    key = cache_key("openai", "gpt-4.1-mini", request())
    assert len(key) == 64 and key == cache_key("openai", "gpt-4.1-mini", request())
    assert cache_key("openai", "gpt-4.1-mini", request(idempotency_key="row:2")) == key
    variants = [
        cache_key("perplexity", "gpt-4.1-mini", request()),
        cache_key("openai", "gpt-4.1", request()),
        cache_key("openai", "gpt-4.1-mini", request(system="1から5で採点")),
        cache_key("openai", "gpt-4.1-mini", request(user="配送が早い")),
        cache_key("openai", "gpt-4.1-mini", request(schema={**SCHEMA, "required": []})),
        cache_key("openai", "gpt-4.1-mini", request(schema_name="score2")),
        cache_key("openai", "gpt-4.1-mini", request(temperature=0.3)),
        cache_key("openai", "gpt-4.1-mini", request(temperature=None)),
        cache_key("openai", "gpt-4.1-mini", request(max_output_tokens=2048)),
    ]
    assert len({key, *variants}) == 1 + len(variants)


def test_fields_added_to_the_request_later_are_in_the_key_automatically(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class WithImages(JsonRequest):
        images: tuple[bytes, ...] = ()

    plain = WithImages(**dataclasses.asdict(request()))
    one = dataclasses.replace(plain, images=(b"\x89PNG screenshot 1",))
    other = dataclasses.replace(plain, images=(b"\x89PNG screenshot 2",))
    keys = {cache_key("gemini", "gemini-2.5-flash", r) for r in (plain, one, other)}
    assert len(keys) == 3

    @dataclasses.dataclass(frozen=True)
    class WithFile(JsonRequest):
        attachment: Path | None = None

    pdf = tmp_path / "menu.pdf"
    pdf.write_bytes(b"%PDF-1.7 one")
    before = cache_key("gemini", "m", WithFile(**dataclasses.asdict(request()), attachment=pdf))
    pdf.write_bytes(b"%PDF-1.7 two")  # same path, new content: a new question
    assert cache_key("gemini", "m", WithFile(**dataclasses.asdict(request()), attachment=pdf)) != before

    @dataclasses.dataclass(frozen=True)
    class WithObject(JsonRequest):
        attachment: object = None

    with pytest.raises(TypeError, match="canonical"):
        cache_key("gemini", "m", WithObject(**dataclasses.asdict(request()), attachment=threading.Lock()))


def test_images_of_a_vision_request_are_part_of_the_key():
    from hokan.core.llm.client import ImageInput

    shot = ImageInput(b"\x89PNG dashboard 1", "image/png")
    keys = {cache_key("gemini", "gemini-2.5-flash", request(images=images))
            for images in [(), (shot,), (ImageInput(b"\x89PNG dashboard 2", "image/png"),),
                           (shot, shot), (ImageInput(shot.data, "image/jpeg"),)]}
    assert len(keys) == 5
    assert cache_key("g", "m", request(images=(shot,))) == cache_key(
        "g", "m", request(images=(ImageInput(b"\x89PNG dashboard 1", "image/png"),)))


# --- both backends ---------------------------------------------------------------------------------
@pytest.fixture(params=["database", "redis"])
def make_cache(request):
    if request.param == "database":
        return lambda ttl_s=60, max_entries=100: DatabaseCache(ttl_s=ttl_s, max_entries=max_entries)
    url = request.getfixturevalue("redis_server_url")
    client = redis.Redis.from_url(url)
    client.flushdb()
    return lambda ttl_s=60, max_entries=100: RedisCache(ttl_s=ttl_s, max_entries=max_entries, redis_client=client)


def test_it_returns_what_was_stored_until_the_ttl_ends(make_cache):
    cache = make_cache(ttl_s=60)
    now = timezone.now()
    assert cache.lookup("scoring", "k1", now=now) is None
    cache.put("scoring", "k1", answer(), now=now)
    hit = cache.lookup("scoring", "k1", now=now + dt.timedelta(seconds=59))
    assert hit is not None and hit.data == {"score": 0.8} and hit.usage.cost_usd == Decimal("0.0123")
    assert hit.usage.calls == 1 and hit.raw_text == '{"score": 0.8}'
    assert cache.lookup("scoring", "k1", now=now + dt.timedelta(seconds=60)) is None  # expired
    assert cache.count("scoring") == 0  # and removed
    stats = cache.stats("scoring")
    assert (stats.hits, stats.misses, stats.hit_rate) == (1, 2, 1 / 3)


def test_it_keeps_at_most_max_entries_per_scope_evicting_the_least_recently_used(make_cache):
    cache = make_cache(max_entries=3)
    start = timezone.now()
    at = [start + dt.timedelta(seconds=i) for i in range(10)]
    for i, key in enumerate(["a", "b", "c"]):
        cache.put("scoring", key, answer(i), now=at[i])
    cache.put("municipal", "x", answer(), now=at[3])
    assert cache.lookup("scoring", "a", now=at[4]) is not None  # "a" used: "b" is now the oldest
    cache.put("scoring", "d", answer(3), now=at[5])
    assert cache.count("scoring") == 3
    assert [cache.lookup("scoring", k, now=at[6]) is not None for k in "abcd"] == [True, False, True, True]
    # another scope's entries are never evicted by this scope's maximum
    assert cache.lookup("municipal", "x", now=at[6]).data == {"score": 0.8}
    assert cache.stats("municipal").hits == 1 and cache.stats("scoring").hits == 4


def test_storing_a_key_again_replaces_its_answer(make_cache):
    cache = make_cache()
    cache.put("scoring", "k", answer(0.1))
    cache.put("scoring", "k", answer(0.9))
    assert cache.count("scoring") == 1 and cache.lookup("scoring", "k").data == {"score": 0.9}
    assert cache.forget("scoring", "k") and cache.lookup("scoring", "k") is None


def test_redis_entries_carry_a_redis_ttl(redis_server_url):  # noqa: F811
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    RedisCache(ttl_s=300, max_entries=10, redis_client=client).put("scoring", "k", answer())
    assert 0 < client.ttl("llmcache:scoring:e:k") <= 300


def test_redis_down_is_a_miss_and_stores_nothing_without_raising(caplog):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    cache = RedisCache(ttl_s=60, max_entries=10, redis_client=client)
    cache.put("scoring", "k", answer())
    assert cache.lookup("scoring", "k") is None
    assert "unavailable" in caplog.text


def test_the_backend_follows_redis_url(settings, redis_server_url):  # noqa: F811
    settings.REDIS_URL = ""
    assert isinstance(get_cache(), DatabaseCache)
    assert get_cache().ttl_s == 86400 and get_cache().max_entries == 10000  # document 002 §4 defaults
    settings.REDIS_URL = redis_server_url
    assert isinstance(get_cache(ttl_s=5, max_entries=7), RedisCache) and get_cache(ttl_s=5).ttl_s == 5
    with pytest.raises(ValueError):
        DatabaseCache(ttl_s=0, max_entries=10)


# --- the client wrapper ----------------------------------------------------------------------------
@pytest.fixture
def provider(fake_openai_server):
    return OpenAICompatClient("openai", "gpt-4.1-mini", "test-key", fake_openai_server.v1_url, max_retries=0)


def test_a_hit_sends_nothing_and_costs_nothing(provider, fake_openai_server):
    fake_openai_server.enqueue(Reply.json({"score": 0.7}, cost_usd=Decimal("0.004")))
    client = CachedClient(provider, scope="scoring", cache=DatabaseCache(ttl_s=60, max_entries=10))
    first = client.complete_json(request())
    second = client.complete_json(request(idempotency_key="row:99"))
    assert len(fake_openai_server.requests) == 1
    assert not first.cached and first.usage.calls == 1
    assert second.cached and second.data == {"score": 0.7} and second.attempts == 0
    assert (second.usage.cost_usd, second.usage.calls, second.usage.input_tokens) == (Decimal("0"), 0, 0)
    assert client.stats.hits == 1 and client.stats.misses == 1
    assert client.stats.saved.cost_usd == first.usage.cost_usd
    assert (client.provider, client.model, client.available) == ("openai", "gpt-4.1-mini", True)
    row = LLMCacheEntry.objects.get()
    assert (row.scope, row.provider, row.model, row.hit_count) == ("scoring", "openai", "gpt-4.1-mini", 1)


def test_errors_and_repaired_or_rejected_answers_are_not_stored(provider, fake_openai_server):
    cache = DatabaseCache(ttl_s=60, max_entries=10)
    client = CachedClient(provider, scope="scoring", cache=cache)
    fake_openai_server.enqueue(Reply.error(503), Reply.text('{"score": 0.5'), Reply.json({"score": 0.5}))
    with pytest.raises(LLMTransientError):
        client.complete_json(request())
    repaired = client.complete_json(request())
    assert repaired.repaired and LLMCacheEntry.objects.count() == 0
    client.complete_json(request())
    assert LLMCacheEntry.objects.count() == 1 and len(fake_openai_server.requests) == 3

    strict = CachedClient(provider, scope="strict", cache=cache, accept=lambda c: 0 <= c.data["score"] <= 0.1)
    fake_openai_server.enqueue(Reply.json({"score": 7}))
    strict.complete_json(request(user="別の文"))
    assert not LLMCacheEntry.objects.filter(scope="strict").exists()


def test_a_hit_reserves_no_budget_because_the_cache_wraps_the_budgeted_call(provider, fake_openai_server):
    ledger = DatabaseLedger(Limits(cost_usd=Decimal("1"), calls=10, daily_records_setting=0))

    class Budgeted:  # the order of ARCHITECTURE.md: cache → budget → (rate limit) → provider
        provider, model, available = "openai", "gpt-4.1-mini", True

        def complete_json(self, req, *, timeout_s=None):
            return complete_json_budgeted(provider, req, ledger=ledger, estimate_usd=Decimal("0.05"),
                                          key=req.idempotency_key)

    fake_openai_server.enqueue(Reply.json({"score": 0.2}, cost_usd=Decimal("0.003")))
    client = CachedClient(Budgeted(), scope="scoring", cache=DatabaseCache(ttl_s=60, max_entries=10))
    for row in range(5):
        assert client.complete_json(request(idempotency_key=f"row:{row}")).data == {"score": 0.2}
    usage = ledger.snapshot()
    assert (usage.calls, usage.cost_usd, usage.reserved_calls) == (1, Decimal("0.003"), 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_misses_of_one_question_in_a_process_ask_the_provider_once(provider, fake_openai_server):
    fake_openai_server.default_reply = Reply.json({"score": 0.4}, latency_s=0.3)
    client = CachedClient(provider, scope="scoring", cache=DatabaseCache(ttl_s=60, max_entries=10))
    results = []

    def ask():
        try:
            results.append(client.complete_json(request()))
        finally:
            connection.close()  # this thread's own database connection

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(fake_openai_server.requests) == 1
    assert sorted(r.cached for r in results) == [False] + [True] * 7
    assert client.cache.stats("scoring").hits == 7


def test_cached_returns_the_client_itself_when_off_or_offline(settings, provider):
    from hokan.core.llm import OfflineClient

    offline = OfflineClient()
    assert cached(offline, scope="scoring") is offline
    settings.HOKAN_LLM_CACHE_ENABLED = False
    assert cached(provider, scope="scoring") is provider
    settings.HOKAN_LLM_CACHE_ENABLED = True
    settings.REDIS_URL = ""
    assert isinstance(cached(provider, scope="scoring", ttl_s=5), CachedClient)

