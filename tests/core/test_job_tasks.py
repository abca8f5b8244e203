"""core.tasks end to end: a job's chunks as Celery tasks on two real workers, a real Redis broker
and beat, a SQLite file database (all on 127.0.0.1, stopped by PID).

The handler (tests/core/job_handlers.py, ``test.rows``) stores one unique row per input row in
the transaction that marks its chunk done, and logs every attempt with its worker's PID.
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
from pathlib import Path

import pytest
import redis

from tests.servers import redis_server_url  # noqa: F401  (fixture)
from tests.servers import stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class Cluster:
    def __init__(self, tmp: Path, redis_url: str, **env: str) -> None:
        self.tmp = tmp
        self.db = tmp / "hokan.sqlite3"
        self.env = dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", DATABASE_URL=f"sqlite:///{self.db}",
                        HOKAN_DATA_DIR=str(tmp), HOKAN_LOG_DIR=str(tmp / "logs"), REDIS_URL=redis_url,
                        CELERY_BROKER_URL="", HOKAN_JOB_RETRY_BACKOFF_MAX_S="0", HOKAN_JOB_SWEEP_INTERVAL_S="1",
                        **env)
        self.procs: dict[str, subprocess.Popen] = {}
        subprocess.run([sys.executable, "-m", "django", "migrate", "--verbosity", "0"], cwd=REPO_ROOT, env=self.env,
                       check=True, timeout=180)

    def helper(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.core.jobs_worker", *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]

    def _start(self, name: str, *command: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "hokan.celery", *command], cwd=REPO_ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str) -> subprocess.Popen:
        return self._start(name, "worker", "-Q", "celery", "--pool", "solo", "--include", "tests.core.job_handlers",
                           "--loglevel", "INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                           "--without-heartbeat")

    def start_beat(self) -> subprocess.Popen:
        return self._start("beat", "beat", "--loglevel", "INFO", "--max-interval", "1",
                           "--schedule", str(self.tmp / "beat-schedule"))

    def job_status(self, job: str) -> str | None:
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
            row = db.execute("SELECT status FROM core_job WHERE public_id = ?", (job.replace("-", ""),)).fetchone()
        return row[0] if row else None

    def wait_for(self, predicate, what: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-2500:]
                                 for p in self.tmp.glob("*.log"))
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                stop_process_group(proc, signal.SIGTERM, timeout_s=15)


@pytest.fixture
def cluster(tmp_path, redis_server_url):  # noqa: F811
    redis.Redis.from_url(redis_server_url).flushdb()
    made: list[Cluster] = []

    def build(**env: str) -> Cluster:
        made.append(Cluster(tmp_path, redis_server_url, **env))
        return made[-1]

    yield build
    for c in made:
        c.stop()


def attempts(log: Path) -> list[tuple[int, str, int]]:
    """(chunk_id, pid, retry_count) of every attempt logged by the handler."""
    if not log.exists():
        return []
    return [(int(c), pid, int(r)) for _, c, pid, r in (line.split() for line in log.read_text().splitlines())]


def test_a_jobs_chunks_spread_over_two_workers_and_a_failed_chunk_is_retried(cluster, tmp_path):
    c = cluster()
    log = tmp_path / "attempts.log"
    job = c.helper("create", "30", "5", json.dumps({"log": str(log), "meet": 2, "fail_first": [3]}))
    c.start_worker("w1")
    c.start_worker("w2")
    assert c.helper("dispatch", job) == "6"  # one task per chunk
    c.wait_for(lambda: c.job_status(job) == "completed", "the job to complete")
    state = json.loads(c.helper("state", job))
    assert state["stored"] == 30 and state["totals"] == {"rows": 30, "row_sum": sum(range(30)), "cost_usd": "0.006"}
    seen = attempts(log)
    assert len({pid for _, pid, _ in seen}) == 2  # both workers ran chunks
    assert sorted((chunk, retry) for chunk, _, retry in seen) == [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (4, 0), (5, 0)]
    chunk3 = state["chunks"][3]
    assert chunk3["retry_count"] == 1 and "provider answered 500" in chunk3["last_error"]


def test_a_chunk_of_a_worker_killed_by_sigkill_is_taken_by_another_worker_after_its_lease(cluster, tmp_path):
    c = cluster(HOKAN_JOB_LEASE_S="3")
    log = tmp_path / "attempts.log"
    job = c.helper("create", "20", "5", json.dumps({"log": str(log), "block_first": [0]}))
    workers = {"w1": c.start_worker("w1"), "w2": c.start_worker("w2")}
    c.start_beat()
    c.helper("dispatch", job)
    c.wait_for(lambda: any(chunk == 0 for chunk, _, _ in attempts(log)), "chunk 0 to start")
    (victim_pid,) = {pid for chunk, pid, _ in attempts(log) if chunk == 0}
    victim = next(p for p in workers.values() if str(p.pid) == victim_pid)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    c.wait_for(lambda: c.job_status(job) == "completed", "the job to complete after the kill")
    state = json.loads(c.helper("state", job))
    assert state["stored"] == 20 and state["totals"]["rows"] == 20
    chunk0 = state["chunks"][0]
    assert chunk0["retry_count"] == 1 and chunk0["claim_count"] == 2 and "応答がありません" in chunk0["last_error"]
    seen = attempts(log)
    assert [(chunk, retry) for chunk, _, retry in seen if chunk == 0] == [(0, 0), (0, 1)]
    assert next(pid for chunk, pid, retry in seen if chunk == 0 and retry == 1) != victim_pid
    assert sorted(chunk for chunk, _, _ in seen if chunk) == [1, 2, 3]  # nothing else ran twice
