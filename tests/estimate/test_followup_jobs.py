"""The follow-ups (PDF, mails, Notion) as durable core.jobs jobs, and the drainer process that
runs them without a broker (issue 9 §4).

Real parts: the fake Resend server on 127.0.0.1, real processes for the drainer and gunicorn.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from hokan.core import jobs
from hokan.core.models import Job, JobChunk
from hokan.estimate import drainer
from hokan.estimate.answers import clean_answers
from hokan.estimate.followup_jobs import FOLLOWUPS_KIND, followups_job_key, pending_followups
from hokan.estimate.generate import generate_estimate
from hokan.estimate.models import EstimateSession
from tests.estimate.conftest import ANSWERS
from tests.fakes.resend_server import FakeResendServer

pytestmark = pytest.mark.django_db


def completed(answers, settings, mode):
    settings.ESTIMATE_FOLLOWUPS = mode
    session = EstimateSession.objects.create(answers=clean_answers(answers), current_step=13)
    return generate_estimate(session.pk)


@pytest.fixture
def resend(settings):
    with FakeResendServer(api_key="re_test") as server:
        settings.RESEND_API_KEY, settings.RESEND_API_BASE_URL = "re_test", server.base_url
        settings.NOTIFY_EMAIL = "ops@cloudnature.example"
        yield server


def recipients(server) -> list[str]:
    return sorted(to for body in server.emails for to in body["to"])


def test_every_completed_estimate_gets_one_job_run_with_it(answers, settings, resend,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        estimate = completed(answers, settings, "sync")
    job = Job.objects.get(key=followups_job_key(estimate.pk))
    assert (job.kind, job.scope, job.status) == (FOLLOWUPS_KIND, "estimate", "completed")
    estimate.refresh_from_db()
    assert estimate.followups == {"notion": "skipped:not_configured", "pdf": "ok", "customer_mail": "ok",
                                  "operator_mail": "ok"}
    assert recipients(resend) == ["ops@cloudnature.example", "tanaka@example.co.jp"]


def test_no_job_when_the_followups_are_off(answers, settings):
    estimate = completed(answers, settings, "off")
    assert not Job.objects.filter(key=followups_job_key(estimate.pk)).exists()


def test_a_failed_mail_is_retried_and_nothing_done_is_repeated(answers, settings, resend,
                                                              django_capture_on_commit_callbacks):
    resend.fail_next(1, status=500)  # the customer's mail fails once, the operator's goes
    with django_capture_on_commit_callbacks(execute=True):
        estimate = completed(answers, settings, "sync")
    job = Job.objects.get(key=followups_job_key(estimate.pk))
    (chunk,) = JobChunk.objects.filter(job=job)
    assert (job.status, chunk.status, chunk.retry_count) == ("running", "pending", 1)
    assert "customer_mail" in chunk.last_error
    assert recipients(resend) == ["ops@cloudnature.example"]
    later = timezone.now() + timedelta(minutes=2)  # past the retry's backoff, without waiting for it
    retried = jobs.claim_next_chunk(job, now=later)
    jobs.run_chunk(job, retried)
    job.refresh_from_db()
    estimate.refresh_from_db()
    assert job.status == "completed"
    assert estimate.followups["customer_mail"] == "ok" and estimate.followups["operator_mail"] == "ok"
    assert recipients(resend) == ["ops@cloudnature.example", "tanaka@example.co.jp"]  # the operator's once


def test_the_drainer_runs_every_pending_job(answers, settings, resend):
    # without the commit callbacks (the test's transaction never commits) no drainer is started:
    # the jobs wait, as they would for a drainer that is not running
    estimates = [completed(answers, settings, "process") for _ in range(3)]
    assert pending_followups().count() == 3
    assert drainer.drain(idle_exit_s=0) == 3
    assert pending_followups().count() == 0
    for estimate in estimates:
        estimate.refresh_from_db()
        assert estimate.followups["customer_mail"] == "ok"
    assert len(resend.emails) == 6


def test_the_drainer_takes_over_the_job_of_a_killed_drainer(answers, settings, resend):
    estimate = completed(answers, settings, "process")
    job = Job.objects.get(key=followups_job_key(estimate.pk))
    chunk = jobs.claim_next_chunk(job, worker="host:4242:killed")
    stale = timezone.now() - timedelta(seconds=settings.HOKAN_JOB_LEASE_S + 1)
    JobChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=stale)  # no heartbeat since: it died
    assert drainer.drain(idle_exit_s=0) == 1
    job.refresh_from_db()
    assert job.status == "completed"
    assert recipients(resend) == ["ops@cloudnature.example", "tanaka@example.co.jp"]


def test_the_drainer_leaves_recent_followups_while_the_web_is_busy(answers, settings, resend):
    estimates = [completed(answers, settings, "process") for _ in range(2)]
    old = Job.objects.get(key=followups_job_key(estimates[0].pk))
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    busy = drainer.drain(idle_exit_s=0, max_delay_s=60, busy=lambda: True)
    assert busy == 1  # only the one waiting for more than 60 s
    old.refresh_from_db()
    assert old.status == "completed" and pending_followups().count() == 1
    assert drainer.drain(idle_exit_s=0, max_delay_s=60, busy=lambda: False) == 1  # quiet: the rest
    assert pending_followups().count() == 0


def test_an_estimate_completed_on_this_host_marks_the_web_busy(tmp_path, settings):
    settings.HOKAN_DATA_DIR = tmp_path
    path = drainer.lock_path()
    assert not drainer.web_busy(path)
    drainer.touch(path)
    assert drainer.web_busy(path)
    assert not drainer.web_busy(path, now=time.time() + drainer.QUIET_S + 1)


def test_one_drainer_per_lock_file(tmp_path, settings):
    settings.HOKAN_DATA_DIR = tmp_path
    path = drainer.lock_path()
    assert not drainer.is_running(path) and drainer.running_pid(path) is None
    held = drainer._try_lock(path)
    try:
        drainer._write_pid(held)
        assert drainer.is_running(path) and drainer.running_pid(path) == os.getpid()
        assert drainer.ensure_running() is False  # one runs: nothing started
        assert drainer.main(["--lock", str(path)]) == 0  # a second drainer leaves at once
    finally:
        held.close()
    assert not drainer.is_running(path)


def test_an_unknown_mode_means_the_drainer(settings, caplog):
    from hokan.estimate.tasks import followups_mode

    settings.ESTIMATE_FOLLOWUPS = "Thread"
    assert followups_mode() == "thread"
    settings.ESTIMATE_FOLLOWUPS = "proces"
    assert followups_mode() == "process"
    assert "proces" in caplog.text


# --- the default without a broker, for real: gunicorn starts the drainer ------------------------
def _followups(database_url: str, session_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
        row = db.execute("SELECT followups FROM estimate_estimate WHERE session_id = ?",
                         (session_id.replace("-", ""),)).fetchone()
    return row[0] if row else None


def _nice(pid: int) -> int:
    stat = open(f"/proc/{pid}/stat").read()
    return int(stat[stat.rfind(")") + 2:].split()[16])


@pytest.mark.slow
def test_gunicorn_starts_one_low_priority_drainer_that_sends_the_mails(tmp_path):
    import json

    from tests.estimate.test_concurrency import _server_env, live_server
    from tests.fakes.gemini_server import FakeGeminiServer

    database_url = f"sqlite:///{tmp_path / 'estimate.sqlite3'}"
    with FakeGeminiServer(api_key="gemini-test-key") as gemini, FakeResendServer(api_key="re_test") as resend:
        env = _server_env(database_url, gemini, tmp_path)
        env.update({"LLM_PROVIDER": "fallback", "ESTIMATE_FOLLOWUPS": "process", "RESEND_API_KEY": "re_test",
                    "RESEND_API_BASE_URL": resend.base_url, "NOTIFY_EMAIL": "ops@cloudnature.example"})
        pid = None
        try:
            with live_server(env, tmp_path / "gunicorn.log") as url:
                sessions = []
                for _ in range(3):
                    session_id = httpx.post(f"{url}/api/v1/estimate/session", timeout=30).json()["session_id"]
                    response = httpx.post(f"{url}/api/v1/estimate/generate", timeout=60,
                                          json={"session_id": session_id, "answers": ANSWERS})
                    assert response.status_code == 200 and response.json()["status"] == "completed"
                    sessions.append(session_id)
                end = time.monotonic() + 120
                while len(resend.emails) < 6 and time.monotonic() < end:
                    time.sleep(0.1)
                assert len(resend.emails) == 6, (tmp_path / "gunicorn.log").read_text()[-3000:]
                for session_id in sessions:
                    assert json.loads(_followups(database_url, session_id))["customer_mail"] == "ok"
                pid = drainer.running_pid(tmp_path / drainer.LOCK_NAME)
                assert pid is not None and _nice(pid) >= drainer.NICE
        finally:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
