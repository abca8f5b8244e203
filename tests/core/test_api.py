"""hokan.core.api: JSON for every error status, API-key auth, rate limit, documented errors.

Through Django's test client against the real leads and estimate APIs and a probe API built
with ``build_api`` (tests/core/api_urls.py); the worker-timeout case against a real gunicorn
started on 127.0.0.1 and stopped by PID.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache
from django.test import Client

from hokan.core.api_keys import ApiKey
from tests.servers import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]
ESTIMATE = "/api/v1/estimate"
JSON = "application/json"


@pytest.fixture(autouse=True)
def _clean_counters(settings):
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 0
    settings.API_KEY = ""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def raw_client() -> Client:
    """A test client that returns Django's own 500 answer instead of re-raising the exception."""
    return Client(raise_request_exception=False)


@pytest.fixture
def api_key(db) -> str:
    return ApiKey.generate("テスト連携")[1]


def _assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith(JSON), response["Content-Type"]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.content.decode()
    assert "<html" not in response.content.decode().lower()
    return body


# --- 404 / 405 / 500 outside the operations ------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/no-such-thing", "/api/leads/1/no-such-action", f"{ESTIMATE}/no-such-step",
                                  "/api/", "/api/v2/estimate/session"])
def test_it_answers_unknown_api_paths_with_json_404(client, path):
    body = _assert_json_error(client.get(path), 404)
    assert body["detail"] == "見つかりません"


@pytest.mark.django_db
def test_it_leaves_the_404_of_other_paths_alone(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith(JSON)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("put", "/api/leads", {"GET", "POST"}),
    ("get", f"{ESTIMATE}/step", {"POST"}),
    ("delete", f"{ESTIMATE}/session", {"POST"}),
    ("post", "/health", {"GET"}),
])
def test_it_answers_a_method_the_path_does_not_offer_with_json_405(client, api_key, method, path, allowed):
    response = getattr(client, method)(path, headers={"X-API-Key": api_key})
    body = _assert_json_error(response, 405)
    assert body["detail"] == "このURLでは使えないメソッドです"
    assert {m.strip() for m in response["Allow"].split(",")} == allowed


@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_a_crash_outside_ninja_with_json_500(raw_client, caplog):
    body = _assert_json_error(raw_client.get("/api/plain-crash"), 500)
    assert body == {"detail": "内部エラーが発生しました。時間をおいて再度お試しください。"}
    assert "a Django view under /api/ outside Ninja" in caplog.text  # the log keeps the reason


@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_a_crash_inside_an_operation_with_json_500_and_no_details(raw_client, caplog):
    response = raw_client.get("/api/probe/crash")
    body = _assert_json_error(response, 500)
    assert "hunter2" not in response.content.decode() and "RuntimeError" not in response.content.decode()
    assert body["detail"] == "内部エラーが発生しました。時間をおいて再度お試しください。"
    assert "unhandled error on GET /api/probe/crash" in caplog.text and "hunter2" in caplog.text


# --- the error mapping of build_api ---------------------------------------------------------------
@pytest.mark.urls("tests.core.api_urls")
def test_it_maps_input_error_to_400_naming_the_field(client):
    body = _assert_json_error(client.get("/api/probe/input"), 400)
    assert body == {"detail": "数量は1以上で指定してください", "field": "count"}


@pytest.mark.urls("tests.core.api_urls")
def test_it_maps_rate_limited_to_429_with_whole_seconds_retry_after(client):
    response = client.get("/api/probe/rate")
    body = _assert_json_error(response, 429)
    assert response["Retry-After"] == "3"  # 2.2 s rounded up
    assert body["detail"] == "リクエストが多すぎます（テスト）"


@pytest.mark.urls("tests.core.api_urls")
def test_it_maps_an_exceeded_budget_to_429(client):
    body = _assert_json_error(client.get("/api/probe/budget"), 429)
    assert "利用上限" in body["detail"]


@pytest.mark.urls("tests.core.api_urls")
def test_it_maps_an_unavailable_provider_to_503_with_its_retry_after(client):
    response = client.get("/api/probe/provider")
    _assert_json_error(response, 503)
    assert response["Retry-After"] == "7"


