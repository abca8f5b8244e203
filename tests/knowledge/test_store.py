"""Storing analyses: validation, idempotency by video id, Qdrant points per phase (local mode
on disk), stale phases removed, sales precedence, reindex from the database."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from hokan.knowledge.errors import AnalysisInvalid, KnowledgeStoreUnavailable
from hokan.knowledge.models import Phase, SalesData, VideoAnalysis
from hokan.knowledge.service import record_sales_value, store_analysis, validate_analysis
from hokan.knowledge.store import KnowledgeIndex, point_id, reindex
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db


def test_store_is_idempotent_and_indexes_one_point_per_phase(knowledge_index):
    analysis = store_analysis(analysis_payload(), index_obj=knowledge_index)
    assert analysis.created and analysis.changed and analysis.index_error is None
    assert analysis.revision == 1 and analysis.indexed_revision == 1
    assert [p.end_s for p in analysis.phases.all()] == [Decimal("300.000"), Decimal("600.000")]
    assert analysis.gmv_jpy == 1234567 and analysis.metric("ctr") == Decimal("3.2")
    assert SalesData.objects.get(analysis=analysis, metric="gmv").source == "analysis"
    assert knowledge_index.count() == 2
    records = knowledge_index.client.retrieve(knowledge_index.collection, [point_id("tt-001", 1)])
    payload = records[0].payload
    assert payload["gmv_jpy"] == 1234567 and payload["phase_gmv_jpy"] == 79600
    assert (payload["platform"], payload["liver"], payload["stream_day"]) == ("tiktok", "さくら", 20261120)
    again = store_analysis(analysis_payload(), index_obj=knowledge_index)
    assert again.pk == analysis.pk and not again.created and not again.changed and again.revision == 1
    assert VideoAnalysis.objects.count() == 1 and Phase.objects.count() == 2 and knowledge_index.count() == 2


def test_reanalysis_with_fewer_phases_removes_the_stale_points(knowledge_index):
    payload = analysis_payload()
    payload["phases"].append({"index": 2, "start_s": 600, "end_s": 900, "speech": "最後のお知らせです"})
    store_analysis(payload, index_obj=knowledge_index)
    store_analysis(analysis_payload("tt-002"), index_obj=knowledge_index)
    assert knowledge_index.count(video_id="tt-001") == 3
    shorter = analysis_payload(phases=[{"index": 0, "start_s": 0, "end_s": 600, "speech": "全部まとめて紹介"}])
    analysis = store_analysis(shorter, index_obj=knowledge_index)
    assert analysis.revision == 2 and analysis.phases.count() == 1
    assert knowledge_index.count(video_id="tt-001") == 1
    assert knowledge_index.count(video_id="tt-002") == 2  # the other video is untouched
    ids = {str(r.id) for r in knowledge_index.points(with_vectors=False)}
    assert point_id("tt-001", 0) in ids and point_id("tt-001", 2) not in ids


def test_invalid_json_lists_every_problem_and_stores_nothing():
    bad = analysis_payload(platform="myspace", stream_date="2026-13-45", video_url="javascript:alert(1)")
    bad["phases"][1]["end_s"] = 100  # before its start
    bad["phases"][0]["index"] = 1  # duplicate
    bad["sales"] = {"gmv": "1.5", "orders": -3, "happiness": 5}
    with pytest.raises(AnalysisInvalid) as caught:
        store_analysis(bad, source="bad.json")
    paths = {path for path, _ in caught.value.problems}
    assert {"platform", "stream_date", "video_url", "phases[1].end_s", "phases[1].index", "sales.gmv",
            "sales.orders", "sales.happiness"} <= paths
    assert "bad.json" in str(caught.value)
    assert VideoAnalysis.objects.count() == 0
    with pytest.raises(AnalysisInvalid):
        validate_analysis({"video_id": "x", "phases": []})
    with pytest.raises(AnalysisInvalid):
        validate_analysis(["not", "an", "object"])


def test_a_missing_sales_value_is_missing_not_zero():
    cleaned = validate_analysis(analysis_payload(sales={"gmv": None, "orders": 0}))
    assert [(s["metric"], s["value"]) for s in cleaned["sales"]] == [("orders", Decimal(0))]


def test_a_better_source_wins_and_a_manual_edit_stays(qdrant_local, e5_model):
    analysis = store_analysis(analysis_payload(), index=False)
    row = record_sales_value(analysis, metric="gmv", value=1230000, unit="JPY", source="screenshot",
                             quote="売上 ¥1,230,000", confidence=Decimal("0.97"))
    assert row is not None and row.quote == "売上 ¥1,230,000"  # "analysis" ranks lowest: replaced
    assert analysis.gmv_jpy == 1230000
    assert record_sales_value(analysis, metric="gmv", value=1, unit="JPY", source="recording") is None
    record_sales_value(analysis, metric="gmv", value=1240000, unit="JPY", source="csv", source_ref="export.csv")
    record_sales_value(analysis, metric="gmv", value=1250000, unit="JPY", source="manual")
    assert record_sales_value(analysis, metric="gmv", value=9, unit="JPY", source="api") is None
    row = SalesData.objects.get(analysis=analysis, metric="gmv")
    assert (row.value, row.source) == (Decimal(1250000), "manual")


def test_reindex_rebuilds_qdrant_from_the_database(knowledge_index):
    store_analysis(analysis_payload("tt-001"), index_obj=knowledge_index)
    store_analysis(analysis_payload("tt-002"), index=False)  # stored while Qdrant was away
    assert knowledge_index.count() == 2
    VideoAnalysis.objects.filter(video_id="tt-001").delete()
    seen = []
    written = reindex(index=knowledge_index, progress=lambda done, total: seen.append((done, total)))
    assert written == 2 and seen[-1] == (1, 1)
    assert knowledge_index.count(video_id="tt-002") == 2 and knowledge_index.count(video_id="tt-001") == 0
    reindex(index=knowledge_index, recreate=True)
    assert knowledge_index.count() == 2


def test_a_held_local_folder_is_a_clear_error_and_the_analysis_is_kept(qdrant_local, e5_model, tmp_path):
    import subprocess
    import sys
    import textwrap

    # another process holds the local-mode folder (qdrant-client locks it)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from qdrant_client import QdrantClient
        c = QdrantClient(path={str(qdrant_local)!r})
        print("ready", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        analysis = store_analysis(analysis_payload())
        assert analysis.pk and "hokan knowledge reindex" in analysis.index_error
        assert analysis.indexed_revision == 0
        with pytest.raises(KnowledgeStoreUnavailable, match="QDRANT_URL"):
            KnowledgeIndex()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_refused_paid_embeddings_keep_the_analysis_and_say_why(qdrant_local, settings, fake_openai_server):
    settings.HOKAN_EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "test-key"
    settings.HOKAN_EMBEDDING_BASE_URL = fake_openai_server.v1_url
    settings.HOKAN_EMBEDDING_DIMENSIONS = fake_openai_server.embedding_dims
    settings.HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT = 0  # the knowledge scope is closed
    analysis = store_analysis(analysis_payload())
    assert analysis.pk and analysis.indexed_revision == 0
    assert "reindex" in analysis.index_error and fake_openai_server.requests == []
    settings.HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT = 100
    assert reindex() == 2  # paid once the budget allows, through the same ledger
    assert VideoAnalysis.objects.get(pk=analysis.pk).indexed_revision == 1
    assert len(fake_openai_server.requests) == 1
