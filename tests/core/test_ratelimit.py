"""hokan.core.ratelimit: pacing with an exact window, AIMD concurrency, Retry-After for every
caller of a key — the rules with an injected clock, the same behaviour on the three stores
(memory, database, Redis), the LLM wrapper against the fake provider, and real processes
sharing one limit through Redis, SQLite and PostgreSQL (admissions counted on the store's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given, settings as hypothesis_settings, strategies as st

from hokan.core.errors import LLMConfigError, LLMOutputError, LLMTransientError, RateLimited
from hokan.core.llm import JsonRequest, OfflineClient, OpenAICompatClient
from hokan.core.llm.limited import RateLimitedClient, limited_client
from hokan.core.ratelimit import (
    TICKET_TTL_S,
    Concurrency,
    DatabaseStore,
    KeyState,
    Limiter,
    MemoryStore,
    Outcome,
    Rate,
    RedisStore,
    admit,
    classify_outcome,
    llm_rate_limiter,
    release,
    store_from_settings,
)
from hokan.registry.errors import RegistryRateLimited
from hokan.registry.gbizinfo import GbizinfoClient
from tests.fakes.gbizinfo_server import FakeGbizinfoServer
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.servers import postgres_available, postgres_server, redis_server_url  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUEST = JsonRequest(system="JSONのみ", user="テスト", schema={"type": "object"}, schema_name="t")
T0 = 1_800_000_000.0


class FakeClock:
    """Unix seconds that move only when slept; ``on_sleep`` runs once, during the next sleep."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.on_sleep = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        hook, self.on_sleep = self.on_sleep, None
        if hook:
            hook()


def limiter_on(store, clock: FakeClock, key: str = "test:key", **kwargs) -> Limiter:
    return Limiter(key, store=store, clock=clock, sleep=clock.sleep, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory() -> MemoryStore:
    return MemoryStore()


# --- the pacer ------------------------------------------------------------------------------------
def test_it_spreads_a_minutes_quota_at_one_request_a_second(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(60))
    admitted = [limiter.acquire().admitted_at - T0 for _ in range(5)]
    assert admitted == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert clock.sleeps == [1.0, 1.0, 1.0, 1.0]


def test_a_burst_goes_at_once_then_the_pace_holds(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(60, burst=3))
    assert [limiter.acquire().admitted_at - T0 for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    clock.now += 30  # a quiet spell: the burst is available again
    assert [limiter.acquire().admitted_at - T0 for _ in range(4)] == [32.0, 32.0, 32.0, 33.0]


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 6),
    burst_share=st.floats(0, 1),
    gaps=st.lists(st.floats(0, 12, allow_nan=False), min_size=1, max_size=40),
)
def test_no_window_of_the_period_ever_holds_more_than_the_limit(limit, burst_share, gaps):
    burst = 1 + round(burst_share * (limit - 1))
    rate = Rate(limit, 10.0, burst)
    clock = FakeClock()
    limiter = limiter_on(MemoryStore(), clock, rate=rate)
    admitted = []
    for gap in gaps:
        clock.now += gap
        admitted.append(limiter.acquire().admitted_at)
    assert admitted == sorted(admitted)
    # any limit + 1 consecutive admissions span at least the period: no half-open window of
    # 10 s holds more than `limit`
    assert all(later - earlier >= rate.period_s - 1e-6 for earlier, later in zip(admitted, admitted[limit:]))
    if burst == 1:
        assert all(later - earlier >= rate.interval_s - 1e-6 for earlier, later in zip(admitted, admitted[1:]))


def test_it_refuses_instead_of_waiting_longer_than_allowed_and_counts_no_refusal(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(1))
    limiter.acquire()
    for _ in range(2):
        with pytest.raises(RateLimited) as refused:
            limiter.acquire(max_wait_s=5)
        assert refused.value.key == "test:key" and refused.value.retry_after_s == pytest.approx(60.0)
    assert clock.sleeps == []
    assert limiter.acquire().admitted_at == T0 + 60  # the refusals took no slot