@pytest.mark.urls("tests.core.api_urls")
@pytest.mark.parametrize(("body", "status", "message"), [
    ({"count": "many"}, 422, "count: 整数ではありません"),
    ({}, 422, "count: 必須項目です"),
])
def test_it_answers_schema_errors_in_japanese_with_the_field(client, body, status, message):
    response = client.post("/api/probe/items", data=json.dumps(body), content_type=JSON)
    errors = _assert_json_error(response, status)["errors"]
    assert errors == [{"field": "count", "message": message}]


@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_malformed_json_with_400(client):
    response = client.post("/api/probe/items", data="{not json", content_type=JSON)
    _assert_json_error(response, 400)


@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_a_body_over_the_upload_limit_with_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/api/probe/items", data=json.dumps({"count": 1, "pad": "x" * 5000}), content_type=JSON)
    _assert_json_error(response, 413)


# --- API-key auth and its rate limit ----------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_401_without_a_key_and_403_with_a_wrong_or_inactive_one(client, api_key):
    missing = client.get("/api/keyed/whoami")
    _assert_json_error(missing, 401)
    assert missing["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
    _assert_json_error(client.get("/api/keyed/whoami", headers={"X-API-Key": "hk_00000000_nope"}), 403)
    assert client.get("/api/keyed/whoami", headers={"X-API-Key": api_key}).json() == {"name": "テスト連携"}
    ApiKey.objects.update(active=False)
    _assert_json_error(client.get("/api/keyed/whoami", headers={"X-API-Key": api_key}), 403)


@pytest.mark.django_db
def test_it_answers_403_for_the_estimate_key_whether_missing_or_wrong(client, settings):
    """Document 004 §11.3: the shared X-API-Key is 403 in both cases (no 401)."""
    settings.API_KEY = "estimate-secret"
    _assert_json_error(client.post(f"{ESTIMATE}/session"), 403)
    _assert_json_error(client.post(f"{ESTIMATE}/session", headers={"X-API-Key": "wrong"}), 403)
    assert client.post(f"{ESTIMATE}/session", headers={"X-API-Key": "estimate-secret"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.urls("tests.core.api_urls")
def test_it_answers_429_with_retry_after_past_the_per_key_limit(client, api_key, settings):
    settings.HOKAN_API_RATE_LIMIT_PER_MIN = 3
    statuses = [client.get("/api/keyed/whoami", headers={"X-API-Key": api_key}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.get("/api/keyed/whoami", headers={"X-API-Key": api_key})
    _assert_json_error(limited, 429)
    assert 1 <= int(limited["Retry-After"]) <= 60


@pytest.mark.django_db
def test_it_answers_429_with_retry_after_past_the_estimate_ip_limit_but_never_for_health(client, settings):
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 2
    assert [client.post(f"{ESTIMATE}/session").status_code for _ in range(2)] == [200, 200]
    limited = client.post(f"{ESTIMATE}/session")
    _assert_json_error(limited, 429)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5


# --- OpenAPI ------------------------------------------------------------------------------------------
def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


@pytest.mark.django_db
def test_it_documents_400_401_403_429_and_500_for_every_leads_operation(client, api_key):
    schema = client.get("/api/openapi.json", headers={"X-API-Key": api_key}).json()
    operations = dict(_operations(schema))
    assert len(operations) >= 8
    for name, operation in operations.items():
        assert {"400", "401", "403", "429", "500"} <= set(operation["responses"]), name
        assert operation["security"] == [{"ApiKeyAuth": []}], name
        error = operation["responses"]["429"]["content"][JSON]["schema"]
        assert "detail" in json.dumps(error), name
    assert "422" in operations["PATCH /api/leads/{lead_id}"]["responses"]
    assert "POST /api/leads/{lead_id}/refresh/" in operations  # the slash-less twin is not listed twice


@pytest.mark.django_db
def test_it_marks_the_estimate_key_required_only_when_api_key_is_set(client, settings):
    open_schema = client.get(f"{ESTIMATE}/openapi.json").json()
    for name, operation in _operations(open_schema):
        if name == "GET /health":
            assert "security" not in operation and "429" not in operation["responses"]
            continue
        assert operation["security"] == [{}, {"SharedSecretAuth": []}], name  # the key is optional
        assert {"400", "429", "500"} <= set(operation["responses"]) and "403" not in operation["responses"], name
        assert "401" not in operation["responses"], name

    settings.API_KEY = "estimate-secret"
    keyed_schema = client.get(f"{ESTIMATE}/openapi.json", headers={"X-API-Key": "estimate-secret"}).json()
    for name, operation in _operations(keyed_schema):
        if name == "GET /health":
            continue
        assert operation["security"] == [{"SharedSecretAuth": []}], name
        assert {"400", "403", "429", "500"} <= set(operation["responses"]), name
    scheme = keyed_schema["components"]["securitySchemes"]["SharedSecretAuth"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


# --- a gunicorn worker timeout -------------------------------------------------------------------------
@pytest.mark.slow
def test_it_answers_json_500_when_gunicorn_kills_a_worker_on_timeout(tmp_path):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.core.api_settings", "PYTHONPATH": f"{REPO}:{REPO / 'src'}",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "tests.core.api_wsgi:application", "--preload", "--bind",
             f"127.0.0.1:{port}", "--workers", "1", "--timeout", "2", "--graceful-timeout", "1",
             "--control-socket", str(tmp_path / "gunicorn.ctl")],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):  # until gunicorn listens (its start, not a result, is waited for)
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            response = httpx.get(f"{base}/api/probe/sleep", params={"seconds": 30}, timeout=20)
            assert response.status_code == 500, (response.text[:300], log_path.read_text()[-2000:])
            assert response.headers["content-type"].startswith(JSON)
            assert response.json() == {"detail": "内部エラーが発生しました。時間をおいて再度お試しください。"}
            # The next request is served by the fresh worker gunicorn starts.
            after = httpx.get(f"{base}/api/probe/input", timeout=10)
            assert after.status_code == 400, (after.text[:300], log_path.read_text()[-9000:])
        finally:
            stop_process_group(server, 15, timeout_s=10)
    assert "WORKER TIMEOUT" in log_path.read_text()


# --- schema_of: one field list for a result dataclass and its API schema ------------------------
@dataclasses.dataclass(frozen=True)
class _Report:  # module level: schema_of reads the annotations with typing.get_type_hints
    name: str
    cost_usd: Decimal
    created_at: dt.datetime
    secret: str
    count: int | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def test_a_schema_of_a_dataclass_has_its_fields_their_json_types_and_defaults():
    import pydantic

    from hokan.core.api import schema_of

    out = schema_of(_Report, "ReportOut", exclude=("secret",), extra={"fraction": float, "started": (bool, False)})
    assert list(out.model_fields) == ["name", "cost_usd", "created_at", "count", "tags", "fraction", "started"]
    schema = out.model_json_schema()
    assert schema["title"] == "ReportOut"
    assert set(schema["required"]) == {"name", "cost_usd", "created_at", "fraction"}
    assert schema["properties"]["cost_usd"]["type"] == "string"  # money as exact decimal text
    row = out(name="甲", cost_usd="0.010000", created_at="2026-01-01T00:00:00+09:00", fraction=0.5)
    assert (row.count, row.tags, row.started) == (None, [], False)
    with pytest.raises(pydantic.ValidationError):
        out(name="甲", cost_usd="0.01", created_at="x")  # fraction is required
    with pytest.raises(TypeError):
        schema_of(dict, "NotADataclass")


def test_the_app_schemas_follow_their_dataclasses():
    from hokan.knowledge import api as knowledge_api
    from hokan.knowledge.knowledge_retriever import PhaseHit
    from hokan.knowledge.sales_data_ingester import Metric
    from hokan.scoring import api as scoring_api
    from hokan.scoring.service import JobReport

    def names(cls):
        return {f.name for f in dataclasses.fields(cls)}

    assert set(scoring_api.JobOut.model_fields) == names(JobReport) - {"output"} | {
        "fraction", "cache_hit_rate", "chunks", "started"}
    assert set(knowledge_api.PhaseHitOut.model_fields) == names(PhaseHit) - {"speech", "quality_score", "products"}
    assert set(knowledge_api.MetricOut.model_fields) == names(Metric) - {"source", "bbox"}
