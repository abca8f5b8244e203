"""The usage ledger: monthly cost and call limits and a daily record limit, per scope
(document 000 §8, §12; issue 7 §3).

The document checks usage and increments it after the call; two workers can both pass the
check and overspend. Here every paid call claims its share first, atomically::

    ledger = get_ledger("leads")                     # one ledger per scope (app)
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

Scopes: each app's paid calls are counted and limited separately — ``SCOPES`` = leads,
estimate, scoring, municipal, knowledge, and search_brave / search_perplexity / search_google
(one per search provider, hokan.core.search.quota) and municipal_ocr (document 003 §5.3's OCR
quota). ``get_ledger(scope)`` (default "leads") returns the
ledger of one scope; ``snapshots()`` reads all of them. A scope's limits (settings; the leads
scope keeps the names of document 000 §12)::

    scope      monthly cost (USD)                 monthly calls                  per-call estimate (USD)
    leads      POWERPLEXY_MONTHLY_COST_LIMIT_USD  POWERPLEXY_MONTHLY_CALL_LIMIT  POWERPLEXY_COST_PER_CALL_USD
               150                                3,000                          0.05
    <other>    HOKAN_<SCOPE>_MONTHLY_COST_LIMIT_USD  HOKAN_<SCOPE>_MONTHLY_CALL_LIMIT  HOKAN_<SCOPE>_COST_PER_CALL_USD
               50                                 5,000                          0.05

    daily records: POWERPLEXY_DAILY_RECORD_LIMIT for leads (default 0); other scopes 0.
    0 (daily) = monthly calls ÷ days in the month (floor, at least 1).

A monthly limit of 0 means **no paid call in that scope** (the scope is closed), never "no
limit": the budget is hard, and no value, typo or blank lets a scope spend without a ceiling.
To allow more, set a larger number. A negative or non-numeric limit is refused
(``ImproperlyConfigured``, naming the setting).

Idempotency: every reservation has a key (the paid work, e.g. ``lead:42:2026-11-21:1``),
unique within its scope. Reserving a key again returns the stored reservation with
``created=False`` — whatever its state: committed or expired (paid already), or still open
(the call is in flight in another process, or its worker was killed). Callers must not call
the provider on a reservation they did not create (``complete_json_budgeted`` raises
``AlreadyPaid``). The one exception: a *released* reservation (the call failed without a
charge) is re-opened for a retry, claiming the budget again, and is returned with
``created=True``. The same key in two scopes is two different pieces of work.

Backends (same interface, same semantics; ``get_ledger()`` chooses):

- ``DatabaseLedger``: one conditional UPDATE per claim: atomic on SQLite and PostgreSQL
  without explicit locks. Used when REDIS_URL is empty. Rows carry their ``scope``.
- ``RedisLedger``: Lua scripts (``core/lua/ledger_*.lua``), each run atomically by Redis.
  Keys (month = YYYY-MM in Asia/Tokyo). The leads scope keeps the keys document 000 §8 names
  (``usage:2025-10:calls``); every other scope has its name after ``usage:``::

      usage:{month}:calls              usage:{scope}:{month}:calls     committed calls (int)
      usage:{month}:cost               usage:{scope}:{month}:cost      committed cost in integer
                                       micro-USD (1 USD = 1,000,000; §8 shows a float in USD,
                                       integers keep sums exact)
      usage:{month}:reserved_calls     …:reserved_calls                calls held by open reservations
      usage:{month}:reserved_cost      …:reserved_cost                 micro-USD held by open reservations
      usage:{month}:open               …:open                          sorted set of open reservation
                                       keys by creation time (s)
      usage:reservation:{key}          usage:{scope}:reservation:{key} hash per reservation (id,
                                       month, calls, estimate, status, actual, created_at,
                                       settled_at; amounts in micro-USD)
      usage:day:{YYYY-MM-DD}:records   usage:{scope}:day:{YYYY-MM-DD}:records / :keys
                                       the daily record count and the keys counted
      usage:reservation_seq            (shared) counter for reservation ids

  The month's keys expire at the start of the second month after it (a month's figures stay
  readable for the whole following month); the day's keys two days after the day. The two
  backends do not share state: switching REDIS_URL on or off mid-month starts from zero.

Months and days are calendar months/days in Asia/Tokyo (TIME_ZONE): a call at 23:59 JST on
31 January counts in January, one at 00:00 JST in February, although both are on 31 January
in UTC (tests/core/test_budget_dates.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from hokan.core.errors import BudgetExceeded
from hokan.core.models import LEADS_SCOPE, UsageDay, UsageDayRecord, UsageMonth, UsageReservation

MICRO = Decimal("0.000001")

# The ledger scopes: one per app (ARCHITECTURE.md). Names only: core never imports an app.
# The search providers (hokan.core.search.quota) and the municipal OCR quota (document 003
# §5.3) have a scope each, so that each provider's monthly/daily quota is counted apart.
SCOPES = (LEADS_SCOPE, "estimate", "scoring", "municipal", "knowledge",
          "search_brave", "search_perplexity", "search_google", "municipal_ocr")
# Shown in `hokan usage` and on the admin usage page (user-facing: Japanese).
SCOPE_LABELS = {
    LEADS_SCOPE: "営業リスト補完",
    "estimate": "AI見積もり",
    "scoring": "スコアリング",
    "municipal": "自治体情報",
    "knowledge": "ナレッジ",
    "search_brave": "検索 (Brave)",
    "search_perplexity": "検索 (Perplexity)",
    "search_google": "検索 (Google CSE)",
    "municipal_ocr": "自治体情報 OCR",
}


def to_micro_usd(amount_usd: Decimal, *, round_up: bool = False) -> int:
    """USD (Decimal) → integer micro-dollars; estimates round up, actual costs half-up."""
    amount = Decimal(amount_usd).quantize(MICRO, rounding=ROUND_CEILING if round_up else ROUND_HALF_UP)
    return int(amount / MICRO)


def from_micro_usd(micro: int) -> Decimal:
    """Integer micro-dollars → USD Decimal with 6 decimal places."""
    return (Decimal(micro) * MICRO).quantize(MICRO)


def local_today() -> dt.date:
    """Today in TIME_ZONE (Asia/Tokyo), whatever the machine's zone: the ledger's day."""
    today: dt.date = timezone.localdate()
    return today


def month_of(day: dt.date) -> str:
    """The ledger's month of ``day``: "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


