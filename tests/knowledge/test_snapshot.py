"""Snapshots in local mode: a JSONL export of every point, listed, restored exactly; a damaged or
foreign file is refused before the current collection is touched."""

from __future__ import annotations

import gzip
import json

import pytest

from hokan.knowledge import snapshot
from hokan.knowledge.errors import SnapshotError
from hokan.knowledge.knowledge_retriever import KnowledgeRetriever
from hokan.knowledge.service import store_analysis
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db


def _state(index):
    return sorted((str(r.id), json.dumps(r.payload, sort_keys=True, ensure_ascii=False), tuple(r.vector["dense"]),
                   tuple(r.vector["sparse"].indices)) for r in index.points(with_vectors=True))


def test_create_list_restore_round_trip(knowledge_index):
    with pytest.raises(SnapshotError, match="まだありません"):
        snapshot.create(index=knowledge_index)
    store_analysis(analysis_payload("tt-001"), index_obj=knowledge_index)
    store_analysis(analysis_payload("tt-002", liver="みお"), index_obj=knowledge_index)
    before = _state(knowledge_index)
    info = snapshot.create(index=knowledge_index)
    assert info.kind == "jsonl" and info.points == 4 and info.path.is_file()
    assert [s.name for s in snapshot.list_snapshots(index=knowledge_index)] == [info.name]
    with pytest.raises(SnapshotError, match="ローカルモード"):
        snapshot.create(kind="native", index=knowledge_index)
    # the collection changes (a video is deleted, another added), then the snapshot is restored
    knowledge_index.delete_video("tt-001")
    store_analysis(analysis_payload("tt-003"), index_obj=knowledge_index)
    assert _state(knowledge_index) != before
    assert snapshot.restore(info.name, index=knowledge_index) == 4
    assert _state(knowledge_index) == before
    hits = KnowledgeRetriever(knowledge_index).similar_phases("3,980円", liver="みお", limit=5)
    assert {h.video_id for h in hits} == {"tt-002"}  # search works on the restored collection (IDF included)


def test_a_damaged_snapshot_is_refused_and_the_collection_kept(knowledge_index, tmp_path):
    store_analysis(analysis_payload(), index_obj=knowledge_index)
    info = snapshot.create(index=knowledge_index)
    lines = gzip.open(info.path, "rt", encoding="utf-8").read().splitlines()
    truncated = snapshot.snapshot_dir() / "truncated.jsonl.gz"
    with gzip.open(truncated, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines[:-1]) + "\n")  # no trailer: an interrupted export
    with pytest.raises(SnapshotError, match="終端行"):
        snapshot.restore(truncated.name, index=knowledge_index)
    wrong_size = snapshot.snapshot_dir() / "other-model.jsonl.gz"
    header = json.loads(lines[0]) | {"dense_size": 1536}
    with gzip.open(wrong_size, "wt", encoding="utf-8") as f:
        f.write("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(SnapshotError, match="埋め込み次元"):
        snapshot.restore(wrong_size.name, index=knowledge_index)
    (snapshot.snapshot_dir() / "garbage.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(SnapshotError, match="読み込めません"):
        snapshot.restore("garbage.jsonl.gz", index=knowledge_index)
    with pytest.raises(SnapshotError, match="見つかりません"):
        snapshot.restore("missing.jsonl.gz", index=knowledge_index)
    assert knowledge_index.count() == 2  # untouched
