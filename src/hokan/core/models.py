"""Core tables: the usage ledger (design document 000 §8, §12).

Money is stored as integer micro-dollars (1 USD = 1,000,000) so that sums are exact on
SQLite and PostgreSQL alike; ``hokan.core.budget`` converts to and from ``Decimal`` USD.
"""

from __future__ import annotations

from django.db import models

from hokan.core.ja import company_name_key


class CompanyNameKeyMixin:
    """For models with ``name`` and ``name_key``: keeps ``name_key`` =
    ``core.ja.company_name_key(name)`` (legal form, spaces and width folded) on every save,
    so that lead lists and the registry are matched on the same key."""

    def save(self, *args, **kwargs) -> None:
        self.name_key = company_name_key(self.name)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)  # type: ignore[misc]


# The ledger scope of rows written before scopes existed (and the default of get_ledger()).
LEADS_SCOPE = "leads"


class UsageMonth(models.Model):
    """Calls and cost of one calendar month (Asia/Tokyo) of one scope, committed and reserved.

    scope: the app whose paid calls these are (``hokan.core.budget.SCOPES``: leads, estimate,
    scoring, municipal, knowledge); each scope has its own limits.
    """

    scope = models.CharField("スコープ", max_length=20, default=LEADS_SCOPE)
    month = models.CharField("月", max_length=7, help_text="YYYY-MM")
    calls = models.IntegerField("確定呼び出し数", default=0)
    cost_micro_usd = models.BigIntegerField("確定コスト (μUSD)", default=0)
    reserved_calls = models.IntegerField("予約中の呼び出し数", default=0)
    reserved_micro_usd = models.BigIntegerField("予約中のコスト (μUSD)", default=0)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "月間使用量"
        verbose_name_plural = "月間使用量"
        constraints = [
            models.UniqueConstraint(fields=["scope", "month"], name="usage_month_scope_unique"),
            models.CheckConstraint(condition=models.Q(reserved_calls__gte=0), name="usage_reserved_calls_nonneg"),
            models.CheckConstraint(condition=models.Q(reserved_micro_usd__gte=0), name="usage_reserved_cost_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.month}"


class UsageReservation(models.Model):
    """One paid call's claim on the monthly budget: reserved → committed | released | expired.

    ``key`` is the idempotency key of the paid work (e.g. ``lead:42:2026-11-21:1``), unique
    within its ``scope``: reserving the same key twice in a scope returns the first reservation
    instead of claiming the budget again; the same key in two scopes is two pieces of work.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved", "予約中"
        COMMITTED = "committed", "確定"
        RELEASED = "released", "取消"
        EXPIRED = "expired", "期限切れ（見積額で確定）"

    scope = models.CharField("スコープ", max_length=20, default=LEADS_SCOPE)
    key = models.CharField("冪等キー", max_length=200)
    month = models.CharField("月", max_length=7)
    calls = models.IntegerField("呼び出し数", default=1)
    estimate_micro_usd = models.BigIntegerField("見積コスト (μUSD)")
    actual_micro_usd = models.BigIntegerField("実コスト (μUSD)", null=True, blank=True)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField("予約日時", auto_now_add=True)
    settled_at = models.DateTimeField("確定日時", null=True, blank=True)

    class Meta:
        verbose_name = "使用量の予約"
        verbose_name_plural = "使用量の予約"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="usage_res_scope_key_unique")]
        # settle_stale() looks for old open reservations.
        indexes = [models.Index(fields=["status", "created_at"], name="usage_res_status_created")]

    def __str__(self) -> str:
        return f"{self.key} ({self.get_status_display()})"


class UsageDay(models.Model):
    """Records processed on one day (Asia/Tokyo) in one scope, against its daily record limit (§12)."""

    scope = models.CharField("スコープ", max_length=20, default=LEADS_SCOPE)
    day = models.DateField("日付")
    records = models.IntegerField("処理件数", default=0)

    class Meta:
        verbose_name = "日次処理件数"
        verbose_name_plural = "日次処理件数"
        constraints = [models.UniqueConstraint(fields=["scope", "day"], name="usage_day_scope_unique")]

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.records}"


class UsageDayRecord(models.Model):
    """Which record keys were counted on a day in a scope, so one record counts once per day."""

    scope = models.CharField("スコープ", max_length=20, default=LEADS_SCOPE)
    day = models.DateField("日付")
    key = models.CharField("レコードキー", max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "日次処理レコード"
        verbose_name_plural = "日次処理レコード"
        constraints = [models.UniqueConstraint(fields=["scope", "day", "key"], name="usage_day_record_scope_unique")]


from hokan.core.api_keys import ApiKey  # noqa: E402,F401  (declared there, registered with core)
