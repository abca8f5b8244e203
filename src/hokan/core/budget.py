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

Backends: ``DatabaseLedger`` (one conditional UPDATE per claim: atomic on SQLite and
PostgreSQL without explicit locks). The Redis backend comes with the leads service issue.
Months and days are calendar months/days in Asia/Tokyo (TIME_ZONE).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
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
    """A claim on the budget. ``status`` is that of the stored row when it was returned."""

    id: int
    key: str
    month: str
    calls: int
    estimate_usd: Decimal
    status: str

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


def _reservation(row: UsageReservation) -> Reservation:
    return Reservation(
        id=row.pk,
        key=row.key,
        month=row.month,
        calls=row.calls,
        estimate_usd=from_micro_usd(row.estimate_micro_usd),
        status=row.status,
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

        Idempotent: a key reserved before returns that reservation (check ``is_open``; a
        committed one means the work was already paid for).

        Raises:
            BudgetExceeded: scope "monthly_calls" or "monthly_cost"; nothing is claimed.
        """
        day = day or local_today()
        month = month_of(day)
        estimate = to_micro_usd(cost_usd, round_up=True)
        cost_limit = to_micro_usd(self.limits.cost_usd)
        UsageMonth.objects.get_or_create(month=month)
        existing = UsageReservation.objects.filter(key=key).first()
        if existing is not None:
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
                row = UsageReservation.objects.create(
                    key=key, month=month, calls=calls, estimate_micro_usd=estimate
                )
        except IntegrityError:
            # Another process reserved the same key between our lookup and our insert;
            # the transaction rolled our claim back, so return theirs.
            return _reservation(UsageReservation.objects.get(key=key))
        return _reservation(row)

    def _exceeded(self, month: str, calls: int, estimate: int) -> BudgetExceeded:
        usage = UsageMonth.objects.get(month=month)
        if usage.calls + usage.reserved_calls + calls > self.limits.calls:
            return BudgetExceeded(
                f"今月の API 呼び出し数が上限 {self.limits.calls:,} 件に達しました",
                scope="monthly_calls",
                limit=self.limits.calls,
                spent=usage.calls + usage.reserved_calls,
            )
        spent = from_micro_usd(usage.cost_micro_usd + usage.reserved_micro_usd)
        return BudgetExceeded(
            f"今月の API コストが上限 ${self.limits.cost_usd} に達しました（使用済み・予約中 ${spent}、"
            f"今回の見積 ${from_micro_usd(estimate)}）",
            scope="monthly_cost",
            limit=self.limits.cost_usd,
            spent=spent,
        )

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


def get_ledger() -> DatabaseLedger:
    """The ledger configured for this deployment (the database backend for now)."""
    return DatabaseLedger()
