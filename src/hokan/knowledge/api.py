"""The knowledge app's external API (design document 001 §3 Step 5 / §4.2; issue 12 §5).

Mounted at ``/api/v1/external/`` by ``hokan/urls.py`` (namespace "knowledge-api")::

    POST /api/v1/external/analysis/store     analysis JSON (+ sales screenshots / exports), multipart or JSON
    POST /api/v1/external/sales/screenshot   sales screenshots (or a JSON / CSV export) of a stored video
    GET  /api/v1/external/retrieve           similar phases (hybrid search), filters; top performers
    GET  /api/v1/external/stats              total_gmv, total_livers, streams, avg_gmv_per_stream
    GET  /api/v1/external/livers/{liver}/history   the liver's streams, newest first
    POST /api/v1/external/feedback           a 1–5 rating of an analysis (or one phase)
    GET  /api/v1/external/docs, /api/v1/external/openapi.json

The document's FastAPI routes (``backend/app/api/v1/endpoints/external_api.py``) are served by
Django Ninja here, at the same paths.

Authentication: ``X-API-Key`` (``hokan.core.api_keys``; keys in the admin) on every route: 401
without a key, 403 with an unknown or inactive one, 429 past ``HOKAN_API_RATE_LIMIT_PER_MIN``.
Errors are JSON ``{"detail": "<Japanese>"}`` (``hokan.core.api``), never a trace.

Uploads (multipart): ``analysis`` (a JSON text field or a ``.json`` file), ``screenshots`` (PNG,
JPEG, WebP, GIF, BMP or TIFF; recognised by their first bytes, not by the name or the declared
type) and ``exports`` (JSON or CSV). Before anything is stored or read: at most
``HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES`` files of ``HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES`` each (413), the
request as a whole within their sum (413, checked from Content-Length before the body is read),
a screenshot's pixels within ``HOKAN_DOCUMENTS_MAX_PIXELS`` from its header (413: an image
bomb is never decoded), anything else (a zip, a PDF, an executable) 415. A zip is never opened.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from ninja import Query, Schema

from hokan.core.api import ErrorOut, build_api, schema_of
from hokan.core.api_keys import ApiKeyAuth
from hokan.core.errors import DocumentError, DocumentTooLarge, OcrUnavailable
from hokan.knowledge.errors import KnowledgeError
from hokan.knowledge.knowledge_retriever import PhaseHit
from hokan.knowledge.sales_data_ingester import Metric

api = build_api(
    title="hokan ナレッジ外部連携API",
    version="2.0.0",
    description=(
        "ライブコマース分析の登録（売上スクリーンショット付き）・売上データの追加・類似フェーズの検索・統計・"
        "ライバー別履歴・フィードバック（設計書001 v2）。\n\n"
        "認証: `X-API-Key` ヘッダー。キーなしは 401、不正・無効なキーは 403、上限を超えると 429（`Retry-After`）。\n\n"
        "アップロードは multipart/form-data: `analysis`（JSON）、`screenshots`（画像）、`exports`（JSON / CSV）。"
        "大きすぎるファイルは 413、画像・JSON・CSV 以外は 415。エラーは `{\"detail\": \"メッセージ\"}` の JSON です。"
    ),
    urls_namespace="knowledge-api",
    auth=ApiKeyAuth(),
    validation_status=422,
)

IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif", b"GIF89a": "image/gif",
    b"BM": "image/bmp", b"II*\x00": "image/tiff", b"MM\x00*": "image/tiff",
}  # fmt: skip


class UploadRefused(KnowledgeError):
    """An upload the API refuses: status 413 (over a size / count / pixel limit), 415 (not an
    accepted type), 422 (unreadable), 503 (no OCR engine); detail: the Japanese reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@api.exception_handler(UploadRefused)
def _refused(request: HttpRequest, exc: UploadRefused) -> HttpResponse:
    return api.create_response(request, {"detail": exc.detail}, status=exc.status)


def _analysis_invalid(request: HttpRequest, exc: Any) -> HttpResponse:
    errors = [{"field": path, "message": reason} for path, reason in exc.problems]
    return api.create_response(request, {"detail": "分析JSONが不正です", "errors": errors}, status=422)


