"""Shared pieces of S1's scoring tests: a provider configured on a local fake, input files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

CATEGORIES = [
    {"name": "不満", "description": "商品やサービスへの不満・苦情を述べている"},
    {"name": "要望", "description": "改善や新機能の要望を述べている"},
    {"name": "称賛", "description": "商品やサービスを褒めている"},
]


def texts(n: int, *, prefix: str = "発話") -> list[str]:
    """``n`` distinct utterances (the fake counts what it is paid for by text)."""
    return [f"{prefix}{i:05d}: 配送が遅いので改善してほしい、でも品質は良い（{i}）" for i in range(n)]


def write_csv(path: Path, utterances: list[str], *, encoding: str = "utf-8", id_prefix: str = "c") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "発話", "備考"])
        for i, text in enumerate(utterances):
            writer.writerow([f"{id_prefix}{i}", text, "x"])
    return path


def write_categories(path: Path, categories: list[dict[str, str]] | None = None) -> Path:
    path.write_text(json.dumps(categories or CATEGORIES, ensure_ascii=False), encoding="utf-8")
    return path


def configure(settings, provider, **extra) -> None:
    """Django settings pointing the scoring profile at ``provider`` (a FakeOpenAIServer)."""
    settings.HOKAN_LLM_PROVIDER = "perplexity"
    settings.PERPLEXITY_API_KEY = "test-key"
    settings.HOKAN_LLM_BASE_URL = provider.base_url
    settings.HOKAN_LLM_MODEL = "sonar"
    settings.HOKAN_LLM_TIMEOUT_S = 10
    settings.HOKAN_LLM_MAX_RETRIES = 3
    settings.HOKAN_LLM_RATE_LIMIT_WAIT_S = 1
    settings.HOKAN_LLM_RATE_LIMIT_PER_MIN = 60_000
    settings.HOKAN_LLM_RATE_LIMIT_BURST = 100
    settings.HOKAN_SCORING_MONTHLY_CALL_LIMIT = 100_000
    settings.HOKAN_SCORING_MONTHLY_COST_LIMIT_USD = 10_000
    settings.HOKAN_SCORING_FLUSH_INTERVAL = 0.2
    for name, value in extra.items():
        setattr(settings, name, value)


def env_for(provider, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``hokan`` subprocess against ``provider`` on a file database."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in (
        "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL", "HOKAN_LOG_LEVEL")}
    env.update(
        HOKAN_DATA_DIR=str(tmp_path), COLUMNS="200", HOKAN_LLM_PROVIDER="perplexity", PERPLEXITY_API_KEY="test-key",
        HOKAN_LLM_BASE_URL=provider.base_url if provider is not None else "http://127.0.0.1:9", HOKAN_LLM_MODEL="sonar", HOKAN_LLM_TIMEOUT_S="10",
        HOKAN_LLM_RATE_LIMIT_WAIT_S="1", HOKAN_LLM_RATE_LIMIT_PER_MIN="60000", HOKAN_LLM_RATE_LIMIT_BURST="100",
        HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1", HOKAN_SCORING_MONTHLY_CALL_LIMIT="100000",
        HOKAN_SCORING_MONTHLY_COST_LIMIT_USD="10000", HOKAN_SCORING_FLUSH_INTERVAL="0.2",
    )
    env.update(extra)
    return env


# --- a data folder and `hokan` run as a user runs it (file SQLite, WAL) -----------------------------
REPO_ROOT = Path(__file__).resolve().parents[2]
_TEMPLATE: dict[str, Path] = {}


def migrated_template(tmp_root: Path) -> Path:
    """A migrated SQLite file, made once per test session and copied by each Site."""
    import subprocess
    import sys

    if "db" not in _TEMPLATE:
        folder = tmp_root / "template"
        folder.mkdir(parents=True, exist_ok=True)
        env = env_for(None, folder)
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], cwd=REPO_ROOT, check=True, timeout=300,
                       env=dict(env, DJANGO_SETTINGS_MODULE="hokan.settings"))
        _TEMPLATE["db"] = folder / "hokan.sqlite3"
    return _TEMPLATE["db"]


class Site:
    """A data folder with its own database, and ``hokan`` subprocesses against ``provider``."""

    def __init__(self, tmp_path: Path, template: Path, provider=None, **env: str) -> None:
        import shutil
        import sys

        self.tmp, self.python = tmp_path, sys.executable
        shutil.copy(template, tmp_path / "hokan.sqlite3")
        self.env = env_for(provider, tmp_path, **env)
        self.procs: list = []

    def hokan(self, *args: str, timeout: float = 240):
        import subprocess

        return subprocess.run([self.python, "-m", "hokan", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(REPO_ROOT))

    def start(self, *args: str):
        import subprocess

        proc = subprocess.Popen([self.python, "-m", "hokan", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT), start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        import signal

        from tests.servers import stop_process_group

        for proc in self.procs:
            if proc.poll() is None:
                stop_process_group(proc, signal.SIGKILL, timeout_s=5)

    def query(self, sql: str, *params):
        import sqlite3

        with sqlite3.connect(self.tmp / "hokan.sqlite3", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def state(self, job: str) -> dict:
        """The job as stored, read straight from the SQLite file (no Django start-up): the
        fields of ``hokan scoring status --json`` the tests use."""
        (sjob_id, core_id, status, message), = self.query(
            "SELECT s.id, j.id, j.status, j.message FROM scoring_scoringjob s JOIN core_job j ON j.id = s.job_id "
            "WHERE s.name = ?", job)
        cells = dict(self.query("SELECT status, COUNT(*) FROM scoring_scoringresult WHERE job_id = ? GROUP BY status",
                                sjob_id))
        chunks = [{"chunk_id": c, "row_range": [a, b], "status": st, "retry_count": r, "last_error": e}
                  for c, a, b, st, r, e in self.query(
                      "SELECT chunk_id, row_start, row_end, status, retry_count, last_error FROM core_jobchunk "
                      "WHERE job_id = ? ORDER BY chunk_id", core_id)]
        return {"status": status, "message": message, "cells_ok": cells.get("ok", 0),
                "cells_failed": cells.get("error", 0),
                "calls": self.query("SELECT COUNT(*) FROM scoring_scoringanswer WHERE job_id = ?", sjob_id)[0][0],
                "cache_hits": self.query("SELECT COUNT(*) FROM scoring_scoringresult WHERE job_id = ? AND method = 'cache'",
                                         sjob_id)[0][0],
                "chunks": chunks, "chunks_total": len(chunks),
                "chunks_done": sum(1 for c in chunks if c["status"] == "done")}

    def status(self, job: str) -> dict:
        done = self.hokan("scoring", "status", job, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)


try:
    import pytest

    @pytest.fixture
    def site_factory(tmp_path, tmp_path_factory, redis_server_url):
        """``make(provider, **env) -> Site`` on a copy of the migrated database, with Redis (the
        module's ``redis_server_url``, tests/servers.py) for the limiter, the ledger and the
        cache; stops what a failed test left running."""
        made: list[Site] = []

        def make(provider, **env: str) -> Site:
            site = Site(tmp_path, migrated_template(tmp_path_factory.getbasetemp()), provider,
                        REDIS_URL=redis_server_url, **env)
            made.append(site)
            return site

        yield make
        for site in made:
            site.stop_all()
except ImportError:  # pragma: no cover
    pass
