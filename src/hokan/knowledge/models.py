"""Models of the knowledge app (issue 12 §1, design document 001): the database is the source
of truth; Qdrant (``hokan.knowledge.store``) is an index rebuilt from it (``hokan knowledge reindex``).

::

    VideoAnalysis  one analysed live-commerce stream (video id unique), its products, quality score
    ├── Phase              one phase of the stream (index, time range, speech, visuals, insight,
    │                      performance) — one Qdrant point each
    ├── SalesData          one sales metric of the stream (GMV, orders, SKU orders, viewers, …) with
    │                      its provenance (source, file/URL, OCR line, confidence); one row per
    │                      (metric, SKU): a better source replaces a worse one, a manual edit stays
    ├── ScreenMetricSample a metric read from a screen-recording frame at a time (the time series)
    └── Feedback           a rating of the analysis (1–5); the counters on VideoAnalysis are updated
                           atomically with it (``hokan.knowledge.feedback``)

Money is exact: JPY as integers (``BigIntegerField``) or ``Decimal``; never float. A value the
evidence does not state is NULL / absent, never 0.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

PLATFORMS = (
    ("tiktok", "TikTok"),
    ("instagram", "Instagram"),
    ("youtube", "YouTube"),
    ("rakuten", "楽天ROOM LIVE"),
    ("yahoo", "Yahoo!ショッピング"),
    ("line", "LINE"),
    ("other", "その他"),
)
PLATFORM_CODES = tuple(code for code, _ in PLATFORMS)

# Sales metrics (document 001 §4.2; issue 12 §2). The unit each is kept in.
METRICS = (
    ("gmv", "売上(GMV)"),
    ("orders", "注文数"),
    ("sku_orders", "SKU別注文数"),
    ("items_sold", "販売点数"),
    ("viewers", "視聴者数"),
    ("peak_viewers", "最大同時視聴者数"),
    ("average_viewers", "平均視聴者数"),
    ("likes", "いいね数"),
    ("comments", "コメント数"),
    ("shares", "シェア数"),
    ("new_followers", "新規フォロワー数"),
    ("average_order_value", "客単価"),
    ("ctr", "CTR(クリック率)"),
    ("conversion_rate", "購入率"),
    ("watch_time", "視聴時間"),
    ("average_watch_time", "平均視聴時間"),
    ("product_clicks", "商品クリック数"),
    ("product_impressions", "商品表示回数"),
)
METRIC_CODES = tuple(code for code, _ in METRICS)
UNITS = (
    ("JPY", "円"),
    ("USD", "米ドル"),
    ("count", "件数"),
    ("percent", "%"),
    ("ratio", "比率"),
    ("seconds", "秒"),
    ("time_of_day", "時刻"),
)
UNIT_CODES = tuple(code for code, _ in UNITS)
# Where a value was read. Precedence when two sources give one metric (issue 12 §2: a platform's
# own export beats OCR): manual > api > csv/json export > screenshot OCR > recording OCR > analysis.
SOURCES = (
    ("manual", "手入力"),
    ("api", "API"),
    ("csv", "CSVエクスポート"),
    ("json", "JSONエクスポート"),
    ("screenshot", "スクリーンショット(OCR)"),
    ("recording", "画面収録(OCR)"),
    ("analysis", "分析JSON"),
)
SOURCE_CODES = tuple(code for code, _ in SOURCES)
SOURCE_RANK = {"manual": 60, "api": 50, "csv": 40, "json": 40, "screenshot": 30, "recording": 20, "analysis": 10}


class VideoAnalysis(models.Model):
    """One analysed stream. ``video_id`` is the platform's (or the team's) id, unique: storing an
    analysis of the same video again replaces its phases (``revision`` + 1).

    duration_s: seconds; stream_date: the day of the stream (Asia/Tokyo); products: list of
    ``{"name": str, "sku": str, "price_jpy": int | null}``; rating_count / rating_sum: the
    feedback counters (ratings 1–5), ``quality_score`` their mean.
    """

    video_id = models.CharField("動画ID", max_length=200, unique=True)
    video_url = models.URLField("動画URL", max_length=2000, blank=True)
    platform = models.CharField("プラットフォーム", max_length=20, choices=PLATFORMS, default="other")
    liver = models.CharField("ライバー", max_length=200, blank=True, db_index=True)
    stream_date = models.DateField("配信日", null=True, blank=True, db_index=True)
    duration_s = models.PositiveIntegerField("配信時間(秒)", null=True, blank=True)
    title = models.CharField("タイトル", max_length=500, blank=True)
    summary = models.TextField("分析サマリー", blank=True)
    products = models.JSONField("商品", default=list, blank=True)
    raw = models.JSONField("登録時のJSON", default=dict, blank=True)
    revision = models.PositiveIntegerField("分析の版", default=1)
    indexed_revision = models.PositiveIntegerField("Qdrant反映済みの版", default=0)
    rating_count = models.PositiveIntegerField("評価件数", default=0)
    rating_sum = models.PositiveIntegerField("評価合計", default=0)
    created_at = models.DateTimeField("登録日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "動画分析"
        verbose_name_plural = "動画分析"
        ordering = ["-stream_date", "-pk"]
        indexes = [models.Index(fields=["platform", "liver"], name="knowledge_va_platform_liver")]

    def __str__(self) -> str:
        return f"{self.video_id} ({self.liver or '-'} {self.stream_date or '-'})"

    @property
    def quality_score(self) -> Decimal | None:
        """Mean feedback rating (1.00–5.00, two decimals), None before the first rating."""
        if not self.rating_count:
            return None
        return (Decimal(self.rating_sum) / Decimal(self.rating_count)).quantize(Decimal("0.01"))

    def metric(self, name: str, sku: str = "") -> Decimal | None:
        """The stored value of sales metric ``name`` (unit: ``SalesData.unit``), or None."""
        row = self.sales.filter(metric=name, sku=sku).first()
        return row.value if row else None

    @property
    def gmv_jpy(self) -> int | None:
        """The stream's GMV in JPY (integer), None when no source stated it."""
        row = self.sales.filter(metric="gmv", sku="", unit="JPY").first()
        return int(row.value) if row else None


