"""The API end to end (design document 004 §3, §11.3, §12) through Django's test client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hokan.estimate.models import Estimate, EstimateSession

pytestmark = pytest.mark.django_db
BASE = "/api/v1/estimate"


def post(client, path, data, **headers):
    return client.post(f"{BASE}{path}", data=json.dumps(data, ensure_ascii=False), content_type="application/json",
                       **headers)


def test_it_runs_session_steps_generate_result(client, gemini, answers, django_capture_on_commit_callbacks):
    created = client.post(f"{BASE}/session")
    assert created.status_code == 200
    session_id = created.json()["session_id"]

    for step in range(1, 7):
        response = post(client, "/step", {"session_id": session_id, "step_number": step, "value": answers[str(step)]})
        assert response.status_code == 200, response.json()
        assert response.json()["next_step"] == step + 1
    step7 = post(client, "/step", {"session_id": session_id, "step_number": 7, "value": "new",
                                   "answers": {str(n): answers[str(n)] for n in range(1, 8)}})
    assert step7.status_code == 200
    assert [f["value"] for f in step7.json()["step8_features"]][:2] == ["employee_records", "skill_matrix"]
    for step in range(8, 14):
        response = post(client, "/step", {"session_id": session_id, "step_number": step, "value": answers[str(step)]})
        assert response.status_code == 200, response.json()

    with django_capture_on_commit_callbacks(execute=True):
        generated = post(client, "/generate", {"session_id": session_id, "answers": answers})
    assert generated.status_code == 200, generated.json()
    body = generated.json()
    assert body["status"] == "completed"
    estimate = body["estimate"]
    assert estimate["total_cost"]["standard"] == sum(f["standard_price"] for f in estimate["features"])
    assert "audit_warnings" not in estimate and "user_input" not in estimate
    assert estimate["confidence"]["range_label"] in ("±20%", "±30%", "±50%")

    result = client.get(f"{BASE}/result/{body['estimate_id']}")
    assert result.status_code == 200 and result.json() == body
    assert client.get(f"{BASE}/result/{session_id}").json()["estimate_id"] == body["estimate_id"]

    again = post(client, "/generate", {"session_id": session_id})
    assert again.json()["estimate_id"] == body["estimate_id"]
    assert Estimate.objects.get().followups["pdf"] == "ok"


def test_it_normalises_numbered_answers_and_step_3_forms(client):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/step", {"session_id": session_id, "step_number": 3, "value": "21-50",
                                      "answers": {"1": "corporation", "2": "retail"}})
    assert response.status_code == 200
    session = EstimateSession.objects.get(pk=session_id)
    assert session.answers == {"step_1": "corporation", "step_2": "retail", "step_3": "21_50"}


def test_it_caches_the_session_in_redis_for_five_minutes_and_forgets_it_on_change(client, settings, redis_url):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    first = client.get(f"{BASE}/session/{session_id}").json()
    EstimateSession.objects.filter(pk=session_id).update(current_step=9)  # behind the cache's back
    assert client.get(f"{BASE}/session/{session_id}").json() == first
    post(client, "/step", {"session_id": session_id, "step_number": 1, "value": "corporation"})
    assert client.get(f"{BASE}/session/{session_id}").json()["current_step"] == 9


def test_it_reads_the_session_from_the_database_without_a_shared_cache(client):
    """Without Redis the cache would be per process: another worker's write must show at once."""
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    client.get(f"{BASE}/session/{session_id}")
    EstimateSession.objects.filter(pk=session_id).update(current_step=9, answers={"step_1": "other"})
    fresh = client.get(f"{BASE}/session/{session_id}").json()
    assert fresh["current_step"] == 9 and fresh["answers"] == {"step_1": "other"}


def test_it_hides_the_contact_step_in_the_session(client, answers):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    post(client, "/step", {"session_id": session_id, "step_number": 13, "value": answers["13"]})
    assert "step_13" not in client.get(f"{BASE}/session/{session_id}").json()["answers"]


@pytest.mark.parametrize(("payload", "field"), [
    ({"step_number": 3, "value": "1000人"}, "step_3"),
    ({"step_number": 2, "value": "宇宙産業"}, "step_2"),
    ({"step_number": 8, "value": ["ok_value", "bad value!"]}, "step_8"),
    ({"step_number": 4, "value": "あ" * 2001}, "step_4"),
    ({"step_number": 13, "value": '{"email": "not-an-email"}'}, "step_13"),
    ({"step_number": 1, "value": "corporation", "answers": {"5": "space"}}, "step_5"),
])
def test_it_answers_400_to_invalid_values_in_japanese(client, payload, field):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/step", {"session_id": session_id, **payload})
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert "正しくありません" in response.json()["detail"] or "以内" in response.json()["detail"]