def check_scope(scope: str) -> str:
    """``scope`` if it is one of ``SCOPES``; raises ValueError otherwise (a programming error)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown ledger scope {scope!r}; expected one of {', '.join(SCOPES)}")
    return scope


def setting_names(scope: str) -> dict[str, str]:
    """The names of the settings of ``scope``'s limits: keys cost, calls, daily, per_call.

    The leads scope keeps document 000's names (POWERPLEXY_*); the others are
    HOKAN_<SCOPE>_MONTHLY_COST_LIMIT_USD, HOKAN_<SCOPE>_MONTHLY_CALL_LIMIT and
    HOKAN_<SCOPE>_COST_PER_CALL_USD, and have no daily setting ("daily" is absent).
    """
    if check_scope(scope) == LEADS_SCOPE:
        return {
            "cost": "POWERPLEXY_MONTHLY_COST_LIMIT_USD",
            "calls": "POWERPLEXY_MONTHLY_CALL_LIMIT",
            "daily": "POWERPLEXY_DAILY_RECORD_LIMIT",
            "per_call": "POWERPLEXY_COST_PER_CALL_USD",
        }
    prefix = f"HOKAN_{scope.upper()}_"
    return {
        "cost": f"{prefix}MONTHLY_COST_LIMIT_USD",
        "calls": f"{prefix}MONTHLY_CALL_LIMIT",
        "per_call": f"{prefix}COST_PER_CALL_USD",
    }


def _setting_decimal(name: str) -> Decimal:
    raw = getattr(settings, name)
    try:
        value = Decimal(str(raw).strip())
    except ArithmeticError:  # decimal.InvalidOperation
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"設定 {name} の値 {raw!r} は使えません（0 以上の数値、USD）")
    return value


def _setting_int(name: str) -> int:
    raw = getattr(settings, name)
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ImproperlyConfigured(f"設定 {name} の値 {raw!r} は使えません（0 以上の整数）")
    return value


@dataclass(frozen=True)
class Limits:
    """Limits in force for one scope.

    cost_usd: USD per month; calls: per month (0 = no paid call at all, see the module
    docstring); daily_records_setting: records per day, 0 = derived (``daily_records``);
    cost_per_call_usd: the amount reserved per call when the caller has no better estimate
    (USD, e.g. POWERPLEXY_COST_PER_CALL_USD).
    """

    cost_usd: Decimal
    calls: int
    daily_records_setting: int
    cost_per_call_usd: Decimal = Decimal("0.05")

    @classmethod
    def from_settings(cls, scope: str = LEADS_SCOPE) -> "Limits":
        """The limits of ``scope`` from the settings (``setting_names``).

        Raises:
            ValueError: unknown scope.
            ImproperlyConfigured: a limit is negative or not a number (the message names it).
        """
        names = setting_names(scope)
        return cls(
            cost_usd=_setting_decimal(names["cost"]),
            calls=_setting_int(names["calls"]),
            daily_records_setting=_setting_int(names["daily"]) if "daily" in names else 0,
            cost_per_call_usd=_setting_decimal(names["per_call"]),
        )

    def daily_records(self, day: dt.date) -> int:
        """The daily record limit on ``day``: the setting, or monthly calls ÷ days in that
        month, rounded down, at least 1 (document 000 §12: 未設定時は月間上限を当月日数で除算).

        E.g. 3,000 calls: 96 a day in a 31-day month, 100 in a 30-day one, 107 in February of
        a common year, 103 in a leap year's.
        """
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
    scope: str = LEADS_SCOPE

    @property
    def is_open(self) -> bool:
        return self.status == UsageReservation.Status.RESERVED


@dataclass(frozen=True)
class UsageSnapshot:
    """One scope's usage this month and today against its limits (USD amounts as Decimal)."""

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
    scope: str = LEADS_SCOPE

    @property
    def label(self) -> str:
        """The scope's Japanese name (``SCOPE_LABELS``)."""
        return SCOPE_LABELS.get(self.scope, self.scope)

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
        scope=row.scope,
    )


