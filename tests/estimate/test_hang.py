"""Issue 9 §1: a hung provider never costs the customer an answer, and a "processing" row never
outlives its worker.

Against the local fake Gemini's hang mode (accepts the request, never answers): the request
path's deadline (ESTIMATE_LLM_DEADLINE_S, 1 s here standing for the 90 s default) ends every
LLM call, /step 7 and /generate answer 200 with the fallback content, and the answers are
stored before any LLM call. Processing rows: a row whose owner process was killed (a real
process, SIGKILL) is taken over at once; a row older than the deadline plus the margin is
taken over whoever owns it; ``GET result`` reports an abandoned row failed. The last tests run
gunicorn (2 workers) and kill -9 the worker that is waiting on the hung provider.

No wall-clock assertion: what is asserted is the outcome (200, fallback, stored answers, a
completed estimate instead of "processing") and the requests that reached the fake.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from hokan.estimate.answers import clean_answers
from hokan.estimate.generate import (
    ABANDONED_ERROR,
    abandoned,
    generate_estimate,
    owner_gone,
    process_identity,
    stale_after,
)
from hokan.estimate.models import Estimate, EstimateSession
from tests.estimate.conftest import ANSWERS, call_of, smart_responder
from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply

pytestmark = pytest.mark.django_db
STEPS_1_6 = {k: v for k, v in ANSWERS.items() if k in {"1", "2", "3", "4", "5", "6"}}


@pytest.fixture
def hung(gemini, settings):
    """Every Gemini request hangs; LLM_TIMEOUT 30 s and 3 attempts, a 1 s request deadline."""
    gemini.responder = lambda body: GeminiReply.hang()
    settings.LLM_TIMEOUT = 30
    settings.LLM_MAX_RETRIES = 3
    settings.ESTIMATE_LLM_DEADLINE_S = 1
    return gemini


def post(client, path, payload):
    return client.post(f"/api/v1/estimate/{path}", data=json.dumps(payload), content_type="application/json")


# --- the hung provider through the API ----------------------------------------------------------
def test_step_7_answers_200_with_the_industry_features_and_keeps_the_answers(client, hung):
    session_id = post(client, "session", {}).json()["session_id"]
    response = post(client, "step", {"session_id": session_id, "step_number": 7, "value": "new", "answers": STEPS_1_6})
    assert response.status_code == 200, response.content
    features = response.json()["step8_features"]
    assert 5 <= len(features) <= 7 and all({"value", "label", "category"} <= set(f) for f in features)
    stored = client.get(f"/api/v1/estimate/session/{session_id}").json()
    assert stored["answers"]["step_7"] == "new" and stored["answers"]["step_4"] == STEPS_1_6["4"]
    assert stored["step8_features"] == features
    assert EstimateSession.objects.get(pk=session_id).features_source == "fallback"
    assert len(hung.requests) == 1  # one hung attempt: no retry after the deadline


def test_generate_answers_200_with_the_fallback_estimate_and_keeps_the_answers(client, hung):
    session_id = post(client, "session", {}).json()["session_id"]
    response = post(client, "generate", {"session_id": session_id, "answers": ANSWERS})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed" and body["estimate"]["features"]
    estimate = Estimate.objects.get(pk=body["estimate_id"])
    assert (estimate.text_source, estimate.audit_status) == ("fallback", "skipped_timeout")
    assert estimate.owner == ""
    assert EstimateSession.objects.get(pk=session_id).answers == clean_answers(ANSWERS)
    assert len(hung.requests) == 1  # the text call hung; the audit was not even started


@pytest.mark.django_db(transaction=True)
def test_step_7_stores_the_answers_before_the_llm_is_asked(gemini, settings):
    """The fake reads the session from the database when the request reaches it."""
    settings.ESTIMATE_LLM_DEADLINE_S = 1
    seen = []

    def responder(body):
        from django.db import connection

        try:
            seen.append(EstimateSession.objects.get(pk=session.pk).answers)
        finally:
            connection.close()
        return GeminiReply.hang()

    gemini.responder = responder
    session = EstimateSession.objects.create()
    from hokan.estimate.steps import record_step

    record_step(session.pk, 7, "new", STEPS_1_6)
    assert seen and seen[0]["step_7"] == "new" and seen[0]["step_2"] == STEPS_1_6["2"]


def test_the_audit_is_not_started_with_too_little_time_left(gemini, settings, answers):
    settings.ESTIMATE_LLM_DEADLINE_S = 3  # under AUDIT_MIN_LEFT_S (5 s) from the start
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    estimate = generate_estimate(session.pk)
    assert (estimate.text_source, estimate.audit_status) == ("gemini", "skipped_timeout")
    assert [call_of(r.system_text) for r in gemini.requests] == ["estimate"]


# --- processing rows and their owners -----------------------------------------------------------
@pytest.fixture
def dead_owner():
    """The identity of a real process that has been killed with SIGKILL."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = process_identity(process.pid)
    process.kill()
    process.wait(timeout=10)
    return identity


