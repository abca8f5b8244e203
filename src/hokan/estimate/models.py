"""Sessions and estimates of the estimate API (design document 004 §2, §8).

Both carry ``created_at``; rows older than ``DATA_TTL_DAYS`` are deleted by
``cleanup.delete_expired`` (§12). Prices are JPY integers.
"""

from __future__ import annotations

import uuid

from django.db import models


class EstimateSession(models.Model):
    """One questionnaire in progress. ``id`` is the public ``session_id`` (UUID).

    answers: ``{"step_1": ..., "step_13": ...}`` as given by the client (step_13 holds the
        contact details and never reaches an LLM).
    step8_features: the feature candidates of the first AI call (§6.3), a list of
        ``{value, label, category}``; step_8_categories: ``{value: category}`` from it.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "回答中"
        GENERATING = "generating", "見積もり生成中"
        COMPLETED = "completed", "完了"
        FAILED = "failed", "失敗"

    id = models.UUIDField("セッションID", primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField("状態", max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    current_step = models.PositiveSmallIntegerField("回答済みステップ", default=0)
    answers = models.JSONField("回答", default=dict, blank=True)
    step8_features = models.JSONField("AI提案機能", default=list, blank=True)
    step_8_categories = models.JSONField("機能カテゴリ対応", default=dict, blank=True)
    features_source = models.CharField("機能候補の生成元", max_length=20, blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "見積もりセッション"
        verbose_name_plural = "見積もりセッション"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.get_status_display()})"


class Estimate(models.Model):
    """The result of ``POST generate`` for one session (one row per session: idempotent).

    raw_json: the estimate returned to the client (§6.4 shape, prices enforced).
    calculated_json: the price engine's ``calculated_data``.
    audit_diff: ``[{"field", "before", "after"}]`` changed by the audit (§8.3).
    audit_warnings: the audit's price warnings (operator only, never returned).
    followups: outcome of PDF / Notion / mails, e.g. ``{"pdf": "ok", "customer_mail": "skipped"}``.
    owner: the process generating it while processing, ``host:pid:start`` (``generate.process_identity``):
        a row whose owner has died on this host is taken over at once, any other one when it
        is older than the request deadline plus a margin (``generate.abandoned``).
    """

    class Status(models.TextChoices):
        PROCESSING = "processing", "処理中"
        COMPLETED = "completed", "完了"
        FAILED = "failed", "失敗"

    id = models.UUIDField("見積もりID", primary_key=True, default=uuid.uuid4, editable=False)
    session = models.OneToOneField(EstimateSession, on_delete=models.CASCADE, related_name="estimate",
                                   verbose_name="セッション")
    status = models.CharField("状態", max_length=20, choices=Status.choices, default=Status.PROCESSING)
    raw_json = models.JSONField("見積もり結果", default=dict, blank=True)
    calculated_json = models.JSONField("価格計算結果", default=dict, blank=True)
    total_standard = models.BigIntegerField("標準開発 合計（円）", null=True, blank=True)
    total_hybrid = models.BigIntegerField("ハイブリッド開発 合計（円）", null=True, blank=True)
    provider = models.CharField("文章生成", max_length=20, blank=True)
    text_source = models.CharField("文章の生成元", max_length=20, blank=True, help_text="llm / fallback")
    audit_status = models.CharField("品質監査", max_length=30, blank=True)
    audit_diff = models.JSONField("監査による変更", default=list, blank=True)
    audit_warnings = models.JSONField("監査の警告", default=list, blank=True)
    followups = models.JSONField("後続処理", default=dict, blank=True)
    error = models.TextField("エラー", blank=True)
    created_at = models.DateTimeField("作成日時", auto_now_add=True, db_index=True)
    started_at = models.DateTimeField("生成開始日時", null=True, blank=True,
                                      help_text="最後に生成を開始した日時（失敗した見積もりは再実行されます）")
    completed_at = models.DateTimeField("完了日時", null=True, blank=True)
    owner = models.CharField("生成中のプロセス", max_length=200, blank=True, default="", db_default="",
                             help_text="ホスト名:PID:起動時刻。このプロセスが終了していれば、次の要求が生成をやり直します")

    class Meta:
        verbose_name = "見積もり"
        verbose_name_plural = "見積もり"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        name = (self.raw_json or {}).get("project_name") or str(self.id)
        return f"{name} ({self.get_status_display()})"
