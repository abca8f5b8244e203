"""The knowledge admin (issue 12 §7), in Japanese.

- 動画分析: search (動画ID, ライバー, タイトル), filters (プラットフォーム, 配信日, 索引), GMV and
  quality score in the list, phases and sales (with their provenance) inline, action 「Qdrantに
  再索引」. Saving an analysis re-indexes it (a Qdrant failure is shown as a message; the row is
  saved).
- 売上データ: a hand edit becomes source 「手入力」 (method manual, confidence 1.000), which no
  later OCR, export or API value replaces (``service.record_sales_value``); the stream's GMV in
  Qdrant follows.
- 画面収録の指標 and フィードバック are read-only lists.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from hokan.core.errors import HokanError
from hokan.knowledge.errors import KnowledgeStoreUnavailable
from hokan.knowledge.models import Feedback, Phase, SalesData, ScreenMetricSample, VideoAnalysis


class PhaseInline(admin.TabularInline):
    model = Phase
    extra = 0
    fields = ("index", "start_s", "end_s", "title", "speech", "insight", "gmv_jpy")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SalesInline(admin.TabularInline):
    model = SalesData
    extra = 0
    fields = ("metric", "sku", "value", "unit", "shown", "source", "source_ref", "quote", "confidence", "verified")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IndexedFilter(admin.SimpleListFilter):
    title = "Qdrantへの反映"
    parameter_name = "indexed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "反映済み"), ("no", "未反映")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        from django.db.models import F

        if self.value() == "yes":
            return queryset.filter(indexed_revision=F("revision"))
        if self.value() == "no":
            return queryset.exclude(indexed_revision=F("revision"))
        return queryset


def _index(request: HttpRequest, admin_obj: admin.ModelAdmin, analyses: list[VideoAnalysis]) -> None:
    from hokan.knowledge.store import KnowledgeIndex

    try:
        written = KnowledgeIndex().index_analyses(analyses)
    except HokanError as exc:  # Qdrant away, or paid embeddings refused: the rows are saved
        reason = exc.reason if isinstance(exc, KnowledgeStoreUnavailable) else str(exc)
        admin_obj.message_user(request, f"Qdrantに反映できませんでした: {reason}", messages.ERROR)
        return
    admin_obj.message_user(request, f"{len(analyses)}件の動画（フェーズ{written}件）をQdrantに反映しました。",
                           messages.SUCCESS)


@admin.register(VideoAnalysis)
class VideoAnalysisAdmin(admin.ModelAdmin):
    list_display = ("video_id", "liver", "platform", "stream_date", "gmv_display", "phase_count",
                    "quality_display", "indexed_display")
    list_filter = ("platform", "stream_date", IndexedFilter)
    search_fields = ("video_id", "liver", "title")
    date_hierarchy = "stream_date"
    inlines = (PhaseInline, SalesInline)
    fields = ("video_id", "video_url", "platform", "liver", "stream_date", "duration_s", "title", "summary",
              "products", "revision", "indexed_revision", "rating_count", "rating_sum", "created_at", "updated_at")
    readonly_fields = ("video_id", "revision", "indexed_revision", "rating_count", "rating_sum", "created_at",
                       "updated_at")
    actions = ("reindex_selected",)

    @admin.display(description="売上(GMV)")
    def gmv_display(self, obj: VideoAnalysis) -> str:
        value = obj.gmv_jpy
        return f"¥{value:,}" if value is not None else "—"

    @admin.display(description="フェーズ数")
    def phase_count(self, obj: VideoAnalysis) -> int:
        return obj.phases.count()

    @admin.display(description="品質スコア")
    def quality_display(self, obj: VideoAnalysis) -> str:
        score = obj.quality_score
        return f"{score}（{obj.rating_count}件）" if score is not None else "—"

    @admin.display(description="Qdrant", boolean=True)
    def indexed_display(self, obj: VideoAnalysis) -> bool:
        return obj.indexed_revision == obj.revision

    @admin.action(description="選択した動画をQdrantに再索引")
    def reindex_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        _index(request, self, list(queryset))

    def save_model(self, request: HttpRequest, obj: VideoAnalysis, form: Any, change: bool) -> None:
        if change and form.changed_data:
            obj.revision += 1
        super().save_model(request, obj, form, change)
        _index(request, self, [obj])


@admin.register(SalesData)
class SalesDataAdmin(admin.ModelAdmin):
    list_display = ("analysis", "metric", "sku", "value", "unit", "source", "confidence", "verified", "observed_at")
    list_filter = ("metric", "source", "verified")
    search_fields = ("analysis__video_id", "analysis__liver", "quote", "source_ref")
    fields = ("analysis", "metric", "sku", "value", "unit", "shown", "source", "source_ref", "quote", "confidence",
              "method", "verified", "observed_at")
    readonly_fields = ("analysis", "metric", "sku", "source", "source_ref", "quote", "confidence", "method",
                       "observed_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SalesData, form: Any, change: bool) -> None:
        if form.changed_data:  # a hand edit: kept against every later source
            obj.source, obj.method, obj.confidence = "manual", "manual", Decimal("1.000")
            obj.observed_at = timezone.now()
            obj.quote = f"管理画面で {request.user} が入力"
        super().save_model(request, obj, form, change)
        if obj.metric == "gmv" and not obj.sku:
            from hokan.knowledge.service import _sync_gmv

            _sync_gmv(obj.analysis)


@admin.register(ScreenMetricSample)
class ScreenMetricSampleAdmin(admin.ModelAdmin):
    list_display = ("analysis", "metric", "t_s", "value", "unit", "shown", "confidence", "frame_index")
    list_filter = ("metric",)
    search_fields = ("analysis__video_id", "quote")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("analysis", "rating", "phase_index", "source", "created_at", "comment")
    list_filter = ("rating", "source")
    search_fields = ("analysis__video_id", "comment")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
