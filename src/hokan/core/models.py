"""Core tables: the usage ledger (design document 000 §8, §12).

Money is stored as integer micro-dollars (1 USD = 1,000,000) so that sums are exact on
SQLite and PostgreSQL alike; ``hokan.core.budget`` converts to and from ``Decimal`` USD.
"""

from __future__ import annotations

import uuid

from django.db import models

from hokan.core.ja import company_name_key


class CompanyNameKeyMixin:
    """For models with ``name`` and ``name_key``: keeps ``name_key`` =
    ``core.ja.company_name_key(name)`` (legal form, spaces and width folded) on every save,
    so that lead lists and the registry are matched on the same key."""

    name: str  # fields of the model it is mixed into
    name_key: str

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


# --- shared rate limits (hokan.core.ratelimit.DatabaseStore) -----------------------------------
class RateLimitState(models.Model):
    """The shared state of one rate-limit key (``hokan.core.ratelimit.DatabaseStore``).

    state: ``KeyState`` as JSON; version: bumped by every change (the conditional UPDATE);
    expires_at: Unix seconds after which the row may be deleted (nothing in it counts any more).
    """

    key = models.CharField("キー", max_length=200, primary_key=True)
    state = models.TextField("状態 (JSON)", blank=True, default="")
    version = models.BigIntegerField("版", default=0)
    expires_at = models.FloatField("期限 (Unix秒)", default=0.0, db_index=True)  # the sweep's filter

    class Meta:
        verbose_name = "レート制限の状態"
        verbose_name_plural = "レート制限の状態"

    def __str__(self) -> str:
        return self.key


