"""The calendar of the usage ledger (issue 7 §0): month length, leap days, the Tokyo day.

The daily record limit divides the monthly calls by the days of the month (document 000 §12),
and months and days are those of Asia/Tokyo, nine hours ahead of UTC: 23:59 JST on the last
day of a month is still that month, 00:00 JST is the next one, while UTC is on the same date
for both. The clock is moved with freezegun around the parts that read it (``local_today``,
the default day of ``reserve`` / ``claim_record`` / ``snapshot``) — on the database ledger
and on a real Redis server (whose own clock is not moved: the moments chosen are always in
the future, so every key's EXPIREAT is too). ``scripts/suite-at-dates.sh`` runs the whole
suite with the clock of every process moved (libfaketime).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from freezegun import freeze_time

from hokan.core.budget import DatabaseLedger, Limits, RedisLedger, local_today, month_of

JST = ZoneInfo("Asia/Tokyo")
UTC = dt.timezone.utc


def limits(calls: int = 3000, daily: int = 0) -> Limits:
    return Limits(cost_usd=Decimal("150"), calls=calls, daily_records_setting=daily)


def next_date(month: int, day: int, *, after: dt.date | None = None) -> dt.date:
    """The first ``month``/``day`` strictly after ``after`` (default: today in Tokyo)."""
    after = after or timezone.localdate()
    year = after.year
    while True:
        try:
            candidate = dt.date(year, month, day)
        except ValueError:  # 29 February of a common year
            year += 1
            continue
        if candidate > after:
            return candidate
        year += 1


def jst(day: dt.date, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=JST)


# --- the daily record limit: monthly calls ÷ days in the month (pure) --------------------------
@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2027, 2, 28), 3000 // 28),  # February of a common year: 107
        (dt.date(2028, 2, 28), 3000 // 29),  # February of a leap year, the day before the leap day
        (dt.date(2028, 2, 29), 3000 // 29),  # the leap day: 103
        (dt.date(2100, 2, 28), 3000 // 28),  # 2100 is not a leap year (divisible by 100, not 400)
        (dt.date(2000, 2, 29), 3000 // 29),  # 2000 is (divisible by 400)
        (dt.date(2026, 4, 30), 3000 // 30),  # a 30-day month: 100
        (dt.date(2026, 4, 1), 3000 // 30),
        (dt.date(2027, 1, 31), 3000 // 31),  # a 31-day month: 96
        (dt.date(2026, 12, 1), 3000 // 31),
    ],
)
def test_the_daily_limit_divides_the_monthly_calls_by_the_days_of_that_month(day, expected):
    assert limits().daily_records(day) == expected


def test_the_daily_limit_is_the_setting_when_set_and_never_below_one():
    assert limits(daily=25).daily_records(dt.date(2028, 2, 29)) == 25
    assert limits(calls=10).daily_records(dt.date(2027, 1, 31)) == 1  # 10 ÷ 31 rounds down to 0
    assert limits(calls=31).daily_records(dt.date(2027, 1, 31)) == 1
    assert limits(calls=62).daily_records(dt.date(2027, 2, 28)) == 2


# --- the Tokyo day and month at midnight ------------------------------------------------------
def test_the_day_turns_at_midnight_in_tokyo_not_in_utc():
    last = next_date(1, 31)
    with freeze_time(jst(last, 23, 59, 59)):
        assert dt.datetime.now(UTC).date() == last  # 14:59:59 UTC
        assert local_today() == last and month_of(local_today()) == f"{last.year:04d}-01"
    with freeze_time(jst(last + dt.timedelta(days=1), 0, 0, 0)):
        assert dt.datetime.now(UTC).date() == last  # still 31 January in UTC (15:00:00)
        assert local_today() == dt.date(last.year, 2, 1) and month_of(local_today()) == f"{last.year:04d}-02"
    with freeze_time(jst(last, 8, 59, 59)):  # 23:59:59 UTC of the 30th
        assert dt.datetime.now(UTC).date() == last - dt.timedelta(days=1)
        assert local_today() == last


@pytest.mark.django_db
def test_a_call_at_2359_jst_counts_in_its_month_and_one_at_0000_in_the_next():
    last = next_date(1, 31)
    book = DatabaseLedger(limits())
    with freeze_time(jst(last, 23, 59, 59)):
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="late"), cost_usd=Decimal("0.01"))
        january = book.snapshot()
    with freeze_time(jst(last + dt.timedelta(days=1), 0, 0, 0)):
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="early"), cost_usd=Decimal("0.02"))
        february = book.snapshot()
    assert (january.month, january.calls, january.cost_usd) == (f"{last.year:04d}-01", 1, Decimal("0.01"))
    assert (february.month, february.calls, february.cost_usd) == (f"{last.year:04d}-02", 1, Decimal("0.02"))
    february_days = 29 if (last.year % 4 == 0 and last.year % 100 != 0) or last.year % 400 == 0 else 28
    assert january.daily_record_limit == 3000 // 31
    assert february.daily_record_limit == 3000 // february_days


@pytest.mark.django_db
def test_the_leap_day_has_its_own_records_and_the_limit_of_a_29_day_month():
    leap = next_date(2, 29)
    book = DatabaseLedger(limits(calls=58))  # 58 ÷ 29 = 2 a day
    with freeze_time(jst(leap, 3, 0)):  # the nightly run
        assert book.claim_record("lead:1") and book.claim_record("lead:2")
        assert not book.claim_record("lead:3")
        snap = book.snapshot()
        assert (snap.day, snap.records_today, snap.daily_record_limit) == (leap, 2, 2)
    with freeze_time(jst(leap + dt.timedelta(days=1), 0, 0)):  # 1 March: a new day, a 31-day month
        assert book.claim_record("lead:3")
        assert book.snapshot().daily_record_limit == 1


def test_redis_keys_follow_the_tokyo_month_and_expire_after_the_following_month(redis_client):
    last = next_date(1, 31)
    book = RedisLedger(limits(), redis_client=redis_client)
    with freeze_time(jst(last, 23, 59, 59)):
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="late"), cost_usd=Decimal("0.01"))
        assert book.claim_record("lead:1")
    with freeze_time(jst(last + dt.timedelta(days=1), 0, 0, 0)):
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="early"), cost_usd=Decimal("0.02"))
        assert book.claim_record("lead:1")  # a new day: counted again
        assert book.snapshot().records_today == 1
    year = last.year
    assert redis_client.get(f"usage:{year:04d}-01:cost") == b"10000"
    assert redis_client.get(f"usage:{year:04d}-02:cost") == b"20000"
    # January's figures stay readable through February, February's through March.
    assert redis_client.expiretime(f"usage:{year:04d}-01:cost") == int(dt.datetime(year, 3, 1, tzinfo=JST).timestamp())
    assert redis_client.expiretime(f"usage:{year:04d}-02:cost") == int(dt.datetime(year, 4, 1, tzinfo=JST).timestamp())
    # A day's record keys live two days after the day.
    assert redis_client.get(f"usage:day:{last.isoformat()}:records") == b"1"
    assert redis_client.expiretime(f"usage:day:{last.isoformat()}:records") == int(
        dt.datetime(year, 2, 2, tzinfo=JST).timestamp())


def test_redis_keys_of_december_expire_at_the_start_of_february(redis_client):
    december = next_date(12, 31)
    book = RedisLedger(limits(), redis_client=redis_client)
    with freeze_time(jst(december, 23, 30)):
        book.commit(book.reserve(cost_usd=Decimal("0.05"), key="new-year's eve"), cost_usd=Decimal("0.01"))
    key = f"usage:{december.year:04d}-12:calls"
    assert redis_client.get(key) == b"1"
    assert redis_client.expiretime(key) == int(dt.datetime(december.year + 1, 2, 1, tzinfo=JST).timestamp())