class _ReopenLost(Exception):
    """Another process re-opened the same released reservation first (rolls our claim back)."""


def _where(ledger_scope: str) -> str:
    return "" if ledger_scope == LEADS_SCOPE else f"（{SCOPE_LABELS[ledger_scope]}）"


def _calls_exceeded(ledger_scope: str, limit: int, spent: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"今月の API 呼び出し数{_where(ledger_scope)}が上限 {limit:,} 件に達しました",
        scope="monthly_calls",
        limit=limit,
        spent=spent,
        ledger_scope=ledger_scope,
    )


def _cost_exceeded(ledger_scope: str, limit_usd: Decimal, spent_micro: int, estimate_micro: int) -> BudgetExceeded:
    spent = from_micro_usd(spent_micro)
    return BudgetExceeded(
        f"今月の API コスト{_where(ledger_scope)}が上限 ${limit_usd} に達しました（使用済み・予約中 ${spent}、"
        f"今回の見積 ${from_micro_usd(estimate_micro)}）",
        scope="monthly_cost",
        limit=limit_usd,
        spent=spent,
        ledger_scope=ledger_scope,
    )


class DatabaseLedger:
    """The ledger of one scope in the Django database (SQLite or PostgreSQL).

    Each claim is one conditional ``UPDATE … WHERE committed + reserved + claim <= limit``;
    the database serialises concurrent UPDATEs of the same row (PostgreSQL re-checks the
    WHERE clause on the latest row version under READ COMMITTED; SQLite holds the write lock
    for the whole IMMEDIATE transaction), so no interleaving can pass a limit.

    limits: default ``Limits.from_settings(scope)``. scope: one of ``SCOPES`` (ValueError else).
    """

    def __init__(self, limits: Limits | None = None, *, scope: str = LEADS_SCOPE) -> None:
        self.scope = check_scope(scope)
        self.limits = limits or Limits.from_settings(scope)

    # --- monthly calls and cost -------------------------------------------------------
    def reserve(self, *, cost_usd: Decimal, calls: int = 1, key: str, day: dt.date | None = None) -> Reservation:
        """Claim ``calls`` calls and ``cost_usd`` USD of this month's budget for the work ``key``.

        Idempotent within the scope: a key reserved before returns that reservation with
        ``created=False`` (committed or expired: the work was paid for; open: it is in flight
        elsewhere). A released key is re-opened (the budget claimed again) and returned with
        ``created=True``.

        Raises:
            BudgetExceeded: scope "monthly_calls" or "monthly_cost"; nothing is claimed.
        """
        day = day or local_today()
        month = month_of(day)
        estimate = to_micro_usd(cost_usd, round_up=True)
        cost_limit = to_micro_usd(self.limits.cost_usd)
        months = UsageMonth.objects.filter(scope=self.scope, month=month)
        reservations = UsageReservation.objects.filter(scope=self.scope)
        UsageMonth.objects.get_or_create(scope=self.scope, month=month)
        existing = reservations.filter(key=key).first()
        if existing is not None and existing.status != UsageReservation.Status.RELEASED:
            return _reservation(existing)
        try:
            with transaction.atomic():
                claimed = months.filter(
                    calls__lte=self.limits.calls - calls - F("reserved_calls"),
                    cost_micro_usd__lte=cost_limit - estimate - F("reserved_micro_usd"),
                ).update(
                    reserved_calls=F("reserved_calls") + calls,
                    reserved_micro_usd=F("reserved_micro_usd") + estimate,
                )
                if not claimed:
                    raise self._exceeded(month, calls, estimate)
                if existing is None:
                    row = UsageReservation.objects.create(
                        scope=self.scope, key=key, month=month, calls=calls, estimate_micro_usd=estimate
                    )
                else:
                    reopened = reservations.filter(pk=existing.pk, status=UsageReservation.Status.RELEASED).update(
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
            return _reservation(reservations.get(key=key))
        return _reservation(row, created=True)

    def _exceeded(self, month: str, calls: int, estimate: int) -> BudgetExceeded:
        usage = UsageMonth.objects.get(scope=self.scope, month=month)
        if usage.calls + usage.reserved_calls + calls > self.limits.calls:
            return _calls_exceeded(self.scope, self.limits.calls, usage.calls + usage.reserved_calls)
        return _cost_exceeded(
            self.scope, self.limits.cost_usd, usage.cost_micro_usd + usage.reserved_micro_usd, estimate
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
        """Commit this scope's reservations left open longer than ``older_than`` at their estimate.

        Returns the number settled. Each app calls it on its scope's ledger at the start of
        a run (the leads job does).
        """
        cutoff = timezone.now() - older_than
        settled = 0
        for pk in UsageReservation.objects.filter(
            scope=self.scope, status=UsageReservation.Status.RESERVED, created_at__lt=cutoff
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
        UsageMonth.objects.filter(scope=row.scope, month=row.month).update(
            reserved_calls=F("reserved_calls") - row.calls,
            reserved_micro_usd=F("reserved_micro_usd") - row.estimate_micro_usd,
            calls=F("calls") + spent_calls,
            cost_micro_usd=F("cost_micro_usd") + (actual or 0),
        )

    # --- daily records ----------------------------------------------------------------
    def claim_record(self, key: str, *, day: dt.date | None = None) -> bool:
        """Count the record ``key`` against the scope's record limit of ``day`` (default
        today); True if it may be processed.

        A key already counted that day returns True again without counting twice. Returns
        False when the daily limit is reached (§12 最大処理件数).
        """
        day = day or local_today()
        if UsageDayRecord.objects.filter(scope=self.scope, day=day, key=key).exists():
            return True
        limit = self.limits.daily_records(day)
        UsageDay.objects.get_or_create(scope=self.scope, day=day)
        try:
            with transaction.atomic():
                claimed = UsageDay.objects.filter(scope=self.scope, day=day, records__lte=limit - 1).update(
                    records=F("records") + 1
                )
                if not claimed:
                    return False
                UsageDayRecord.objects.create(scope=self.scope, day=day, key=key)
        except IntegrityError:
            return True
        return True

    # --- reading ------------------------------------------------------------------------
    def snapshot(self, *, day: dt.date | None = None) -> UsageSnapshot:
        """The scope's usage in the month of ``day`` (default today) and its records that day."""
        day = day or local_today()
        month = month_of(day)
        usage = UsageMonth.objects.filter(scope=self.scope, month=month).first() or UsageMonth(month=month)
        today = UsageDay.objects.filter(scope=self.scope, day=day).first()
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
            scope=self.scope,
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
    """The ledger of one scope in Redis (``REDIS_URL``), shared by every worker and machine.

    Same interface and semantics as ``DatabaseLedger``; each operation is one Lua script
    (``core/lua/ledger_reserve.lua``, ``ledger_settle.lua``, ``ledger_claim_record.lua``),
    which Redis runs atomically, so no interleaving can pass a limit. Key layout and expiry:
    see the module docstring. Times (``created_at``, staleness) use the Redis server's clock.

    limits: default ``Limits.from_settings(scope)``. scope: one of ``SCOPES``.
    redis_client: a ``redis.Redis`` (default: ``hokan.core.redis_conn.get_redis()``).
    Redis errors (``redis.exceptions.RedisError``, e.g. ConnectionError) are not translated.
    """

    def __init__(self, limits: Limits | None = None, *, scope: str = LEADS_SCOPE, redis_client: Any = None) -> None:
        from hokan.core.redis_conn import get_redis, load_script

        self.scope = check_scope(scope)
        self.limits = limits or Limits.from_settings(scope)
        self.redis = redis_client if redis_client is not None else get_redis()
        self._reserve = self.redis.register_script(load_script("ledger_reserve"))
        self._settle_script = self.redis.register_script(load_script("ledger_settle"))
        self._claim = self.redis.register_script(load_script("ledger_claim_record"))

    # --- keys ---------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """``usage:`` for the leads scope (document 000 §8's keys), ``usage:{scope}:`` otherwise."""
        return "usage:" if self.scope == LEADS_SCOPE else f"usage:{self.scope}:"

    def month_keys(self, month: str) -> list[str]:
        """[calls, cost, reserved_calls, reserved_cost, open] keys of ``month`` ("YYYY-MM")."""
        return [f"{self.prefix}{month}:{name}" for name in ("calls", "cost", "reserved_calls", "reserved_cost", "open")]

    def reservation_key(self, key: str) -> str:
        return f"{self.prefix}reservation:{key}"

    def day_keys(self, day: dt.date) -> list[str]:
        """[records, keys] of ``day``."""
        return [f"{self.prefix}day:{day.isoformat()}:records", f"{self.prefix}day:{day.isoformat()}:keys"]

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
        args: list[str | int] = [key, month, calls, estimate, self.limits.calls, to_micro_usd(self.limits.cost_usd),
                                 self._month_expiry(month)]
        code, rid, status, res_month, res_calls, res_estimate, used_calls, used_cost = self._reserve(
            keys=keys, args=args
        )
        status = status.decode() if isinstance(status, bytes) else status
        res_month = res_month.decode() if isinstance(res_month, bytes) else res_month
        if code == -1:
            raise _calls_exceeded(self.scope, self.limits.calls, int(used_calls))
        if code == -2:
            raise _cost_exceeded(self.scope, self.limits.cost_usd, int(used_cost), estimate)
        return Reservation(
            id=int(rid), key=key, month=res_month, calls=int(res_calls),
            estimate_usd=from_micro_usd(int(res_estimate)), status=status, created=code == 1, scope=self.scope,
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
        """Commit this scope's reservations left open longer than ``older_than`` at their estimate.

        Looks at this month's and last month's open reservations. Returns the number settled.
        """
        seconds, _ = self.redis.time()
        cutoff = seconds - older_than.total_seconds()
        this_month = month_of(local_today())
        settled = 0
        for month in (month_of(_month_start(this_month, months_later=-1)), this_month):
            for raw in self.redis.zrangebyscore(self.month_keys(month)[4], "-inf", f"({cutoff}"):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if self._settle(key, month, "expired", -1):
                    settled += 1
        return settled

    # --- daily records ----------------------------------------------------------------
    def claim_record(self, key: str, *, day: dt.date | None = None) -> bool:
        """Count the record ``key`` against the day's record limit; as ``DatabaseLedger``."""
        day = day or local_today()
        expire_at = _epoch(day + dt.timedelta(days=2))
        return bool(self._claim(keys=self.day_keys(day), args=[key, self.limits.daily_records(day), expire_at]))

    # --- reading ------------------------------------------------------------------------
    def snapshot(self, *, day: dt.date | None = None) -> UsageSnapshot:
        """The scope's usage in the month of ``day`` (default today) and its records that day."""
        day = day or local_today()
        month = month_of(day)
        calls, cost, reserved_calls, reserved_cost, _open = self.month_keys(month)
        values = self.redis.mget([calls, cost, reserved_calls, reserved_cost, self.day_keys(day)[0]])
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
            scope=self.scope,
        )


UsageLedger = DatabaseLedger | RedisLedger


def get_ledger(scope: str = LEADS_SCOPE, *, limits: Limits | None = None) -> UsageLedger:
    """The ledger of ``scope`` (one of ``SCOPES``; default "leads") for this deployment:
    ``RedisLedger`` when REDIS_URL is set, else ``DatabaseLedger``; limits from the settings
    unless ``limits`` are given (the free-tier quotas of hokan.municipal.quotas).

    Raises:
        ValueError: unknown scope.
        ImproperlyConfigured: a limit setting of the scope is negative or not a number.
    """
    if settings.REDIS_URL:
        return RedisLedger(limits, scope=scope)
    return DatabaseLedger(limits, scope=scope)


def snapshots(*, day: dt.date | None = None) -> list[UsageSnapshot]:
    """Every scope's snapshot (``SCOPES`` order) for the month of ``day`` (default today).

    Raises:
        ImproperlyConfigured: as ``get_ledger``.
        redis.exceptions.RedisError: REDIS_URL is set and Redis cannot be reached.
    """
    day = day or local_today()
    return [get_ledger(scope).snapshot(day=day) for scope in SCOPES]