def test_a_sliding_window_admits_a_minutes_quota_at_once_then_refuses_until_it_slides(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.window(3, 60.0))
    assert [limiter.acquire(max_wait_s=0).admitted_at for _ in range(3)] == [T0] * 3
    clock.now += 30
    with pytest.raises(RateLimited) as refused:
        limiter.acquire(max_wait_s=0)
    assert refused.value.retry_after_s == pytest.approx(30.0)
    clock.now += 30
    assert limiter.acquire(max_wait_s=0).admitted_at == T0 + 60


# --- adaptive concurrency --------------------------------------------------------------------------
def test_concurrency_is_cut_on_429_or_timeout_and_grows_back_on_success_within_bounds(clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(minimum=2, maximum=8))
    permits = [limiter.acquire() for _ in range(8)]
    with pytest.raises(RateLimited):
        limiter.acquire(max_wait_s=0)  # 8 in flight
    clock.now += 1
    permits[0].report(Outcome.RATE_LIMITED)
    assert limiter.status().concurrency_limit == 4
    permits[1].report(Outcome.TIMEOUT)  # admitted before the cut: the same congestion, no second cut
    assert limiter.status().concurrency_limit == 4
    with pytest.raises(RateLimited):
        limiter.acquire(max_wait_s=0)  # 6 in flight > 4
    for permit in permits[2:]:
        permit.report(Outcome.SUCCESS)  # +1/limit each: 4 → 5.4
    assert limiter.status().concurrency_limit == 5 and limiter.status().in_flight == 0
    for _ in range(60):
        limiter.acquire().report(Outcome.SUCCESS)
    assert limiter.status().concurrency_limit == 8  # never above the maximum
    for expected in (4, 2, 2):  # each failure admitted after the previous cut cuts again, down to the minimum
        clock.now += 1
        limiter.acquire().report(Outcome.TIMEOUT)
        assert limiter.status().concurrency_limit == expected


def test_a_request_whose_holder_died_stops_counting_after_its_lease(clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(maximum=1, lease_s=30))
    limiter.acquire()  # never reported: its process was killed
    with pytest.raises(RateLimited):
        limiter.acquire(max_wait_s=0)
    clock.now += 31
    assert limiter.acquire(max_wait_s=0).admitted_at == T0 + 31


def test_a_waiter_for_a_concurrency_slot_gets_the_one_a_report_frees(clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(maximum=1), poll_s=0.25)
    holder = limiter.acquire()
    clock.on_sleep = lambda: holder.report(Outcome.SUCCESS)
    assert limiter.acquire(max_wait_s=10).waited_s == 0.25
    assert clock.sleeps == [0.25]


def test_a_freed_slot_goes_to_the_oldest_waiter_not_to_a_newcomer_of_the_releasing_process():
    # Pure rules: "a" and "b" are two processes; "a" holds the only slot, "b" waits for it.
    conc = Concurrency(maximum=1)
    state = KeyState()

    def ask(lease_id: str, now: float, max_wait_s: float | None = None):
        return admit(state, now, rate=None, concurrency=conc, lease_id=lease_id, max_wait_s=max_wait_s)[0]

    assert ask("a1", T0).admitted
    waiting = ask("b1", T0 + 0.1)
    assert (waiting.admitted, waiting.reason, waiting.ahead) == (False, "concurrency", 0)
    release(state, T0 + 0.2, lease_id="a1", outcome=Outcome.SUCCESS, retry_after_s=None, rate=None, concurrency=conc)
    newcomer = ask("a2", T0 + 0.2)  # the releasing process's next thread wakes first ...
    assert (newcomer.admitted, newcomer.ahead) == (False, 1)  # ... and queues behind "b1"
    assert ask("b1", T0 + 0.3).admitted
    assert [ticket[0] for ticket in state.queue] == ["a2"]
    assert not ask("c1", T0 + 0.4, max_wait_s=0).admitted and len(state.queue) == 1  # an answer-at-once never queues
    # a ticket not renewed (its holder died) stops counting after TICKET_TTL_S
    release(state, T0 + 0.5, lease_id="b1", outcome=Outcome.SUCCESS, retry_after_s=None, rate=None, concurrency=conc)
    assert ask("c2", T0 + 0.3 + TICKET_TTL_S).admitted and state.queue == []


