"""The usage ledger: reserve → commit / release, limits, idempotency (on both backends), and
concurrent processes on SQLite and PostgreSQL (Redis: test_budget_redis.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from django.utils import timezone

from hokan.core.budget import Limits
from hokan.core.errors import BudgetExceeded
from tests.servers import postgres_available, postgres_server

REPO_ROOT = Path(__file__).resolve().parents[2]
# Today in Asia/Tokyo: the Redis backend sets EXPIREAT from the day, so a fixed past day would
# expire its keys at once (issue 7 §0). Tests of the calendar itself live in test_budget_dates.py.
DAY = timezone.localdate()
KEY = f"lead:1:{DAY.isoformat()}:1"


# --- the ledger contract, on the database and the Redis backend (make_ledger: conftest.py) ---
def test_it_commits_the_actual_cost_instead_of_the_estimate(make_ledger):
    book = make_ledger()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    assert r.created and r.is_open and book.snapshot(day=DAY).reserved_cost_usd == Decimal("0.05")
    book.commit(r, cost_usd=Decimal("0.012345"))
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls, snap.reserved_cost_usd) == (
        1, Decimal("0.012345"), 0, Decimal("0"))


def test_it_releases_without_spending(make_ledger):
    book = make_ledger()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    book.release(r)
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (0, Decimal("0"), 0)


def test_it_refuses_a_reservation_past_the_call_limit(make_ledger):
    book = make_ledger(calls=2)
    book.reserve(cost_usd=Decimal("0.01"), key="a", day=DAY)
    book.reserve(cost_usd=Decimal("0.01"), key="b", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.01"), key="c", day=DAY)
    assert exc.value.scope == "monthly_calls" and exc.value.limit == 2
    assert "3,000" not in str(exc.value) and "2" in str(exc.value)


def test_it_refuses_a_reservation_past_the_cost_limit(make_ledger):
    book = make_ledger(cost="0.10", calls=100)
    r = book.reserve(cost_usd=Decimal("0.06"), key="a", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.05"), key="b", day=DAY)
    assert exc.value.scope == "monthly_cost"
    book.commit(r, cost_usd=Decimal("0.02"))
    book.reserve(cost_usd=Decimal("0.05"), key="b", day=DAY)  # the refund made room


def test_it_returns_the_same_reservation_for_the_same_key_without_claiming_again(make_ledger):
    book = make_ledger()
    first = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    again = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    assert again.id == first.id and first.created and not again.created and again.is_open
    assert book.snapshot(day=DAY).reserved_calls == 1
    book.commit(first, cost_usd=Decimal("0.03"))
    paid = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    assert (paid.status, paid.created, paid.is_open) == ("committed", False, False)
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


def test_it_settles_twice_only_once(make_ledger):
    book = make_ledger()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    book.commit(r, cost_usd=Decimal("0.01"))
    book.commit(r, cost_usd=Decimal("0.01"))
    book.release(r)
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, Decimal("0.01"), 0)


def test_it_settles_stale_reservations_at_their_estimate(make_ledger):
    book = make_ledger()
    book.reserve(cost_usd=Decimal("0.05"), key="stale")  # today: settle_stale looks at this month
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 1
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 0
    snap = book.snapshot()
    assert (snap.calls, snap.cost_usd, snap.reserved_calls, snap.reserved_cost_usd) == (
        1, Decimal("0.05"), 0, Decimal("0"))
    assert not book.reserve(cost_usd=Decimal("0.05"), key="stale").created  # expired = paid


def test_it_counts_a_record_once_per_day_and_stops_at_the_daily_limit(make_ledger):
    book = make_ledger(daily=2)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:2", day=DAY)
    assert not book.claim_record("lead:3", day=DAY)
    assert book.snapshot(day=DAY).records_today == 2
    assert book.claim_record("lead:3", day=DAY + dt.timedelta(days=1))


def _run_workers(env: dict[str, str], workers: int, per_worker: int) -> list[dict[str, int]]:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=REPO_ROOT, env=env, check=True,
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.core.ledger_worker", str(worker), str(per_worker)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for worker in range(workers)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_no_overspend(env: dict[str, str], results: list[dict[str, int]], call_limit: int) -> dict:
    probe = subprocess.run(
        [sys.executable, "-c",
         "import django, json; django.setup();"
         "from hokan.core.models import UsageMonth as U;"
         "print(json.dumps(list(U.objects.values('calls','cost_micro_usd','reserved_calls','reserved_micro_usd'))))"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True,
    )
    (row,) = json.loads(probe.stdout)
    reserved = sum(r["reserved"] for r in results)
    released = sum(r["released"] for r in results)
    # Released reservations give their room back, so only what was kept counts.
    assert row["calls"] == reserved - released
    assert row["calls"] <= call_limit, "more calls granted than the limit allows"
    assert row["cost_micro_usd"] == sum(r["committed_micro_usd"] for r in results)
    assert row["reserved_calls"] == 0 and row["reserved_micro_usd"] == 0
    assert sum(r["refused"] for r in results) > 0, "the limit was never reached: the test proves nothing"
    return {"granted": reserved, "calls": row["calls"], "cost_micro_usd": row["cost_micro_usd"]}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="hokan.settings", POWERPLEXY_MONTHLY_COST_LIMIT_USD="150", **extra)
    return env


@pytest.mark.slow
def test_it_never_grants_past_the_limit_to_concurrent_processes_on_sqlite(tmp_path):
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}", POWERPLEXY_MONTHLY_CALL_LIMIT="100")
    results = _run_workers(env, workers=6, per_worker=25)
    _check_no_overspend(env, results, call_limit=100)


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL binaries not installed")
def test_it_never_grants_past_the_limit_to_concurrent_processes_on_postgresql():
    with postgres_server() as url:
        env = _env(DATABASE_URL=url, POWERPLEXY_MONTHLY_CALL_LIMIT="150")
        results = _run_workers(env, workers=8, per_worker=30)
        _check_no_overspend(env, results, call_limit=150)
