"""The sales lead list (design document 000 §5) and where each value came from."""

from __future__ import annotations

import uuid

from django.db import models

from hokan.core.fields import METHODS
from hokan.core.models import CompanyNameKeyMixin


class Lead(CompanyNameKeyMixin, models.Model):
    """One company of a sales list. Column names are those of document 000 §5.

    Amounts (capital, revenue) are JPY with no decimals; established_year is a western year.
    The value of each column comes with a ``LeadFieldSource`` row saying how it was obtained.
    """

    class Source(models.TextChoices):
        RULE = "rule", "ルール"
        AI = "ai", "AI"
        MANUAL = "manual", "手入力"
        REGISTRY = "registry", "公的データ"

    class TobToc(models.TextChoices):
        TOB = "toB", "toB"
        TOC = "toC", "toC"
        BOTH = "toB/toC", "toB/toC"

    name = models.CharField("企業名", max_length=255)
    corporate_number = models.CharField("法人番号", max_length=13, blank=True, db_index=True)
    industry = models.CharField("業種", max_length=100, blank=True)
    contact_person_name = models.CharField("担当者名", max_length=100, blank=True)
    contact_person_position = models.CharField("役職", max_length=100, blank=True)
    facebook_url = models.URLField("SNS URL", max_length=500, blank=True)
    tob_toc_type = models.CharField("toB/toC", max_length=8, choices=TobToc.choices, blank=True)
    business_description = models.TextField("事業概要", blank=True)
    prefecture = models.CharField("都道府県", max_length=4, blank=True)
    city = models.CharField("市区町村", max_length=100, blank=True)
    location = models.CharField("所在地", max_length=255, blank=True, help_text="市区町村より後の町名・番地・建物名")
    postal_code = models.CharField("郵便番号", max_length=8, blank=True)
    employee_count = models.IntegerField("従業員数", null=True, blank=True)
    revenue = models.DecimalField("売上高（円）", max_digits=18, decimal_places=0, null=True, blank=True)
    capital = models.DecimalField("資本金（円）", max_digits=18, decimal_places=0, null=True, blank=True)
    established_year = models.IntegerField("設立年", null=True, blank=True)
    website_url = models.URLField("公式サイト", max_length=500, blank=True)
    contact_email = models.EmailField("連絡先", blank=True)
    phone = models.CharField("電話番号", max_length=20, blank=True, help_text="国内表記（例 03-1234-5678）")
    representative_name = models.CharField("代表者名", max_length=100, blank=True)
    representative_title = models.CharField("代表者役職", max_length=100, blank=True)
    notes = models.TextField("備考", blank=True)

    needs_ai_update = models.BooleanField("補完対象", default=True)
    ai_last_updated = models.DateTimeField("最終AI補完日時", null=True, blank=True)
    ai_last_enriched_at = models.DateTimeField("最終補完処理日時", null=True, blank=True)
    ai_source = models.CharField(
        "最終更新の方法", max_length=10, choices=Source.choices, blank=True,
        help_text="直近にこのレコードの値を書いた方法（項目ごとの根拠は「取得根拠」）",
    )
    name_key = models.CharField(
        "照合用の社名", max_length=255, editable=False, db_index=True,
        help_text="法人格・空白・全角半角を除いた社名（重複照合用、保存時に自動設定）",
    )
    public_id = models.UUIDField("公開ID", default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "営業リスト"
        verbose_name_plural = "営業リスト"
        indexes = [
            # The nightly selection: needs_ai_update, never-enriched first (§10).
            models.Index(fields=["needs_ai_update", "ai_last_enriched_at"], name="lead_enrich_queue"),
        ]

    def __str__(self) -> str:
        return self.name


class LeadFieldSource(models.Model):
    """Provenance of one column of one lead: how, from where, from which words, how sure.

    A row with method "manual" protects the column: the enrichment job never writes over it,
    not even when the value is blank (a person cleared a wrong value on purpose).
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="sources", verbose_name="企業")
    field = models.CharField("項目", max_length=40)
    method = models.CharField("取得方法", max_length=10, choices=[(m, m) for m in METHODS])
    source_url = models.URLField("出典URL", max_length=1000, blank=True)
    raw = models.TextField("元の表記", blank=True)
    quote = models.TextField("根拠（原文）", blank=True)
    confidence = models.FloatField("確度", default=1.0)
    extractor = models.CharField("抽出器", max_length=40, blank=True)
    observed_at = models.DateTimeField(
        "根拠の取得日時", null=True, blank=True, help_text="根拠のページや台帳を読んだ日時（FieldValue.observed_at）",
    )
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "取得根拠"
        verbose_name_plural = "取得根拠"
        constraints = [models.UniqueConstraint(fields=["lead", "field"], name="lead_field_source_unique")]

    def __str__(self) -> str:
        return f"{self.lead_id}.{self.field} ({self.method})"


class EnrichmentRun(models.Model):
    """One run of the enrichment job: its outcome and counts (§11)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "待機中"
        RUNNING = "running", "実行中"
        SUCCEEDED = "succeeded", "完了"
        LIMITED = "limited", "上限到達で停止"
        FAILED = "failed", "失敗"

    public_id = models.UUIDField("実行ID", default=uuid.uuid4, unique=True, editable=False)
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="runs", verbose_name="対象企業",
        help_text="1社だけの再取得（/api/leads/{id}/refresh/）のとき",
    )
    trigger = models.CharField("起動元", max_length=20, default="cli", help_text="cli / schedule / api / admin")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.RUNNING)
    dry_run = models.BooleanField("試行のみ", default=False)
    started_at = models.DateTimeField("開始", auto_now_add=True)
    finished_at = models.DateTimeField("終了", null=True, blank=True)
    leads_selected = models.IntegerField("対象件数", default=0)
    leads_done = models.IntegerField("処理件数", default=0)
    leads_failed = models.IntegerField("失敗件数", default=0)
    fields_missing_before = models.IntegerField("補完前の欠損項目数", default=0)
    fields_filled = models.JSONField("方法別の補完項目数", default=dict)
    fields_missing_after = models.IntegerField("補完後の欠損項目数", default=0)
    llm_calls = models.IntegerField("API呼び出し数", default=0)
    cost_micro_usd = models.BigIntegerField("コスト (μUSD)", default=0)
    message = models.TextField("メッセージ", blank=True)
    # The run as a job of chunks (hokan.core.jobs) and its progress over every attempt.
    job = models.ForeignKey(
        "core.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="ジョブ",
    )
    attempts = models.IntegerField("再試行回数", default=0, help_text="問い合わせ先の障害で中断し、再開した回数")
    leads_skipped = models.IntegerField(
        "スキップ件数", default=0, help_text="本日分を支払済み・問い合わせ中のため処理しなかった件数（処理件数に含めない）",
    )
    leads_left = models.IntegerField("選ばれなかった件数", default=0, help_text="本日の処理上限のため選ばれなかった件数")

    class Meta:
        verbose_name = "補完の実行"
        verbose_name_plural = "補完の実行"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"