def _store_unavailable(request: HttpRequest, exc: Any) -> HttpResponse:
    return api.create_response(request, {"detail": f"ナレッジベースを使えません: {exc.reason}"}, status=503)


def _register_knowledge_errors() -> None:
    from hokan.knowledge.errors import AnalysisInvalid, KnowledgeStoreUnavailable

    api.add_exception_handler(AnalysisInvalid, _analysis_invalid)
    api.add_exception_handler(KnowledgeStoreUnavailable, _store_unavailable)


_register_knowledge_errors()


# --- uploads -----------------------------------------------------------------------------------
def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in IMAGE_MAGIC.items() if head.startswith(magic)), None)


def _check_request_size(request: HttpRequest) -> None:
    limit = (settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES * settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES
             + settings.HOKAN_KNOWLEDGE_ANALYSIS_MAX_BYTES + 64 * 1024)  # fmt: skip
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise UploadRefused(413, f"リクエストが大きすぎます（{length:,} バイト、上限 {limit:,} バイト）")


def _read_upload(upload: Any, what: str) -> bytes:
    limit = settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES
    name = upload.name or what
    if upload.size is not None and upload.size > limit:
        raise UploadRefused(413, f"{name}: ファイルが大きすぎます（{upload.size:,} バイト、上限 {limit:,} バイト）")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(413, f"{name}: ファイルが大きすぎます（上限 {limit:,} バイト）")
    if not data:
        raise UploadRefused(415, f"{name}: ファイルが空です")
    return data


def _screenshot(upload: Any) -> tuple[str, bytes]:
    """(name, bytes) of an accepted screenshot: an image by its first bytes, its pixels checked."""
    from hokan.core.documents import DocumentLimits
    from hokan.core.documents.images import open_image

    data = _read_upload(upload, "screenshot")
    name = upload.name or "screenshot"
    if _image_type(data[:16]) is None:
        raise UploadRefused(415, f"{name}: 画像ではありません（PNG / JPEG / WebP / GIF / BMP / TIFF のみ受け付けます）")
    try:
        open_image(data, source=name, limits=DocumentLimits.from_settings()).close()
    except DocumentTooLarge as exc:
        raise UploadRefused(413, str(exc)) from exc
    except DocumentError as exc:
        raise UploadRefused(415, str(exc)) from exc
    return name, data


def _export(upload: Any) -> tuple[str, bytes]:
    data = _read_upload(upload, "export")
    name = upload.name or "export"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"\x00" in data[:4096] or head[:2] == b"PK" or _image_type(head[:16]) is not None:
        raise UploadRefused(415, f"{name}: JSON か CSV のエクスポートではありません")
    return name, data


def _files(request: HttpRequest, field: str) -> list[Any]:
    files = request.FILES.getlist(field)
    total = sum(len(request.FILES.getlist(f)) for f in request.FILES)
    if total > settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES:
        raise UploadRefused(413, f"ファイルが多すぎます（{total} 個、上限 {settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES} 個）")
    return files


def _analysis_json(request: HttpRequest) -> Any:
    limit = settings.HOKAN_KNOWLEDGE_ANALYSIS_MAX_BYTES
    if request.content_type == "application/json":
        raw = request.body
    elif "analysis" in request.FILES:
        raw = _read_upload(request.FILES["analysis"], "analysis")
    else:
        raw = request.POST.get("analysis", "").encode("utf-8")
    if not raw:
        raise UploadRefused(415, "analysis（分析JSON）がありません")
    if len(raw) > limit:
        raise UploadRefused(413, f"分析JSONが大きすぎます（{len(raw):,} バイト、上限 {limit:,} バイト）")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        from hokan.core.errors import InputError

        raise InputError(f"分析JSONを読み取れません（{exc}）", field="analysis") from exc


# --- schemas -----------------------------------------------------------------------------------
MetricOut = schema_of(Metric, "MetricOut", exclude=("source", "bbox"))


class StoredSalesOut(Schema):
    metric: str
    value: str
    unit: str
    source: str
    shown: str


class FileReadOut(Schema):
    name: str
    metrics: list[MetricOut]
    stored: list[StoredSalesOut]


class StoreOut(Schema):
    video_id: str
    created: bool
    changed: bool
    revision: int
    index_error: str | None = None
    files: list[FileReadOut] = []


class SalesOut(Schema):
    video_id: str
    files: list[FileReadOut]


