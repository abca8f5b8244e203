"""The municipal REST API (issue 10 §6; document 003 §9.3, §11.3), Django Ninja via ``core.api.build_api``.

Mounted at ``/api/`` by ``hokan/urls.py`` (namespace "municipal-api")::

    POST /api/municipal/jobs                    start a run: {municipality, services?, free_tier?, resume?} → 202
                                                (resume=true continues the latest interrupted / failed run, §11.3)
    GET  /api/municipal/fetch/status            ?municipality=… → the latest run: status, per-service progress
    POST /api/municipal/jobs/{job_id}/resume    continue an interrupted / failed run → 202
    POST /api/municipal/jobs/{job_id}/interrupt stop handing out services (a running one finishes) → 200
    GET  /api/municipal/drafts                  ?municipality, service, status → drafts with filled / missing counts
    GET  /api/municipal/drafts/{id}             the §6.1 JSON of one draft (+ raw, quote, method per value)
    POST /api/municipal/drafts/{id}/approve     status approved (reject: /reject)
    POST /api/admin/pdf/ocr                     {url, force?} → {text, cached} (§9.3)
    GET  /api/admin/pdf/ocr                     ?url=… → {cached}
    GET  /api/municipal/docs, /api/municipal/openapi.json

A run started here is dispatched as core.jobs chunks (``core.tasks.dispatch_job``: Celery
workers when a broker is configured; without one, a background thread of the web process) and the
request answers 202 at once; ``/fetch/status`` follows it. Authentication: ``X-API-Key`` (``hokan.core.api_keys``), 401 without, 403 unknown or
inactive, ``HOKAN_API_RATE_LIMIT_PER_MIN`` per key then 429. Errors are JSON
``{"detail": "<Japanese>"}``: 400 bad input, 404 unknown municipality / job / draft, 409 a run of
that municipality already running, 422 validation, 502 the URL could not be fetched, 500 otherwise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Schema, Status
from pydantic import ConfigDict

from hokan.core.api import ErrorOut, build_api
from hokan.core.api_keys import ApiKeyAuth
from hokan.core.errors import DocumentError, FetchBlocked, FetchError, HokanError, InputError
from hokan.core.models import Job, JobChunk
from hokan.municipal.models import DocumentText, Draft, MunicipalRun, Municipality, Service

api = build_api(
    title="hokan 自治体サービス情報API",
    version="1.0.0",
    description=(
        "自治体の公式サイトからサービス情報を取得するジョブの開始・状態確認・再開・中断、下書きの参照と承認、"
        "PDF/画像のOCRを行います。\n\n認証: `X-API-Key` ヘッダー（管理画面の「APIキー」で発行）。"
        "エラーは `{\"detail\": \"メッセージ\"}` の JSON で返します。"
    ),
    urls_namespace="municipal-api",
    auth=ApiKeyAuth(),
    validation_status=422,
    docs_url="/municipal/docs",
    openapi_url="/municipal/openapi.json",
)


class RunConflict(HokanError):
    """409: a run of this municipality is already running."""


class DocumentFetchFailed(HokanError):
    """502: the document's URL could not be fetched."""


class MunicipalNotFound(HokanError):
    """404 naming what was not found (municipality, job, draft)."""


@api.exception_handler(MunicipalNotFound)
def _not_found(request: HttpRequest, exc: MunicipalNotFound) -> Any:
    return api.error_response(request, 404, str(exc))


@api.exception_handler(RunConflict)
def _conflict(request: HttpRequest, exc: RunConflict) -> Any:
    return api.error_response(request, 409, str(exc))


@api.exception_handler(DocumentFetchFailed)
def _fetch_failed(request: HttpRequest, exc: DocumentFetchFailed) -> Any:
    return api.error_response(request, 502, str(exc))


# --- schemas -------------------------------------------------------------------------------------
class JobIn(Schema):
    model_config = ConfigDict(extra="forbid")
    municipality: str = Field(..., description="短縮ID（otoineppu）または全国地方公共団体コード（014702）")
    services: list[str] | None = Field(None, description="サービスID（既定: すべて）")
    free_tier: str = Field("", description="\"\" | default | conservative（§5.3）")
    resume: bool = Field(False, description="前回の中断・失敗した取得を続きから再開する（§11.3）")


class ServiceProgress(Schema):
    service: str
    status: str = Field(..., description="pending | running | done | failed")
    last_error: str
    result: dict[str, Any]


class JobOut(Schema):
    job_id: uuid.UUID
    municipality: str
    lgcode: str
    status: str = Field(..., description="pending | running | completed | interrupted | failed（§11.2）")
    message: str
    services_total: int
    services_done: int
    services: list[ServiceProgress]
    totals: dict[str, Any]
    created_at: dt.datetime
    finished_at: dt.datetime | None


class DraftSummary(Schema):
    id: int
    municipality_id: str
    lgcode: str
    service: str
    status: str
    version: int
    filled_count: int
    missing_count: int
    updated_at: dt.datetime


class OcrIn(Schema):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., description="PDF または画像の URL")
    force: bool = Field(False, description="キャッシュを使わずに読み直す")


