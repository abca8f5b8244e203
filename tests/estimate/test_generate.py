"""The generation flow (design document 004 §2.2, §8) against local fake Gemini and OpenAI servers."""

from __future__ import annotations

import json

import pytest

from hokan.estimate import pricing
from hokan.estimate.generate import generate_estimate
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.sanitizer import sanitize
from hokan.estimate.answers import clean_answers
from hokan.estimate.steps import record_step
from tests.estimate.conftest import HR_FEATURES, audit_answer, estimate_answer
from tests.fakes.gemini_server import GeminiReply

pytestmark = pytest.mark.django_db


def make_session(answers) -> EstimateSession:
    return EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)


def expected_calculation(answers):
    return pricing.calculate(sanitize(answers))


def assert_engine_prices(estimate: Estimate, answers):
    calc = expected_calculation(answers)
    got = estimate.raw_json
    assert [(f["standard_price"], f["hybrid_price"]) for f in got["features"]] == [
        (f["standard_price"], f["hybrid_price"]) for f in calc["features"]]
    assert got["total_cost"]["standard"] == calc["total_standard"] == sum(f["standard_price"] for f in got["features"])
    assert got["total_cost"]["hybrid"] == calc["total_hybrid"] == sum(f["hybrid_price"] for f in got["features"])
    assert got["confidence"] == calc["confidence"]


def test_it_generates_a_good_estimate_with_gemini(gemini, answers):
    session = make_session(answers)
    estimate = generate_estimate(session.pk)

    assert estimate.status == "completed"
    assert (estimate.provider, estimate.text_source, estimate.audit_status) == ("gemini", "gemini", "audited")
    assert_engine_prices(estimate, answers)
    assert estimate.raw_json["summary"].startswith("受注業務の手間を減らしたい")  # the audit's wording
    assert "audit_warnings" not in estimate.raw_json
    assert estimate.audit_warnings == ["在庫管理の金額が規模に比べてやや高めです"]
    assert {"field": "summary"}.items() <= estimate.audit_diff[0].items()
    session.refresh_from_db()
    assert session.status == "completed"

    generation, audit = gemini.requests
    assert generation.temperature == 0.5 and audit.temperature == 0.3
    assert "提案文書" in generation.system_text and "品質管理担当者" in audit.system_text
    assert "FAXの注文" not in generation.system_text and "FAXの注文" in generation.user_text
    user = json.loads(generation.user_text)
    assert set(user) == {"user_input", "calculated"}
    assert user["calculated"]["total_standard"] == estimate.total_standard


def test_it_never_sends_contact_details_to_the_llm(gemini, answers):
    generate_estimate(make_session(answers).pk)
    for request in gemini.requests:
        text = json.dumps(request.json, ensure_ascii=False)
        for secret in ("tanaka@example.co.jp", "090-1234-5678", "03-1234-5678", "田中太郎", "株式会社テスト製作所"):
            assert secret not in text
        assert "[EMAIL]" in text and "[PHONE]" in text


def test_it_overwrites_prices_the_llm_changed_twice(gemini, answers):
    calc = expected_calculation(answers)
    first = estimate_answer(calc, price_delta=50_000)  # consistent sums: passes validation
    gemini.enqueue(GeminiReply.json(first))
    enforced_once = None

    def audit_reply(body):
        nonlocal enforced_once
        enforced_once = json.loads(body["contents"][0]["parts"][0]["text"])["estimate"]
        return GeminiReply.json(audit_answer(enforced_once, price_delta=-30_000))

    gemini.responder = audit_reply
    estimate = generate_estimate(make_session(answers).pk)

    # 1st enforcement: what the audit received already had the engine's prices
    assert [f["standard_price"] for f in enforced_once["features"]] == [f["standard_price"] for f in calc["features"]]
    assert enforced_once["total_cost"]["standard"] == calc["total_standard"]
    # 2nd enforcement: the audit's changed prices are overwritten again
    assert estimate.audit_status == "audited"
    assert_engine_prices(estimate, answers)


def test_it_uses_the_fallback_template_after_three_invalid_answers(gemini, answers):
    calc = expected_calculation(answers)
    duplicate = estimate_answer(calc)
    duplicate["features"][1]["name"] = duplicate["features"][0]["name"]
    wrong_sum = estimate_answer(calc)
    wrong_sum["total_cost"]["standard"] += 1
    gemini.enqueue(GeminiReply.raw_text("見積もりを作成できませんでした"), GeminiReply.json(duplicate),
                   GeminiReply.json(wrong_sum), GeminiReply.json({"not": "an estimate"}))
    estimate = generate_estimate(make_session(answers).pk)

    assert estimate.text_source == "fallback"
    assert estimate.raw_json["project_name"] == "生産管理システム"  # the manufacturing template
    assert estimate.audit_status == "invalid"
    assert len(gemini.requests) == 4  # three attempts, then one audit
    assert_engine_prices(estimate, answers)


