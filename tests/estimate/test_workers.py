"""Issue 9 §4, first bullet, for real: two gunicorn sync workers (as ``hokan serve --workers 2``),
no Redis. Every read of ``GET session/{id}`` after a step was saved shows the saved answer,
whichever worker serves it (nothing is cached per process), and the IP rate limit of 60 per
minute holds across both workers (its counters are in the database); /health is not limited.

Which worker served a request is read from gunicorn's access log (its PID), so the test checks
that both workers did serve reads and limited requests.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.estimate.test_concurrency import _server_env, live_server
from tests.fakes.gemini_server import FakeGeminiServer

pytestmark = pytest.mark.slow
ACCESS = ("--access-logfile", "-", "--access-logformat", "ACCESS %(p)s %(m)s %(U)s %(s)s")
_LINE = re.compile(r"^ACCESS <(\d+)> (\w+) (\S+) (\d{3})$")


def served(log_path: Path, method: str, path_start: str) -> list[tuple[int, int]]:
    """(worker PID, status) of each logged request, in the order they were answered."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if (m := _LINE.match(line.strip())) and m.group(2) == method and m.group(3).startswith(path_start):
            found.append((int(m.group(1)), int(m.group(4))))
    return found


@pytest.fixture
def two_workers(tmp_path):
    def start(**env_overrides: str):
        gemini = FakeGeminiServer(api_key="gemini-test-key").start()
        env = _server_env(f"sqlite:///{tmp_path / 'estimate.sqlite3'}", gemini, tmp_path)
        env.update({"LLM_PROVIDER": "fallback", "REDIS_URL": "", **env_overrides})
        log_path = tmp_path / "gunicorn.log"
        return gemini, log_path, live_server(env, log_path, threads=1, extra=ACCESS)

    return start


def test_every_read_after_a_step_shows_it_whichever_worker_answers(two_workers):
    gemini, log_path, server = two_workers(ESTIMATE_RATE_LIMIT_PER_MINUTE="0")
    with gemini, server as url:
        session_id = httpx.post(f"{url}/api/v1/estimate/session", timeout=30).json()["session_id"]
        stale = reads = 0
        for value in ("asap", "3months", "6months", "1year", "undecided"):
            saved = httpx.post(f"{url}/api/v1/estimate/step", timeout=30,
                               json={"session_id": session_id, "step_number": 9, "value": value})
            assert saved.status_code == 200
            for _ in range(20):  # 20 reads after each save; each on a new connection
                answers = httpx.get(f"{url}/api/v1/estimate/session/{session_id}", timeout=30).json()["answers"]
                reads += 1
                stale += answers.get("step_9") != value
        assert (reads, stale) == (100, 0)
        workers = Counter(pid for pid, _ in served(log_path, "GET", "/api/v1/estimate/session/"))
        print(f"\n{reads} reads after 5 step saves, {stale} stale; reads per worker: {dict(workers)}")
        assert len(workers) == 2, workers  # both workers answered reads


def test_the_ip_limit_admits_60_a_minute_across_both_workers(two_workers):
    gemini, log_path, server = two_workers(ESTIMATE_RATE_LIMIT_PER_MINUTE="60")
    with gemini, server as url:
        statuses = [httpx.post(f"{url}/api/v1/estimate/session", timeout=30).status_code for _ in range(90)]
        assert Counter(statuses) == {200: 60, 429: 30}
        limited = httpx.post(f"{url}/api/v1/estimate/session", timeout=30)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["content-type"].startswith("application/json")
        assert all(httpx.get(f"{url}/health", timeout=30).status_code == 200 for _ in range(10))
        by_worker = Counter(pid for pid, status in served(log_path, "POST", "/api/v1/estimate/session") if status == 200)
        print(f"\n91 requests: {Counter(statuses + [limited.status_code])}; admitted per worker: {dict(by_worker)}")
        assert len(by_worker) == 2 and sum(by_worker.values()) == 60, by_worker  # both admitted, 60 in all
