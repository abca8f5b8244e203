"""The estimate API (design document 004 §3, §11.3, §12), Django Ninja with OpenAPI.

Mounted at the site root by ``hokan/urls.py``; its own namespace ("estimate") so another
Ninja API under ``/api/`` does not clash::

    POST /api/v1/estimate/session          new session
    GET  /api/v1/estimate/session/{id}     session (cached ESTIMATE_SESSION_CACHE_S = 5 min)
    POST /api/v1/estimate/step             one answer; step 7 with answers → AI features
    POST /api/v1/estimate/generate         the estimate (idempotent per session)
    GET  /api/v1/estimate/result/{id}      poll by estimate id (or session id); a "processing"
                                           estimate whose run was abandoned answers "failed"
    GET  /health                           database check
    GET  /api/v1/estimate/openapi.json, /api/v1/estimate/docs

Built by ``hokan.core.api.build_api``. Order of checks as in §1: CORS (django-cors-headers) →
X-API-Key (``SharedSecretAuth``: when ``API_KEY`` is set, a missing or wrong key is 403; the
OpenAPI schema marks the key required only then; /health is open for probes) → 60 requests/min
per IP (429 with Retry-After; /health is not limited). Errors are JSON ``{"detail": <Japanese
message>, ...}`` (§11.3): 400 invalid request (``"field"`` names the step, e.g. ``step_8``;
schema errors add ``"errors"``), 403, 404 unknown session/estimate or path, 405, 429, 500
(never a stack trace; also for a worker timeout, ``hokan.core.api.JsonErrorsMiddleware``).

``GET session/{id}`` is cached for ESTIMATE_SESSION_CACHE_S only in a cache every process
shares (Redis); without one it is read from the database each time (``steps.shared_cache``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from hokan.core.api import ErrorOut, SharedSecretAuth, build_api
from hokan.core.errors import InputError
from hokan.estimate import steps
from hokan.estimate.answers import clean_answers, missing_for_generate, missing_message
from hokan.estimate.errors import SessionNotFound
from hokan.estimate.generate import generate_estimate, settle_abandoned
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.ratelimit import IPRateThrottle

log = logging.getLogger(__name__)

api = build_api(
    title="AI見積もりAPI",
    version="1.0.0",
    description="13ステップのアンケートから、システム開発の概算見積もりを作成します（設計書004）。",
    urls_namespace="estimate",
    docs_url="/api/v1/estimate/docs",
    openapi_url="/api/v1/estimate/openapi.json",
    auth=SharedSecretAuth("API_KEY"),
    rate_limit=[IPRateThrottle()],
    validation_status=400,
)
router = Router(tags=["estimate"])


# --- schemas ---------------------------------------------------------------------------------------
Error = ErrorOut


class Feature(Schema):
    value: str
    label: str
    category: str


class SessionOut(Schema):
    session_id: uuid.UUID
    status: str
    current_step: int
    answers: dict[str, Any]
    step8_features: list[Feature]
    created_at: str
    updated_at: str


class StepIn(Schema):
    session_id: uuid.UUID
    step_number: int = Field(..., ge=1, le=13)
    value: Any = None
    answers: dict[str, Any] | None = None


class StepOut(Schema):
    session_id: uuid.UUID
    step_number: int
    next_step: int | None
    step8_features: list[Feature] | None = None


class GenerateIn(Schema):
    session_id: uuid.UUID
    answers: dict[str, Any] | None = None


class EstimateOut(Schema):
    estimate_id: uuid.UUID
    session_id: uuid.UUID
    status: str
    estimate: dict[str, Any] | None = None


class Health(Schema):
    status: str
    database: str


# --- helpers ---------------------------------------------------------------------------------------------
def _session_data(session: EstimateSession) -> dict[str, Any]:
    return {
        "session_id": str(session.pk),
        "status": session.status,
        "current_step": session.current_step,
        "answers": {k: v for k, v in session.answers.items() if k != "step_13"},
        "step8_features": session.step8_features,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
    }


def _estimate_data(estimate: Estimate) -> dict[str, Any]:
    body = None
    if estimate.status == Estimate.Status.COMPLETED:
        body = {k: v for k, v in estimate.raw_json.items() if k not in ("user_input", "audit_warnings")}
    return {"estimate_id": str(estimate.pk), "session_id": str(estimate.session_id), "status": estimate.status,
            "estimate": body}


# --- endpoints -------------------------------------------------------------------------------------------
@router.post("/session", response={200: SessionOut}, summary="セッション新規作成")
def create_session(request: HttpRequest) -> dict[str, Any]:
    return _session_data(steps.create_session())


@router.get("/session/{session_id}", response={200: SessionOut, 404: Error}, summary="セッション取得")
def get_session(request: HttpRequest, session_id: uuid.UUID) -> Any:
    shared = steps.shared_cache()
    if shared is None:
        return _session_data(steps.get_session(session_id))
    key = steps.session_cache_key(session_id)
    data = shared.get(key)
    if data is None:
        data = _session_data(steps.get_session(session_id))
        shared.set(key, data, settings.ESTIMATE_SESSION_CACHE_S)
    return data


@router.post("/step", response={200: StepOut, 400: Error, 404: Error}, summary="ステップ回答送信")
def post_step(request: HttpRequest, payload: StepIn) -> dict[str, Any]:
    session = steps.record_step(payload.session_id, payload.step_number, payload.value, payload.answers)
    triggered = payload.step_number == 7 and payload.answers is not None
    return {"session_id": session.pk, "step_number": payload.step_number,
            "next_step": payload.step_number + 1 if payload.step_number < 13 else None,
            "step8_features": session.step8_features if triggered else None}


@router.post("/generate", response={200: EstimateOut, 400: Error, 404: Error, 500: Error}, summary="見積もり生成")
def post_generate(request: HttpRequest, payload: GenerateIn) -> Any:
    session = steps.get_session(payload.session_id)
    answers = {**session.answers, **clean_answers(payload.answers)}
    missing = missing_for_generate(answers)
    done_or_running = Estimate.objects.filter(session=session).exclude(status=Estimate.Status.FAILED).exists()
    if missing and not done_or_running:  # a stored (or running) estimate is returned as it is
        raise InputError(missing_message(missing), field="answers")
    estimate = generate_estimate(payload.session_id, payload.answers)
    steps.forget_cached_session(payload.session_id)
    if estimate.status == Estimate.Status.FAILED:
        return Status(500, {"detail": "見積もりの生成に失敗しました。時間をおいて再度お試しください。"})
    return _estimate_data(estimate)


@router.get("/result/{result_id}", response={200: EstimateOut, 404: Error}, summary="結果ポーリング")
def get_result(request: HttpRequest, result_id: uuid.UUID) -> Any:
    estimate = Estimate.objects.filter(pk=result_id).first() or Estimate.objects.filter(session_id=result_id).first()
    if estimate is None:
        return Status(404, {"detail": "見積もり結果が見つかりません"})
    return _estimate_data(settle_abandoned(estimate))  # "processing" never outlives its worker


api.add_router("/api/v1/estimate/", router)


@api.get("/health", auth=None, throttle=[], response={200: Health, 503: Health}, tags=["health"],
         summary="ヘルスチェック")
def health(request: HttpRequest) -> Any:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        log.exception("Health check: database unavailable")
        return Status(503, {"status": "error", "database": "unavailable"})
    return {"status": "ok", "database": "ok"}


# --- errors (the common ones: hokan.core.api) ----------------------------------------------------------
@api.exception_handler(SessionNotFound)
def _session_not_found(request: HttpRequest, exc: SessionNotFound) -> HttpResponse:
    return api.error_response(request, 404, str(exc))
