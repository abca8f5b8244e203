"""Fixtures of the estimate tests: settings pointing at local fakes, answers, LLM replies."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from typing import Any

import pytest
from django.core.cache import cache

from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply

ANSWERS: dict[str, Any] = {
    "1": "corporation",
    "2": "manufacturing",
    "3": "21_50",
    "4": "受発注管理が手作業で、FAXの注文を表計算ソフトに転記しているためミスが多く困っています。担当 tanaka@example.co.jp / 090-1234-5678",
    "5": "internal",
    "6": "web_app",
    "7": "new",
    "8": ["order_management", "inventory_management", "sales_analysis", "custom_report_x"],
    "9": "3months",
    "10": "both",
    "11": "3m_5m",
    "12": "個人情報を扱うのでセキュリティを重視したいです。",
    "13": json.dumps({"name": "田中太郎", "company": "株式会社テスト製作所", "email": "tanaka@example.co.jp",
                      "phone": "03-1234-5678"}, ensure_ascii=False),
}


@pytest.fixture(autouse=True)
def estimate_settings(settings):
    """Every estimate test starts with no provider keys, no mail, no Notion, in-process follow-ups."""
    settings.LLM_PROVIDER = "fallback"
    settings.GEMINI_API_KEY = ""
    settings.OPENAI_API_KEY = ""
    settings.LLM_TIMEOUT = 3
    settings.LLM_MAX_RETRIES = 3
    settings.ESTIMATE_LLM_RETRY_WAIT_MAX_S = 0.01
    settings.ESTIMATE_AUDIT_GUARD_S = 80
    settings.AUDIT_ENABLED = True
    settings.AUDIT_TEMPERATURE = 0.3
    settings.ESTIMATE_FOLLOWUPS = "sync"
    settings.ESTIMATE_RATE_LIMIT_PER_MINUTE = 0
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 0  # provider pacing is tested in tests/core/test_ratelimit.py
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = ""
    settings.RESEND_API_KEY = ""
    settings.EMAIL_HOST = ""
    settings.NOTIFY_EMAIL = ""
    settings.NOTION_API_KEY = ""
    settings.NOTION_DATABASE_ID = ""
    settings.API_KEY = ""
    settings.NOTION_RETRY_WAIT_MAX_S = 0.05
    cache.clear()  # the rate limit's own counters (Redis or the database) are per test already
    return settings


@pytest.fixture
def answers() -> dict[str, Any]:
    return dict(ANSWERS)


@pytest.fixture
def gemini(settings):
    """A fake Gemini server; the estimate settings point at it (LLM_PROVIDER=gemini)."""
    with FakeGeminiServer(api_key="gemini-test-key", responder=smart_responder) as server:
        settings.LLM_PROVIDER = "gemini"
        settings.GEMINI_API_KEY = "gemini-test-key"
        settings.GEMINI_BASE_URL = server.base_url
        yield server


@pytest.fixture
def openai_fake(settings):
    """The fake OpenAI server of tests/fakes; LLM_PROVIDER=openai with model gpt-4.1-nano."""
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(api_key="openai-test-key", model="gpt-4.1-nano", report_cost=False) as server:
        settings.LLM_PROVIDER = "openai"
        settings.OPENAI_API_KEY = "openai-test-key"
        settings.OPENAI_BASE_URL = server.v1_url
        settings.OPENAI_MODEL = "gpt-4.1-nano"
        yield server


# --- LLM answers built from what the request carries -----------------------------------------------
HR_FEATURES = [
    {"value": "employee_records", "label": "従業員情報管理", "category": "シンプルなCRUD管理画面"},
    {"value": "skill_matrix", "label": "スキル管理", "category": "シンプルなCRUD管理画面"},
    {"value": "evaluation_workflow", "label": "人事評価の承認", "category": "承認ワークフロー"},
    {"value": "attendance_tracking", "label": "勤怠管理", "category": "カレンダー・スケジュール"},
    {"value": "hr_dashboard", "label": "人員配置の可視化", "category": "ダッシュボード・分析"},
]


def estimate_answer(calculated: dict[str, Any], *, price_delta: int = 0) -> dict[str, Any]:
    """A valid §6.4 answer for the ``calculated`` part of a request (prices shifted by ``price_delta``)."""
    features = [{"name": f"{f['label']}機能", "detail": f"{f['label']}を効率化します。",
                 "standard_price": f["standard_price"] + price_delta, "hybrid_price": f["hybrid_price"] + price_delta}
                for f in calculated["features"]]
    return {
        "project_name": "受発注一元管理システム",
        "summary": "FAXで届く注文の転記作業をなくし、受注から出荷までを一つの画面で管理できるようにします。",
        "development_model_explanation": "標準開発とハイブリッド開発の2つの進め方をご用意しています。",
        "features": features,
        "discussion_agenda": ["現在の受注業務の流れ", "優先する機能", "個人情報の取り扱い"],
        "total_cost": {"standard": sum(f["standard_price"] for f in features),
                       "hybrid": sum(f["hybrid_price"] for f in features), "message": "ハイブリッド開発なら費用を抑えられます。"},
        "confidence_note": f"{calculated['confidence']['range_label']}程度の概算です。",
    }


def audit_answer(estimate: dict[str, Any], *, price_delta: int = 0) -> dict[str, Any]:
    """A valid audit answer: summary reworded, prices shifted by ``price_delta``, one warning."""
    audited = json.loads(json.dumps(estimate))
    audited["summary"] = "受注業務の手間を減らしたいというご要望に沿って、転記作業のない仕組みをご提案します。"
    for f in audited["features"]:
        f["standard_price"] += price_delta
        f["hybrid_price"] += price_delta
    audited["total_cost"]["standard"] = sum(f["standard_price"] for f in audited["features"])
    audited["total_cost"]["hybrid"] = sum(f["hybrid_price"] for f in audited["features"])
    audited["audit_warnings"] = ["在庫管理の金額が規模に比べてやや高めです"]
    return audited


def call_of(system: str) -> str:
    if "機能候補" in system and "step8_features" in system:
        return "dynamic_questions"
    if "品質管理担当者" in system:
        return "audit"
    return "estimate"


def smart_responder(body: dict[str, Any]) -> GeminiReply:
    """Answers each of the three calls correctly from the request itself."""
    system = "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
    user = json.loads("".join(p.get("text", "") for c in body["contents"] for p in c["parts"]))
    call = call_of(system)
    if call == "dynamic_questions":
        return GeminiReply.json({"step8_features": HR_FEATURES})
    if call == "audit":
        return GeminiReply.json(audit_answer(user["estimate"]))
    return GeminiReply.json(estimate_answer(user["calculated"]))


@pytest.fixture
def redis_url():
    """A real redis-server on a free 127.0.0.1 port, stopped by PID afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-packages.txt)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


