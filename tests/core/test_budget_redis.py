"""The Redis usage ledger: the §8 keys, choosing the backend, 8 processes at once, paid keys.

The ledger contract itself (reserve/commit/release, limits, idempotency, daily records) is
tested on both backends in test_budget.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hokan.core.budget import DatabaseLedger, Limits, RedisLedger, get_ledger, to_micro_usd
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.servers import redis_server_url  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
JST = dt.timezone(dt.timedelta(hours=9))  # Asia/Tokyo has no daylight saving time


def _start_of_month_after_next(day: dt.date) -> dt.datetime:
    index = day.year * 12 + day.month - 1 + 2
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=JST)


def test_it_keeps_the_documents_keys_in_micro_usd_and_lets_them_expire_after_the_month(redis_client):
    from django.utils import timezone

    day = timezone.localdate()  # a past day would expire its keys at once (issue 7 §0)
    month = f"{day.year:04d}-{day.month:02d}"
    key = f"lead:1:{day.isoformat()}:1"
    book = RedisLedger(Limits(cost_usd=Decimal("150"), calls=3000, daily_records_setting=0), redis_client=redis_client)
    r = book.reserve(cost_usd=Decimal("0.05"), key=key, day=day)
    book.commit(r, cost_usd=Decimal("0.0123"))
    assert redis_client.get(f"usage:{month}:calls") == b"1"
    assert redis_client.get(f"usage:{month}:cost") == b"12300"  # integer micro-USD
    # 00:00 Asia/Tokyo of the first day of the month after next: the month's figures stay
    # readable through the whole following month.
    assert redis_client.expiretime(f"usage:{month}:cost") == int(_start_of_month_after_next(day).timestamp())
    assert redis_client.hget(f"usage:reservation:{key}", "status") == b"committed"


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