@pytest.mark.parametrize(("payload", "field", "reason"), [
    ({"step_number": 0, "value": "x"}, "step_number", "小さすぎます"),
    ({"step_number": 14, "value": "x"}, "step_number", "大きすぎます"),
    ({"step_number": "七", "value": "x"}, "step_number", "整数ではありません"),
    ({"session_id": "not-a-uuid", "step_number": 1, "value": "corporation"}, "session_id", "UUID ではありません"),
])
def test_it_answers_400_to_malformed_requests(client, payload, field, reason):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/step", {"session_id": session_id, **payload})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("入力内容に誤りがあります")
    assert body["errors"] == [{"field": field, "message": f"{field}: {reason}"}]
    assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize("wrong", [5, True, 1.5, {"a": 1}, [1, 2]])
@pytest.mark.parametrize("path", ["/step", "/generate"])
def test_it_answers_400_naming_step_8_when_it_is_not_a_list(client, path, wrong, answers):
    """Issue 9 §3: {"8": 5} crashed /step and /generate (``list(5)`` in the price engine)."""
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    payload = {"session_id": session_id, "answers": {**answers, "8": wrong}}
    if path == "/step":
        payload.update(step_number=1, value="corporation")
    response = post(client, path, payload)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "step_8"
    assert "ステップ8「機能」" in response.json()["detail"]
    assert EstimateSession.objects.get(pk=session_id).answers == {}  # nothing half-saved
    assert not Estimate.objects.exists()


@pytest.mark.parametrize(("step", "wrong"), [
    ("1", 1), ("2", ["manufacturing"]), ("3", 21), ("4", 42), ("5", False), ("6", None), ("7", {"v": "new"}),
    ("9", 3), ("10", True), ("11", 500000), ("12", ["text"]), ("13", 13), ("13", ["x"]), ("13", {"email": 5}),
])
def test_it_answers_400_naming_the_step_for_a_value_of_the_wrong_type(client, answers, step, wrong):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/generate", {"session_id": session_id, "answers": {**answers, step: wrong}})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == f"step_{step}"
    assert f"ステップ{step}「" in response.json()["detail"]


def test_it_answers_400_when_answers_is_not_an_object(client):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/generate", {"session_id": session_id, "answers": [1, 2]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "answers"


def test_it_answers_400_to_a_body_that_is_not_json(client):
    response = client.post(f"{BASE}/step", data="{not json", content_type="application/json")
    assert response.status_code == 400


def test_it_refuses_to_generate_with_missing_steps(client):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    response = post(client, "/generate", {"session_id": session_id, "answers": {"1": "corporation"}})
    assert response.status_code == 400
    assert "未回答のステップ" in response.json()["detail"] and "2（業種）" in response.json()["detail"]


def test_it_answers_404_for_unknown_ids(client):
    unknown = str(uuid.uuid4())
    assert client.get(f"{BASE}/session/{unknown}").status_code == 404
    assert post(client, "/step", {"session_id": unknown, "step_number": 1, "value": "corporation"}).status_code == 404
    response = post(client, "/generate", {"session_id": unknown})
    assert response.status_code == 404 and response.json()["detail"] == "セッションが見つかりません"
    assert client.get(f"{BASE}/result/{unknown}").status_code == 404


def test_it_requires_the_api_key_when_set(client, settings):
    settings.API_KEY = "secret-key"
    assert client.post(f"{BASE}/session").status_code == 403
    wrong = client.post(f"{BASE}/session", HTTP_X_API_KEY="nope")
    assert wrong.status_code == 403 and wrong.json()["detail"] == "APIキーが正しくありません"
    assert client.post(f"{BASE}/session", HTTP_X_API_KEY="secret-key").status_code == 200
    assert client.get("/health").status_code == 200  # probes need no key


