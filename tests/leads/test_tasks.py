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
from tests.fakes.faulty_provider import FaultyProvider
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
    settings.HOKAN_ENRICH_CONCURRENCY = 1  # in process, inside the test's transaction: no threads
    settings.HOKAN_GROUNDING_MAX_PAGES = 0  # the answers cite example.co.jp: never fetched from a test
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
def test_a_429_is_retried_by_the_call_itself_and_the_lead_is_paid_once(llm_settings, fake_openai_server):
    """Document 000 §12: retries per call (3; after a 429 without Retry-After the configured
    wait), not a whole-run retry: the run goes on and pays once."""
    llm_settings.HOKAN_LLM_RATE_LIMIT_WAIT_S = 0.01
    llm_settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 6000  # no pacing in this test
    lead = Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(Reply.rate_limited(), Reply.rate_limited(), answer())
    summary = run_ai_enrich.delay().get()
    run = EnrichmentRun.objects.get()
    assert run.status == "succeeded" and summary["leads_done"] == 1 and summary["llm_calls"] == 1
    assert len(fake_openai_server.requests) == 3
    lead.refresh_from_db()
    assert lead.employee_count == 120 and not lead.needs_ai_update


@pytest.mark.django_db
def test_without_a_broker_a_refresh_in_the_web_request_does_not_retry_or_wait(llm_settings, fake_openai_server):
    """A refresh runs inside the request that asked for it when there is no broker: a 429 ends
    the run at once (the worker must not sleep 10 minutes), the lead is left as it was."""
    lead = Lead.objects.create(name="株式会社テスト", needs_ai_update=False)
    fake_openai_server.enqueue(Reply.rate_limited(), answer())
    run = EnrichmentRun.objects.create(lead=lead, trigger="api", status=EnrichmentRun.Status.QUEUED)
    refresh_lead.delay(run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "中断" in run.message and "再試行の予定はありません" in run.message
    assert len(fake_openai_server.requests) == 1
    lead.refresh_from_db()
    assert lead.employee_count is None and lead.ai_last_enriched_at is None


@pytest.mark.django_db
def test_a_bad_key_stops_the_run_at_once_with_a_clear_message(llm_settings, fake_openai_server, webhook_receiver):
    llm_settings.PERPLEXITY_API_KEY = "wrong-key"
    for i in range(3):
        Lead.objects.create(name=f"株式会社鍵{i}")
    run_ai_enrich.delay()
    run = EnrichmentRun.objects.get()
    assert len(fake_openai_server.requests) == 1  # not one doomed request per lead
    assert run.status == "failed" and "API キー" in run.message and "PERPLEXITY_API_KEY" in run.message
    assert "再試行" not in run.message.replace("再試行の予定はありません", "")
    assert Lead.objects.filter(ai_last_enriched_at__isnull=False).count() == 0  # no lead was done
    assert [r.json["type"] for r in webhook_receiver.requests] == ["failure"]


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
            HOKAN_GROUNDING_MAX_PAGES="0",  # the answers cite example.co.jp: never fetched from a test
        )
        self.env.update(env)
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
    """build(provider, **env) -> Service: workers on Redis and a file database against ``provider``
    (a FaultyProvider, started here and stopped afterwards)."""
    redis.Redis.from_url(redis_server_url).flushdb()
    services: list[Service] = []
    providers: list[FaultyProvider] = []

    def build(provider: FaultyProvider, **env: str) -> Service:
        providers.append(provider.start())
        service = Service(tmp_path, redis_server_url, provider, webhook_receiver.json_url("/hook"), **env)
        services.append(service)
        return service

    try:
        yield build
    finally:
        for service in services:
            service.stop()
        for provider in providers:
            provider.stop()


def faulty(**options) -> FaultyProvider:
    return FaultyProvider(api_key="test-key", answer=lambda body: answer(), **options)


