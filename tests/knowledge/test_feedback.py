"""Feedback: a quality-score update is atomic — ratings from two processes at once all count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from hokan.knowledge.errors import AnalysisInvalid
from hokan.knowledge.feedback import rate
from hokan.knowledge.models import Feedback, VideoAnalysis
from hokan.knowledge.service import store_analysis
from tests.conftest import REPO_ROOT
from tests.servers import postgres_available, postgres_server
from tests.knowledge.conftest import analysis_payload


@pytest.mark.django_db
def test_rating_updates_the_score_and_the_qdrant_payload(knowledge_index):
    store_analysis(analysis_payload(), index_obj=knowledge_index)
    rate("tt-001", 5, comment="参考になった")
    rate("tt-001", 4, phase_index=1)
    analysis = VideoAnalysis.objects.get(video_id="tt-001")
    assert (analysis.rating_count, analysis.rating_sum, analysis.quality_score) == (2, 9, Decimal("4.50"))
    payloads = [r.payload for r in knowledge_index.points(with_vectors=False)]
    assert {p["quality_score"] for p in payloads} == {4.5}
    for bad in (0, 6, 4.5, True, "5"):
        with pytest.raises(AnalysisInvalid):
            rate("tt-001", bad)
    with pytest.raises(AnalysisInvalid, match="フェーズ 9"):
        rate("tt-001", 3, phase_index=9)
    with pytest.raises(VideoAnalysis.DoesNotExist):
        rate("unknown", 3)
    assert Feedback.objects.count() == 2


def _run(env, *args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, check=True, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL binaries not installed")
def test_two_processes_rating_at_once_both_count(tmp_path):
    # PostgreSQL (READ COMMITTED): a read-modify-write in Python loses ratings here; SQLite
    # serialises whole write transactions and would not show the difference.
    with postgres_server() as url:
        _two_processes(tmp_path, url)


def _two_processes(tmp_path, database_url):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="hokan.settings", HOKAN_DATA_DIR=str(tmp_path),
               DATABASE_URL=database_url, REDIS_URL="")
    _run(env, "-c", "import django; django.setup(); from django.core.management import call_command;"
                    "call_command('migrate', verbosity=0);"
                    "from hokan.knowledge.service import store_analysis;"
                    "from tests.knowledge.conftest import analysis_payload;"
                    "store_analysis(analysis_payload(), index=False)")
    per_worker = 60
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.knowledge.feedback_worker", "tt-001", str(per_worker),
                               str(rating), str(barrier)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rating in (5, 2)]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline and all(
            p.poll() is None for p in procs):
        time.sleep(0.01)
    (barrier / "go").touch()  # both start rating at the same moment
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"rated": per_worker}
    probe = _run(env, "-c", "import django, json; django.setup();"
                            "from hokan.knowledge.models import VideoAnalysis, Feedback;"
                            "a = VideoAnalysis.objects.get(video_id='tt-001');"
                            "print(json.dumps([a.rating_count, a.rating_sum, Feedback.objects.count()]))")
    assert json.loads(probe.stdout) == [2 * per_worker, per_worker * 5 + per_worker * 2, 2 * per_worker]