def test_a_waiter_that_gives_up_leaves_the_queue(clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(maximum=1), poll_s=0.25)
    limiter.acquire()  # holds the only slot
    with pytest.raises(RateLimited):
        limiter.acquire(max_wait_s=1)
    state, _ = memory.read("test:key", clock=clock)
    assert state.queue == []  # it does not hold the line for the next caller


def test_a_cancelled_async_waiter_leaves_the_queue(memory):
    limiter = Limiter("test:key", store=memory, concurrency=Concurrency(maximum=1), poll_s=0.01)
    limiter.acquire()

    async def main() -> None:
        waiter = asyncio.create_task(limiter.acquire_async())
        while not memory.read("test:key", clock=None)[0].queue:
            await asyncio.sleep(0.01)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    assert memory.read("test:key", clock=None)[0].queue == []


# --- Retry-After -----------------------------------------------------------------------------------
def test_a_429_with_retry_after_blocks_every_caller_of_the_key(clock, memory):
    first = limiter_on(memory, clock, concurrency=Concurrency())
    second = limiter_on(memory, clock, concurrency=Concurrency())  # another caller, same key
    first.acquire().report(Outcome.RATE_LIMITED, retry_after_s=7)
    with pytest.raises(RateLimited) as refused:
        second.acquire(max_wait_s=5)
    assert refused.value.retry_after_s == pytest.approx(7.0)
    permit = second.acquire()
    assert permit.admitted_at == T0 + 7 and clock.sleeps == [7.0]


def test_a_slot_given_before_a_block_is_given_up_and_taken_again_after_it(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(60), concurrency=Concurrency())
    first = limiter.acquire()
    # the next caller is given the slot at T0 + 1 s; as it comes, the first request gets a 429
    clock.on_sleep = lambda: first.report(Outcome.RATE_LIMITED, retry_after_s=10)
    second = limiter.acquire()
    assert second.admitted_at == T0 + 11  # not at T0 + 1: nothing is sent inside the block
    assert clock.sleeps == [1.0, 10.0]
    assert limiter.status().in_flight == 1  # the given-up slot was freed


def test_the_slot_classifies_what_the_request_raised(clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(maximum=8))
    with pytest.raises(LLMTransientError), limiter.slot():
        raise LLMTransientError("HTTP 503", provider="p", status_code=503)
    assert limiter.status().concurrency_limit == 8  # a 5xx changes nothing
    with pytest.raises(LLMTransientError), limiter.slot():
        raise LLMTransientError("HTTP 429", provider="p", status_code=429, retry_after_s=3)
    status = limiter.status()
    assert (status.concurrency_limit, status.blocked_for_s, status.in_flight) == (4, 3.0, 0)
    clock.now += 3
    with pytest.raises(LLMTransientError), limiter.slot():
        try:
            raise httpx.ReadTimeout("timed out")
        except httpx.ReadTimeout as exc:
            raise LLMTransientError("timeout", provider="p") from exc
    assert limiter.status().concurrency_limit == 2
    with pytest.raises(LLMOutputError), limiter.slot():
        raise LLMOutputError("not JSON", provider="p", schema_name="t", raw_output="x")  # an answer: grows
    assert limiter.status().in_flight == 0
    assert classify_outcome(LLMTransientError("refused", provider="p")) == (Outcome.ERROR, None)


# --- asyncio -----------------------------------------------------------------------------------------
def test_acquire_async_paces_and_gives_back_the_slot_of_a_cancelled_waiter():
    limiter = Limiter("test:async", rate=Rate(10, 0.5), concurrency=Concurrency(maximum=4), store=MemoryStore())

    async def scenario() -> tuple[list[float], int]:
        admitted = []
        for _ in range(3):
            async with limiter.aslot() as permit:
                admitted.append(permit.admitted_at)
        holder = await limiter.acquire_async()
        waiter = asyncio.create_task(limiter.acquire_async())  # given a slot 50 ms ahead, sleeping
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        in_flight = limiter.status().in_flight
        holder.report(Outcome.SUCCESS)
        return admitted, in_flight

    admitted, in_flight = asyncio.run(scenario())
    assert all(later - earlier >= 0.05 - 1e-6 for earlier, later in zip(admitted, admitted[1:]))
    assert in_flight == 1  # only the holder: the cancelled waiter's lease was released


