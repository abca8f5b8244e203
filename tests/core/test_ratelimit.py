"""Shared rate limits: a sliding window per process, and through Redis across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from hokan.core.errors import RateLimited
from hokan.core.llm import JsonRequest, OpenAICompatClient
from hokan.core.ratelimit import LocalRateLimiter, RateLimitedClient, RedisRateLimiter, llm_rate_limiter, rate_limiter
from tests.fakes.openai_server import FakeOpenAIServer
from tests.servers import redis_server_url  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_it_admits_the_limit_then_waits_until_the_oldest_leaves_the_window():
    clock = FakeClock()
    limiter = LocalRateLimiter("llm:test", 3, 60.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert limiter.acquire() == pytest.approx(50.0)  # the first slot frees at 1000 + 60
    assert clock.sleeps == [pytest.approx(50.0)]


def test_it_raises_rate_limited_instead_of_waiting_longer_than_allowed():
    clock = FakeClock()
    limiter = LocalRateLimiter("llm:test", 1, 60.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    with pytest.raises(RateLimited) as exc:
        limiter.acquire(max_wait_s=5)
    assert exc.value.key == "llm:test" and exc.value.retry_after_s == pytest.approx(60.0)
    assert clock.sleeps == []


def test_it_uses_the_setting_and_turns_off_at_zero(settings):
    settings.REDIS_URL = ""
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 60
    limiter = llm_rate_limiter("perplexity")
    assert isinstance(limiter, LocalRateLimiter) and (limiter.limit, limiter.window_s) == (60, 60.0)
    assert llm_rate_limiter("perplexity") is limiter  # one per process
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 0
    assert llm_rate_limiter("perplexity") is None


def test_it_shares_the_window_through_redis(settings, redis_server_url):  # noqa: F811
    settings.REDIS_URL = redis_server_url
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    sleeps: list[float] = []
    first = rate_limiter("llm:shared", 2, 30.0)
    second = RedisRateLimiter("llm:shared", 2, 30.0, redis_client=client, sleep=sleeps.append)
    assert isinstance(first, RedisRateLimiter)
    first.acquire()
    second.acquire()
    with pytest.raises(RateLimited) as exc:
        second.acquire(max_wait_s=1)  # the two slots of the window are taken, by two limiters
    assert 29 < exc.value.retry_after_s <= 30
    assert client.zcard("ratelimit:llm:shared") == 2 and sleeps == []


def test_the_wrapped_client_takes_a_slot_before_each_request(fake_openai_server):
    clock = FakeClock()
    limiter = LocalRateLimiter("llm:perplexity", 1, 60.0, clock=clock, sleep=clock.sleep)
    inner = OpenAICompatClient("perplexity", "sonar", "test-key", fake_openai_server.base_url, max_retries=0)
    client = RateLimitedClient(inner, limiter, max_wait_s=0)
    request = JsonRequest(system="JSONのみ", user="テスト", schema={"type": "object"}, schema_name="t")
    client.complete_json(request)
    with pytest.raises(RateLimited):
        client.complete_json(request)
    assert len(fake_openai_server.requests) == 1  # nothing was sent for the refused one
    assert (client.provider, client.available) == ("perplexity", True)


@pytest.mark.slow
def test_it_holds_the_limit_across_processes(redis_server_url):  # noqa: F811
    """3 processes send 8 requests each through one limit of 4 per second."""
    limit, window_s, processes, per_process = 4, 1.0, 3, 8
    redis.Redis.from_url(redis_server_url).flushdb()
    with FakeOpenAIServer(api_key="test-key") as server:
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", REDIS_URL=redis_server_url)
        procs = [
            subprocess.Popen([sys.executable, "-m", "tests.core.ratelimit_worker", str(limit), str(window_s),
                              str(per_process), server.base_url], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        admitted: list[int] = []
        waited = 0.0
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            result = json.loads(out.strip().splitlines()[-1])
            admitted += result["admitted_us"]
            waited += result["waited_s"]
        assert len(server.requests) == processes * per_process
    # Admission times on the Redis server's clock: any `limit + 1` consecutive admissions span
    # more than one window, i.e. no window of 1 s ever holds more than `limit` requests.
    admitted.sort()
    window_us = int(window_s * 1_000_000)
    assert all(later - earlier > window_us for earlier, later in zip(admitted, admitted[limit:]))
    assert waited > 0, "nobody had to wait: the test proves nothing"
