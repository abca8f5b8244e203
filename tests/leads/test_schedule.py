"""The nightly run is at 03:00 Asia/Tokyo (document 000 §9/§12) — 18:00 UTC of the day before —
at a month end, on a leap day and over the new year (issue 7 §0). The clock is moved with
freezegun; the schedule is the one ``migrate`` created (leads/schedule.py), read by
django-celery-beat's own crontab."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from freezegun import freeze_time

from hokan.leads.schedule import ENRICH_TASK

JST = ZoneInfo("Asia/Tokyo")
UTC = dt.timezone.utc


def next_date(month: int, day: int) -> dt.date:
    """The first ``month``/``day`` after today (Tokyo); 29 February of the next leap year."""
    today = timezone.localdate()
    year = today.year
    while True:
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            year += 1
            continue
        if candidate > today:
            return candidate
        year += 1


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=JST)


@pytest.fixture
def nightly():
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.get(task=ENRICH_TASK).schedule


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["month end", "leap day", "new year"])
def test_the_nightly_run_is_due_at_3am_tokyo(nightly, kind):
    day = {
        "month end": lambda: next_date(1, 31),
        "leap day": lambda: next_date(2, 29) - dt.timedelta(days=1),  # 28 February of a leap year
        "new year": lambda: next_date(12, 31),
    }[kind]()
    following = day + dt.timedelta(days=1)
    last_run = at(day, 3)
    with freeze_time(at(day, 23, 30)):
        due, wait_s = nightly.is_due(last_run)
        assert not due and wait_s == pytest.approx(3.5 * 3600, abs=1)
    with freeze_time(at(following, 2, 59)):
        due, wait_s = nightly.is_due(last_run)
        assert not due and wait_s == pytest.approx(60, abs=1)
    with freeze_time(at(following, 3, 0, 1)):
        assert dt.datetime.now(UTC).date() == day  # 18:00 UTC of the day before
        due, wait_s = nightly.is_due(last_run)
        assert due and wait_s == pytest.approx(24 * 3600 - 1, abs=2)  # then again tomorrow at 03:00
    if kind == "leap day":
        assert following.month == 2 and following.day == 29
    if kind == "new year":
        assert (following.month, following.day) == (1, 1)
