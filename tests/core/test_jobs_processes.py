"""core.jobs and core.cache across real processes, on a SQLite file and on PostgreSQL.

Each backend gets a database of its own (PostgreSQL: a throw-away server on 127.0.0.1,
tests/servers.py), migrated by ``django migrate`` in a subprocess; the workers are
``python -m tests.core.jobs_worker`` processes started together behind a "go" file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import postgres_available, postgres_server, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Database:
    def __init__(self, url: str, tmp: Path) -> None:
        self.tmp = tmp
        self.env = dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", DATABASE_URL=url,
                        HOKAN_DATA_DIR=str(tmp), HOKAN_LOG_DIR=str(tmp / "logs"), REDIS_URL="",
                        CELERY_BROKER_URL="")
        self.procs: list[subprocess.Popen] = []
        subprocess.run([sys.executable, "-m", "django", "migrate", "--verbosity", "0"], cwd=REPO_ROOT,
                       env=self.env, check=True, timeout=180)

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "tests.core.jobs_worker", *args], cwd=REPO_ROOT, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop (by PID) any worker a failed test left running."""
        for proc in self.procs:
            if proc.poll() is None:
                stop_process_group(proc, signal.SIGKILL, timeout_s=5)
        self.procs.clear()

    def run(self, *args: str) -> object:
        done = subprocess.run([sys.executable, "-m", "tests.core.jobs_worker", *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def create(self, rows: int, limit: int, params: dict | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.core.jobs_worker", "create", str(rows), str(limit),
                               json.dumps(params or {})], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp / 'hokan.sqlite3'}", tmp)
        return
    if not postgres_available():
        pytest.skip("PostgreSQL binaries not installed")
    with postgres_server() as url:
        yield Database(url, tmp)


@pytest.fixture(autouse=True)
def _stop_leftover_workers(request):
    yield
    if "database" in request.fixturenames:
        request.getfixturevalue("database").stop_all()


def finish(procs: list[subprocess.Popen], timeout_s: float = 120) -> list[dict]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout_s)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_concurrent_workers_never_take_the_same_chunk(database, tmp_path):
    job = database.create(rows=100, limit=1)
    go = tmp_path / "go"
    procs = [database.start("claim-all", job, str(go)) for _ in range(6)]
    time.sleep(0.5)  # let them reach the start line; correctness does not depend on it
    go.touch()
    results = finish(procs)
    claimed = [chunk for r in results for chunk in r["claimed"]]
    assert sorted(claimed) == list(range(100)), "a chunk was taken twice or not at all"
    assert sum(1 for r in results if r["claimed"]) >= 2  # they really competed
    state = database.run("state", job)
    assert (state["status"], state["done"], state["stored"]) == ("completed", 100, 100)
    assert {c["claim_count"] for c in state["chunks"]} == {1}


def test_a_chunk_of_a_worker_killed_by_sigkill_is_reclaimed_after_its_lease(database, tmp_path):
    job = database.create(rows=10, limit=10)
    ready = tmp_path / "ready"
    holder = database.start("hold", job, str(ready))
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert holder.poll() is None and time.monotonic() < deadline, holder.stderr.read() if holder.poll() else ""
        time.sleep(0.05)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    # now: its last heartbeat is within the lease (120 s); 121 s later: it is taken again
    fresh, taken = database.run("claim", job, "0", "121")
    assert fresh is None
    assert taken["chunk_id"] == 0 and taken["retry_count"] == 1
    assert f"holder-{holder.pid}" in taken["last_error"] and "120" in taken["last_error"]
    assert taken["claimed_by"] == "reclaimer" and taken["claim_count"] == 2


def test_processes_storing_the_same_cache_keys_at_once_leave_one_entry_per_key(database, tmp_path):
    go = tmp_path / "go-cache"
    procs = [database.start("cache-race", str(go), "60", "40") for _ in range(5)]
    time.sleep(0.5)
    go.touch()
    finish(procs)
    counts = database.run("cache-count")
    assert counts["rows"] == counts["keys"] and 0 < counts["rows"] <= 40
