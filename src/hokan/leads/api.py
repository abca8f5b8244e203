"""The leads REST API (issue 3 §4; design document 000 §14), Django Ninja with OpenAPI.

Mounted at ``/api/`` by ``hokan/urls.py`` (namespace "leads-api"; the estimate API has its own)::

    GET    /api/leads                 list: industry, prefecture, missing, needs_ai_update, q; page, page_size
    POST   /api/leads                 create (201); every given value is marked manual
    GET    /api/leads/{id}            values and per-field provenance
    PATCH  /api/leads/{id}            update; each changed (or cleared: null) field becomes manual
    DELETE /api/leads/{id}            delete (204)
    POST   /api/leads/{id}/refresh/   enrich this lead now (document 000 §14): 202 + run id;
                                      409 while the lead has a queued or running run
                                      (also without the trailing slash, no redirect)
    GET    /api/runs/{run_id}         a run's status and counts (run_id: the run's UUID)
    GET    /api/usage                 this month's calls and cost, today's records, the limits
    GET    /api/docs, /api/openapi.json

Authentication: ``X-API-Key`` (keys in the admin, ``hokan.core.api_keys``): 401 without a
key, 403 with an unknown or deactivated one; ``HOKAN_API_RATE_LIMIT_PER_MIN`` requests per key
and minute, then 429 with ``Retry-After``.

Built by ``hokan.core.api.build_api``: errors are JSON ``{"detail": "<Japanese message>"}``;
validation errors (422) add ``"errors": [{"field": ..., "message": ...}]``. 400: unreadable
request (e.g. malformed JSON), 404: no such lead or run (or path), 405: method, 409: conflict,
500: unexpected (logged; no details leak).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Schema, Status
from pydantic import ConfigDict

from hokan.core.api import ErrorOut, ValidationErrorOut, build_api
from hokan.core.api_keys import ApiKeyAuth
from hokan.core.budget import get_ledger
from hokan.core.errors import HokanError
from hokan.leads.columns import BY_NAME, VALUE_FIELDS
from hokan.leads.edit import EditInvalid, FieldProblem, clean_fields, save_manual_edit
from hokan.leads.models import EnrichmentRun, Lead
from hokan.leads.refresh import AlreadyEnriching, queue_refresh
from hokan.leads.store import blank_q, search_q


api = build_api(
    title="hokan 営業リストAPI",
    version="1.0.0",
    description=(
        "営業リスト（企業情報）の参照・登録・更新・削除と、1社ずつの再取得（補完）を行います。\n\n"
        "認証: `X-API-Key` ヘッダー（管理画面の「APIキー」で発行）。キーなしは 401、"
        "不正・無効なキーは 403。キーごとに1分あたりのリクエスト数に上限があり、超えると 429（`Retry-After` 秒）。\n\n"
        "エラーは `{\"detail\": \"メッセージ\"}` の JSON で返します。"
    ),
    urls_namespace="leads-api",
    auth=ApiKeyAuth(),
    validation_status=422,
    field_labels={name: column.label for name, column in BY_NAME.items()},
)

MissingField = Literal[VALUE_FIELDS]  # type: ignore[valid-type]
Number = int | str  # counts, years and yen may be sent as numbers or as text ("3,499名", "1億円")


# --- schemas ---------------------------------------------------------------------------------------
Error = ErrorOut


class LeadValues(Schema):
    """The editable columns (document 000 §5). Any value is validated like an import cell."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="企業名")
    corporate_number: str | None = Field(None, description="法人番号（13桁）")
    industry: str | None = Field(None, description="業種")
    contact_person_name: str | None = Field(None, description="担当者名")
    contact_person_position: str | None = Field(None, description="役職")
    facebook_url: str | None = Field(None, description="SNS URL")
    tob_toc_type: str | None = Field(None, description="toB / toC / toB/toC")
    business_description: str | None = Field(None, description="事業概要")
    prefecture: str | None = Field(None, description="都道府県")
    city: str | None = Field(None, description="市区町村")
    location: str | None = Field(None, description="所在地（市区町村より後）")
    postal_code: str | None = Field(None, description="郵便番号（123-4567）")
    employee_count: Number | None = Field(None, description="従業員数（人）")
    revenue: Number | None = Field(None, description="売上高（円）")
    capital: Number | None = Field(None, description="資本金（円）")
    established_year: Number | None = Field(None, description="設立年（西暦、和暦も可）")
    website_url: str | None = Field(None, description="公式サイト")
    contact_email: str | None = Field(None, description="連絡先メールアドレス")
    phone: str | None = Field(None, description="電話番号")
    representative_name: str | None = Field(None, description="代表者名")
    representative_title: str | None = Field(None, description="代表者役職")
    notes: str | None = Field(None, description="備考")


