"""The usage ledger: reserve → commit / release, limits, idempotency, scopes (on both backends),
the scope migration, and concurrent processes on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from hokan.core.budget import SCOPES, DatabaseLedger, Limits, RedisLedger, get_ledger, setting_names, snapshots
from hokan.core.errors import BudgetExceeded
from tests.servers import postgres_available, postgres_server, redis_server_url  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Today in Asia/Tokyo: the Redis backend sets EXPIREAT from the day, so a fixed past day would
# expire its keys at once (issue 7 §0). Tests of the calendar itself live in test_budget_dates.py.
DAY = timezone.localdate()
KEY = f"lead:1:{DAY.isoformat()}:1"
MONTH = f"{DAY.year:04d}-{DAY.month:02d}"


# --- the ledger contract, on the database and the Redis backend (make_ledger: conftest.py), ---
# --- for the leads scope (document 000's keys) and another scope --------------------------------
@pytest.fixture(params=["leads", "estimate"])
def ledger_of(request, make_ledger):
    """make_ledger for one scope."""
    return lambda **limits: make_ledger(scope=request.param, **limits)


def test_it_commits_the_actual_cost_instead_of_the_estimate(ledger_of):
    book = ledger_of()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    assert r.created and r.is_open and book.snapshot(day=DAY).reserved_cost_usd == Decimal("0.05")
    book.commit(r, cost_usd=Decimal("0.012345"))
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls, snap.reserved_cost_usd) == (
        1, Decimal("0.012345"), 0, Decimal("0"))


def test_it_releases_without_spending(ledger_of):
    book = ledger_of()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    book.release(r)
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (0, Decimal("0"), 0)


def test_it_refuses_a_reservation_past_the_call_limit(ledger_of):
    book = ledger_of(calls=2)
    book.reserve(cost_usd=Decimal("0.01"), key="a", day=DAY)
    book.reserve(cost_usd=Decimal("0.01"), key="b", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.01"), key="c", day=DAY)
    assert exc.value.scope == "monthly_calls" and exc.value.limit == 2
    assert "3,000" not in str(exc.value) and "2" in str(exc.value)


def test_it_refuses_a_reservation_past_the_cost_limit(ledger_of):
    book = ledger_of(cost="0.10", calls=100)
    r = book.reserve(cost_usd=Decimal("0.06"), key="a", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        book.reserve(cost_usd=Decimal("0.05"), key="b", day=DAY)
    assert exc.value.scope == "monthly_cost"
    book.commit(r, cost_usd=Decimal("0.02"))
    book.reserve(cost_usd=Decimal("0.05"), key="b", day=DAY)  # the refund made room


def test_it_returns_the_same_reservation_for_the_same_key_without_claiming_again(ledger_of):
    book = ledger_of()
    first = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    again = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    assert again.id == first.id and first.created and not again.created and again.is_open
    assert book.snapshot(day=DAY).reserved_calls == 1
    book.commit(first, cost_usd=Decimal("0.03"))
    paid = book.reserve(cost_usd=Decimal("0.05"), key=KEY, day=DAY)
    assert (paid.status, paid.created, paid.is_open) == ("committed", False, False)
    assert book.snapshot(day=DAY).calls == 1


def test_it_reopens_a_released_reservation_for_a_retry(ledger_of):
    book = ledger_of(calls=1)
    r = book.reserve(cost_usd=Decimal("0.05"), key="k", day=DAY)
    book.release(r)  # the call failed without a charge (a 429)
    retry = book.reserve(cost_usd=Decimal("0.05"), key="k", day=DAY)
    assert retry.created and retry.is_open and retry.id == r.id
    book.commit(retry, cost_usd=Decimal("0.01"))
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, Decimal("0.01"), 0)


def test_it_settles_twice_only_once(ledger_of):
    book = ledger_of()
    r = book.reserve(cost_usd=Decimal("0.05"), key="a", day=DAY)
    book.commit(r, cost_usd=Decimal("0.01"))
    book.commit(r, cost_usd=Decimal("0.01"))
    book.release(r)
    snap = book.snapshot(day=DAY)
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, Decimal("0.01"), 0)


def test_it_settles_stale_reservations_at_their_estimate(ledger_of):
    book = ledger_of()
    book.reserve(cost_usd=Decimal("0.05"), key="stale")  # today: settle_stale looks at this month
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 1
    assert book.settle_stale(older_than=dt.timedelta(seconds=-5)) == 0
    snap = book.snapshot()
    assert (snap.calls, snap.cost_usd, snap.reserved_calls, snap.reserved_cost_usd) == (
        1, Decimal("0.05"), 0, Decimal("0"))
    assert not book.reserve(cost_usd=Decimal("0.05"), key="stale").created  # expired = paid


def test_it_counts_a_record_once_per_day_and_stops_at_the_daily_limit(ledger_of):
    book = ledger_of(daily=2)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:1", day=DAY)
    assert book.claim_record("lead:2", day=DAY)
    assert not book.claim_record("lead:3", day=DAY)
    assert book.snapshot(day=DAY).records_today == 2
    assert book.claim_record("lead:3", day=DAY + dt.timedelta(days=1))


# --- scopes: each app counted and limited on its own ---------------------------------------------
def test_scopes_are_limited_separately_and_a_key_is_idempotent_per_scope(make_ledger):
    leads = make_ledger(calls=1, scope="leads")
    estimate = make_ledger(calls=2, cost="0.50", scope="estimate")
    first = leads.reserve(cost_usd=Decimal("0.05"), key="work:1", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        leads.reserve(cost_usd=Decimal("0.05"), key="work:2", day=DAY)
    assert (exc.value.scope, exc.value.ledger_scope) == ("monthly_calls", "leads")
    # The same key in another scope is another piece of work, with its own budget.
    other = estimate.reserve(cost_usd=Decimal("0.05"), key="work:1", day=DAY)
    assert first.created and other.created and (first.scope, other.scope) == ("leads", "estimate")
    estimate.commit(other, cost_usd=Decimal("0.03"))
    leads.commit(first, cost_usd=Decimal("0.01"))
    assert not estimate.reserve(cost_usd=Decimal("0.05"), key="work:1", day=DAY).created  # paid in estimate
    estimate.reserve(cost_usd=Decimal("0.05"), key="work:2", day=DAY)
    with pytest.raises(BudgetExceeded) as exc:
        estimate.reserve(cost_usd=Decimal("0.05"), key="work:3", day=DAY)
    assert exc.value.ledger_scope == "estimate" and "AI見積もり" in str(exc.value)
    lsnap, esnap = leads.snapshot(day=DAY), estimate.snapshot(day=DAY)
    assert (lsnap.scope, lsnap.calls, lsnap.cost_usd, lsnap.reserved_calls) == ("leads", 1, Decimal("0.01"), 0)
    assert (esnap.scope, esnap.calls, esnap.cost_usd, esnap.reserved_calls) == ("estimate", 1, Decimal("0.03"), 1)
    assert (lsnap.label, esnap.label) == ("営業リスト補完", "AI見積もり")
    # Records of the day, and stale reservations, are per scope too.
    assert leads.claim_record("lead:1", day=DAY) and estimate.claim_record("lead:1", day=DAY)
    assert (leads.snapshot(day=DAY).records_today, estimate.snapshot(day=DAY).records_today) == (1, 1)
    assert leads.settle_stale(older_than=dt.timedelta(seconds=-5)) == 0  # leads has nothing open
    assert estimate.settle_stale(older_than=dt.timedelta(seconds=-5)) == 1
    assert estimate.snapshot(day=DAY).calls == 2 and leads.snapshot(day=DAY).calls == 1


def test_a_monthly_limit_of_zero_closes_the_scope(make_ledger):
    closed = make_ledger(calls=0, scope="scoring")
    with pytest.raises(BudgetExceeded) as exc:
        closed.reserve(cost_usd=Decimal("0.01"), key="row:1", day=DAY)
    assert exc.value.limit == 0 and "スコアリング" in str(exc.value)
    no_money = make_ledger(cost="0", calls=100, scope="knowledge")
    with pytest.raises(BudgetExceeded) as exc:
        no_money.reserve(cost_usd=Decimal("0.000001"), key="doc:1", day=DAY)
    assert exc.value.scope == "monthly_cost"


def test_redis_keeps_the_documents_keys_for_leads_and_prefixes_the_other_scopes(redis_client):
    for scope in ("leads", "municipal"):
        book = RedisLedger(Limits(cost_usd=Decimal("1"), calls=10, daily_records_setting=0), scope=scope,
                           redis_client=redis_client)
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="same:key", day=DAY), cost_usd=Decimal("0.02"))
        book.claim_record("row:1", day=DAY)
    assert redis_client.get(f"usage:{MONTH}:calls") == b"1"  # document 000 §8
    assert redis_client.get(f"usage:{MONTH}:cost") == b"20000"
    assert redis_client.get(f"usage:municipal:{MONTH}:calls") == b"1"
    assert redis_client.get(f"usage:municipal:{MONTH}:cost") == b"20000"
    assert redis_client.hget("usage:reservation:same:key", "status") == b"committed"
    assert redis_client.hget("usage:municipal:reservation:same:key", "status") == b"committed"
    assert redis_client.get(f"usage:day:{DAY.isoformat()}:records") == b"1"
    assert redis_client.get(f"usage:municipal:day:{DAY.isoformat()}:records") == b"1"
    assert redis_client.expiretime(f"usage:municipal:{MONTH}:cost") == redis_client.expiretime(f"usage:{MONTH}:cost")


def test_each_scope_reads_its_own_settings(settings):
    assert setting_names("leads") == {
        "cost": "POWERPLEXY_MONTHLY_COST_LIMIT_USD", "calls": "POWERPLEXY_MONTHLY_CALL_LIMIT",
        "daily": "POWERPLEXY_DAILY_RECORD_LIMIT", "per_call": "POWERPLEXY_COST_PER_CALL_USD"}
    settings.POWERPLEXY_MONTHLY_CALL_LIMIT = 3000
    settings.HOKAN_ESTIMATE_MONTHLY_COST_LIMIT_USD = Decimal("12.5")
    settings.HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT = 40
    settings.HOKAN_ESTIMATE_COST_PER_CALL_USD = Decimal("0.002")
    assert Limits.from_settings("estimate") == Limits(
        cost_usd=Decimal("12.5"), calls=40, daily_records_setting=0, cost_per_call_usd=Decimal("0.002"))
    assert Limits.from_settings().calls == 3000  # leads by default
    for scope in SCOPES:  # every scope has its settings in settings.py
        Limits.from_settings(scope)
    with pytest.raises(ValueError, match="unknown ledger scope"):
        Limits.from_settings("sales")
    with pytest.raises(ValueError, match="unknown ledger scope"):
        get_ledger("sales")


@pytest.mark.parametrize("bad", ["-1", "abc", "NaN", ""])
def test_a_negative_or_unreadable_limit_is_refused_naming_the_setting(settings, bad):
    settings.HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT = bad
    with pytest.raises(ImproperlyConfigured, match="HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT"):
        Limits.from_settings("municipal")
    settings.HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT = 10
    settings.HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD = bad
    with pytest.raises(ImproperlyConfigured, match="HOKAN_MUNICIPAL_MONTHLY_COST_LIMIT_USD"):
        Limits.from_settings("municipal")


def test_snapshots_list_every_scope_with_its_limits(settings, db):
    settings.REDIS_URL = ""
    settings.HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT = 7
    book = get_ledger("knowledge")
    assert isinstance(book, DatabaseLedger) and book.scope == "knowledge"
    book.commit(book.reserve(cost_usd=Decimal("0.05"), key="doc:1"), cost_usd=Decimal("0.001"))
    rows = {snap.scope: snap for snap in snapshots()}
    assert list(rows) == list(SCOPES)
    assert (rows["knowledge"].calls, rows["knowledge"].call_limit, rows["knowledge"].remaining_calls) == (1, 7, 6)
    assert rows["leads"].calls == 0


@pytest.mark.django_db(transaction=True)
def test_the_scope_migration_keeps_existing_rows_as_leads():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("core", "0002_apikey")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old.get_model("core", "UsageMonth").objects.create(month=MONTH, calls=7, cost_micro_usd=350_000)
    old.get_model("core", "UsageReservation").objects.create(
        key="lead:1:old:1", month=MONTH, calls=1, estimate_micro_usd=50_000, status="committed")
    old.get_model("core", "UsageDay").objects.create(day=DAY, records=3)
    old.get_model("core", "UsageDayRecord").objects.create(day=DAY, key="lead:1")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    book = DatabaseLedger(Limits(cost_usd=Decimal("150"), calls=3000, daily_records_setting=0))
    snap = book.snapshot(day=DAY)
    assert (snap.scope, snap.calls, snap.cost_usd, snap.records_today) == ("leads", 7, Decimal("0.35"), 3)
    assert not book.reserve(cost_usd=Decimal("0.05"), key="lead:1:old:1", day=DAY).created  # still paid
    assert book.claim_record("lead:1", day=DAY) and book.snapshot(day=DAY).records_today == 3  # counted already
    other = DatabaseLedger(Limits(cost_usd=Decimal("1"), calls=10, daily_records_setting=0), scope="estimate")
    assert other.reserve(cost_usd=Decimal("0.05"), key="lead:1:old:1", day=DAY).created


def _run_workers(env: dict[str, str], workers: int, per_worker: int, scopes: tuple[str, ...]) -> dict[str, list[dict]]:
    """``workers`` processes per scope, all at once; worker ids (and so keys) repeat across scopes."""
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=REPO_ROOT, env=env, check=True,
    )
    procs = [
        (scope, subprocess.Popen(
            [sys.executable, "-m", "tests.core.ledger_worker", str(worker), str(per_worker), scope],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
        for worker in range(workers) for scope in scopes
    ]
    results: dict[str, list[dict]] = {scope: [] for scope in scopes}
    for scope, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results[scope].append(json.loads(out.strip().splitlines()[-1]))
    return results


def _check_no_overspend(env: dict[str, str], results: dict[str, list[dict]], call_limits: dict[str, int]) -> None:
    """Per scope: committed calls = kept reservations <= the limit, cost = the sum committed,
    nothing left reserved, and the limit was reached (else the test proves nothing)."""
    probe = subprocess.run(
        [sys.executable, "-c",
         "import django, json; django.setup();"
         "from hokan.core.budget import snapshots;"
         "print(json.dumps({s.scope: [s.calls, int(s.cost_usd * 1000000), s.reserved_calls,"
         " int(s.reserved_cost_usd * 1000000)] for s in snapshots()}))"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True,
    )
    usage = json.loads(probe.stdout)
    for scope, scope_results in results.items():
        calls, cost, reserved_calls, reserved_cost = usage[scope]
        reserved = sum(r["reserved"] for r in scope_results)
        released = sum(r["released"] for r in scope_results)
        # Released reservations give their room back, so only what was kept counts.
        assert calls == reserved - released, scope
        assert calls <= call_limits[scope], f"{scope}: more calls granted than the limit allows"
        assert cost == sum(r["committed_micro_usd"] for r in scope_results), scope
        assert reserved_calls == 0 and reserved_cost == 0, scope
        assert sum(r["refused"] for r in scope_results) > 0, f"{scope}: the limit was never reached"
    untouched = set(usage) - set(results)
    assert all(usage[scope] == [0, 0, 0, 0] for scope in untouched)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "hokan.settings", "POWERPLEXY_MONTHLY_COST_LIMIT_USD": "150",
                "HOKAN_ESTIMATE_MONTHLY_COST_LIMIT_USD": "150", "REDIS_URL": "", **extra})
    return env


@pytest.mark.slow
def test_it_never_grants_past_the_limit_to_concurrent_processes_on_sqlite(tmp_path):
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}", POWERPLEXY_MONTHLY_CALL_LIMIT="100",
               HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT="40")
    results = _run_workers(env, workers=3, per_worker=50, scopes=("leads", "estimate"))
    _check_no_overspend(env, results, call_limits={"leads": 100, "estimate": 40})


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL binaries not installed")
def test_it_never_grants_past_the_limit_to_concurrent_processes_on_postgresql():
    with postgres_server() as url:
        env = _env(DATABASE_URL=url, POWERPLEXY_MONTHLY_CALL_LIMIT="150", HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT="60")
        results = _run_workers(env, workers=3, per_worker=70, scopes=("leads", "estimate"))
        _check_no_overspend(env, results, call_limits={"leads": 150, "estimate": 60})


@pytest.mark.slow
def test_it_never_grants_past_the_limit_to_concurrent_processes_on_redis(tmp_path, redis_server_url,  # noqa: F811
                                                                        redis_client):
    # redis_client: the module's Redis server, emptied (other tests of this module used it).
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.sqlite3'}", REDIS_URL=redis_server_url,
               POWERPLEXY_MONTHLY_CALL_LIMIT="100", HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT="40")
    results = _run_workers(env, workers=3, per_worker=50, scopes=("leads", "estimate"))
    _check_no_overspend(env, results, call_limits={"leads": 100, "estimate": 40})
