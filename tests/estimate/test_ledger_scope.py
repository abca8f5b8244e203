"""Every paid estimate call passes the ledger's ``estimate`` scope (issue 7 §3)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.core.budget import get_ledger
from hokan.estimate.answers import clean_answers
from hokan.estimate.generate import generate_estimate
from hokan.estimate.models import EstimateSession

pytestmark = pytest.mark.django_db


def test_each_answered_call_is_committed_in_the_estimate_scope_only(gemini, answers):
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)
    assert estimate.text_source == "gemini"

    answered = len([r for r in gemini.requests if r.path.endswith(":generateContent")])
    usage = get_ledger("estimate").snapshot()
    assert answered >= 2  # the estimate text and its audit
    assert usage.calls == answered and usage.reserved_calls == 0
    assert usage.cost_usd > Decimal("0")
    assert get_ledger("leads").snapshot().calls == 0  # the scopes are counted apart


def test_a_closed_estimate_budget_sends_nothing_and_delivers_the_fallback(gemini, answers, settings):
    settings.HOKAN_ESTIMATE_MONTHLY_CALL_LIMIT = 0  # 0 closes the scope
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)

    assert estimate.status == "completed"
    assert estimate.text_source == "fallback"
    assert gemini.requests == []
    assert get_ledger("estimate").snapshot().calls == 0
