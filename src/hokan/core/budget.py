"""The usage ledger: monthly cost and call limits and a daily record limit (document 000 §8, §12).

The document checks usage and increments it after the call; two workers can both pass the
check and overspend. Here every paid call claims its share first, atomically::

    r = ledger.reserve(cost_usd=Decimal("0.05"), key="lead:42:2026-11-21:1")  # or BudgetExceeded
    try:
        completion = client.complete_json(...)
    except NothingCharged:
        ledger.release(r)
        raise
    ledger.commit(r, cost_usd=completion.usage.cost_usd)  # the provider's actual cost

A reservation holds its estimate against the limits until it is committed (replaced by the
actual cost) or released. The estimate should be an upper bound of the call's cost: the
actual cost is always recorded, so a call dearer than its estimate can pass a limit by the
difference. Reservations left open by a killed worker are settled by ``settle_stale`` at
their estimate — we cannot know whether the provider charged, and a budget must not be
overspent by guessing "no".

Limits (settings, names as in the document §12):
    POWERPLEXY_MONTHLY_COST_LIMIT_USD  default 150 (USD)
    POWERPLEXY_MONTHLY_CALL_LIMIT      default 3,000 (calls)
    POWERPLEXY_DAILY_RECORD_LIMIT      default 0 = monthly calls ÷ days in the month (floor, at least 1)

Idempotency: every reservation has a key (the paid work, e.g. ``lead:42:2026-11-21:1``).
Reserving a key again returns the stored reservation with ``created=False`` — whatever its
state: committed or expired (paid already), or still open (the call is in flight in another
process, or its worker was killed). Callers must not call the provider on a reservation they
did not create (``complete_json_budgeted`` raises ``AlreadyPaid``). The one exception: a
*released* reservation (the call failed without a charge) is re-opened for a retry, claiming
the budget again, and is returned with ``created=True``.

Backends (same interface, same semantics; ``get_ledger()`` chooses):

- ``DatabaseLedger``: one conditional UPDATE per claim: atomic on SQLite and PostgreSQL
  without explicit locks. Used when REDIS_URL is empty.
- ``RedisLedger``: Lua scripts (``core/lua/ledger_*.lua``), each run atomically by Redis.
  Keys (document 000 §8, month = YYYY-MM in Asia/Tokyo)::

      usage:{month}:calls            committed calls (int)
      usage:{month}:cost             committed cost in integer micro-USD (1 USD = 1,000,000;
                                     §8 shows a float in USD, integers keep sums exact)
      usage:{month}:reserved_calls   calls held by open reservations
      usage:{month}:reserved_cost    micro-USD held by open reservations
      usage:{month}:open             sorted set of open reservation keys by creation time (s)
      usage:reservation:{key}        hash per reservation (id, month, calls, estimate, status,
                                     actual, created_at, settled_at; amounts in micro-USD)
      usage:reservation_seq          counter for reservation ids
      usage:day:{YYYY-MM-DD}:records / :keys   the daily record count and the keys counted

  The month's keys expire at the start of the second month after it (a month's figures stay
  readable for the whole following month); the day's keys two days after the day. The two
  backends do not share state: switching REDIS_URL on or off mid-month starts from zero.

Months and days are calendar months/days in Asia/Tokyo (TIME_ZONE).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from hokan.core.errors import BudgetExceeded
from hokan.core.models import UsageDay, UsageDayRecord, UsageMonth, UsageReservation

MICRO = Decimal("0.000001")


def to_micro_usd(amount_usd: Decimal, *, round_up: bool = False) -> int:
    """USD (Decimal) → integer micro-dollars; estimates round up, actual costs half-up."""
    amount = Decimal(amount_usd).quantize(MICRO, rounding=ROUND_CEILING if round_up else ROUND_HALF_UP)
    return int(amount / MICRO)


def from_micro_usd(micro: int) -> Decimal:
    """Integer micro-dollars → USD Decimal with 6 decimal places."""
    return (Decimal(micro) * MICRO).quantize(MICRO)


def local_today() -> dt.date:
    return timezone.localdate()


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class Limits:
    """Limits in force. cost_usd: USD per month; calls: per month; daily_records: per day."""

    cost_usd: Decimal
    calls: int
    daily_records_setting: int

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            cost_usd=Decimal(settings.POWERPLEXY_MONTHLY_COST_LIMIT_USD),
            calls=int(settings.POWERPLEXY_MONTHLY_CALL_LIMIT),
            daily_records_setting=int(settings.POWERPLEXY_DAILY_RECORD_LIMIT),
        )

    def daily_records(self, day: dt.date) -> int:
        """The daily record limit: the setting, or monthly calls ÷ days in that month (§12)."""
        if self.daily_records_setting > 0:
            return self.daily_records_setting
        days = calendar.monthrange(day.year, day.month)[1]
        return max(1, self.calls // days)


@dataclass(frozen=True)
class Reservation:
    """A claim on the budget. ``status`` is that of the stored row when it was returned.

    created: True when the ``reserve`` call that returned it claimed the budget (a new key, or
    a released one re-opened); False when an existing reservation of the key was returned
    (paid, expired, or open in another process): the caller must not pay for the work again.
    """

    id: int
    key: str
    month: str
    calls: int
    estimate_usd: Decimal
    status: str
    created: bool = False

    @property
    def is_open(self) -> bool:
        return self.status == UsageReservation.Status.RESERVED


@dataclass(frozen=True)
class UsageSnapshot:
    """This month's and today's usage against the limits (USD amounts as Decimal)."""

    month: str
    calls: int
    cost_usd: Decimal
    reserved_calls: int
    reserved_cost_usd: Decimal
    call_limit: int
    cost_limit_usd: Decimal
    day: dt.date
    records_today: int
    daily_record_limit: int

    @property
    def remaining_calls(self) -> int:
        return max(0, self.call_limit - self.calls - self.reserved_calls)

    @property
    def remaining_cost_usd(self) -> Decimal:
        return max(Decimal("0"), self.cost_limit_usd - self.cost_usd - self.reserved_cost_usd)

    @property
    def remaining_records_today(self) -> int:
        return max(0, self.daily_record_limit - self.records_today)

    @property
    def limit_reached(self) -> bool:
        return self.remaining_calls <= 0 or self.remaining_cost_usd <= 0


def _reservation(row: UsageReservation, *, created: bool = False) -> Reservation:
    return Reservation(
        id=row.pk,
        key=row.key,
        month=row.month,
        calls=row.calls,
        estimate_usd=from_micro_usd(row.estimate_micro_usd),
        status=row.status,
        created=created,
    )


class _ReopenLost(Exception):
    """Another process re-opened the same released reservation first (rolls our claim back)."""


def _calls_exceeded(limit: int, spent: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"今月の API 呼び出し数が上限 {limit:,} 件に達しました",
        scope="monthly_calls",
        limit=limit,
        spent=spent,
    )


def _cost_exceeded(limit_usd: Decimal, spent_micro: int, estimate_micro: int) -> BudgetExceeded:
    spent = from_micro_usd(spent_micro)
    return BudgetExceeded(
        f"今月の API コストが上限 ${limit_usd} に達しました（使用済み・予約中 ${spent}、"
        f"今回の見積 ${from_micro_usd(estimate_micro)}）",
        scope="monthly_cost",
        limit=limit_usd,
        spent=spent,
    )


class DatabaseLedger:
    """The ledger in the Django database (SQLite or PostgreSQL).

    Each claim is one conditional ``UPDATE … WHERE committed + reserved + claim <= limit``;
    the database serialises concurrent UPDATEs of the same row (PostgreSQL re-checks the
    WHERE clause on the latest row version under READ COMMITTED; SQLite holds the write lock
    for the whole IMMEDIATE transaction), so no interleaving can pass a limit.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_settings()

    # --- monthly calls and cost -------------------------------------------------------
    def reserve(self, *, cost_usd: Decimal, calls: int = 1, key: str, day: dt.date | None = None) -> Reservation:
        """Claim ``calls`` calls and ``cost_usd`` USD of this month's budget for the work ``key``.

        Idempotent: a key reserved before returns that reservation with ``created=False``
        (committed or expired: the work was paid for; open: it is in flight elsewhere). A
        released key is re-opened (the budget claimed again) and returned with ``created=True``.

        Raises:
            BudgetExceeded: scope "monthly_calls" or "monthly_cost"; nothing is claimed.
        """
        day = day or local_today()
        month = month_of(day)
        estimate = to_micro_usd(cost_usd, round_up=True)
        cost_limit = to_micro_usd(self.limits.cost_usd)
        UsageMonth.objects.get_or_create(month=month)
        existing = UsageReservation.objects.filter(key=key).first()
        if existing is not None and existing.status != UsageReservation.Status.RELEASED:
            return _reservation(existing)
        try:
            with transaction.atomic():
                claimed = (
                    UsageMonth.objects.filter(
                        month=month,
                        calls__lte=self.limits.calls - calls - F("reserved_calls"),
                        cost_micro_usd__lte=cost_limit - estimate - F("reserved_micro_usd"),
                    ).update(
                        reserved_calls=F("reserved_calls") + calls,
                        reserved_micro_usd=F("reserved_micro_usd") + estimate,
                    )
                )
                if not claimed:
                    raise self._exceeded(month, calls, estimate)
                if existing is None:
                    row = UsageReservation.objects.create(
                        key=key, month=month, calls=calls, estimate_micro_usd=estimate
                    )
                else:
                    reopened = UsageReservation.objects.filter(
                        pk=existing.pk, status=UsageReservation.Status.RELEASED
                    ).update(
                        status=UsageReservation.Status.RESERVED, month=month, calls=calls,
                        estimate_micro_usd=estimate, actual_micro_usd=None, settled_at=None,
                        created_at=timezone.now(),
                    )
                    if not reopened:
                        raise _ReopenLost
                    row = UsageReservation.objects.get(pk=existing.pk)
        except (IntegrityError, _ReopenLost):
            # Another process reserved (or re-opened) the same key between our lookup and our
            # write; the transaction rolled our claim back, so return theirs.
            return _reservation(UsageReservation.objects.get(key=key))
        return _reservation(row, created=True)

    def _exceeded(self, month: str, calls: int, estimate: int) -> BudgetExceeded:
        usage = UsageMonth.objects.get(month=month)
        if usage.calls + usage.reserved_calls + calls > self.limits.calls:
            return _calls_exceeded(self.limits.calls, usage.calls + usage.reserved_calls)
        return _cost_exceeded(self.limits.cost_usd, usage.cost_micro_usd + usage.reserved_micro_usd, estimate)

    def commit(self, reservation: Reservation, *, cost_usd: Decimal) -> None:
        """Replace the reservation's estimate by the actual cost (USD). Idempotent."""
        actual = to_micro_usd(cost_usd)
        with transaction.atomic():
            row = UsageReservation.objects.select_for_update().get(pk=reservation.id)
            if row.status != UsageReservation.Status.RESERVED:
                return
            self._settle(row, UsageReservation.Status.COMMITTED, actual)

    def release(self, reservation: Reservation) -> None:
        """Give the reservation back unspent (the call was not made or not charged). Idempotent."""
        with transaction.atomic():
            row = UsageReservation.objects.select_for_update().get(pk=reservation.id)
            if row.status != UsageReservation.Status.RESERVED:
                return
            self._settle(row, UsageReservation.Status.RELEASED, None)

    def settle_stale(self, *, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
        """Commit reservations left open longer than ``older_than`` at their estimate.

        Returns the number settled. Called at the start of each run.
        """
        cutoff = timezone.now() - older_than
        settled = 0
        for pk in UsageReservation.objects.filter(
            status=UsageReservation.Status.RESERVED, created_at__lt=cutoff
        ).values_list("pk", flat=True):
            with transaction.atomic():
                row = UsageReservation.objects.select_for_update().get(pk=pk)
                if row.status == UsageReservation.Status.RESERVED:
                    self._settle(row, UsageReservation.Status.EXPIRED, row.estimate_micro_usd)
                    settled += 1
        return settled

    @staticmethod
    def _settle(row: UsageReservation, status: str, actual: int | None) -> None:
        # Only the transition out of RESERVED moves money, so settling twice is harmless.
        changed = UsageReservation.objects.filter(pk=row.pk, status=UsageReservation.Status.RESERVED).update(
            status=status, actual_micro_usd=actual, settled_at=timezone.now()
        )
        if not changed:
            return
        spent_calls = row.calls if actual is not None else 0
        UsageMonth.objects.filter(month=row.month).update(
            reserved_calls=F("reserved_calls") - row.calls,
            reserved_micro_usd=F("reserved_micro_usd") - row.estimate_micro_usd,
            calls=F("calls") + spent_calls,
            cost_micro_usd=F("cost_micro_usd") + (actual or 0),
        )

    # --- daily records ----------------------------------------------------------------
    def claim_record(self, key: str, *, day: dt.date | None = None) -> bool:
        """Count the record ``key`` against today's record limit; True if it may be processed.

        A key already counted today returns True again without counting twice. Returns
        False when the daily limit is reached (§12 最大処理件数).
        """
        day = day or local_today()
        if UsageDayRecord.objects.filter(day=day, key=key).exists():
            return True
        limit = self.limits.daily_records(day)
        UsageDay.objects.get_or_create(day=day)
        try:
            with transaction.atomic():
                claimed = UsageDay.objects.filter(day=day, records__lte=limit - 1).update(records=F("records") + 1)
                if not claimed:
                    return False
                UsageDayRecord.objects.create(day=day, key=key)
        except IntegrityError:
            return True
        return True

    # --- reading ------------------------------------------------------------------------
    def snapshot(self, *, day: dt.date | None = None) -> UsageSnapshot:
        """This month's usage and today's records against the limits."""
        day = day or local_today()
        month = month_of(day)
        usage = UsageMonth.objects.filter(month=month).first() or UsageMonth(month=month)
        today = UsageDay.objects.filter(day=day).first()
        return UsageSnapshot(
            month=month,
            calls=usage.calls,
            cost_usd=from_micro_usd(usage.cost_micro_usd),
            reserved_calls=usage.reserved_calls,
            reserved_cost_usd=from_micro_usd(usage.reserved_micro_usd),
            call_limit=self.limits.calls,
            cost_limit_usd=self.limits.cost_usd,
            day=day,
            records_today=today.records if today else 0,
            daily_record_limit=self.limits.daily_records(day),
        )


def _epoch(day: dt.date) -> int:
    """Unix seconds of 00:00 of ``day`` in the project's time zone."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())
    return int(start.timestamp())


def _month_start(month: str, *, months_later: int = 0) -> dt.date:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + (number - 1) + months_later
    return dt.date(index // 12, index % 12 + 1, 1)


class RedisLedger:
    """The ledger in Redis (``REDIS_URL``), shared by every worker and machine.

    Same interface and semantics as ``DatabaseLedger``; each operation is one Lua script
    (``core/lua/ledger_reserve.lua``, ``ledger_settle.lua``, ``ledger_claim_record.lua``),
    which Redis runs atomically, so no interleaving can pass a limit. Key layout and expiry:
    see the module docstring. Times (``created_at``, staleness) use the Redis server's clock.

    redis_client: a ``redis.Redis`` (default: ``hokan.core.redis_conn.get_redis()``).
    """

    def __init__(self, limits: Limits | None = None, *, redis_client: Any = None) -> None:
        from hokan.core.redis_conn import get_redis, load_script

        self.limits = limits or Limits.from_settings()
        self.redis = redis_client if redis_client is not None else get_redis()
        self._reserve = self.redis.register_script(load_script("ledger_reserve"))
        self._settle_script = self.redis.register_script(load_script("ledger_settle"))
        self._claim = self.redis.register_script(load_script("ledger_claim_record"))

    # --- keys ---------------------------------------------------------------------------
    @staticmethod
    def month_keys(month: str) -> list[str]:
        """[calls, cost, reserved_calls, reserved_cost, open] keys of ``month`` ("YYYY-MM")."""
        return [f"usage:{month}:{name}" for name in ("calls", "cost", "reserved_calls", "reserved_cost", "open")]

    @staticmethod
    def reservation_key(key: str) -> str:
        return f"usage:reservation:{key}"

    @staticmethod
    def _month_expiry(month: str) -> int:
        return _epoch(_month_start(month, months_later=2))

    # --- monthly calls and cost -------------------------------------------------------
    def reserve(self, *, cost_usd: Decimal, calls: int = 1, key: str, day: dt.date | None = None) -> Reservation:
        """Claim ``calls`` calls and ``cost_usd`` USD of this month's budget for the work ``key``.

        Idempotent exactly as ``DatabaseLedger.reserve``.

        Raises:
            BudgetExceeded: scope "monthly_calls" or "monthly_cost"; nothing is claimed.
        """
        day = day or local_today()
        month = month_of(day)
        estimate = to_micro_usd(cost_usd, round_up=True)
        keys = [self.reservation_key(key), *self.month_keys(month), "usage:reservation_seq"]
        args = [key, month, calls, estimate, self.limits.calls, to_micro_usd(self.limits.cost_usd),
                self._month_expiry(month)]
        code, rid, status, res_month, res_calls, res_estimate, used_calls, used_cost = self._reserve(
            keys=keys, args=args
        )
        status = status.decode() if isinstance(status, bytes) else status
        res_month = res_month.decode() if isinstance(res_month, bytes) else res_month
        if code == -1:
            raise _calls_exceeded(self.limits.calls, int(used_calls))
        if code == -2:
            raise _cost_exceeded(self.limits.cost_usd, int(used_cost), estimate)
        return Reservation(
            id=int(rid), key=key, month=res_month, calls=int(res_calls),
            estimate_usd=from_micro_usd(int(res_estimate)), status=status, created=code == 1,
        )

    def _settle(self, key: str, month: str, status: str, actual_micro: int) -> bool:
        keys = [self.reservation_key(key), *self.month_keys(month)]
        return bool(self._settle_script(keys=keys, args=[status, actual_micro, key]))

    def commit(self, reservation: Reservation, *, cost_usd: Decimal) -> None:
        """Replace the reservation's estimate by the actual cost (USD). Idempotent."""
        self._settle(reservation.key, reservation.month, "committed", to_micro_usd(cost_usd))

    def release(self, reservation: Reservation) -> None:
        """Give the reservation back unspent (the call was not made or not charged). Idempotent."""
        self._settle(reservation.key, reservation.month, "released", 0)

    def settle_stale(self, *, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
        """Commit reservations left open longer than ``older_than`` at their estimate.

        Looks at this month's and last month's open reservations. Returns the number settled.
        """
        seconds, _ = self.redis.time()
        cutoff = seconds - older_than.total_seconds()
        this_month = month_of(local_today())
        settled = 0
        for month in (month_of(_month_start(this_month, months_later=-1)), this_month):
            for raw in self.redis.zrangebyscore(self.month_keys(month)[4], "-inf", f"({cutoff}"):
                key = raw.decode() if isinstance(raw, bytes) else raw
                if self._settle(key, month, "expired", -1):
                    settled += 1
        return settled

    # --- daily records ----------------------------------------------------------------
    def claim_record(self, key: str, *, day: dt.date | None = None) -> bool:
        """Count the record ``key`` against the day's record limit; as ``DatabaseLedger``."""
        day = day or local_today()
        keys = [f"usage:day:{day.isoformat()}:records", f"usage:day:{day.isoformat()}:keys"]
        expire_at = _epoch(day + dt.timedelta(days=2))
        return bool(self._claim(keys=keys, args=[key, self.limits.daily_records(day), expire_at]))

    # --- reading ------------------------------------------------------------------------
    def snapshot(self, *, day: dt.date | None = None) -> UsageSnapshot:
        """This month's usage and today's records against the limits."""
        day = day or local_today()
        month = month_of(day)
        calls, cost, reserved_calls, reserved_cost, _open = self.month_keys(month)
        values = self.redis.mget([calls, cost, reserved_calls, reserved_cost, f"usage:day:{day.isoformat()}:records"])
        calls_n, cost_n, rcalls_n, rcost_n, records_n = (int(v or 0) for v in values)
        return UsageSnapshot(
            month=month,
            calls=calls_n,
            cost_usd=from_micro_usd(cost_n),
            reserved_calls=rcalls_n,
            reserved_cost_usd=from_micro_usd(rcost_n),
            call_limit=self.limits.calls,
            cost_limit_usd=self.limits.cost_usd,
            day=day,
            records_today=records_n,
            daily_record_limit=self.limits.daily_records(day),
        )


UsageLedger = DatabaseLedger | RedisLedger


def get_ledger() -> UsageLedger:
    """The ledger configured for this deployment: ``RedisLedger`` when REDIS_URL is set, else
    ``DatabaseLedger``."""
    if settings.REDIS_URL:
        return RedisLedger()
    return DatabaseLedger()