# --- LLM response cache (hokan.core.cache) --------------------------------------------------------
class LLMCacheEntry(models.Model):
    """One cached LLM answer (hokan.core.cache, design document 002 §4).

    key: SHA-256 hex of every request field that changes the answer (``cache.cache_key``),
    unique within its ``scope`` (the app: leads, scoring, municipal, ...); each scope has its
    own entries and its own maximum. response: ``{"data": {...}, "raw_text": str,
    "citations": [str], "repaired": bool}``; usage: the paid call's ``Usage`` as JSON
    (``cost_usd`` a decimal string, USD) — what a hit saves.
    """

    scope = models.CharField("スコープ", max_length=30)
    key = models.CharField("キー (SHA-256)", max_length=64)
    provider = models.CharField("プロバイダ", max_length=40)
    model = models.CharField("モデル", max_length=200, blank=True)
    response = models.JSONField("回答")
    usage = models.JSONField("使用量", default=dict)
    created_at = models.DateTimeField("作成日時")
    expires_at = models.DateTimeField("有効期限")
    last_used_at = models.DateTimeField("最終利用日時")
    hit_count = models.IntegerField("ヒット数", default=0)

    class Meta:
        verbose_name = "LLMキャッシュ"
        verbose_name_plural = "LLMキャッシュ"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="llm_cache_scope_key_unique")]
        indexes = [
            # eviction beyond the maximum: the least recently used entries of a scope
            models.Index(fields=["scope", "last_used_at"], name="llm_cache_scope_lru"),
            # purge of expired entries of a scope
            models.Index(fields=["scope", "expires_at"], name="llm_cache_scope_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key[:12]}"


class LLMCacheCounter(models.Model):
    """Hits and misses of the LLM cache per scope, since the counters were created."""

    scope = models.CharField("スコープ", max_length=30, unique=True)
    hits = models.BigIntegerField("ヒット", default=0)
    misses = models.BigIntegerField("ミス", default=0)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "LLMキャッシュ統計"
        verbose_name_plural = "LLMキャッシュ統計"

    def __str__(self) -> str:
        return f"{self.scope}: {self.hits}/{self.hits + self.misses}"


# --- jobs and chunks (hokan.core.jobs) ------------------------------------------------------------
class Job(models.Model):
    """A piece of work split into chunks (hokan.core.jobs; design document 002 §5).

    kind: the chunk handler's name (``jobs.register_chunk_handler``), e.g. "leads.enrich".
    scope: the app it belongs to (leads, scoring, ...). key: an optional idempotency key
    (e.g. "leads.nightly:2026-12-01"): creating a job with a key that exists returns that job.
    status is derived from the chunks (``jobs.refresh_job_status``): completed or failed only
    when every chunk is; interrupted when stopped on purpose or by a fatal error (``message``).
    totals: sums of the numeric values of the done chunks' results, written as chunks finish.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "待機中"
        RUNNING = "running", "実行中"
        COMPLETED = "completed", "完了"
        FAILED = "failed", "失敗"
        INTERRUPTED = "interrupted", "中断"

    public_id = models.UUIDField("公開ID", default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField("種類", max_length=60)
    scope = models.CharField("スコープ", max_length=30, blank=True)
    key = models.CharField("冪等キー", max_length=200, null=True, blank=True, unique=True)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField("パラメータ", default=dict, blank=True)
    message = models.TextField("メッセージ", blank=True)
    chunk_row_limit = models.IntegerField("チャンクの件数上限")
    retry_limit = models.IntegerField("チャンクの再試行上限")
    total_chunks = models.IntegerField("チャンク数", default=0)
    total_items = models.IntegerField("件数", default=0)
    totals = models.JSONField("集計", default=dict, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    started_at = models.DateTimeField("開始日時", null=True, blank=True)
    finished_at = models.DateTimeField("終了日時", null=True, blank=True)
    # the time of the check of this job last arranged by hokan.core.tasks (a delayed task, or
    # the sweep's tasks for a stalled job); a time in the future means one is on its way
    swept_at = models.DateTimeField("再投入日時", null=True, blank=True)

    class Meta:
        verbose_name = "ジョブ"
        verbose_name_plural = "ジョブ"
        # the sweep (jobs.sweep_jobs) lists the unfinished jobs
        indexes = [models.Index(fields=["status"], name="job_status")]

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id} ({self.get_status_display()})"


class JobChunk(models.Model):
    """One chunk of a job: rows ``[row_start, row_end)`` (0-based data rows, end exclusive) or
    ``item_keys`` (a JSON list of the items' keys, e.g. lead ids).

    Claimed by one worker at a time (``jobs.claim_next_chunk``: a conditional UPDATE);
    ``claim_count`` increases with every claim and is the claim's token: only the holder of
    the latest claim can heartbeat, complete or fail the chunk. ``heartbeat_at`` older than the
    lease (HOKAN_JOB_LEASE_S) means the worker is gone and the chunk may be reclaimed.
    ``available_at``: a chunk put back after a failure waits until then (backoff).
    result: the handler's JSON summary of the done chunk (counts, cost as strings ...).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "待機中"
        RUNNING = "running", "実行中"
        DONE = "done", "完了"
        FAILED = "failed", "失敗"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks", verbose_name="ジョブ")
    chunk_id = models.IntegerField("チャンク番号")
    row_start = models.IntegerField("開始行", null=True, blank=True)
    row_end = models.IntegerField("終了行（含まない）", null=True, blank=True)
    item_keys = models.JSONField("項目キー", null=True, blank=True)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.PENDING)
    retry_count = models.IntegerField("再試行回数", default=0)
    last_error = models.TextField("最後のエラー", blank=True)
    claimed_by = models.CharField("担当ワーカー", max_length=200, blank=True)
    claim_count = models.IntegerField("取得回数", default=0)
    claimed_at = models.DateTimeField("取得日時", null=True, blank=True)
    heartbeat_at = models.DateTimeField("最終ハートビート", null=True, blank=True)
    available_at = models.DateTimeField("再試行可能日時", null=True, blank=True)
    finished_at = models.DateTimeField("終了日時", null=True, blank=True)
    result = models.JSONField("結果の要約", default=dict, blank=True)

    class Meta:
        verbose_name = "ジョブのチャンク"
        verbose_name_plural = "ジョブのチャンク"
        constraints = [models.UniqueConstraint(fields=["job", "chunk_id"], name="job_chunk_unique")]
        # claim_next_chunk: the first claimable chunk of a job by number
        indexes = [models.Index(fields=["job", "status", "chunk_id"], name="job_chunk_claim")]

    @property
    def item_count(self) -> int:
        """Rows or items in this chunk."""
        if self.item_keys is not None:
            return len(self.item_keys)
        return (self.row_end or 0) - (self.row_start or 0)

    def __str__(self) -> str:
        return f"{self.job_id}#{self.chunk_id} ({self.get_status_display()})"
