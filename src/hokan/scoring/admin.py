"""The scoring admin (issue 11 §6), in Japanese: jobs with their progress, each job's chunks
(status, retries, last error), and the actions 再開 (resume: claimable again, then run as a
separate process — ``api.start_runner``) and 取り消し (cancel). Scores are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from hokan.scoring.models import ScoringJob, ScoringResult


@admin.register(ScoringJob)
class ScoringJobAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "progress", "chunk_counts", "cost", "created_at")
    search_fields = ("name", "source")
    list_filter = ("job__status", "mode")
    actions = ("resume_jobs", "cancel_jobs")
    readonly_fields = ("name", "status", "progress", "message", "source", "output", "text_column", "id_column", "mode",
                       "provider", "model", "category_list", "chunk_table", "paid", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are created by the CLI or the API (they need an input file)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _report(self, obj: ScoringJob) -> Any:
        from hokan.scoring import service

        cache = getattr(obj, "_report_cache", None)
        if cache is None:
            cache = obj._report_cache = service.job_report(obj)  # type: ignore[attr-defined]
        return cache

    @admin.display(description="状態")
    def status(self, obj: ScoringJob) -> str:
        return obj.job.get_status_display()

    @admin.display(description="メッセージ")
    def message(self, obj: ScoringJob) -> str:
        return obj.job.message or "-"

    @admin.display(description="進み具合")
    def progress(self, obj: ScoringJob) -> str:
        r = self._report(obj)
        return f"{r.fraction:.1%}（{r.cells_ok:,}/{r.cells_total:,} セル、エラー {r.cells_failed:,}）"

    @admin.display(description="チャンク")
    def chunk_counts(self, obj: ScoringJob) -> str:
        r = self._report(obj)
        return f"完了 {r.chunks_done}・失敗 {r.chunks_failed}・残り {r.chunks_pending + r.chunks_running}／{r.chunks_total}"

    @admin.display(description="費用（USD）")
    def cost(self, obj: ScoringJob) -> str:
        return f"${self._report(obj).cost_usd:,.4f}"

    @admin.display(description="支払い")
    def paid(self, obj: ScoringJob) -> str:
        r = self._report(obj)
        return (f"{r.calls:,} 回・入力 {r.input_tokens:,} / 出力 {r.output_tokens:,} トークン・${r.cost_usd:,.4f}・"
                f"キャッシュ {r.cache_hits:,} セル（節約 ${r.saved_usd:,.4f}）")

    @admin.display(description="カテゴリ")
    def category_list(self, obj: ScoringJob) -> str:
        return format_html("<ul>{}</ul>", format_html_join("", "<li><b>{}</b>: {}</li>",
                                                           ((c["name"], c["description"]) for c in obj.categories)))

    @admin.display(description="チャンクの状態")
    def chunk_table(self, obj: ScoringJob) -> str:
        rows = obj.job.chunks.order_by("chunk_id")
        body = format_html_join("", "<tr><td>{}</td><td>{}〜{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (c.chunk_id, (c.row_start or 0) + 1, c.row_end, c.get_status_display(), c.retry_count, c.last_error or "-")
            for c in rows))
        return format_html("<table><tr><th>番号</th><th>行</th><th>状態</th><th>再試行</th><th>最後のエラー</th></tr>{}"
                           "</table>", body)

    @admin.action(description="選択したジョブを再開する")
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet[ScoringJob]) -> None:
        from hokan.scoring import service
        from hokan.scoring.api import start_runner

        for sjob in queryset.select_related("job"):
            service.resume(sjob)
            sjob.job.refresh_from_db()
            if sjob.job.status in ("pending", "running"):
                start_runner(sjob)
        messages.success(request, f"{queryset.count()} 件のジョブを再開しました（別プロセスで実行します）")

    @admin.action(description="選択したジョブを取り消す")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[ScoringJob]) -> None:
        from hokan.scoring import service

        for sjob in queryset.select_related("job"):
            service.cancel(sjob)
        messages.success(request, f"{queryset.count()} 件のジョブを取り消しました（保存済みの結果は残ります）")


@admin.register(ScoringResult)
class ScoringResultAdmin(admin.ModelAdmin):
    list_display = ("job", "row_index", "category", "score", "status", "method", "error")
    list_filter = ("status", "method", "job")
    search_fields = ("category", "error")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