PhaseHitOut = schema_of(PhaseHit, "PhaseHitOut", exclude=("speech", "quality_score", "products"))


class RetrieveOut(Schema):
    query: str
    similar_phases: list[PhaseHitOut]
    top_performers: list[PhaseHitOut] = []


class StatsOut(Schema):
    streams: int
    streams_with_gmv: int
    total_livers: int
    total_gmv: int
    avg_gmv_per_stream: int | None


class StreamOut(Schema):
    video_id: str
    liver: str
    platform: str
    stream_date: dt.date | None
    gmv_jpy: int | None
    phases: int
    quality_score: float | None


class FeedbackIn(Schema):
    video_id: str
    rating: int
    phase_index: int | None = None
    comment: str = ""


class FeedbackOut(Schema):
    video_id: str
    rating_count: int
    quality_score: float | None


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 415: ErrorOut, 422: ErrorOut, 503: ErrorOut}
MULTIPART = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object",
    "properties": {
        "analysis": {"type": "string", "description": "分析JSON（文字列または .json ファイル）"},
        "video_id": {"type": "string", "description": "sales/screenshot: 登録済みの動画ID"},
        "screenshots": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "exports": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
}}, "application/json": {"schema": {"type": "object", "description": "分析JSON（ファイルなし）"}}}}}  # fmt: skip


