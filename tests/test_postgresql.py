"""The models, the enrichment job, the APIs, the registry and the municipal / scoring /
knowledge stores on PostgreSQL, not only SQLite.

Starts a throw-away PostgreSQL server on 127.0.0.1 (tests/servers.py) and runs those test
files against it in a subprocess with DATABASE_URL pointing at it; pytest-django creates its
test database there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import postgres_available, postgres_server

REPO_ROOT = Path(__file__).resolve().parent.parent
ON_POSTGRESQL = [
    "tests/leads/test_import.py",
    "tests/leads/test_enrich.py",
    "tests/leads/test_api.py",
    "tests/registry/test_match.py",
    "tests/estimate/test_generate.py",
    "tests/estimate/test_api.py",
    "tests/core/test_jobs.py",
    "tests/core/test_cache.py",
    # the three apps of issues 10-12: their models, drafts/results, API and the atomic feedback
    "tests/municipal/test_models.py",
    "tests/municipal/test_api.py",
    "tests/scoring/test_api.py",
    "tests/knowledge/test_store.py",
    "tests/knowledge/test_feedback.py",
]


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL binaries not installed")
def test_the_models_job_and_api_pass_on_postgresql():
    with postgres_server() as url:
        env = dict(os.environ, DATABASE_URL=url)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ON_POSTGRESQL],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
