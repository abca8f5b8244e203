"""URL configuration of tests/core/test_api.py: the project's URLs plus a probe API built with
``hokan.core.api.build_api`` (real component; its endpoints raise the errors the mapping is
about) and a plain Django view under /api/ that crashes outside any Ninja API."""

from __future__ import annotations

import time
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import Schema, Status

from hokan.core.api import build_api
from hokan.core.api_keys import ApiKeyAuth
from hokan.core.errors import BudgetExceeded, InputError, LLMTransientError, RateLimited
from hokan.urls import urlpatterns as project_urlpatterns

probe = build_api(title="probe", version="1", urls_namespace="probe-api", auth=None, validation_status=422)


class Item(Schema):
    count: int


@probe.get("/input")
def input_error(request: HttpRequest) -> None:
    raise InputError("数量は1以上で指定してください", field="count")


@probe.get("/rate")
def rate_limited(request: HttpRequest) -> None:
    raise RateLimited("リクエストが多すぎます（テスト）", key="probe", retry_after_s=2.2)


@probe.get("/budget")
def budget_exceeded(request: HttpRequest) -> None:
    raise BudgetExceeded("今月の上限に達しました", scope="monthly_cost", limit=Decimal("50"), spent=Decimal("50.01"))


@probe.get("/provider")
def provider_down(request: HttpRequest) -> None:
    raise LLMTransientError("Gemini 503", provider="gemini", retry_after_s=7, status_code=503)


@probe.get("/crash")
def crash(request: HttpRequest) -> None:
    raise RuntimeError("secret connection string postgres://user:hunter2@db/hokan")


@probe.get("/sleep")
def sleep(request: HttpRequest, seconds: float = 30) -> dict[str, str]:
    time.sleep(seconds)  # outlives a gunicorn worker timeout
    return {"status": "slept"}


@probe.post("/items", response={201: Item})
def create_item(request: HttpRequest, payload: Item) -> Status:
    return Status(201, payload)


keyed = build_api(title="keyed probe", version="1", urls_namespace="keyed-probe", auth=ApiKeyAuth())


@keyed.get("/whoami")
def whoami(request: HttpRequest) -> dict[str, str]:
    return {"name": request.auth.name}


def plain_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a Django view under /api/ outside Ninja")


urlpatterns = [
    path("api/probe/", probe.urls),
    path("api/keyed/", keyed.urls),
    path("api/plain-crash", plain_crash),
    *project_urlpatterns,
]