class Phase(models.Model):
    """One phase of a stream: ``index`` (0, 1, …) within the analysis, time range in seconds
    from the start of the video, what was said (``speech``), shown (``visuals``), the analyst's
    ``insight``, and ``performance`` (the analysis' own figures and labels, e.g.
    ``{"label": "好調", "orders": 12}``). gmv_jpy: sales attributed to the phase (JPY), if stated.
    comments: viewer comments shown during the phase (list of str; quoted data for prompts).
    """

    analysis = models.ForeignKey(VideoAnalysis, on_delete=models.CASCADE, related_name="phases",
                                 verbose_name="動画分析")
    index = models.PositiveIntegerField("フェーズ番号")
    start_s = models.DecimalField("開始(秒)", max_digits=10, decimal_places=3)
    end_s = models.DecimalField("終了(秒)", max_digits=10, decimal_places=3)
    title = models.CharField("見出し", max_length=300, blank=True)
    speech = models.TextField("発話", blank=True)
    visuals = models.TextField("映像", blank=True)
    insight = models.TextField("インサイト", blank=True)
    performance = models.JSONField("成果", default=dict, blank=True)
    gmv_jpy = models.BigIntegerField("フェーズ売上(円)", null=True, blank=True)
    comments = models.JSONField("視聴者コメント", default=list, blank=True)

    class Meta:
        verbose_name = "フェーズ"
        verbose_name_plural = "フェーズ"
        ordering = ["analysis", "index"]
        constraints = [models.UniqueConstraint(fields=["analysis", "index"], name="knowledge_phase_unique_index")]

    def __str__(self) -> str:
        return f"{self.analysis.video_id} #{self.index}"