class OcrOut(Schema):
    text: str
    cached: bool


class OcrStatus(Schema):
    cached: bool


# --- helpers -------------------------------------------------------------------------------------
def _municipality(identifier: str) -> Municipality:
    found = (Municipality.objects.filter(lgcode=identifier).first()
             or Municipality.objects.filter(slug=identifier).first())
    if found is None:
        raise MunicipalNotFound(f"自治体 {identifier} は登録されていません")
    return found


def _run(job_id: uuid.UUID) -> MunicipalRun:
    run = MunicipalRun.objects.select_related("job", "municipality").filter(job__public_id=job_id).first()
    if run is None:
        raise MunicipalNotFound(f"ジョブ {job_id} はありません")
    return run


def job_out(run: MunicipalRun) -> dict[str, Any]:
    job = run.job
    job.refresh_from_db()
    services = []
    for chunk in JobChunk.objects.filter(job=job).order_by("chunk_id"):
        for key in chunk.item_keys or []:
            services.append({"service": key, "status": chunk.status, "last_error": chunk.last_error,
                             "result": chunk.result or {}})
    return {"job_id": job.public_id, "municipality": run.municipality.slug or run.municipality.lgcode,
            "lgcode": run.municipality.lgcode, "status": job.status, "message": job.message,
            "services_total": len(services), "services_done": sum(1 for s in services if s["status"] == "done"),
            "services": services, "totals": job.totals or {}, "created_at": job.created_at,
            "finished_at": job.finished_at}


def _dispatch(run: MunicipalRun) -> None:
    """Start the run's chunks: on the Celery workers when a broker is configured, else in a
    background thread of this process (``flow.execute``), so the request answers at once (a
    whole municipality takes minutes, past a web worker's timeout). A thread killed with its
    worker leaves the job resumable (``POST …/resume``: its chunks are taken back once the
    process is gone, or after HOKAN_JOB_LEASE_S)."""
    import threading

    from hokan.celery import app, has_broker
    from hokan.core.tasks import dispatch_job
    from hokan.municipal import flow  # noqa: F401  (registers the "municipal.run" chunk handler)

    if has_broker(app):
        dispatch_job(run.job)
        return
    thread = threading.Thread(target=_run_here, args=(run.pk,), name=f"municipal-run-{run.job.public_id}",
                              daemon=True)
    thread.start()
    _THREADS.append(thread)
    _THREADS[:] = [t for t in _THREADS if t.is_alive()]


_THREADS: list[Any] = []


def _run_here(run_pk: int) -> None:
    import logging

    from django.db import connection

    from hokan.municipal import flow

    try:
        flow.execute(MunicipalRun.objects.select_related("job", "municipality").get(pk=run_pk))
    except Exception:  # the job keeps its state and stays resumable; nothing reaches a client
        logging.getLogger(__name__).exception("municipal run %s failed in its thread", run_pk)
    finally:
        connection.close()


def _summary(draft: Draft) -> dict[str, Any]:
    return {"id": draft.pk, "municipality_id": draft.municipality.slug or draft.municipality.lgcode,
            "lgcode": draft.municipality.lgcode, "service": draft.service.key, "status": draft.status,
            "version": draft.version, "filled_count": draft.filled_count, "missing_count": draft.missing_count,
            "updated_at": draft.updated_at}


def _draft(draft_id: int) -> Draft:
    draft = Draft.objects.select_related("municipality", "service").filter(pk=draft_id).first()
    if draft is None:
        raise MunicipalNotFound(f"下書き {draft_id} はありません")
    return draft


def _editor(request: HttpRequest) -> str:
    return f"api:{getattr(getattr(request, 'auth', None), 'name', '')}"


# --- jobs ----------------------------------------------------------------------------------------
@api.post("/municipal/jobs", response={202: JobOut, 404: ErrorOut, 409: ErrorOut}, summary="取得ジョブを開始")
def start_job(request: HttpRequest, body: JobIn) -> Any:
    from hokan.municipal import flow
    from hokan.municipal.seed import ensure_seeded

    if body.free_tier not in ("", "default", "conservative"):
        raise InputError("free_tier は \"\"、default、conservative のいずれかです", field="free_tier")
    municipality = _municipality(body.municipality)
    latest = flow.latest_run(municipality)
    if latest is not None and latest.job.status in (Job.Status.PENDING, Job.Status.RUNNING):
        flow.release_dead_holders(latest.job)
        latest.job.refresh_from_db()
        if JobChunk.objects.filter(job=latest.job, status=JobChunk.Status.RUNNING).exists():
            raise RunConflict(f"{municipality} の取得（ジョブ {latest.job.public_id}）は実行中です")
    if body.resume and latest is not None and latest.job.status != Job.Status.COMPLETED:
        run = flow.resume_run(latest)
    else:
        ensure_seeded()
        services = list(Service.objects.order_by("key"))
        if body.services:
            found = {s.key: s for s in Service.objects.filter(key__in=body.services)}
            unknown = [k for k in body.services if k not in found]
            if unknown:
                raise InputError(f"サービス {', '.join(unknown)} はありません", field="services")
            services = [found[k] for k in body.services]
        run = flow.start_run(municipality, services, free_tier=body.free_tier, trigger="api")
    _dispatch(run)
    return Status(202, job_out(run))


