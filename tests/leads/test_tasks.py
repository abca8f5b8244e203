"""The Celery tasks: in-process without a broker, and end to end with Redis and real workers.

End-to-end tests run a real ``celery worker`` subprocess against a real Redis, a file SQLite
database and the fake LLM provider (tests/fakes/openai_server.py), all on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from hokan.core.budget import to_micro_usd
from hokan.core.errors import LLMTransientError, RateLimited
from hokan.leads.models import EnrichmentRun, Lead
from hokan.leads.schedule import ENRICH_TASK, ensure_enrich_schedule
from hokan.leads.tasks import refresh_lead, retry_countdown_s, run_ai_enrich
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.servers import redis_server_url  # noqa: F401  (fixture)
from tests.servers import stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
COST = Decimal("0.006")


def answer(cost: Decimal = COST, **kwargs) -> Reply:
    items = {"業種": "ソフトウェア", "従業員数": "120名", "資本金": "5,000万円", "設立年": "平成13年"}
    return Reply.json({k: {"value": v, "source_url": "https://example.co.jp/company/", "quote": f"{k} {v}"}
                       for k, v in items.items()}, cost_usd=cost, **kwargs)


def company_of(request) -> str:
    prompt = request.json["messages"][-1]["content"]
    return next(line for line in prompt.splitlines() if line.startswith("企業名")).split(":", 1)[1].strip()


# --- in process (no broker: eager) ----------------------------------------------------------------
@pytest.fixture
def llm_settings(settings, fake_openai_server, webhook_receiver, monkeypatch):
    from hokan.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "memory://")  # no broker: tasks run eagerly
    settings.REDIS_URL = ""
    settings.HOKAN_LLM_PROVIDER = "perplexity"
    settings.PERPLEXITY_API_KEY = "test-key"
    settings.HOKAN_LLM_BASE_URL = fake_openai_server.base_url
    settings.HOKAN_LLM_MODEL = "sonar"
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    settings.HOKAN_NOTIFY_URLS = webhook_receiver.json_url("/hook")
    settings.POWERPLEXY_DAILY_RECORD_LIMIT = 100
    return settings


@pytest.mark.django_db
def test_it_runs_in_process_without_a_broker_and_notifies_success(llm_settings, fake_openai_server, webhook_receiver):
    lead = Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(answer())
    result = run_ai_enrich.delay()
    summary = result.get()
    lead.refresh_from_db()
    assert lead.employee_count == 120 and not lead.needs_ai_update
    run = EnrichmentRun.objects.get()
    assert (run.trigger, run.status, str(run.public_id)) == ("schedule", "succeeded", result.id)
    assert summary["leads_done"] == 1 and summary["llm_calls"] == 1
    (notice,) = webhook_receiver.requests
    assert notice.json["type"] == "success" and "1件" in notice.json["title"]
    assert "2,999" in notice.json["message"]  # calls left this month: 3,000 - 1


@pytest.mark.django_db
def test_it_warns_with_the_configured_limits_when_a_limit_stops_the_run(llm_settings, fake_openai_server,
                                                                       webhook_receiver):
    llm_settings.POWERPLEXY_MONTHLY_CALL_LIMIT = 1
    llm_settings.POWERPLEXY_MONTHLY_COST_LIMIT_USD = Decimal("12.5")
    Lead.objects.create(name="株式会社一番")
    Lead.objects.create(name="株式会社二番")
    fake_openai_server.enqueue(answer(), answer())
    run_ai_enrich.delay()
    assert len(fake_openai_server.requests) == 1
    (notice,) = webhook_receiver.requests
    assert notice.json["type"] == "warning"
    assert "月額12.5USDまたは1件超過" in notice.json["title"]  # the limits in force, not the document's


@pytest.mark.django_db
def test_it_sends_an_error_notice_with_the_company_and_the_trace(llm_settings, fake_openai_server, webhook_receiver):
    Lead.objects.create(name="株式会社壊れた回答")
    fake_openai_server.enqueue(Reply.error(400, message="bad request"))
    run_ai_enrich.delay()
    kinds = {r.json["type"]: r.json for r in webhook_receiver.requests}
    assert "株式会社壊れた回答" in kinds["failure"]["title"]
    assert "LLMRequestError" in kinds["failure"]["message"] and "Traceback" in kinds["failure"]["message"]


@pytest.mark.django_db
def test_without_a_broker_a_429_fails_the_run_instead_of_retrying_in_the_request(llm_settings, fake_openai_server):
    lead = Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="1"), answer())
    run_ai_enrich.delay()
    run = EnrichmentRun.objects.get()
    assert run.status == "failed" and "中断" in run.message
    assert len(fake_openai_server.requests) == 1  # one layer of retries: none here
    lead.refresh_from_db()
    assert lead.needs_ai_update and lead.employee_count is None


@pytest.mark.django_db
def test_refresh_enriches_its_lead_once_per_run_and_returns_quietly_when_the_run_is_gone(llm_settings,
                                                                                        fake_openai_server):
    lead = Lead.objects.create(name="株式会社再取得", needs_ai_update=False)
    other = Lead.objects.create(name="株式会社ほか")
    fake_openai_server.enqueue(answer(), answer(), answer())
    run = EnrichmentRun.objects.create(lead=lead, trigger="api", status=EnrichmentRun.Status.QUEUED)
    assert refresh_lead.delay(run.pk).get()["status"] == "succeeded"
    assert refresh_lead.delay(run.pk).get()["skipped"]  # a redelivery of a finished run: nothing again
    assert [company_of(r) for r in fake_openai_server.requests] == ["株式会社再取得"]
    Lead.objects.filter(pk=lead.pk).update(employee_count=None)
    again = EnrichmentRun.objects.create(lead=lead, trigger="api", status=EnrichmentRun.Status.QUEUED)
    refresh_lead.delay(again.pk)  # a new refresh request pays again, on purpose
    assert len(fake_openai_server.requests) == 2
    assert Lead.objects.get(pk=lead.pk).employee_count == 120
    assert Lead.objects.get(pk=other.pk).employee_count is None
    assert refresh_lead.delay(987654).get() is None


def test_the_retry_after_a_429_waits_the_configured_time_or_the_providers_longer_one(settings):
    settings.HOKAN_LLM_RATE_LIMIT_WAIT_S = 600
    short = LLMTransientError("429", provider="perplexity", status_code=429, retry_after_s=7)
    long = LLMTransientError("429", provider="perplexity", status_code=429, retry_after_s=900)
    assert retry_countdown_s(short, 0) == 600
    assert retry_countdown_s(long, 0) == 900
    assert retry_countdown_s(RateLimited("x", key="llm:p", retry_after_s=12), 0) == 12
    assert retry_countdown_s(LLMTransientError("503", provider="p", status_code=503), 1) == 120


@pytest.mark.django_db
def test_the_nightly_schedule_is_created_once_at_3am_tokyo_and_keeps_an_operators_change():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task=ENRICH_TASK)  # created by migrate (post_migrate)
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "3", "Asia/Tokyo")
    assert task.queue == "ai_enrich" and task.enabled
    task.crontab.hour = "4"
    task.crontab.save()
    assert not ensure_enrich_schedule()
    assert PeriodicTask.objects.get(task=ENRICH_TASK).crontab.hour == "4"


# --- end to end: Redis, real workers, a file database ---------------------------------------------
class Service:
    """The pieces of one end-to-end test: environment, database, helper commands, workers."""

    def __init__(self, tmp_path: Path, redis_url: str, llm: FakeOpenAIServer, notify_url: str, **env: str) -> None:
        self.tmp = tmp_path
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="hokan.settings",
            DATABASE_URL=f"sqlite:///{tmp_path / 'hokan.sqlite3'}",
            HOKAN_DATA_DIR=str(tmp_path),
            HOKAN_LOG_DIR=str(tmp_path / "logs"),
            REDIS_URL=redis_url,
            CELERY_BROKER_URL="",
            HOKAN_LLM_PROVIDER="perplexity",
            PERPLEXITY_API_KEY="test-key",
            HOKAN_LLM_BASE_URL=llm.base_url,
            HOKAN_LLM_MODEL="sonar",
            HOKAN_LLM_TIMEOUT_S="120",
            HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1",
            HOKAN_NOTIFY_URLS=notify_url,
            POWERPLEXY_DAILY_RECORD_LIMIT="100",
            **env,
        )
        self.workers: list[subprocess.Popen] = []
        subprocess.run([sys.executable, "-m", "django", "migrate", "--verbosity", "0"], cwd=REPO_ROOT,
                       env=self.env, check=True, timeout=120)

    def helper(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.leads.task_helper", *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def state(self) -> dict:
        return json.loads(self.helper("state"))

    def start_worker(self, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hokan.celery", "worker", "-Q", "ai_enrich", "--pool", "solo",
             "--loglevel", "INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def wait_for_run(self, status: str, timeout_s: float = 90) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Read the run rows straight from the SQLite file (cheap); the full state once at the end.
            with contextlib.closing(sqlite3.connect(self.tmp / "hokan.sqlite3", timeout=10)) as db:
                statuses = [row[0] for row in db.execute("SELECT status FROM leads_enrichmentrun")]
            if statuses and all(s == status for s in statuses):
                return self.state()
            time.sleep(0.3)
        logs = "\n".join((self.tmp / f).read_text(errors="replace")[-3000:] for f in os.listdir(self.tmp)
                         if f.endswith(".log"))
        raise AssertionError(f"the run did not reach {status}: {self.state()}\n{logs}")

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                stop_process_group(proc, signal.SIGTERM, timeout_s=15)


def wait_until(predicate, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def e2e(tmp_path, redis_server_url, webhook_receiver):  # noqa: F811
    redis.Redis.from_url(redis_server_url).flushdb()
    services: list[Service] = []
    llm = FakeOpenAIServer(api_key="test-key", default_reply=answer()).start()

    def build(**env: str) -> Service:
        service = Service(tmp_path, redis_server_url, llm, webhook_receiver.json_url("/hook"), **env)
        services.append(service)
        return service

    build.llm = llm  # type: ignore[attr-defined]
    try:
        yield build
    finally:
        for service in services:
            service.stop()
        llm.stop()


@pytest.mark.slow
def test_a_task_redelivered_after_kill_9_pays_no_lead_twice_and_loses_no_result(e2e, webhook_receiver):
    visibility_s = 2
    service = e2e(HOKAN_CELERY_VISIBILITY_TIMEOUT_S=str(visibility_s))
    llm = e2e.llm
    service.helper("seed", "5")
    # Leads 1 and 2 are answered; lead 3's answer is held by the provider when the worker dies.
    llm.enqueue(answer(Decimal("0.004")), answer(Decimal("0.005")), Reply.slow(60, answer()))
    first = service.start_worker("w1")
    task_id = service.helper("enqueue")
    enqueued_at = time.monotonic()
    wait_until(lambda: len(llm.requests) >= 3)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = service.state()
    assert [lead["employee_count"] for lead in done_before["leads"]] == [120, 120, None, None, None]
    assert done_before["runs"][0]["status"] == "running"

    # Redis gives the unacknowledged task to another worker after the visibility timeout.
    time.sleep(max(0.0, enqueued_at + visibility_s + 0.5 - time.monotonic()))
    service.start_worker("w2")
    state = service.wait_for_run("succeeded")

    companies = [company_of(r) for r in llm.requests]
    assert sorted(companies) == [f"株式会社テスト{i}" for i in range(1, 6)], "a lead was asked twice"
    by_name = {lead["name"]: lead for lead in state["leads"]}
    for i in (1, 2, 4, 5):
        assert by_name[f"株式会社テスト{i}"]["employee_count"] == 120 and not by_name[f"株式会社テスト{i}"]["needs_ai_update"]
    # Lead 3's call was in flight when the worker died: the provider may have charged it, so it
    # is not asked again today; its reservation stays held at its estimate until settle_stale.
    assert by_name["株式会社テスト3"]["employee_count"] is None and by_name["株式会社テスト3"]["needs_ai_update"]
    assert state["reservations"]["株式会社テスト3"] == "reserved"
    assert state["usage"]["calls"] == 4 and state["usage"]["reserved_calls"] == 1
    assert state["usage"]["cost_micro_usd"] == to_micro_usd(Decimal("0.004") + Decimal("0.005") + 2 * COST)
    (run,) = state["runs"]
    assert run["public_id"] == task_id and run["trigger"] == "schedule"
    assert [r.json["type"] for r in webhook_receiver.requests] == ["success"]


@pytest.mark.slow
def test_a_429_is_retried_by_celery_after_the_configured_wait_and_skips_the_leads_done(e2e):
    wait_s = 3
    service = e2e(HOKAN_LLM_RATE_LIMIT_WAIT_S=str(wait_s))
    llm = e2e.llm
    service.helper("seed", "3")
    # Lead 1 is answered, lead 2 gets a 429 whose Retry-After (1 s) is shorter than the setting.
    llm.enqueue(answer(), Reply.rate_limited(retry_after="1"))
    service.start_worker("w1")
    service.helper("enqueue")
    state = service.wait_for_run("succeeded")
    companies = [company_of(r) for r in llm.requests]
    assert companies[:2] == ["株式会社テスト1", "株式会社テスト2"]
    # The retry does not ask lead 1 again; it asks the never-enriched lead 3, then lead 2.
    assert companies[2:] == ["株式会社テスト3", "株式会社テスト2"]
    # The provider saw the retried task's first request only after the configured wait.
    assert llm.requests[2].received_at - llm.requests[1].received_at >= wait_s
    assert [lead["employee_count"] for lead in state["leads"]] == [120, 120, 120]
    assert state["usage"]["calls"] == 3 and state["usage"]["reserved_calls"] == 0  # the 429 cost nothing
    assert len(state["runs"]) == 1  # the retry continued the same run


def test_the_worker_and_beat_commands_need_a_broker(settings, monkeypatch):
    import typer

    from hokan import service
    from hokan.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "memory://")
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = ""
    for command in (service.worker, service.beat):
        with pytest.raises(typer.Exit) as exc:
            command() if command is service.beat else command(queues="ai_enrich", concurrency=1, pool="solo",
                                                              loglevel="INFO")
        assert exc.value.exit_code == 2