def test_it_retries_after_429_and_500(gemini, answers):
    gemini.enqueue(GeminiReply.rate_limited(retry_after="0"), GeminiReply.error(500))
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.text_source == "gemini"
    assert len(gemini.requests) == 4


def test_it_keeps_the_original_when_the_audit_answer_is_invalid(gemini, answers):
    calc = expected_calculation(answers)
    gemini.enqueue(GeminiReply.json(estimate_answer(calc)), GeminiReply.json({"summary": "だけ"}))
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.audit_status == "invalid"
    assert estimate.raw_json["summary"] == estimate_answer(calc)["summary"]
    assert estimate.audit_diff == [] and estimate.audit_warnings == []
    assert_engine_prices(estimate, answers)


def test_it_keeps_the_original_when_the_audit_raises(gemini, answers):
    calc = expected_calculation(answers)
    gemini.enqueue(GeminiReply.json(estimate_answer(calc)), GeminiReply.error(500))
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.audit_status == "error"
    assert estimate.status == "completed"
    assert estimate.raw_json["summary"] == estimate_answer(calc)["summary"]


def test_it_skips_the_audit_past_the_guard(gemini, answers, settings):
    settings.ESTIMATE_AUDIT_GUARD_S = 0.3  # stands for the document's 80 s
    calc = expected_calculation(answers)
    gemini.enqueue(GeminiReply.slow(0.5, GeminiReply.json(estimate_answer(calc))))
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.audit_status == "skipped_timeout"
    assert len(gemini.requests) == 1


def test_it_skips_the_audit_when_disabled(gemini, answers, settings):
    settings.AUDIT_ENABLED = False
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.audit_status == "disabled"
    assert len(gemini.requests) == 1
    assert_engine_prices(estimate, answers)


def test_it_is_idempotent_per_session(gemini, answers):
    session = make_session(answers)
    first = generate_estimate(session.pk)
    again = generate_estimate(session.pk, {"11": "under_500k"})
    assert again.pk == first.pk
    assert again.raw_json == first.raw_json
    assert len(gemini.requests) == 2
    assert Estimate.objects.count() == 1


def test_it_works_with_openai(openai_fake, answers):
    from tests.fakes.openai_server import Reply

    calc = expected_calculation(answers)
    first = estimate_answer(calc)
    enforced = {**first, "confidence": calc["confidence"]}
    openai_fake.enqueue(Reply.json(first), Reply.json(audit_answer(enforced)))
    estimate = generate_estimate(make_session(answers).pk)

    assert (estimate.provider, estimate.text_source, estimate.audit_status) == ("openai", "openai", "audited")
    assert_engine_prices(estimate, answers)
    generation, audit = openai_fake.requests
    assert generation.json["model"] == "gpt-4.1-nano"
    assert generation.roles == ["system", "user"] and audit.roles == ["system", "user"]
    assert (generation.json["temperature"], audit.json["temperature"]) == (0.5, 0.3)


def test_it_falls_back_to_templates_without_a_key(answers):
    estimate = generate_estimate(make_session(answers).pk)
    assert (estimate.provider, estimate.text_source, estimate.audit_status) == ("fallback", "fallback", "passthrough")
    assert_engine_prices(estimate, answers)


@pytest.mark.parametrize(("industry", "project"), [
    ("manufacturing", "生産管理システム"), ("retail", "店舗・販売管理システム"), ("healthcare", "予約・患者管理システム"),
    ("logistics", "配送・運行管理システム"), ("construction", "工事・現場管理システム"),
    ("food_service", "店舗運営支援システム"), ("education", "受講管理システム"), ("finance", "業務管理システム"),
])
def test_it_has_a_fallback_template_per_industry(answers, industry, project):
    estimate = generate_estimate(make_session({**answers, "2": industry}).pk)
    assert estimate.raw_json["project_name"] == project
    assert 100 <= len(estimate.raw_json["summary"]) <= 200
    assert_engine_prices(estimate, {**answers, "2": industry})


# --- the first AI call (step 7) -------------------------------------------------------------------------------
STEPS_1_7 = {"1": "corporation", "2": "logistics", "3": "6_20", "4": "社員のスキルと評価を管理する人事システムが欲しい", "5": "internal",
             "6": "web_app", "7": "new"}


