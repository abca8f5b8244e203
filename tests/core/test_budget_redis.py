"""The Redis usage ledger: same semantics as the database ledger, §8 keys, 8 processes at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from hokan.core.budget import DatabaseLedger, Limits, RedisLedger, get_ledger, to_micro_usd
from hokan.core.errors import BudgetExceeded
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.servers import redis_server_url  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 21)


@pytest.fixture
def redis_client(redis_server_url):  # noqa: F811
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    return client


@pytest.fixture(params=["database", "redis"])
def make_ledger(request):
    """A factory of ledgers of both backends with the given limits."""
    if request.param == "database":
        request.getfixturevalue("db")

        def build(cost: str = "1.00", calls: int = 10, daily: int = 0):
            return DatabaseLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily))
    else:
        client = request.getfixturevalue("redis_client")

        def build(cost: str = "1.00", calls: int = 10, daily: int = 0):
            return RedisLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily),
                               redis_client=client)
    return build


def test_it_commits_the_actual_cost_instead_of_the_estimate(make_ledger):
    book = make_ledger()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    assert r.created and r.is_open and book.snapshot(day=DAY).reserved_cost_usd == Decimal("0.05")
    book.commit(r, cost_usd=Decimal("0.012345"))
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls, snap.reserved_cost_usd) == (
        1, Decimal("0.012345"), 0, Decimal("0"))


def test_it_refuses_past_the_call_limit_and_the_cost_limit(make_ledger):
    book = make_ledger(calls=2)
    book.reserve(cost_usd=Decimal("0.01"), key="a", day=DAY)
    book.reserve(cost_usd=Decimal("0.01"), key="b", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.01"), key="c", day=DAY)
    assert exc.value.scope == "monthly_calls" and exc.value.limit == 2
    book = make_ledger(cost="0.10", calls=100)
    r = book.reserve(cost_usd=Decimal("0.06"), key="x", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.05"), key="y", day=DAY)
    assert exc.value.scope == "monthly_cost"
    book.commit(r, cost_usd=Decimal("0.02"))
    book.reserve(cost_usd=Decimal("0.05"), key="y", day=DAY)  # the refund made room


def test_it_returns_the_same_reservation_for_the_same_key_without_claiming_again(make_ledger):
    book = make_ledger()
    first = book.reserve(cost_usd=Decimal("0.05"), key="lead:1:2026-11-21:1", day=DAY)
    again = book.reserve(cost_usd=Decimal("0.05"), key="lead:1:2026-11-21:1", day=DAY)
    assert again.id == first.id and first.created and not again.created and again.is_open
    assert book.snapshot(day=DAY).reserved_calls == 1
    book.commit(first, cost_usd=Decimal("0.03"))
    paid = book.reserve(cost_usd=Decimal("0.05"), key="lead:1:2026-11-21:1", day=DAY)
    assert (paid.status, paid.created) == ("committed", False)
    assert book.snapshot(day=DAY).calls == 1


def test_it_reopens_a_released_reservation_for_a_retry(make_ledger):
    book = make_ledger(calls=1)
    r = book.reserve(cost_usd=Decimal("0.05"), key="k", day=DAY)
    book.release(r)  # the call failed without a charge (a 429)
    retry = book.reserve(cost_usd=Decimal("0.05"), key="k", day=DAY)
    assert retry.created and retry.is_open and retry.id == r.id
    book.commit(retry, cost_usd=Decimal("0.01"))
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, Decimal("0.01"), 0)


def test_it_settles_twice_only_once_and_settles_stale_ones_at_their_estimate(make_ledger):
    book = make_ledger()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    book.commit(r, cost_usd=Decimal("0.01"))
    book.commit(r, cost_usd=Decimal("0.01"))
    book.release(r)
    book.reserve(cost_usd=Decimal("0.05"), key="stale")  # today: settle_stale looks at this month
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 1
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 0
    today = book.snapshot()
    assert (today.reserved_calls, today.reserved_cost_usd) == (0, Decimal("0"))
    assert not book.reserve(cost_usd=Decimal("0.05"), key="stale").created  # expired = paid


def test_it_counts_a_record_once_per_day_and_stops_at_the_daily_limit(make_ledger):
    book = make_ledger(daily=2)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:2", day=DAY)
    assert not book.claim_record("lead:3", day=DAY)
    assert book.snapshot(day=DAY).records_today == 2
    assert book.claim_record("lead:3", day=DAY + dt.timedelta(days=1))


def test_it_keeps_the_documents_keys_in_micro_usd_and_lets_them_expire_after_the_month(redis_client):
    book = RedisLedger(Limits(cost_usd=Decimal("150"), calls=3000, daily_records_setting=0), redis_client=redis_client)
    r = book.reserve(cost_usd=Decimal("0.05"), key="lead:1:2026-11-21:1", day=DAY)
    book.commit(r, cost_usd=Decimal("0.0123"))
    assert redis_client.get("usage:2026-11:calls") == b"1"
    assert redis_client.get("usage:2026-11:cost") == b"12300"  # integer micro-USD
    expire_at = redis_client.expiretime("usage:2026-11:cost")
    # 2027-01-01 00:00 Asia/Tokyo: the month's figures stay readable through December.
    assert expire_at == int(dt.datetime(2027, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp())
    assert redis_client.hget("usage:reservation:lead:1:2026-11-21:1", "status") == b"committed"


def test_get_ledger_uses_redis_when_redis_url_is_set(settings, redis_server_url):  # noqa: F811
    settings.REDIS_URL = redis_server_url
    assert isinstance(get_ledger(), RedisLedger)
    settings.REDIS_URL = ""
    assert isinstance(get_ledger(), DatabaseLedger)


# --- 8 processes against one Redis, paying a real (fake) provider ------------------------------
def _replies(count: int) -> list[Reply]:
    """Answers with distinct reported costs, some 500s (released) and some garbage (paid, re-asked)."""
    replies = []
    for i in range(count):
        if i % 9 == 4:
            replies.append(Reply.error(500, message="upstream"))
        elif i % 13 == 6:
            replies.append(Reply.text("申し訳ありません。", cost_usd=Decimal("0.002") + Decimal(i) / 1_000_000))
        else:
            replies.append(Reply.json({"設立年": "2001"}, cost_usd=Decimal("0.003") + Decimal(i * 37 % 40_000) / 1_000_000))
    return replies


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "per_worker", "cost_limit", "call_limit"), [(8, 30, "150", 150)])
def test_it_never_passes_the_limit_with_8_processes_and_commits_what_the_provider_reported(
    redis_client, redis_server_url, workers, per_worker, cost_limit, call_limit  # noqa: F811
):
    replies = _replies(workers * per_worker * 2)
    with FakeOpenAIServer(api_key="test-key", default_reply=Reply.error(500, message="script exhausted")) as server:
        server.enqueue(*replies)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", REDIS_URL=redis_server_url,
                   POWERPLEXY_MONTHLY_COST_LIMIT_USD=cost_limit, POWERPLEXY_MONTHLY_CALL_LIMIT=str(call_limit))
        procs = [
            subprocess.Popen([sys.executable, "-m", "tests.core.redis_ledger_worker", str(w), str(per_worker),
                              server.base_url], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for w in range(workers)
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        received = len(server.requests)
    answered = [r for r in replies[:received] if r.status == 200]
    reported_micro = sum(to_micro_usd(FakeOpenAIServer.expected_cost(r)) for r in answered)
    calls = int(redis_client.get("usage:%s:calls" % _month()) or 0)
    cost = int(redis_client.get("usage:%s:cost" % _month()) or 0)
    assert calls == len(answered), "every answer received is a paid call"
    assert cost == reported_micro, "committed cost = the sum of the provider's reported costs"
    assert calls <= call_limit and cost <= to_micro_usd(Decimal(cost_limit)), "overspent"
    assert int(redis_client.get("usage:%s:reserved_calls" % _month())) == 0
    assert int(redis_client.get("usage:%s:reserved_cost" % _month())) == 0
    assert sum(r["refused"] for r in results) > 0, "the limit was never reached: the test proves nothing"
    print(f"\n{workers} processes x {per_worker} works: {received} requests, {calls} paid calls "
          f"(limit {call_limit}), ${Decimal(cost) / 1_000_000} (limit ${cost_limit}), "
          f"{sum(r['refused'] for r in results)} refused, overshoot 0")


def _month() -> str:
    from django.utils import timezone

    today = timezone.localdate()
    return f"{today.year:04d}-{today.month:02d}"


def test_a_paid_or_in_flight_key_is_never_paid_again(make_ledger, fake_openai_server):
    from hokan.core.errors import AlreadyPaid
    from hokan.core.llm import JsonRequest, OpenAICompatClient, complete_json_budgeted

    book = make_ledger()
    client = OpenAICompatClient("perplexity", "sonar", "test-key", fake_openai_server.base_url, max_retries=0)
    request = JsonRequest(system="JSONのみ", user="テスト", schema={"type": "object"}, schema_name="t")
    complete_json_budgeted(client, request, ledger=book, estimate_usd=Decimal("0.05"), key="lead:1:2026-11-21")
    with pytest.raises(AlreadyPaid) as paid:
        complete_json_budgeted(client, request, ledger=book, estimate_usd=Decimal("0.05"), key="lead:1:2026-11-21")
    assert paid.value.status == "committed"
    # A reservation left open by a worker that died mid-call: not paid a second time either.
    book.reserve(cost_usd=Decimal("0.05"), key="lead:2:2026-11-21:1")
    with pytest.raises(AlreadyPaid) as in_flight:
        complete_json_budgeted(client, request, ledger=book, estimate_usd=Decimal("0.05"), key="lead:2:2026-11-21")
    assert in_flight.value.status == "reserved"
    assert len(fake_openai_server.requests) == 1