@api.get("/municipal/fetch/status", response={200: JobOut, 404: ErrorOut}, summary="最新の取得ジョブの状態（§11.3）")
def fetch_status(request: HttpRequest, municipality: str) -> Any:
    from hokan.municipal import flow

    run = flow.latest_run(_municipality(municipality))
    if run is None:
        raise MunicipalNotFound(f"{municipality} の取得ジョブはまだありません")
    return job_out(run)


@api.post("/municipal/jobs/{job_id}/resume", response={202: JobOut, 404: ErrorOut, 409: ErrorOut},
          summary="中断・失敗したジョブを続きから再開")
def resume(request: HttpRequest, job_id: uuid.UUID) -> Any:
    from hokan.municipal import flow

    run = _run(job_id)
    if run.job.status == Job.Status.COMPLETED:
        raise RunConflict(f"ジョブ {job_id} は完了しています")
    flow.resume_run(run)
    _dispatch(run)
    return Status(202, job_out(run))


@api.post("/municipal/jobs/{job_id}/interrupt", response={200: JobOut, 404: ErrorOut}, summary="ジョブを中断")
def interrupt(request: HttpRequest, job_id: uuid.UUID) -> Any:
    from hokan.core.jobs import interrupt_job

    run = _run(job_id)
    interrupt_job(run.job, f"API から中断されました（{_editor(request)}）")
    return job_out(run)


# --- drafts --------------------------------------------------------------------------------------
@api.get("/municipal/drafts", response={200: list[DraftSummary], 404: ErrorOut}, summary="下書きの一覧")
def list_drafts(request: HttpRequest, municipality: str | None = None, service: str | None = None,
                status: str | None = Query(None, description="draft | approved | rejected")) -> Any:
    drafts = Draft.objects.select_related("municipality", "service")
    if municipality:
        drafts = drafts.filter(municipality=_municipality(municipality))
    if service:
        drafts = drafts.filter(service__key=service)
    if status:
        if status not in Draft.Status.values:
            raise InputError(f"status は {' / '.join(Draft.Status.values)} のいずれかです", field="status")
        drafts = drafts.filter(status=status)
    return [_summary(d) for d in drafts[:1000]]


@api.get("/municipal/drafts/{draft_id}", response={200: dict[str, Any], 404: ErrorOut}, summary="下書き（§6.1 JSON）")
def draft_detail(request: HttpRequest, draft_id: int) -> Any:
    draft = _draft(draft_id)
    return {"id": draft.pk, **draft.to_export()}


@api.post("/municipal/drafts/{draft_id}/approve", response={200: DraftSummary, 404: ErrorOut}, summary="下書きを承認")
def approve(request: HttpRequest, draft_id: int) -> Any:
    from hokan.municipal.draft import set_status

    return _summary(set_status(_draft(draft_id), Draft.Status.APPROVED, user=_editor(request)))


@api.post("/municipal/drafts/{draft_id}/reject", response={200: DraftSummary, 404: ErrorOut}, summary="下書きを却下")
def reject(request: HttpRequest, draft_id: int) -> Any:
    from hokan.municipal.draft import set_status

    return _summary(set_status(_draft(draft_id), Draft.Status.REJECTED, user=_editor(request)))


# --- OCR (§9.3) ----------------------------------------------------------------------------------
@api.post("/admin/pdf/ocr", response={200: OcrOut, 400: ErrorOut, 422: ErrorOut, 502: ErrorOut},
          summary="PDF・画像のテキスト（OCR）")
def ocr(request: HttpRequest, body: OcrIn) -> Any:
    from hokan.core.web.fetch import fetcher_from_settings
    from hokan.municipal.documents import read_bytes, url_sha256
    from hokan.municipal.fetch import fetch_page

    url = body.url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise InputError("url は http(s) の URL にしてください", field="url")
    stored = DocumentText.objects.filter(url_sha256=url_sha256(url)).first()
    if stored is not None and not body.force:
        return {"text": stored.text, "cached": True}
    fetcher = fetcher_from_settings()
    try:
        page, _ = fetch_page(fetcher, url)
    except FetchBlocked as exc:
        raise InputError(f"この URL は取得できません（{exc}）", field="url") from exc
    except FetchError as exc:
        raise DocumentFetchFailed(f"URL を取得できませんでした（{exc}）") from exc
    finally:
        close = getattr(fetcher, "close", None)
        if close:
            close()
    try:
        text, _method, _pages, from_cache = read_bytes(url, page.content, refresh=body.force)
    except DocumentError as exc:
        return api.error_response(request, 422, f"文書を読めません（{exc}）")
    return {"text": text, "cached": False}


@api.get("/admin/pdf/ocr", response={200: OcrStatus, 400: ErrorOut}, summary="OCR結果がキャッシュにあるか")
def ocr_status(request: HttpRequest, url: str) -> Any:
    from hokan.municipal.documents import url_sha256

    return {"cached": DocumentText.objects.filter(url_sha256=url_sha256(url.strip())).exists()}
