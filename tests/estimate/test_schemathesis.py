"""Schemathesis against the published OpenAPI schema: no generated request gets a 5xx, and
every answer is JSON (document 004 §11.3; issue 9 §3 found ``{"8": 5}`` this way).

Bodies that name a session get a real one (answers complete, fallback provider), so the
step validation and the generation flow are exercised, not only the 404 path. Both positive
cases (as the schema says) and negative ones (``answers: {"8": 5}``, wrong types) are sent.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from hokan.estimate.answers import clean_answers
from hokan.estimate.models import EstimateSession
from hokan.wsgi import application
from tests.estimate.conftest import ANSWERS

schema = schemathesis.openapi.from_wsgi("/api/v1/estimate/openapi.json", application)


@pytest.fixture
def session_id():
    return str(EstimateSession.objects.create(answers=clean_answers(ANSWERS), current_step=13).pk)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: the start and end of a WSGI request must not close the
    test's connection (it holds the test transaction; PostgreSQL would lose it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _answer_is_json(response) -> None:
    """Every answer of the API is JSON, errors included (no HTML, no text/plain)."""
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), response.headers
    assert "Traceback" not in response.text


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_it_never_answers_5xx(case, session_id):
    if isinstance(case.body, dict) and "session_id" in case.body:
        case.body["session_id"] = session_id
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.status_code, response.text[:300])
    _answer_is_json(response)


@pytest.mark.django_db
def test_it_never_answers_5xx_to_requests_that_break_the_schema(session_id):
    from hypothesis import given

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    # Only a request with parameters or a body can break the schema (not POST session, GET /health).
    breakable = [op for op in operations if op.path_parameters or op.query or op.body]
    assert {op.path for op in breakable} >= {"/api/v1/estimate/step", "/api/v1/estimate/generate"}
    for operation in breakable:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            if isinstance(case.body, dict) and "session_id" in case.body:
                case.body["session_id"] = session_id
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
            _answer_is_json(response)

        check()
