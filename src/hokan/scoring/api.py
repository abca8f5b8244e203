"""The scoring REST API (issue 11 §6), on ``hokan.core.api.build_api`` (Ninja, API keys, JSON errors).

Mounted at ``/api/scoring/`` by ``hokan/urls.py`` (namespace "scoring-api")::

    POST /api/scoring/jobs                    create: multipart — ``input`` (CSV / XLSX upload) or
                                              ``sheet_url``, ``categories`` (JSON / YAML / CSV upload),
                                              ``text_column``, ``id_column``, ``scale``, ``name``,
                                              ``start`` (default true) → 201 + the job
    GET  /api/scoring/jobs/{job}              status: progress, cells, chunks (status, retries, last
                                              error), calls, tokens, cost (USD), cache hits
    POST /api/scoring/jobs/{job}/resume       an interrupted / failed job: claimable again, started → 202
    POST /api/scoring/jobs/{job}/cancel       stop handing out chunks (a running process stops within 1 s)
    GET  /api/scoring/jobs/{job}/results      the input with a column per category and the status
                                              column, ``?format=csv`` (default, UTF-8 with BOM) or ``xlsx``

``{job}`` is the job's name or its public id. Authentication: ``X-API-Key`` (keys in the
admin), per-key rate limit (HOKAN_API_RATE_LIMIT_PER_MIN). Uploaded files are kept under
``HOKAN_DATA_DIR/scoring/uploads/<uuid>/`` (a resumed job reads its input again).

Starting a job (``start_runner``): with a broker, one Celery task per chunk (``hokan worker``
runs them, ``hokan.scoring.tasks``); without one, ``hokan scoring resume <name>`` as a separate
process (logs in ``HOKAN_LOG_DIR/scoring-<name>.log``). Either way the request returns at once,
the run survives the web worker, and running it again resumes where it stopped (exactly once:
engine docstring).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Schema, Status, UploadedFile

from hokan.core.api import ErrorOut, build_api, schema_of
from hokan.core.api_keys import ApiKeyAuth
from hokan.core.errors import InputError
from hokan.scoring import service

api = build_api(
    title="hokan 発話スコアリングAPI",
    version="1.0.0",
    description=(
        "シート（CSV / Excel / Google スプレッドシート）の各発話をカテゴリごとに採点するジョブの作成・状況確認・"
        "再開・取り消し・結果のダウンロード。\n\n認証: `X-API-Key` ヘッダー（管理画面の「APIキー」で発行）。"
        "エラーは `{\"detail\": \"メッセージ\"}` の JSON で返します。"
    ),
    urls_namespace="scoring-api",
    auth=ApiKeyAuth(),
    validation_status=422,
)

MAX_UPLOAD_BYTES = 256 * 1024 * 1024


class ChunkOut(Schema):
    chunk_id: int
    row_range: list[int]
    status: str
    retry_count: int
    last_error: str


JobOut = schema_of(
    service.JobReport, "JobOut", exclude=("output",),
    extra={"fraction": float, "cache_hit_rate": (float | None, None), "chunks": list[ChunkOut], "started": (bool, False)},
)


def job_out(sjob: Any, *, started: bool = False) -> dict[str, Any]:
    from hokan.core.models import JobChunk

    data = service.job_report(sjob).as_json()
    data["chunks"] = [{"chunk_id": c.chunk_id, "row_range": [c.row_start or 0, c.row_end or 0], "status": c.status,
                       "retry_count": c.retry_count, "last_error": c.last_error}
                      for c in JobChunk.objects.filter(job=sjob.job).order_by("chunk_id")]
    data["started"] = started
    return data


def start_runner(sjob: Any) -> None:
    """Start the job: with a broker (CELERY_BROKER_URL or REDIS_URL) one Celery task per chunk
    (``core.tasks.dispatch_job``; handler ``hokan.scoring.tasks.score_chunk``, queue "celery",
    which ``hokan worker`` consumes), else ``hokan scoring resume <name>`` as its own process."""
    if getattr(settings, "CELERY_BROKER_URL", "") or getattr(settings, "REDIS_URL", ""):
        import hokan.scoring.tasks  # noqa: F401  (the handler's queue is looked up by kind)
        from hokan.core.tasks import dispatch_job

        dispatch_job(sjob.job)
        return
    log_dir = Path(settings.HOKAN_LOG_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in sjob.name)[:80]
    with (log_dir / f"scoring-{safe}.log").open("ab") as log:
        subprocess.Popen([sys.executable, "-m", "hokan", "scoring", "resume", sjob.name], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True)


def _save(upload: UploadedFile, folder: Path) -> Path:
    name = Path(upload.name or "upload").name
    if upload.size and upload.size > MAX_UPLOAD_BYTES:
        raise InputError(f"ファイルが大きすぎます（上限 {MAX_UPLOAD_BYTES:,} バイト）", source=name)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    with target.open("wb") as handle:
        for block in upload.chunks():
            handle.write(block)
    return target


@api.post("/jobs", response={200: JobOut, 201: JobOut, 400: ErrorOut}, tags=["scoring"], summary="採点ジョブの作成")
def create_job(
    request: HttpRequest,
    categories: UploadedFile = File(..., description="カテゴリ（.json / .yaml / .csv: name と description）"),
    input: UploadedFile | None = File(None, description="入力（.csv / .xlsx）"),  # noqa: A002
    sheet_url: str = Form("", description="Google スプレッドシートの URL（input の代わり）"),
    text_column: str = Form(..., description="発話の列名"),
    id_column: str = Form("", description="ID の列名"),
    scale: str = Form("", description="尺度: 0-1 または 1-5（既定 HOKAN_SCORING_SCALE）"),
    name: str = Form("", description="ジョブ名（既存の名前なら、そのジョブを返します）"),
    start: bool = Form(True, description="作成後すぐに実行を始める"),
) -> Status:
    from hokan.scoring.config import RunConfig, load_categories
    from hokan.scoring.io import FileSource

    folder = Path(settings.HOKAN_DATA_DIR) / "scoring" / "uploads" / uuid.uuid4().hex
    config = RunConfig.from_settings(scale=scale or None)
    cats = load_categories(_save(categories, folder / "categories"), per_call=config.categories_per_call)
    if input is not None:
        source: Any = FileSource(_save(input, folder))
    elif sheet_url:
        from hokan.scoring.command import _plugin

        source = _plugin("hokan.scoring.sheets", "open_sheet", "Google スプレッドシート入力")(sheet_url)
    else:
        raise InputError("input（ファイル）か sheet_url を指定してください")
    sjob, _, created = service.prepare_job(source, categories=cats, text_column=text_column, id_column=id_column,
                                           name=name, config=config)
    if start and sjob.job.status in ("pending", "running"):
        start_runner(sjob)
    return Status(201 if created else 200, job_out(sjob, started=start))


@api.get("/jobs/{job}", response={200: JobOut, 400: ErrorOut}, tags=["scoring"], summary="採点ジョブの状況")
def get_job(request: HttpRequest, job: str) -> dict[str, Any]:

    return job_out(service.get_job(job))


@api.post("/jobs/{job}/resume", response={202: JobOut, 400: ErrorOut}, tags=["scoring"], summary="採点ジョブの再開")
def resume_job(request: HttpRequest, job: str, start: bool = True) -> Status:

    sjob = service.get_job(job)
    service.resume(sjob)
    sjob.job.refresh_from_db()
    if start and sjob.job.status in ("pending", "running"):
        start_runner(sjob)
    return Status(202, job_out(sjob, started=start))


@api.post("/jobs/{job}/cancel", response={200: JobOut, 400: ErrorOut}, tags=["scoring"], summary="採点ジョブの取り消し")
def cancel_job(request: HttpRequest, job: str) -> dict[str, Any]:

    sjob = service.get_job(job)
    service.cancel(sjob)
    sjob.job.refresh_from_db()
    return job_out(sjob)


@api.get("/jobs/{job}/results", response={200: None, 400: ErrorOut}, tags=["scoring"], summary="結果のダウンロード")
def results(request: HttpRequest, job: str, format: str = "csv") -> FileResponse:  # noqa: A002
    from hokan.scoring.engine import result_grid
    from hokan.scoring.io import FileSink, FileSource

    if format not in ("csv", "xlsx"):
        raise InputError("format は csv か xlsx です")
    sjob = service.get_job(job)
    if sjob.source_kind == "sheet":
        from hokan.scoring.command import _plugin

        source: Any = _plugin("hokan.scoring.sheets", "open_sheet", "Google スプレッドシート入力")(sjob.source)
    else:
        source = FileSource(sjob.source)
    table = source.read()
    from hokan.scoring.config import RunConfig

    folder = Path(tempfile.mkdtemp(prefix="scoring-results-"))
    target = folder / f"{sjob.name}.{format}"
    FileSink(target, table, [c["name"] for c in sjob.categories], RunConfig.from_json(sjob.config).scale,
             lambda: result_grid(sjob)).render()
    content_type = "text/csv; charset=utf-8" if format == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return FileResponse(target.open("rb"), as_attachment=True, filename=target.name, content_type=content_type)