def _read_files(analysis: Any, screenshots: list[tuple[str, bytes]], exports: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    from hokan.knowledge.sales_data_ingester import metrics_from_export, read_screenshot, store_sales

    out = []
    readings = [metrics_from_export(data, name=name) for name, data in exports]
    try:
        readings += [read_screenshot(data, name=name) for name, data in screenshots]
    except OcrUnavailable as exc:
        raise UploadRefused(503, f"OCR を実行できません: {exc}") from exc
    except DocumentError as exc:
        raise UploadRefused(422, str(exc)) from exc
    for reading in readings:
        rows = store_sales(analysis, reading, source_ref=reading.source)
        out.append({
            "name": reading.source,
            "metrics": [m.to_dict() for m in reading.metrics],
            "stored": [{"metric": r.metric, "value": str(r.value.normalize()), "unit": r.unit, "source": r.source,
                        "shown": r.shown} for r in rows],
        })  # fmt: skip
    return out


@api.post("/analysis/store", response={200: StoreOut, **ERRORS}, summary="分析結果を登録（売上スクリーンショット付き）",
          openapi_extra=MULTIPART)
def store(request: HttpRequest) -> Any:
    """Store one analysis (``hokan.knowledge.service.store_analysis``: idempotent by video id), then
    read its sales screenshots (OCR) and exports and store their sales figures (a better source
    already stored is kept). Every file is checked before anything is stored."""
    from hokan.knowledge.service import store_analysis

    _check_request_size(request)
    screenshots = [_screenshot(f) for f in _files(request, "screenshots")]
    exports = [_export(f) for f in _files(request, "exports")]
    payload = _analysis_json(request)
    analysis = store_analysis(payload, source="api")
    files = _read_files(analysis, screenshots, exports)
    return {"video_id": analysis.video_id, "created": getattr(analysis, "created", False),
            "changed": getattr(analysis, "changed", False), "revision": analysis.revision,
            "index_error": getattr(analysis, "index_error", None), "files": files}  # fmt: skip


@api.post("/sales/screenshot", response={200: SalesOut, **ERRORS}, summary="売上スクリーンショットを追加（OCR）",
          openapi_extra=MULTIPART)
def sales_screenshot(request: HttpRequest) -> Any:
    """Read sales screenshots / exports of a stored video (form field ``video_id``) and store them."""
    from django.shortcuts import get_object_or_404

    from hokan.knowledge.models import VideoAnalysis

    _check_request_size(request)
    screenshots = [_screenshot(f) for f in _files(request, "screenshots") + _files(request, "file")]
    exports = [_export(f) for f in _files(request, "exports")]
    if not screenshots and not exports:
        raise UploadRefused(415, "screenshots（画像）または exports（JSON / CSV）を1つ以上送ってください")
    analysis = get_object_or_404(VideoAnalysis, video_id=request.POST.get("video_id", ""))
    return {"video_id": analysis.video_id, "files": _read_files(analysis, screenshots, exports)}


def _hit(hit: Any) -> dict[str, Any]:
    return {name: getattr(hit, name) for name in PhaseHitOut.model_fields}


@api.get("/retrieve", response={200: RetrieveOut, **ERRORS}, summary="類似フェーズの検索（ハイブリッド）")
def retrieve(request: HttpRequest, q: str = Query(..., min_length=1, max_length=500, description="検索文（日本語）"),
             platform: str | None = None, liver: str | None = None, since: dt.date | None = None,
             until: dt.date | None = None, limit: int = Query(5, ge=1, le=50),
             top: int = Query(0, ge=0, le=20, description="売上上位の配信も返す件数")) -> Any:  # fmt: skip
    from hokan.knowledge.knowledge_retriever import KnowledgeRetriever

    retriever = KnowledgeRetriever()
    hits = retriever.similar_phases(q, platform=platform, liver=liver, since=since, until=until, limit=limit)
    tops = retriever.top_performers(top, platform=platform, liver=liver, since=since, until=until) if top else []
    return {"query": q, "similar_phases": [_hit(h) for h in hits], "top_performers": [_hit(h) for h in tops]}


def stream_stats() -> dict[str, Any]:
    """Totals from the database (the source of truth): streams stored, streams with a GMV,
    distinct livers (non-empty), total GMV (JPY, the streams' own GMV rows: sku "", unit JPY), and
    the average GMV per stream *with* a GMV (JPY, rounded half up; None when none has one — a
    stream without a GMV is not a stream with 0)."""
    from hokan.knowledge.models import SalesData, VideoAnalysis

    streams = VideoAnalysis.objects.count()
    livers = VideoAnalysis.objects.exclude(liver="").values("liver").distinct().count()
    gmv = SalesData.objects.filter(metric="gmv", sku="", unit="JPY").aggregate(
        total=Sum("value"), streams=Count("analysis", distinct=True, filter=Q(value__isnull=False)))
    total = Decimal(gmv["total"] or 0)
    with_gmv = int(gmv["streams"] or 0)
    average = int((total / with_gmv).quantize(Decimal(1), rounding=ROUND_HALF_UP)) if with_gmv else None
    return {"streams": streams, "streams_with_gmv": with_gmv, "total_livers": livers, "total_gmv": int(total),
            "avg_gmv_per_stream": average}  # fmt: skip


@api.get("/stats", response={200: StatsOut, **ERRORS}, summary="統計（総売上・ライバー数・配信数・平均売上）")
def stats(request: HttpRequest) -> Any:
    return stream_stats()


@api.get("/livers/{liver}/history", response={200: list[StreamOut], **ERRORS}, summary="ライバー別の配信履歴（新しい順）")
def liver_history(request: HttpRequest, liver: str, limit: int = Query(20, ge=1, le=200)) -> Any:
    from hokan.knowledge.knowledge_retriever import KnowledgeRetriever

    return [{"video_id": s.video_id, "liver": s.liver, "platform": s.platform, "stream_date": s.stream_date,
             "gmv_jpy": s.gmv_jpy, "phases": s.phases, "quality_score": s.quality_score}
            for s in KnowledgeRetriever.liver_history(liver, limit=limit)]  # fmt: skip


@api.post("/feedback", response={200: FeedbackOut, **ERRORS}, summary="分析へのフィードバック（1〜5）")
def feedback(request: HttpRequest, body: FeedbackIn) -> Any:
    """Record a rating through ``hokan.knowledge.feedback.rate`` (atomic counters; 422 for a rating
    outside 1–5, a comment over 2,000 characters or an unknown phase; 404 for an unknown video)."""
    from django.http import Http404

    from hokan.knowledge import feedback as knowledge_feedback
    from hokan.knowledge.models import VideoAnalysis

    try:
        knowledge_feedback.rate(body.video_id, body.rating, comment=body.comment, phase_index=body.phase_index,
                                source="api")  # fmt: skip
    except VideoAnalysis.DoesNotExist as exc:
        raise Http404("動画分析が見つかりません") from exc
    analysis = VideoAnalysis.objects.get(video_id=body.video_id)
    score = analysis.quality_score
    return {"video_id": analysis.video_id, "rating_count": analysis.rating_count,
            "quality_score": float(score) if score is not None else None}