def test_it_asks_for_features_at_step_7_challenges_first(gemini):
    session = EstimateSession.objects.create()
    session = record_step(session.pk, 7, "new", STEPS_1_7)

    (request,) = gemini.requests
    assert request.temperature == 0.7
    # the prompt carries the challenges-first rules of §6.3, in the system role
    assert "最初に challenges を読み" in request.system_text
    assert "industry の値に関わらず challenges を優先" in request.system_text
    assert "社員のスキルと評価" not in request.system_text
    sent = json.loads(request.user_text)
    assert sent == {"business_type": "corporation", "industry": "logistics", "user_count": "6_20",
                    "challenges": "社員のスキルと評価を管理する人事システムが欲しい", "deployment_target": "internal",
                    "system_type": "web_app", "development_type": "new"}
    # the HR features the model proposed are kept, not the logistics defaults
    assert session.step8_features == HR_FEATURES
    assert session.features_source == "gemini"
    assert session.step_8_categories["evaluation_workflow"] == "承認ワークフロー"


def test_it_uses_the_saved_categories_when_pricing(gemini, answers):
    session = EstimateSession.objects.create()
    record_step(session.pk, 7, "new", STEPS_1_7)
    record_step(session.pk, 8, ["evaluation_workflow", "employee_records"])
    estimate = generate_estimate(session.pk, {k: v for k, v in answers.items() if k not in "12345678"})
    features = estimate.calculated_json["features"]
    assert [(f["value"], f["category"], f["category_source"], f["label"]) for f in features] == [
        ("evaluation_workflow", "承認ワークフロー", "ai", "人事評価の承認"),
        ("employee_records", "シンプルなCRUD管理画面", "ai", "従業員情報管理")]


def test_it_uses_the_industry_defaults_when_step_7_fails(gemini):
    gemini.enqueue(GeminiReply.error(500), GeminiReply.raw_text("not json"),
                   GeminiReply.json({"step8_features": [{"value": "x", "label": "機能1", "category": "?"}]}))
    session = EstimateSession.objects.create()
    session = record_step(session.pk, 7, "new", STEPS_1_7)
    assert len(gemini.requests) == 3
    assert session.features_source == "fallback"
    assert [f["value"] for f in session.step8_features] == [
        "shipping_management", "delivery_schedule", "gps_tracking", "vehicle_management", "warehouse_management",
        "delivery_tracking"]


@pytest.mark.parametrize("features", [
    ["order_management", "dashboard"],
    ["order_management", "dashboard", "csv_import", "crm", "billing", "notification", "search", "payment",
     "data_migration", "multi_store"],
])
def test_it_lists_every_priced_feature_when_fewer_than_3_or_more_than_8(gemini, answers, features):
    estimate = generate_estimate(make_session({**answers, "8": features}).pk)
    assert estimate.text_source == "gemini" and estimate.audit_status == "audited"
    assert len(estimate.raw_json["features"]) == len(features)
    assert_engine_prices(estimate, {**answers, "8": features})


def test_it_does_not_retry_a_request_error(gemini, answers):
    gemini.enqueue(GeminiReply.error(400, "Invalid argument"))
    estimate = generate_estimate(make_session(answers).pk)
    assert estimate.text_source == "fallback"
    assert len(gemini.requests) == 2  # one refused generation, then the audit of the template


def test_it_waits_for_a_running_generation_and_never_starts_a_second(gemini, answers, settings, client):
    from django.utils import timezone

    settings.ESTIMATE_GENERATE_WAIT_S = 0.3  # stands for the 110 s a racing request waits
    session = make_session(answers)
    running = Estimate.objects.create(session=session, status=Estimate.Status.PROCESSING, started_at=timezone.now())
    response = client.post("/api/v1/estimate/generate", data={"session_id": str(session.pk)},
                           content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"estimate_id": str(running.pk), "session_id": str(session.pk), "status": "processing",
                               "estimate": None}
    assert gemini.requests == []  # nothing paid: the running generation will answer (GET result/{id})


def test_it_takes_over_a_generation_stuck_in_processing(gemini, answers):
    from datetime import timedelta

    from django.utils import timezone

    session = make_session(answers)
    stuck = Estimate.objects.create(session=session, status=Estimate.Status.PROCESSING,
                                    started_at=timezone.now() - timedelta(minutes=6))
    estimate = generate_estimate(session.pk)
    assert estimate.pk == stuck.pk and estimate.status == "completed"
    assert estimate.started_at > timezone.now() - timedelta(minutes=1)
    assert len(gemini.requests) == 2
    assert_engine_prices(estimate, answers)