# --- the same on every store -----------------------------------------------------------------------
@pytest.fixture(params=["memory", "database", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    if request.param == "database":
        request.getfixturevalue("db")
        return DatabaseStore()
    client = redis.Redis.from_url(request.getfixturevalue("redis_server_url"))
    client.flushdb()
    return RedisStore(client)


def test_every_store_paces_cuts_and_blocks_alike(store, clock):
    limiter = limiter_on(store, clock, rate=Rate.per_minute(60, burst=2), concurrency=Concurrency(maximum=3))
    permits = [limiter.acquire() for _ in range(3)]
    assert [p.admitted_at - T0 for p in permits] == [0.0, 0.0, 1.0]
    with pytest.raises(RateLimited):
        limiter.acquire(max_wait_s=0)  # 3 in flight
    permits[0].report(Outcome.SUCCESS)
    clock.now += 1
    permits[1].report(Outcome.RATE_LIMITED, retry_after_s=5)
    status = limiter.status()
    assert (status.in_flight, status.concurrency_limit, status.blocked_for_s) == (1, 1, 5.0)
    permits[2].report(Outcome.SUCCESS)
    assert limiter.acquire().admitted_at == T0 + 2 + 5  # after the block, at the pace
    assert limiter.acquire(max_wait_s=1).admitted_at == T0 + 2 + 5 + 1


def test_without_redis_the_settings_choose_the_database_never_memory(settings):
    settings.REDIS_URL = ""
    assert isinstance(store_from_settings(), DatabaseStore)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert isinstance(store_from_settings(), RedisStore)


# --- the LLM wrapper (core/llm/limited.py) ----------------------------------------------------------
def test_every_retry_of_the_client_takes_its_own_slot(fake_openai_server, clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(1))
    inner = OpenAICompatClient("perplexity", "sonar", "test-key", fake_openai_server.base_url,
                               max_retries=3, backoff_initial_s=0.01, sleep=lambda s: None)
    client = RateLimitedClient(inner, limiter, max_wait_s=0)
    fake_openai_server.enqueue(Reply.error(500, message="busy"), Reply.json({"ok": 1}))
    with pytest.raises(RateLimited):
        client.complete_json(REQUEST)  # the retry after the 500 finds no slot in the minute
    assert len(fake_openai_server.requests) == 1  # so it was not sent


def test_a_providers_429_blocks_the_next_attempt_for_its_retry_after(fake_openai_server, clock, memory):
    limiter = limiter_on(memory, clock, concurrency=Concurrency(maximum=16))
    client_sleeps: list[float] = []
    inner = OpenAICompatClient("perplexity", "sonar", "test-key", fake_openai_server.base_url,
                               max_retries=2, sleep=client_sleeps.append)  # sleeps nothing
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="7"), Reply.json({"ok": 1}))
    completion = RateLimitedClient(inner, limiter).complete_json(REQUEST)
    assert completion.data == {"ok": 1} and completion.attempts == 2
    assert client_sleeps == [7.0] and clock.sleeps == [7.0]  # the limiter held the retry back itself
    status = limiter.status()
    assert (status.concurrency_limit, status.in_flight, status.blocked_for_s) == (8, 0, 0.0)


def test_a_client_without_our_retry_loop_is_gated_once_per_call(clock, memory):
    limiter = limiter_on(memory, clock, rate=Rate.per_minute(1))
    client = RateLimitedClient(OfflineClient(), limiter, max_wait_s=0)
    with pytest.raises(LLMConfigError):
        client.complete_json(REQUEST)  # took the minute's slot, then refused by the client itself
    with pytest.raises(RateLimited):
        client.complete_json(REQUEST)