class LeadCreate(LeadValues):
    name: str = Field(..., description="企業名（必須）")
    needs_ai_update: bool = Field(True, description="補完対象")


class LeadPatch(LeadValues):
    needs_ai_update: bool | None = Field(None, description="補完対象")


class SourceOut(Schema):
    method: str = Field(..., description="registry / rule / ai / manual")
    source_url: str | None
    quote: str
    raw: str
    confidence: float
    updated_at: dt.datetime


class LeadOut(Schema):
    id: int
    public_id: uuid.UUID
    name: str
    corporate_number: str | None
    industry: str | None
    contact_person_name: str | None
    contact_person_position: str | None
    facebook_url: str | None
    tob_toc_type: str | None
    business_description: str | None
    prefecture: str | None
    city: str | None
    location: str | None
    postal_code: str | None
    employee_count: int | None
    revenue: int | None = Field(None, description="円")
    capital: int | None = Field(None, description="円")
    established_year: int | None
    website_url: str | None
    contact_email: str | None
    phone: str | None
    representative_name: str | None
    representative_title: str | None
    notes: str | None
    needs_ai_update: bool
    ai_last_enriched_at: dt.datetime | None
    ai_source: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LeadDetail(LeadOut):
    sources: dict[str, SourceOut] = Field(..., description="項目ごとの取得根拠（値のある項目・手入力で消した項目）")


class LeadPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[LeadOut]


class RunOut(Schema):
    run_id: uuid.UUID
    lead_id: int | None
    trigger: str
    status: str = Field(..., description="queued / running / succeeded / limited / failed")
    status_label: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    leads_selected: int
    leads_done: int
    leads_failed: int
    fields_missing_before: int
    fields_filled: dict[str, Any]
    fields_missing_after: int
    llm_calls: int
    cost_usd: Decimal
    message: str


class RefreshOut(Schema):
    run_id: uuid.UUID
    status: str
    status_url: str


class UsageOut(Schema):
    month: str = Field(..., description="YYYY-MM（Asia/Tokyo）")
    calls: int
    cost_usd: Decimal
    reserved_calls: int
    reserved_cost_usd: Decimal
    call_limit: int
    cost_limit_usd: Decimal
    remaining_calls: int
    remaining_cost_usd: Decimal
    day: dt.date
    records_today: int
    daily_record_limit: int
    remaining_records_today: int
    limit_reached: bool


class LeadFilters(Schema):
    industry: str | None = Field(None, max_length=100, description="業種（完全一致）")
    prefecture: str | None = Field(None, max_length=4, description="都道府県（完全一致）")
    missing: MissingField | None = Field(None, description="この項目が空の企業だけ")
    needs_ai_update: bool | None = Field(None, description="補完対象かどうか")
    q: str | None = Field(None, max_length=200, description="企業名・法人番号・電話番号・公式サイトの部分一致")
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=200)


# --- helpers -------------------------------------------------------------------------------------
def _out(value: object) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return int(value)
    return value


def lead_dict(lead: Lead) -> dict[str, Any]:
    data: dict[str, Any] = {name: _out(getattr(lead, name)) for name in VALUE_FIELDS}
    data["name"] = lead.name
    data.update(
        id=lead.pk, public_id=lead.public_id, needs_ai_update=lead.needs_ai_update,
        ai_last_enriched_at=lead.ai_last_enriched_at, ai_source=lead.ai_source or None,
        created_at=lead.created_at, updated_at=lead.updated_at,
    )
    return data


