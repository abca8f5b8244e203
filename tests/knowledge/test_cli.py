"""``hokan knowledge`` commands: store (validation, clear errors), search (rich table, filters),
stats (computed in the database), feedback, reindex, snapshot create/list/restore, context."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hokan.knowledge.command import app
from hokan.knowledge.models import VideoAnalysis
from tests.conftest import REPO_ROOT
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db
runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich tables at full width (no "…" in cells)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_store_search_stats_feedback(knowledge_index, tmp_path):
    good = write(tmp_path, "good.json", [analysis_payload("tt-001"),
                                         analysis_payload("tt-002", liver="みお", platform="instagram",
                                                          sales={"gmv": 765433})])
    broken = write(tmp_path, "broken.json", '{"video_id": "x", "phases": [')
    bad = analysis_payload("tt-003")
    bad["phases"][0]["end_s"] = "abc"
    invalid = write(tmp_path, "invalid.json", bad)
    result = runner.invoke(app, ["store", str(good), str(broken), str(invalid)])
    assert result.exit_code == 1, result.output
    assert "tt-001（新規、版 1、フェーズ 2件、索引済み）" in result.output
    assert "broken.json" in result.output and "JSONとして読めません" in result.output and "1行" in result.output
    assert "phases[0].end_s" in result.output and "保存 2件、不正 2件" in result.output
    assert VideoAnalysis.objects.count() == 2
    again = runner.invoke(app, ["store", str(good)])
    assert again.exit_code == 0 and "変更なし" in again.output

    found = runner.invoke(app, ["search", "モイストクリーム 3,980円", "--liver", "みお"])
    assert found.exit_code == 0, found.output
    assert "tt-002" in found.output and "tt-001" not in found.output and "¥765,433" in found.output
    as_json = runner.invoke(app, ["search", "3,980円", "--platform", "tiktok", "--format", "json"])
    assert {h["video_id"] for h in json.loads(as_json.output)} == {"tt-001"}
    assert runner.invoke(app, ["search", "x", "--since", "2026/11/01"]).exit_code == 1
    assert "該当するフェーズはありません" in runner.invoke(app, ["search", "x", "--since", "2030-01-01"]).output

    stats = json.loads(runner.invoke(app, ["stats", "--format", "json"]).output)
    assert stats == {"streams": 2, "streams_with_gmv": 2, "total_livers": 2, "total_gmv": 1234567 + 765433,
                     "avg_gmv_per_stream": 1000000}
    assert "¥1,000,000" in runner.invoke(app, ["stats"]).output

    assert "品質スコア 4.00" in runner.invoke(app, ["feedback", "tt-001", "4", "--comment", "良い"]).output
    assert runner.invoke(app, ["feedback", "tt-001", "9"]).exit_code == 1
    assert runner.invoke(app, ["feedback", "nope", "3"]).exit_code == 1

    context = runner.invoke(app, ["context", "モイストクリーム", "--liver", "さくら"])
    assert context.exit_code == 0 and "## 類似フェーズ" in context.output


def test_reindex_and_snapshots(knowledge_index, tmp_path):
    runner.invoke(app, ["store", "--no-index", str(write(tmp_path, "a.json", analysis_payload()))])
    assert knowledge_index.count() == 0
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 0 and "フェーズ 2件" in result.output
    assert knowledge_index.count() == 2
    assert "まだありません" in runner.invoke(app, ["snapshot", "list"]).output
    created = runner.invoke(app, ["snapshot", "create"])
    assert created.exit_code == 0 and "jsonl、2点" in created.output
    listed = runner.invoke(app, ["snapshot", "list"])
    name = next(line.split("│")[1].strip() for line in listed.output.splitlines() if ".jsonl.gz" in line)
    knowledge_index.delete_video("tt-001")
    assert runner.invoke(app, ["snapshot", "restore", name], input="n\n").exit_code == 1
    assert knowledge_index.count() == 0
    restored = runner.invoke(app, ["snapshot", "restore", name, "--yes"])
    assert restored.exit_code == 0 and "2点" in restored.output and knowledge_index.count() == 2


@pytest.mark.slow
def test_a_held_qdrant_folder_is_one_japanese_line_and_exit_2(tmp_path):
    env = dict(os.environ, HOKAN_DATA_DIR=str(tmp_path), REDIS_URL="", QDRANT_URL="",
               DJANGO_SETTINGS_MODULE="hokan.settings")
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from qdrant_client import QdrantClient;"
                               f"c = QdrantClient(path={str(tmp_path / 'qdrant')!r}); print('ready', flush=True);"
                               "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = subprocess.run([sys.executable, "-m", "hokan", "knowledge", "search", "クリーム"], cwd=REPO_ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert result.returncode == 2, result.stderr
    assert "別のプロセスが使用中" in result.stderr and "QDRANT_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