class SalesData(models.Model):
    """One sales metric of a stream with its provenance (issue 12 §1–§3).

    metric: one of ``METRICS``; sku: the SKU for ``sku_orders`` ("" otherwise); value: exact
    (``Decimal``; JPY and counts are whole numbers), in ``unit``; shown: the text as printed
    ("¥1.2万"); source: where it was read (``SOURCES``) and source_ref the file name / URL /
    blob; quote: the OCR line (or CSV cell) it was read from; confidence: 0–1; method: how
    (``ocr_rules``, ``ocr_llm``, ``export``, ``manual``, …); verified: False when a vision LLM
    gave a number that does not occur in the OCR text; observed_at: when it was read.
    """

    analysis = models.ForeignKey(VideoAnalysis, on_delete=models.CASCADE, related_name="sales",
                                 verbose_name="動画分析")
    metric = models.CharField("指標", max_length=40, choices=METRICS)
    sku = models.CharField("SKU", max_length=200, blank=True, default="")
    value = models.DecimalField("値", max_digits=20, decimal_places=4)
    unit = models.CharField("単位", max_length=20, choices=UNITS)
    shown = models.CharField("表示", max_length=200, blank=True)
    source = models.CharField("出典", max_length=20, choices=SOURCES)
    source_ref = models.CharField("出典ファイル/URL", max_length=1000, blank=True)
    quote = models.TextField("読み取った行", blank=True)
    confidence = models.DecimalField("信頼度", max_digits=4, decimal_places=3, null=True, blank=True)
    method = models.CharField("方法", max_length=40, blank=True)
    verified = models.BooleanField("検証済み", default=True)
    observed_at = models.DateTimeField("取得日時", null=True, blank=True)
    created_at = models.DateTimeField("登録日時", auto_now_add=True)
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "売上データ"
        verbose_name_plural = "売上データ"
        ordering = ["analysis", "metric", "sku"]
        constraints = [models.UniqueConstraint(fields=["analysis", "metric", "sku"], name="knowledge_sales_unique_metric")]

    def __str__(self) -> str:
        return f"{self.analysis.video_id} {self.metric}{'/' + self.sku if self.sku else ''}={self.value} {self.unit}"


class ScreenMetricSample(models.Model):
    """One metric read from one frame of a screen recording (pattern B, issue 12 §3).

    t_s: seconds from the start of the recording; value exact in ``unit``; shown / quote /
    confidence as for ``SalesData``; frame_index: the frame sampled; source_ref: the recording.
    """

    analysis = models.ForeignKey(VideoAnalysis, on_delete=models.CASCADE, related_name="screen_metrics",
                                 verbose_name="動画分析")
    metric = models.CharField("指標", max_length=40, choices=METRICS)
    t_s = models.DecimalField("時刻(秒)", max_digits=10, decimal_places=3)
    value = models.DecimalField("値", max_digits=20, decimal_places=4)
    unit = models.CharField("単位", max_length=20, choices=UNITS, default="count")
    shown = models.CharField("表示", max_length=200, blank=True)
    quote = models.TextField("読み取った行", blank=True)
    confidence = models.DecimalField("信頼度", max_digits=4, decimal_places=3, null=True, blank=True)
    frame_index = models.PositiveIntegerField("フレーム番号", null=True, blank=True)
    source_ref = models.CharField("収録ファイル", max_length=1000, blank=True)
    created_at = models.DateTimeField("登録日時", auto_now_add=True)

    class Meta:
        verbose_name = "画面収録の指標"
        verbose_name_plural = "画面収録の指標"
        ordering = ["analysis", "metric", "t_s"]
        constraints = [models.UniqueConstraint(fields=["analysis", "metric", "t_s"], name="knowledge_screen_unique_sample")]

    def __str__(self) -> str:
        return f"{self.analysis.video_id} {self.metric}@{self.t_s}s={self.value}"


class Feedback(models.Model):
    """A rating (1–5) of an analysis, optionally of one phase, with a comment.

    Recorded by ``hokan.knowledge.feedback.rate``, which increments the analysis' counters in
    the same transaction with one conditional UPDATE (two ratings at once both count).
    """

    analysis = models.ForeignKey(VideoAnalysis, on_delete=models.CASCADE, related_name="feedback",
                                 verbose_name="動画分析")
    phase_index = models.PositiveIntegerField("フェーズ番号", null=True, blank=True)
    rating = models.PositiveSmallIntegerField("評価(1〜5)")
    comment = models.TextField("コメント", blank=True)
    source = models.CharField("経路", max_length=20, default="api")
    created_at = models.DateTimeField("登録日時", auto_now_add=True)

    class Meta:
        verbose_name = "フィードバック"
        verbose_name_plural = "フィードバック"
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5),
                                              name="knowledge_feedback_rating_1_5")]

    def __str__(self) -> str:
        return f"{self.analysis.video_id} ★{self.rating}"