def lead_detail(lead: Lead) -> dict[str, Any]:
    data = lead_dict(lead)
    data["sources"] = {
        s.field: {"method": s.method, "source_url": s.source_url or None, "quote": s.quote, "raw": s.raw,
                  "confidence": s.confidence, "updated_at": s.updated_at}
        for s in lead.sources.order_by("field")
    }
    return data


def run_dict(run: EnrichmentRun) -> dict[str, Any]:
    return {
        "run_id": run.public_id, "lead_id": run.lead_id, "trigger": run.trigger, "status": run.status,
        "status_label": run.get_status_display(), "started_at": run.started_at, "finished_at": run.finished_at,
        "leads_selected": run.leads_selected, "leads_done": run.leads_done, "leads_failed": run.leads_failed,
        "fields_missing_before": run.fields_missing_before, "fields_filled": run.fields_filled or {},
        "fields_missing_after": run.fields_missing_after, "llm_calls": run.llm_calls,
        "cost_usd": (Decimal(run.cost_micro_usd) / Decimal(1_000_000)).quantize(Decimal("0.000001")),
        "message": run.message,
    }


def _editor(request: HttpRequest) -> str:
    key = getattr(request, "auth", None)
    return f"api:{getattr(key, 'name', '')}"


def _conflicting_number(lead: Lead | None, cleaned: dict[str, Any]) -> None:
    number = cleaned.get("corporate_number")
    if not number:
        return
    others = Lead.objects.filter(corporate_number=number)
    if lead is not None and lead.pk:
        others = others.exclude(pk=lead.pk)
    other = others.first()
    if other is not None:
        raise Conflict(f"同じ法人番号の企業が既に登録されています（id={other.pk}: {other.name}）")


class Conflict(HokanError):
    """409 with a Japanese message."""


# --- leads -----------------------------------------------------------------------------------------
@api.get("/leads", response={200: LeadPage, 422: ValidationErrorOut}, tags=["leads"], summary="営業リストの一覧")
def list_leads(request: HttpRequest, filters: Query[LeadFilters]) -> dict[str, Any]:
    texts = {"industry": filters.industry, "prefecture": filters.prefecture, "q": filters.q}
    bad = [FieldProblem(f"{name}: 使えない文字（NUL）が含まれています", field=name)
           for name, text in texts.items() if text and "\x00" in text]
    if bad:  # PostgreSQL cannot compare text with NUL in it
        raise EditInvalid(bad)
    leads = Lead.objects.order_by("pk")
    if filters.industry:
        leads = leads.filter(industry=filters.industry)
    if filters.prefecture:
        leads = leads.filter(prefecture=filters.prefecture)
    if filters.needs_ai_update is not None:
        leads = leads.filter(needs_ai_update=filters.needs_ai_update)
    if filters.missing:
        leads = leads.filter(blank_q(filters.missing))
    if filters.q and filters.q.strip():
        leads = leads.filter(search_q(filters.q))
    offset = (filters.page - 1) * filters.page_size
    return {
        "count": leads.count(), "page": filters.page, "page_size": filters.page_size,
        "items": [lead_dict(lead) for lead in leads[offset:offset + filters.page_size]],
    }


@api.post("/leads", response={201: LeadDetail, 409: Error, 422: ValidationErrorOut}, tags=["leads"],
          summary="企業を登録")
def create_lead(request: HttpRequest, payload: LeadCreate) -> Status:
    raw = payload.model_dump(exclude={"needs_ai_update"}, exclude_none=True)
    cleaned = clean_fields(raw)
    _conflicting_number(None, cleaned)
    lead = Lead(name=cleaned["name"], needs_ai_update=payload.needs_ai_update)
    save_manual_edit(lead, cleaned, editor=_editor(request))
    return Status(201, lead_detail(lead))


@api.get("/leads/{lead_id}", response={200: LeadDetail, 404: Error}, tags=["leads"], summary="企業の詳細と取得根拠")
def get_lead(request: HttpRequest, lead_id: int) -> dict[str, Any]:
    return lead_detail(get_object_or_404(Lead, pk=lead_id))


