"""``POST generate`` is idempotent per session also when requests race (design document 004 §3).

A real server (gunicorn, 2 worker processes × 4 threads, on 127.0.0.1) runs against a fresh
database — an SQLite file, and a throw-away PostgreSQL server when its binaries are installed —
and a local fake Gemini server that answers slowly, so the racing requests overlap the
generation. Several threads send ``POST /api/v1/estimate/generate`` for the same session at the
same moment: one Estimate row, every response carries the same completed estimate, and the fake
received the calls of ONE generation only (one text call and one audit: no LLM call paid twice).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.estimate.conftest import ANSWERS, call_of, smart_responder
from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply
from tests.servers import free_port, postgres_available, postgres_server, stop_process_group

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
RACERS = 6


def _slow_responder(body):
    """The smart answers of conftest, each after 0.5 s."""
    return GeminiReply.slow(0.5, smart_responder(body))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'estimate.sqlite3'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL binaries not installed")
    with postgres_server() as url:
        yield url


def _server_env(database_url: str, gemini: FakeGeminiServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOKAN_", "ESTIMATE_", "REDIS", "CELERY"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "hokan.settings", "HOKAN_ENV_FILE": str(tmp_path / "no.env"),
        "HOKAN_DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "DEBUG": "false",
        "LLM_PROVIDER": "gemini", "GEMINI_API_KEY": "gemini-test-key", "GEMINI_BASE_URL": gemini.base_url,
        "API_KEY": "", "AUDIT_ENABLED": "true", "ESTIMATE_FOLLOWUPS": "off", "ESTIMATE_RATE_LIMIT_PER_MINUTE": "0",
        "REDIS_URL": "", "CELERY_BROKER_URL": "", "RESEND_API_KEY": "", "NOTION_API_KEY": "", "EMAIL_HOST": "",
        "HOKAN_FETCH_ALLOW_HOSTS": "127.0.0.1",  # the SSRF guard lets the server reach the fake Gemini
    })
    return env


@contextlib.contextmanager
def live_server(env: dict[str, str], log_path: Path, *, threads: int = 4, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """gunicorn (2 workers × ``threads``; 1 = the sync workers of ``hokan serve``) on a free
    127.0.0.1 port after ``migrate``, with ``extra`` arguments; its log in ``log_path``;
    stopped by its process group."""
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env,
                   check=True, capture_output=True, timeout=300)
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "hokan.wsgi:application", "--bind",
                                   f"127.0.0.1:{port}", "--workers", "2", "--threads", str(threads), "--timeout", "120", *extra],
                                  cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet: poll again until the deadline
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process_group(server, signal.SIGTERM, timeout_s=30)


def _count_estimates(database_url: str, session_id: str) -> int:
    """Estimate rows of the session, read straight from the server's database."""
    sql = "SELECT COUNT(*) FROM estimate_estimate WHERE session_id = "
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return db.execute(sql + "?", (session_id.replace("-", ""),)).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(sql + "%s", (session_id,)).fetchone()[0]


def _race(url: str, payload: dict, n: int) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(n)

    def one(_: int) -> tuple[int, dict]:
        barrier.wait(timeout=30)
        response = httpx.post(f"{url}/api/v1/estimate/generate", json=payload, timeout=120)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_it_generates_once_when_requests_race(database_url, tmp_path):
    with FakeGeminiServer(api_key="gemini-test-key", responder=_slow_responder) as gemini, \
            live_server(_server_env(database_url, gemini, tmp_path), tmp_path / "gunicorn.log") as url:
        for earlier_failure in (False, True):  # a new session; one whose first generation failed
            session_id = httpx.post(f"{url}/api/v1/estimate/session", timeout=30).json()["session_id"]
            if earlier_failure:  # the racing retries run it again, once
                _mark_failed(database_url, session_id)
            gemini.requests.clear()

            results = _race(url, {"session_id": session_id, "answers": ANSWERS}, RACERS)

            assert [status for status, _ in results] == [200] * RACERS, results
            bodies = [body for _, body in results]
            assert all(body["status"] == "completed" and body["estimate"] for body in bodies), bodies
            assert all(body == bodies[0] for body in bodies)  # same estimate id, same content
            assert _count_estimates(database_url, session_id) == 1
            polled = httpx.get(f"{url}/api/v1/estimate/result/{bodies[0]['estimate_id']}", timeout=30).json()
            assert polled == bodies[0]
            # ONE generation reached the LLM: one text call and one audit, nothing paid twice
            assert sorted(call_of(r.system_text) for r in gemini.requests) == ["audit", "estimate"]


def _mark_failed(database_url: str, session_id: str) -> None:
    """Store a failed Estimate row for the session, as an earlier crashed generation leaves it."""
    import uuid

    row = (str(uuid.uuid4()), session_id)
    columns = ("id, session_id, status, raw_json, calculated_json, provider, text_source, audit_status, audit_diff, "
               "audit_warnings, followups, error, created_at")
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            db.execute(f"INSERT INTO estimate_estimate ({columns}) VALUES (?, ?, 'failed', '{{}}', '{{}}', '', '', '', "
                       "'[]', '[]', '{}', 'RuntimeError', datetime('now', '-10 minutes'))",
                       (row[0].replace("-", ""), row[1].replace("-", "")))
            db.commit()
        return
    import psycopg

    with psycopg.connect(database_url) as db:
        db.execute(f"INSERT INTO estimate_estimate ({columns}) VALUES (%s, %s, 'failed', '{{}}', '{{}}', '', '', '', "
                   "'[]', '[]', '{}', 'RuntimeError', now() - interval '10 minutes')", row)
