"""Models of the scoring app (design document 002 §1, §5; issue 11 §1, §3).

- ``ScoringJob``: the parent — one run over one input (a file or a sheet) with one set of
  categories and one ``RunConfig``. Its chunks are ``core.jobs`` JobChunks of ``job``
  (chunk_id, row_range = [row_start, row_end), status, retry_count, last_error; §5.1); its
  status is the core Job's (completed or failed only when every chunk is).
- ``ScoringResult``: one score per (row, category) — or, for a cell that could not be scored,
  the reason (status "error"); never a blank marked done.
- ``ScoringAnswer``: every paid answer, stored the moment it arrives, under the idempotency
  key it was paid with (§3 exactly once: a resumed run reads it instead of paying again).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from hokan.core.models import Job


class ScoringJob(models.Model):
    """A scoring run (see the module docstring). ``name``: the ``--job NAME`` (unique; running
    ``hokan scoring run --job NAME`` again resumes it). ``source``: the input file path or
    sheet URL; ``output``: the output file path ("" = none); ``config``: RunConfig.to_json();
    ``categories``: [{"name", "description"}]; ``headers``: the input's header row."""

    class Mode(models.TextChoices):
        ONLINE = "online", "オンライン"
        BATCH = "batch", "バッチ"

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="scoring", verbose_name="ジョブ")
    name = models.CharField("ジョブ名", max_length=200, unique=True)
    source = models.TextField("入力")
    source_kind = models.CharField("入力の種類", max_length=20, default="file")
    output = models.TextField("出力", blank=True)
    text_column = models.CharField("発話の列", max_length=200)
    id_column = models.CharField("ID の列", max_length=200, blank=True)
    mode = models.CharField("方式", max_length=10, choices=Mode.choices, default=Mode.ONLINE)
    config = models.JSONField("設定", default=dict)
    categories = models.JSONField("カテゴリ", default=list)
    system_prompt = models.TextField("システムプロンプト")
    provider = models.CharField("プロバイダ", max_length=40, blank=True)
    model = models.CharField("モデル", max_length=120, blank=True)
    headers = models.JSONField("見出し", default=list)
    source_digest = models.CharField("入力の SHA-256", max_length=64, blank=True)
    total_rows = models.IntegerField("行数", default=0)
    created_at = models.DateTimeField("作成日時", auto_now_add=True)

    class Meta:
        verbose_name = "スコアリングジョブ"
        verbose_name_plural = "スコアリングジョブ"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ScoringResult(models.Model):
    """One cell: the score of row ``row_index`` (0-based data row) for ``category``.

    status: ok (``score`` set) or error (``error`` says why; retried with its chunk, reported
    after the chunk's retry limit). method: how the score was made — "llm" (asked), "cache"
    (the LLM cache), "stored" (a paid answer read back after a restart), "embedding" (the
    offline scorer). cost_usd: this cell's share of the call's committed cost (USD, exact).
    """

    class Status(models.TextChoices):
        OK = "ok", "完了"
        ERROR = "error", "エラー"

    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="results", verbose_name="ジョブ")
    row_index = models.IntegerField("行")
    category = models.CharField("カテゴリ", max_length=200)
    score = models.FloatField("スコア", null=True, blank=True)
    status = models.CharField("状態", max_length=8, choices=Status.choices)
    method = models.CharField("方法", max_length=20, blank=True)
    error = models.TextField("エラー", blank=True)
    cost_usd = models.DecimalField("費用（USD）", max_digits=14, decimal_places=6, default=Decimal("0"))
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "スコア"
        verbose_name_plural = "スコア"
        constraints = [models.UniqueConstraint(fields=["job", "row_index", "category"], name="scoring_result_cell")]
        indexes = [models.Index(fields=["job", "status", "row_index"], name="scoring_result_status")]


class ScoringAnswer(models.Model):
    """A paid answer, kept under its idempotency ``key`` (the ledger reservation key).

    rows: the row indices asked, in the order of the prompt (answer id "1" = rows[0]).
    data: the parsed JSON answer (None when the answer was no JSON: paid, unusable).
    Tokens and cost as the ledger committed them (USD, exact)."""

    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="answers", verbose_name="ジョブ")
    key = models.CharField("冪等キー", max_length=300, unique=True)
    rows = models.JSONField("行", default=list)
    data = models.JSONField("回答", null=True, blank=True)
    raw_text = models.TextField("回答の本文", blank=True)
    input_tokens = models.IntegerField("入力トークン", default=0)
    output_tokens = models.IntegerField("出力トークン", default=0)
    cost_usd = models.DecimalField("費用（USD）", max_digits=14, decimal_places=6, default=Decimal("0"))
    created_at = models.DateTimeField("受信日時", auto_now_add=True)

    class Meta:
        verbose_name = "支払済みの回答"
        verbose_name_plural = "支払済みの回答"