@api.patch("/leads/{lead_id}", response={200: LeadDetail, 404: Error, 409: Error, 422: ValidationErrorOut},
           tags=["leads"], summary="企業を更新（変更した項目は手入力として保護）")
def update_lead(request: HttpRequest, lead_id: int, payload: LeadPatch) -> dict[str, Any]:
    lead = get_object_or_404(Lead, pk=lead_id)
    raw = payload.model_dump(exclude_unset=True)
    needs_ai_update = raw.pop("needs_ai_update", None)
    cleaned = clean_fields(raw)
    _conflicting_number(lead, cleaned)
    if needs_ai_update is not None:
        lead.needs_ai_update = needs_ai_update
    save_manual_edit(lead, cleaned, editor=_editor(request))
    return lead_detail(lead)


@api.delete("/leads/{lead_id}", response={204: None, 404: Error}, tags=["leads"], summary="企業を削除")
def delete_lead(request: HttpRequest, lead_id: int) -> Status:
    get_object_or_404(Lead, pk=lead_id).delete()
    return Status(204, None)


# --- refresh and runs -----------------------------------------------------------------------------
@api.post("/leads/{lead_id}/refresh", response={202: RefreshOut, 404: Error, 409: Error}, tags=["leads"],
          summary="この企業を今すぐ再取得（補完）", url_name="refresh-no-slash", include_in_schema=False)
@api.post("/leads/{lead_id}/refresh/", response={202: RefreshOut, 404: Error, 409: Error}, tags=["leads"],
          summary="この企業を今すぐ再取得（補完）")
def refresh(request: HttpRequest, lead_id: int) -> Status:
    lead = get_object_or_404(Lead, pk=lead_id)
    run = queue_refresh(lead, trigger="api")
    return Status(202, {"run_id": run.public_id, "status": run.status, "status_url": f"/api/runs/{run.public_id}"})


@api.get("/runs/{run_id}", response={200: RunOut, 404: Error}, tags=["runs"], summary="補完の実行状況")
def get_run(request: HttpRequest, run_id: uuid.UUID) -> dict[str, Any]:
    return run_dict(get_object_or_404(EnrichmentRun, public_id=run_id))


@api.get("/usage", response={200: UsageOut}, tags=["usage"], summary="今月の使用量と上限")
def usage(request: HttpRequest) -> dict[str, Any]:
    snap = get_ledger().snapshot()
    return {
        "month": snap.month, "calls": snap.calls, "cost_usd": snap.cost_usd, "reserved_calls": snap.reserved_calls,
        "reserved_cost_usd": snap.reserved_cost_usd, "call_limit": snap.call_limit,
        "cost_limit_usd": snap.cost_limit_usd, "remaining_calls": snap.remaining_calls,
        "remaining_cost_usd": snap.remaining_cost_usd, "day": snap.day, "records_today": snap.records_today,
        "daily_record_limit": snap.daily_record_limit, "remaining_records_today": snap.remaining_records_today,
        "limit_reached": snap.limit_reached,
    }


# --- errors (the common ones: hokan.core.api) ---------------------------------------------------
@api.exception_handler(EditInvalid)
def _edit_invalid(request: HttpRequest, exc: EditInvalid) -> HttpResponse:
    errors = [{"field": p.field, "message": p.message} for p in exc.problems]
    return api.error_response(request, 422, "入力内容に誤りがあります: " + " / ".join(p.message for p in exc.problems),
                              errors=errors)


@api.exception_handler(FieldProblem)
def _field_problem(request: HttpRequest, exc: FieldProblem) -> HttpResponse:
    return _edit_invalid(request, EditInvalid([exc]))


@api.exception_handler(Conflict)
def _conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    return api.error_response(request, 409, str(exc))


@api.exception_handler(AlreadyEnriching)
def _already_enriching(request: HttpRequest, exc: AlreadyEnriching) -> HttpResponse:
    return api.error_response(request, 409, str(exc))