FAST = {"HOKAN_LLM_RATE_LIMIT_PER_MIN": "600", "HOKAN_ENRICH_CHUNK_LEADS": "4", "HOKAN_ENRICH_CONCURRENCY": "2"}


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_resumed_by_another_and_no_lead_is_paid_twice(e2e, webhook_receiver):
    provider = faulty(latency_s=0.4)
    service = e2e(provider, HOKAN_CELERY_VISIBILITY_TIMEOUT_S="3", HOKAN_JOB_LEASE_S="3", **FAST)
    service.helper("seed", "12")
    first = service.start_worker("w1")
    task_id = service.helper("enqueue")
    wait_until(lambda: provider.answered >= 3)
    os.killpg(first.pid, signal.SIGKILL)  # mid-chunk, with calls in flight
    first.wait()
    killed_at = service.state()
    assert killed_at["runs"][0]["status"] == "running"
    done_before = sum(1 for lead in killed_at["leads"] if lead["employee_count"] == 120)
    assert 0 < done_before < 12

    service.start_worker("w2")  # takes the dead worker's chunk once its lease has expired
    state = service.wait_for_run("succeeded", timeout_s=120)

    answered = provider.answered_companies()
    assert max(answered.values()) == 1, f"a lead was paid twice: {answered}"
    (run,) = state["runs"]
    assert run["public_id"] == task_id
    by_name = {lead["name"]: lead for lead in state["leads"]}
    done = {name for name, lead in by_name.items() if lead["employee_count"] == 120}
    assert len(done) == run["leads_done"] and run["leads_done"] + run["leads_skipped"] == 12
    # A call in flight when the worker died was answered (and billed) but never read: its lead
    # waits for tomorrow, its reservation stays open until settle_stale settles it at the estimate.
    for name, lead in by_name.items():
        if name not in done:
            assert lead["needs_ai_update"] and not lead["ai_last_enriched_at"]
            assert state["reservations"][name] == "reserved"
    usage = state["usage"]
    # The ledger never under-counts the provider's bill. It may over-count by a reservation whose
    # request was never sent (the worker died while that thread waited at the rate limiter: the
    # reservation is made first, a known limit in the closing note) — at most one per thread.
    threads = int(FAST["HOKAN_ENRICH_CONCURRENCY"])
    assert provider.answered <= usage["calls"] + usage["reserved_calls"] <= provider.answered + threads
    assert usage["calls"] == run["llm_calls"]
    assert [r.json["type"] for r in webhook_receiver.requests] == ["success"]


@pytest.mark.slow
def test_two_workers_finish_a_run_through_500s_and_a_429_storm(e2e, webhook_receiver):
    provider = faulty(error_rate=0.05, seed=11, latency_s=0.1)
    service = e2e(provider, HOKAN_LLM_RATE_LIMIT_WAIT_S="1", **FAST)
    service.helper("seed", "16")
    provider.storm(1.0, retry_after_s=1, from_next_request=True)
    service.start_worker("w1")
    service.start_worker("w2")
    service.helper("enqueue")
    state = service.wait_for_run("succeeded", timeout_s=120)
    assert provider.rate_limited > 0
    assert provider.answered_companies() == {f"株式会社テスト{i}": 1 for i in range(1, 17)}
    assert all(lead["employee_count"] == 120 and not lead["needs_ai_update"] for lead in state["leads"])
    (run,) = state["runs"]
    assert (run["leads_done"], run["llm_calls"], run["attempts"]) == (16, 16, 0)
    assert state["usage"]["calls"] == provider.answered and state["usage"]["reserved_calls"] == 0
    assert run["cost_micro_usd"] == to_micro_usd(16 * COST)
    workers = {chunk["claimed_by"].split(":")[1] for chunk in state["chunks"]}  # host:pid:thread
    assert len(workers) == 2 and all(chunk["status"] == "done" for chunk in state["chunks"])  # both worked


@pytest.mark.slow
def test_a_provider_that_is_down_stops_the_run_and_a_celery_retry_resumes_it(e2e, webhook_receiver):
    # The outage outlasts every call's one retry (sent ~2-4 s after its 503) by 2 s, so no thread of
    # the first attempt gets an answer after the stop (a straggler did at 4 s on a loaded machine:
    # 2026-12-01), and it ends well before the resumed attempt (>= wait_s after the stop).
    wait_s = 8
    provider = faulty()
    service = e2e(provider, HOKAN_LLM_RATE_LIMIT_WAIT_S=str(wait_s), HOKAN_LLM_MAX_RETRIES="1", **FAST)
    service.helper("seed", "6")
    provider.outage(6.0)
    service.start_worker("w1")
    service.helper("enqueue")
    state = service.wait_for_run("succeeded", timeout_s=120)
    (run,) = state["runs"]
    assert (run["leads_done"], run["attempts"]) == (6, 1)
    assert "1 回中断し、再試行で完了しました" in run["message"]
    assert provider.answered_companies() == {f"株式会社テスト{i}": 1 for i in range(1, 7)}
    assert state["usage"]["calls"] == 6 and state["usage"]["reserved_calls"] == 0  # the 503s cost nothing
    # The resumed attempt sent its first request only after the configured wait.
    statuses = provider.statuses()
    last_failure = max(at for at, status in statuses if status == 503)
    assert min(at for at, status in statuses if at > last_failure) - last_failure >= wait_s
    assert [r.json["type"] for r in webhook_receiver.requests] == ["success"]


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