def test_limited_client_takes_the_providers_limits_from_the_settings(settings, fake_openai_server):
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 60
    settings.HOKAN_LLM_RATE_LIMIT_BURST = 2
    settings.HOKAN_LLM_CONCURRENCY_MIN, settings.HOKAN_LLM_CONCURRENCY_MAX = 2, 8
    inner = OpenAICompatClient("perplexity", "sonar", "test-key", fake_openai_server.base_url)
    client = limited_client(inner)
    assert isinstance(client, RateLimitedClient) and client.limiter.key == "llm:perplexity"
    assert client.limiter.rate == Rate(60, 60.0, 2)
    assert (client.limiter.concurrency.minimum, client.limiter.concurrency.maximum) == (2, 8)
    assert limited_client(client) is client and limited_client(OfflineClient()).available is False
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 0
    assert llm_rate_limiter("perplexity").rate is None  # no rate, still AIMD and Retry-After
    settings.HOKAN_LLM_CONCURRENCY_MIN = 9
    with pytest.raises(ImproperlyConfigured, match="HOKAN_LLM_CONCURRENCY_MIN"):
        llm_rate_limiter("perplexity")


def test_the_limiter_imports_neither_django_models_nor_the_llm_client():
    code = "import sys, hokan.core.ratelimit; print(sorted(m for m in sys.modules if m.startswith(('hokan.core.llm', 'django.db'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "[]"


# --- gBizINFO: one pace per token ------------------------------------------------------------------
@pytest.mark.django_db
def test_gbizinfo_clients_share_the_tokens_pace_and_its_429(clock):
    with FakeGbizinfoServer(token="test-token") as server:
        server.add({"corporate_number": "5070001000715", "name": "カネコ種苗株式会社"})

        def client(timeout_s: float = 30.0) -> GbizinfoClient:  # one per worker process, in effect
            return GbizinfoClient(token="test-token", base_url=server.base_url, allow_hosts=["127.0.0.1"],
                                  min_interval_s=1.5, timeout_s=timeout_s, clock=clock, sleep=clock.sleep)

        first, second = client(), client()
        first.get("5070001000715")
        second.get("5070001000715")
        assert clock.sleeps == [1.5]
        server.rate_limit_next(1, retry_after="20")
        with pytest.raises(RegistryRateLimited):
            first.get("5070001000715")
        sent = len(server.requests)
        with pytest.raises(RegistryRateLimited) as blocked:
            client(timeout_s=5).get("5070001000715")  # would wait 20 s: refused, nothing sent
        assert len(server.requests) == sent and blocked.value.retry_after_s == pytest.approx(20, abs=1.5)
        assert second.get("5070001000715") is not None  # waits the block out, then asks
        assert clock.sleeps[-1] == pytest.approx(20, abs=1.5) and len(server.requests) == sent + 1


# --- real processes ---------------------------------------------------------------------------------
class Pool:
    """Worker processes (tests/core/ratelimit_worker.py) on one store, started once per module.

    ``run({i: command})`` hands each worker i its command, then "go" to all of them, so that
    their work overlaps; the results come back by worker.
    """

    def __init__(self, env: dict[str, str], size: int = 3) -> None:
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "tests.core.ratelimit_worker"], cwd=REPO_ROOT,
                             env={**os.environ, "DJANGO_SETTINGS_MODULE": "hokan.settings", **env},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(size)
        ]
        for proc in self.procs:
            self._line(proc, "ready")

    def run(self, commands: dict[int, dict]) -> dict[int, dict]:
        for index, command in commands.items():
            self.procs[index].stdin.write(json.dumps(command) + "\n")
            self.procs[index].stdin.flush()
        for index in commands:
            self.procs[index].stdin.write("go\n")
            self.procs[index].stdin.flush()
        return {index: json.loads(self._line(self.procs[index])) for index in commands}

    def close(self) -> None:
        for proc in self.procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-3000:]

    @staticmethod
    def _line(proc: subprocess.Popen, expected: str | None = None) -> str:
        line = proc.stdout.readline()
        if not line or (expected and line.strip() != expected):
            proc.kill()
            raise AssertionError(f"worker said {line!r}: {proc.stderr.read()[-3000:]}")
        return line