@pytest.fixture
def live_owner():
    """A running process's identity; the process is killed by the test (``.kill()``) or at the end."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def processing(session, owner, started=None) -> Estimate:
    return Estimate.objects.create(session=session, status=Estimate.Status.PROCESSING, owner=owner,
                                   started_at=started or timezone.now())


def session_with_answers(answers) -> EstimateSession:
    return EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)


def test_it_tells_a_dead_owner_from_a_live_one(dead_owner, live_owner):
    assert owner_gone(dead_owner) is True
    assert owner_gone(process_identity()) is False
    assert owner_gone(process_identity(live_owner.pid)) is False
    host, pid, start = dead_owner.rsplit(":", 2)
    assert owner_gone(f"another-host:{pid}:{start}") is False  # cannot tell: the age decides
    assert owner_gone(f"{host}:{os.getpid()}:1") is True  # this PID, started at another time: reused


def test_a_processing_row_is_abandoned_after_the_deadline_and_its_margin(answers, settings):
    settings.ESTIMATE_LLM_DEADLINE_S = 90
    assert stale_after() == timedelta(seconds=120)  # gunicorn's worker timeout of hokan serve
    session = session_with_answers(answers)
    row = processing(session, "another-host:1:1", timezone.now() - timedelta(seconds=100))
    assert not abandoned(row)
    assert abandoned(row, now=timezone.now() + timedelta(seconds=21))


def test_generate_takes_over_at_once_when_the_owner_was_killed(gemini, answers, dead_owner):
    session = session_with_answers(answers)
    row = processing(session, dead_owner)
    estimate = generate_estimate(session.pk)
    assert estimate.pk == row.pk and estimate.status == "completed" and estimate.text_source == "gemini"
    assert sorted(call_of(r.system_text) for r in gemini.requests) == ["audit", "estimate"]


def test_generate_takes_over_a_row_older_than_the_deadline_from_another_host(gemini, answers):
    session = session_with_answers(answers)
    row = processing(session, "another-host:1:1", timezone.now() - stale_after() - timedelta(seconds=1))
    estimate = generate_estimate(session.pk)
    assert estimate.pk == row.pk and estimate.status == "completed"
    assert estimate.started_at > timezone.now() - timedelta(minutes=1)


def test_a_waiting_request_takes_over_when_the_owner_dies(gemini, answers, live_owner, settings):
    settings.ESTIMATE_LLM_DEADLINE_S = 60
    session = session_with_answers(answers)
    processing(session, process_identity(live_owner.pid))
    threading.Timer(0.5, live_owner.kill).start()  # the owner dies while this request waits
    estimate = generate_estimate(session.pk)
    assert estimate.status == "completed" and estimate.text_source == "gemini"
    assert len(gemini.requests) == 2


def test_a_live_generation_is_waited_for_at_most_until_the_deadline(client, gemini, answers, live_owner, settings):
    settings.ESTIMATE_LLM_DEADLINE_S = 0.3
    session = session_with_answers(answers)
    row = processing(session, process_identity(live_owner.pid))
    response = post(client, "generate", {"session_id": str(session.pk)})
    assert response.status_code == 200
    assert response.json() == {"estimate_id": str(row.pk), "session_id": str(session.pk), "status": "processing",
                               "estimate": None}
    assert gemini.requests == []  # nothing paid: the live run will answer


def test_result_reports_an_abandoned_row_failed_and_generate_runs_it_again(client, gemini, answers, dead_owner):
    session = session_with_answers(answers)
    row = processing(session, dead_owner)
    polled = client.get(f"/api/v1/estimate/result/{row.pk}").json()
    assert polled["status"] == "failed"
    row.refresh_from_db()
    assert row.error == ABANDONED_ERROR
    assert EstimateSession.objects.get(pk=session.pk).status == "failed"
    again = post(client, "generate", {"session_id": str(session.pk)}).json()
    assert (again["estimate_id"], again["status"]) == (str(row.pk), "completed")


def test_result_keeps_a_live_row_processing(client, answers):
    session = session_with_answers(answers)
    row = processing(session, process_identity())
    assert client.get(f"/api/v1/estimate/result/{row.pk}").json()["status"] == "processing"


# --- gunicorn: the worker waiting on the hung provider is killed --------------------------------
def _children(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def _wait_for(predicate, what: str, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _owner_pid(database_url: str, session_id: str) -> int | None:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
        row = db.execute("SELECT owner FROM estimate_estimate WHERE session_id = ?",
                         (session_id.replace("-", ""),)).fetchone()
    return int(row[0].rsplit(":", 2)[1]) if row and row[0] else None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_loses_no_answer_and_its_generation_is_taken_over(tmp_path):
    from tests.estimate.test_concurrency import _server_env, live_server

    hang = threading.Event()
    hang.set()

    def responder(body):
        return GeminiReply.hang() if hang.is_set() else smart_responder(body)

    database_url = f"sqlite:///{tmp_path / 'estimate.sqlite3'}"
    with FakeGeminiServer(api_key="gemini-test-key", responder=responder) as gemini:
        env = _server_env(database_url, gemini, tmp_path)
        env.update({"ESTIMATE_LLM_DEADLINE_S": "60", "LLM_TIMEOUT": "45"})
        log_path = tmp_path / "gunicorn.log"
        with live_server(env, log_path) as url:
            master = int(next(line.split("[")[2].split("]")[0] for line in log_path.read_text().splitlines()
                              if "Starting gunicorn" in line))
            session_id = httpx.post(f"{url}/api/v1/estimate/session", timeout=30).json()["session_id"]

            def send(path, payload):
                try:
                    httpx.post(f"{url}/api/v1/estimate/{path}", json=payload, timeout=90)
                except httpx.HTTPError:
                    pass  # the worker was killed: the connection drops

            # step 7: the worker is killed while Gemini hangs; the answers are already stored
            sender = threading.Thread(target=send, args=("step", {"session_id": session_id, "step_number": 7,
                                                                  "value": "new", "answers": STEPS_1_6}))
            sender.start()
            _wait_for(lambda: len(gemini.requests) == 1, "the step-7 call to reach Gemini")
            for pid in _children(master):
                os.kill(pid, signal.SIGKILL)
            sender.join(timeout=60)
            _wait_for(lambda: _server_up(url), "gunicorn to replace its workers")
            stored = httpx.get(f"{url}/api/v1/estimate/session/{session_id}", timeout=30).json()["answers"]
            assert stored["step_7"] == "new" and stored["step_4"] == STEPS_1_6["4"]

            # generate: the owner of the processing row is killed; the retry takes it over at once
            sender = threading.Thread(target=send, args=("generate", {"session_id": session_id, "answers": ANSWERS}))
            sender.start()
            _wait_for(lambda: len(gemini.requests) == 2, "the text call to reach Gemini")
            owner = _owner_pid(database_url, session_id)
            assert owner in _children(master)
            os.kill(owner, signal.SIGKILL)
            sender.join(timeout=60)
            hang.clear()  # Gemini answers again
            polled = httpx.get(f"{url}/api/v1/estimate/result/{session_id}", timeout=30).json()
            assert polled["status"] == "failed"  # not "processing" for ever
            again = httpx.post(f"{url}/api/v1/estimate/generate", json={"session_id": session_id}, timeout=90)
            assert again.status_code == 200
            assert again.json()["status"] == "completed"
            assert [call_of(r.system_text) for r in gemini.requests[2:]] == ["estimate", "audit"]


def _server_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
