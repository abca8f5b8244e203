"""Issue 9 §1: a Gemini that accepts the connection and never answers costs the customer nothing
but the fallback, within ESTIMATE_LLM_DEADLINE_S (here 0.5 s standing for the 90 s default).

LLM_TIMEOUT is 30 s and LLM_MAX_RETRIES 3, so without the deadline each call would hold the
worker for 3 × 30 s. No wall-clock assertion: the outcome is the fallback, and the number of
requests that reached the fake is bounded.
"""

from __future__ import annotations

import pytest

from hokan.core.errors import LLMDeadlineExceeded
from hokan.core.llm import GeminiClient, get_client
from hokan.estimate.adapters import ClientAdapter, FallbackAdapter, LLMAttemptsExhausted, create_llm_adapter
from hokan.estimate.answers import clean_answers
from hokan.estimate.generate import generate_estimate
from hokan.estimate.models import EstimateSession
from hokan.estimate.steps import record_step
from tests.fakes.gemini_server import GeminiReply

pytestmark = pytest.mark.django_db

STEPS_1_7 = {"1": "corporation", "2": "logistics", "3": "6_20", "4": "社員のスキルと評価を管理したい", "5": "internal",
             "6": "web_app", "7": "new"}


@pytest.fixture
def hung(gemini, settings):
    """The fake Gemini hangs on every request; a short deadline, long timeouts."""
    gemini.responder = lambda body: GeminiReply.hang()
    settings.LLM_TIMEOUT = 30
    settings.LLM_MAX_RETRIES = 3
    settings.ESTIMATE_LLM_DEADLINE_S = 0.5
    return gemini


def test_generate_delivers_the_fallback_estimate_when_gemini_hangs(hung, answers):
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)
    assert estimate.status == "completed"
    assert estimate.text_source == "fallback"
    assert estimate.audit_status in ("error", "skipped_timeout")  # the audit finds the deadline passed
    assert len(hung.requests) == 1  # one hung attempt; no retry, no audit request after the deadline


def test_step_7_keeps_its_answers_and_uses_the_industry_defaults_when_gemini_hangs(hung):
    session = EstimateSession.objects.create()
    session = record_step(session.pk, 7, "new", STEPS_1_7)
    assert session.features_source == "fallback"
    assert session.answers["step_7"] == "new" and session.answers["step_4"] == STEPS_1_7["4"]
    assert len(hung.requests) == 1


def test_the_adapter_reports_the_deadline(hung, settings):
    adapter = create_llm_adapter(settings)
    assert isinstance(adapter, ClientAdapter)
    with pytest.raises(LLMAttemptsExhausted) as caught:
        adapter.generate_dynamic_questions(STEPS_1_7)
    assert caught.value.deadline_exceeded is True
    assert isinstance(caught.value.__cause__, LLMDeadlineExceeded)
    assert caught.value.problems[-1].startswith("deadline:")
    # the deadline is the adapter's (one per request): a later call finds it passed, sends nothing
    with pytest.raises(LLMDeadlineExceeded):
        adapter.audit_estimate({"summary": "x"}, {"features": [], "total_standard": 0, "total_hybrid": 0,
                                                   "confidence": {"range_label": "", "level": ""}})
    assert len(hung.requests) == 1


def test_the_estimate_profile_reads_document_004s_settings(gemini, settings):
    settings.GEMINI_MODEL = "gemini-2.5-flash-lite"
    settings.LLM_TIMEOUT = 12
    settings.LLM_MAX_RETRIES = 3
    settings.ESTIMATE_LLM_DEADLINE_S = 90
    client = get_client(profile="estimate")
    assert isinstance(client, GeminiClient)
    assert (client.model, client.base_url, client.timeout_s) == ("gemini-2.5-flash-lite", gemini.base_url, 12)
    assert client.max_retries == 2  # LLM_MAX_RETRIES counts attempts (「リトライ: 最大3回」)
    assert client.deadline_s == 90
    assert (client.profile, client.scope) == ("estimate", "estimate")
    assert get_client(profile="estimate", max_retries=0).max_retries == 0


def test_the_adapter_falls_back_without_a_key_or_with_an_unknown_provider(settings, caplog):
    settings.LLM_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = ""
    assert isinstance(create_llm_adapter(settings), FallbackAdapter)
    settings.LLM_PROVIDER = "powerplexy"
    assert isinstance(create_llm_adapter(settings), FallbackAdapter)
    assert "powerplexy" in caplog.text


def test_a_refused_gemini_address_means_the_fallback_and_nothing_sent(gemini, settings, answers):
    settings.HOKAN_FETCH_ALLOW_HOSTS = []  # 127.0.0.1 is loopback: refused at connect time
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)
    assert estimate.text_source == "fallback"
    assert gemini.requests == []