class LeadRunResult(models.Model):
    """What one run did to one lead, written as the lead's work goes on (hokan.leads.enrich).

    The run's counts are sums of these rows, over every attempt and worker, so a retried or
    resumed run is counted once; a lead whose row is final (done, failed, skipped) is not
    worked on again by the same run. ``answer`` keeps the provider's answer as soon as it
    arrives, before its ledger reservation is settled: a worker killed in between leaves the
    answer here, and the run's next worker settles the reservation with the provider's cost
    and stores the values without asking again.
    """

    class Status(models.TextChoices):
        WORKING = "working", "処理中"
        ASKING = "asking", "AI に問い合わせ中"
        ANSWERED = "answered", "回答受信（未反映）"
        DONE = "done", "完了"
        FAILED = "failed", "失敗"
        SKIPPED = "skipped", "スキップ"

    FINAL = (Status.DONE, Status.FAILED, Status.SKIPPED)

    run = models.ForeignKey(EnrichmentRun, on_delete=models.CASCADE, related_name="lead_results", verbose_name="実行")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="run_results", verbose_name="企業")
    position = models.IntegerField("順番", default=0)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.WORKING)
    llm = models.CharField("AI", max_length=20, blank=True, help_text="called / offline / not_needed / already_paid / error")
    registry = models.CharField("公的データ", max_length=20, blank=True)
    missing_before = models.JSONField("補完前の欠損項目", default=list)
    asked = models.JSONField("AI に尋ねた項目", default=list)
    filled = models.JSONField("補完した値", default=dict, help_text="{項目: FieldValue}")
    still_missing = models.JSONField("まだ欠損している項目", default=list)
    fetched = models.JSONField("読んだページ", default=list)
    fetch_errors = models.JSONField("取得できなかったページ", default=list)
    calls = models.IntegerField("支払った呼び出し数", default=0)
    cost_micro_usd = models.BigIntegerField("コスト (μUSD)", default=0)
    error = models.TextField("エラー", blank=True)
    work_key = models.CharField("支払いの冪等キー", max_length=200, blank=True)
    answer = models.JSONField("受信した回答", null=True, blank=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "企業ごとの実行結果"
        verbose_name_plural = "企業ごとの実行結果"
        constraints = [models.UniqueConstraint(fields=["run", "lead"], name="lead_run_result_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.lead_id} {self.status}"