def test_it_checks_the_database_on_health(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


def test_it_answers_429_after_60_requests_a_minute(client, settings):
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 60
    statuses = [client.post(f"{BASE}/session", REMOTE_ADDR="10.0.0.1").status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60 and statuses[60] == 429
    limited = client.get(f"{BASE}/session/{uuid.uuid4()}", REMOTE_ADDR="10.0.0.1")
    assert limited.status_code == 429
    assert "リクエストが多すぎます" in limited.json()["detail"]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert client.post(f"{BASE}/session", REMOTE_ADDR="10.0.0.2").status_code == 200  # per IP
    # Health probes are never limited (issue 9 §4).
    assert client.get("/health", REMOTE_ADDR="10.0.0.1").status_code == 200


def test_it_sends_cors_headers_for_the_configured_origin(client):
    allowed = client.options(f"{BASE}/session", HTTP_ORIGIN="http://localhost:3001",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert allowed["Access-Control-Allow-Origin"] == "http://localhost:3001"
    other = client.get("/health", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_it_publishes_the_openapi_schema(client):
    schema = client.get(f"{BASE}/openapi.json").json()
    assert {"/api/v1/estimate/session", "/api/v1/estimate/step", "/api/v1/estimate/generate",
            "/api/v1/estimate/result/{result_id}", "/api/v1/estimate/session/{session_id}", "/health"} <= set(schema["paths"])


# --- rate limit across processes through Redis -----------------------------------------------------------
def test_it_holds_the_limit_across_processes_with_redis(client, settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 60
    # Another process spends 59 requests of 10.0.0.9's minute...
    code = ("import django; django.setup(); from hokan.estimate.ratelimit import hit; "
            "print(sum(hit('10.0.0.9', 60)[0] for _ in range(59)))")
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "hokan.settings"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip().endswith("59"), out.stderr[-500:]
    # ...so this process gets one more, then 429 (a sliding window: no minute boundary to hit).
    assert client.post(f"{BASE}/session", REMOTE_ADDR="10.0.0.9").status_code == 200
    limited = client.post(f"{BASE}/session", REMOTE_ADDR="10.0.0.9")
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert client.post(f"{BASE}/session", REMOTE_ADDR="10.0.0.10").status_code == 200


def test_it_stays_up_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 1
    assert [client.post(f"{BASE}/session").status_code for _ in range(3)] == [200, 200, 200]


# --- no PII reaches any LLM (§4.1, §12), across the whole session → generate flow ---------------------
PII_ANSWERS = {
    "1": "corporation", "2": "healthcare", "3": "6_20",
    "4": ("予約受付を電話とメールで受けていて手が回りません。連絡は yamada.hanako@clinic-example.jp か "
          "03-1234-5678、携帯090-8765-4321、フリーダイヤル０１２０－１１１－２２２、+81 80 2222 3333、"
          "(045)987-6543 へ。今のサイト https://clinic-example.jp/reserve?id=42 は古いです。"),
    "5": "client_b2c", "6": "web_app", "7": "new",
    "8": ["reservation_management", "patient_management", "notification"],
    "9": "6months", "10": "both", "11": "5m_10m",
    "12": "050-5555-6666 の担当 sato@example.org にも共有してください。詳細は http://example.net/spec.pdf にあります。",
    "13": json.dumps({"name": "山田花子", "company": "医療法人テストクリニック", "email": "yamada.hanako@clinic-example.jp",
                      "phone": "03-1234-5678", "address": "東京都千代田区丸の内9-9-9"}, ensure_ascii=False),
}
PII = ["yamada.hanako@clinic-example.jp", "clinic-example.jp", "sato@example.org", "1234-5678", "8765-4321",
       "111－222", "111-222", "2222 3333", "987-6543", "5555-6666", "example.net", "山田花子", "医療法人テストクリニック",
       "千代田区丸の内", "9-9-9"]


def _full_flow_with_pii(client):
    session_id = client.post(f"{BASE}/session").json()["session_id"]
    for step in range(1, 14):
        payload = {"session_id": session_id, "step_number": step, "value": PII_ANSWERS[str(step)]}
        if step == 7:
            payload["answers"] = {str(n): PII_ANSWERS[str(n)] for n in range(1, 8)}
        response = post(client, "/step", payload)
        assert response.status_code == 200, response.json()
    generated = post(client, "/generate", {"session_id": session_id, "answers": PII_ANSWERS})
    assert generated.status_code == 200, generated.json()
    return generated.json()


def _assert_no_pii(bodies):
    assert bodies, "the fake LLM received no request"
    for body in bodies:
        text = json.dumps(body, ensure_ascii=False)
        for secret in PII:
            assert secret not in text, (secret, text[:3000])
        assert '"step_13"' not in text
        for key in ("email", "phone", "company_name", "user_name", "address"):
            assert f'"{key}"' not in text


def test_it_sends_no_pii_to_gemini_across_the_whole_flow(client, gemini):
    body = _full_flow_with_pii(client)
    assert body["status"] == "completed"
    calls = [r.json for r in gemini.requests]
    assert len(calls) == 3  # features at step 7, the estimate text, the audit
    _assert_no_pii(calls)
    sent = json.dumps(calls, ensure_ascii=False)
    assert "[EMAIL]" in sent and "[PHONE]" in sent and "[URL]" in sent
    assert "予約受付を電話とメールで受けていて" in sent  # the challenges themselves still reach the model


def test_it_sends_no_pii_to_openai_across_the_whole_flow(client, openai_fake):
    body = _full_flow_with_pii(client)
    assert body["status"] == "completed"
    calls = [r.json for r in openai_fake.requests]
    assert len(calls) == 7  # step 7: 3 invalid answers; the estimate: 3 invalid answers; one audit of the template
    _assert_no_pii(calls)
    assert "[PHONE]" in json.dumps(calls, ensure_ascii=False)
