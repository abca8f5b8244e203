"""A municipality run killed with SIGKILL mid-service, then resumed: completed services are not run
again and no answered paid call is repeated (counted at the fake LLM server); a real CLI subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hokan.municipal.demo import build_snapshot
from tests.fakes.openai_server import FakeOpenAIServer, Reply

REPO_ROOT = Path(__file__).resolve().parents[2]


class HangOnService(FakeOpenAIServer):
    """The fake OpenAI server, hanging every request that names ``marker`` while ``hanging``."""

    hanging = True

    def _next_reply(self) -> Reply:
        if self.hanging and self.requests and is_kokuho(self.requests[-1]):
            return Reply.hang()
        return super()._next_reply()


def _text(request) -> str:
    return json.dumps(request.json, ensure_ascii=False)


def is_kokuho(request) -> bool:
    """The query of the service 国民健康保険 (its name) or an extraction of its variables (kokuho_*)."""
    text = _text(request)
    return "サービス: 国民健康保険" in text or "kokuho_" in text


@pytest.mark.slow
def test_kill_9_mid_job_then_resume_skips_completed_services_and_paid_calls(tmp_path, shared_data):
    snapshot = build_snapshot(shared_data, tmp_path / "snapshot")
    with HangOnService(api_key="test-key") as llm:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL",
                                                                "HOKAN_LOG_LEVEL")}
        env.update(HOKAN_DATA_DIR=str(tmp_path / "data"), HOKAN_SHARED_DATA=str(shared_data), COLUMNS="200",
                   HOKAN_LLM_PROVIDER="openai", OPENAI_API_KEY="test-key", HOKAN_LLM_BASE_URL=llm.base_url,
                   HOKAN_LLM_MODEL="gpt-4o-mini", HOKAN_LLM_MAX_RETRIES="0", HOKAN_LLM_TIMEOUT_S="120",
                   HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1", HOKAN_SNAPSHOT_DIR=str(snapshot),
                   SEARCH_PROVIDER="snapshot", SEARCH_SNAPSHOT_DIRS=str(snapshot),
                   HOKAN_MUNICIPAL_SERVICE_DELAY_S="0", HOKAN_MUNICIPAL_PAGES_PER_SERVICE="3")

        def hokan(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "hokan", *args], env=env, capture_output=True, text=True,
                                  timeout=300, cwd=str(REPO_ROOT))

        assert hokan("municipal", "import-municipalities").returncode == 0
        run = ["municipal", "run", "--id", "otoineppu", "--name", "音威子府村", "--prefecture", "北海道",
               "--services", "juminhyo,kokuho,nenkin"]
        proc = subprocess.Popen([sys.executable, "-m", "hokan", *run], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT))
        deadline = time.monotonic() + 240
        while not any(is_kokuho(r) for r in llm.requests):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never reached the second service"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        first = list(llm.requests)
        juminhyo_calls = [r for r in first if "juminhyo" in _text(r)]
        assert len(juminhyo_calls) >= 2  # its query and at least one page's extraction were paid

        llm.hanging = False
        resumed = hokan("municipal", "run", "--id", "otoineppu", "--resume")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "続きから再開" in resumed.stdout
        again = llm.requests[len(first):]
        assert again, "the cut-off service was not run again"
        assert not [r for r in again if "juminhyo" in _text(r)]  # the completed service: nothing paid twice
        assert any("nenkin" in _text(r) for r in again) and any(is_kokuho(r) for r in again)
        # kokuho's answered calls before the kill: none (its first call hung), so every kokuho call is new;
        # the only repeated request is the one that never got an answer
        repeated = [r for r in again if any(_text(r) == _text(f) for f in first)]
        assert len(repeated) <= 1

        import sqlite3  # the CLI's file database, read directly (one CLI start less)

        with sqlite3.connect(tmp_path / "data" / "hokan.sqlite3", timeout=10) as db:
            rows = db.execute("SELECT s.key, d.version, d.variables FROM municipal_draft d "
                              "JOIN municipal_service s ON s.id = d.service_id").fetchall()
        drafts = {key: (version, json.loads(variables)) for key, version, variables in rows}
        assert set(drafts) == {"juminhyo", "kokuho", "nenkin"}
        assert drafts["juminhyo"][0] == 1  # saved once: not run again
        assert drafts["juminhyo"][1]["juminhyo_phone"]["value"] == "01656-5-3312"
        assert drafts["juminhyo"][1]["juminhyo_phone"]["quote"]


DISPATCH = """
import django, json
django.setup()
from hokan.core.tasks import dispatch_job
from hokan.municipal import flow
from hokan.municipal.models import Municipality, Service
from hokan.municipal.seed import ensure_seeded
ensure_seeded()
run = flow.start_run(Municipality.objects.get(lgcode="014702"),
                     [Service.objects.get(key=k) for k in ("juminhyo", "kokuho", "nenkin")], trigger="test")
print(json.dumps({"job": str(run.job.public_id), "tasks": dispatch_job(run.job)}))
"""


@pytest.mark.slow
def test_a_run_dispatched_to_a_celery_worker_completes_with_its_drafts(tmp_path, shared_data):
    import sqlite3

    from tests.servers import redis_available, redis_server, stop_process_group

    if not redis_available():
        pytest.skip("redis-server is not installed (apt-packages.txt)")
    snapshot = build_snapshot(shared_data, tmp_path / "snapshot")
    database = tmp_path / "hokan.sqlite3"
    with redis_server() as redis_url:
        env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "HOKAN_LOG_LEVEL")}
        env.update(DJANGO_SETTINGS_MODULE="hokan.settings", DATABASE_URL=f"sqlite:///{database}",
                   HOKAN_DATA_DIR=str(tmp_path), REDIS_URL=redis_url, HOKAN_SHARED_DATA=str(shared_data),
                   HOKAN_LLM_PROVIDER="offline", HOKAN_SNAPSHOT_DIR=str(snapshot), SEARCH_PROVIDER="snapshot",
                   SEARCH_SNAPSHOT_DIRS=str(snapshot), HOKAN_MUNICIPAL_SERVICE_DELAY_S="0")
        assert subprocess.run([sys.executable, "-m", "hokan", "municipal", "import-municipalities"], env=env,
                              cwd=str(REPO_ROOT), capture_output=True, timeout=300).returncode == 0
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115  (closed with the worker)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hokan.celery", "worker", "-Q", "celery", "--pool", "solo",
             "--loglevel", "INFO", "-n", "municipal@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            sent = subprocess.run([sys.executable, "-c", DISPATCH], env=env, cwd=str(REPO_ROOT), capture_output=True,
                                  text=True, timeout=120)
            assert sent.returncode == 0, sent.stderr
            job = json.loads(sent.stdout.strip().splitlines()[-1])
            assert job["tasks"] == 3  # one core.run_job_chunk task per service
            deadline = time.monotonic() + 180
            while True:
                with sqlite3.connect(database, timeout=10) as db:
                    (status,) = db.execute("SELECT status FROM core_job WHERE public_id = ?",
                                           (job["job"].replace("-", ""),)).fetchone()
                if status in ("completed", "failed", "interrupted"):
                    break
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
                time.sleep(0.3)
            assert status == "completed", (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
            with sqlite3.connect(database, timeout=10) as db:
                drafts = db.execute("SELECT count(*) FROM municipal_draft").fetchone()[0]
                stamped = db.execute("SELECT last_fetched_at FROM municipal_municipality WHERE lgcode = '014702'"
                                     ).fetchone()[0]
            assert drafts == 3 and stamped is not None
        finally:
            stop_process_group(worker, signal.SIGTERM, timeout_s=20)
            log.close()