def llm_command(key: str, count: int, base_url: str, *, limit: int = 0, period_s: float = 1.0, burst: int = 1) -> dict:
    return {"mode": "llm", "key": key, "count": count, "limit": limit, "period_s": period_s, "burst": burst,
            "base_url": base_url}


def assert_at_most_limit_per_window(admitted: list[float], limit: int, period_s: float) -> None:
    admitted = sorted(admitted)
    spans = [later - earlier for earlier, later in zip(admitted, admitted[limit:])]
    assert spans and min(spans) >= period_s - 1e-6, f"{limit + 1} admissions within {min(spans):.3f}s"


def migrated(database_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "hokan.settings"}
    result = subprocess.run([sys.executable, "-m", "django", "migrate", "core", "--noinput"], cwd=REPO_ROOT,
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return env


@pytest.fixture(scope="module")
def pools(request, tmp_path_factory):
    """``pools(backend)``: the module's worker pool on "redis", "sqlite" (a migrated file) or
    "postgresql" (a migrated server on 127.0.0.1), started on first use, stopped at the end."""
    started: dict[str, Pool] = {}
    with contextlib.ExitStack() as stack:
        def get(backend: str) -> Pool:
            if backend not in started:
                if backend == "redis":
                    url = request.getfixturevalue("redis_server_url")
                    env = {"REDIS_URL": url}
                elif backend == "sqlite":
                    env = migrated(f"sqlite:///{tmp_path_factory.mktemp('ratelimit') / 'shared.sqlite3'}")
                else:
                    if not postgres_available():
                        pytest.skip("PostgreSQL binaries not installed")
                    env = migrated(stack.enter_context(postgres_server()))
                started[backend] = Pool(env)
                stack.callback(started[backend].close)
            return started[backend]

        yield get


@pytest.fixture(params=["redis", "sqlite", "postgresql"])
def pool(request, pools) -> Pool:
    return pools(request.param)


@pytest.mark.slow
def test_processes_share_one_paced_limit(pool):
    """3 processes × 6 requests through one limit of 5 per 0.5 s with a burst of 2."""
    limit, period_s, key = 5, 0.5, f"llm:shared:{uuid.uuid4().hex}"
    with FakeOpenAIServer(api_key="test-key") as server:
        command = llm_command(key, 6, server.base_url, limit=limit, period_s=period_s, burst=2)
        results = pool.run({0: command, 1: command, 2: command}).values()
        assert len(server.requests) == 18
    assert_at_most_limit_per_window([t for result in results for t in result["admitted"]], limit, period_s)
    assert sum(w for result in results for w in result["waited"]) > 0, "nobody waited: the test proves nothing"


@pytest.mark.slow
def test_a_retry_after_holds_back_another_process_inside_the_window(pool):
    key = f"llm:blocked:{uuid.uuid4().hex}"
    with FakeOpenAIServer(api_key="test-key") as server:
        server.enqueue(Reply.rate_limited(retry_after="2"))
        first = pool.run({0: llm_command(key, 1, server.base_url)})[0]  # its request got the 429
        second = pool.run({1: llm_command(key, 1, server.base_url)})[1]  # within the 2 s asked for
        assert len(server.requests) == 2
    assert first["errors"] == 1 and first["admitted"] == []
    assert second["errors"] == 0 and second["waited"][0] > 0
    assert second["admitted"][0] >= first["blocked_until"] - 1e-6  # nothing sent inside the window


@pytest.mark.slow
def test_two_api_workers_without_redis_admit_the_limit_once_not_twice(pools):
    """Two processes, 40 requests each within a minute, against 60 per minute per IP and per key."""
    command = {"mode": "api", "count": 40, "limit": 60}
    results = pools("sqlite").run({0: command, 1: command}).values()
    assert sum(r["ip_admitted"] for r in results) == 60
    assert sum(r["key_admitted"] for r in results) == 60
