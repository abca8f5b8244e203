"""Retrieval quality on a labelled query set (issue 12 §1, §8): MRR and recall@k per mode.

The set (tests/knowledge/data/retrieval_set.json): ``analyses`` (analysis JSONs, stored with
``store_analysis``) and ``queries`` (``{"query", "relevant": ["video_id#phase_index", …]}``).
MRR = mean over queries of 1/rank of the first relevant phase (0 when none in the top ``depth``);
recall@k = mean share of a query's relevant phases found in its top k.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SET = Path(__file__).resolve().parents[3] / "tests" / "knowledge" / "data" / "retrieval_set.json"


@dataclass(frozen=True)
class ModeScores:
    """One mode's figures: mode, queries, mrr, recall (k → recall@k), 0.0–1.0."""

    mode: str
    queries: int
    mrr: float
    recall: dict[int, float]


def load_set(path: Path | str = DEFAULT_SET) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def evaluate(retriever: Any, queries: list[dict[str, Any]], *, modes: tuple[str, ...] = ("dense", "sparse", "hybrid"),
             ks: tuple[int, ...] = (1, 3, 5), depth: int = 10) -> dict[str, ModeScores]:
    """Scores of each mode of ``retriever.similar_phases`` on ``queries``."""
    out = {}
    for mode in modes:
        rr, recalls = [], {k: [] for k in ks}
        for item in queries:
            relevant = set(item["relevant"])
            hits = retriever.similar_phases(item["query"], limit=depth, mode=mode)
            ranked = [f"{h.video_id}#{h.phase_index}" for h in hits]
            first = next((i for i, key in enumerate(ranked, 1) if key in relevant), None)
            rr.append(1.0 / first if first else 0.0)
            for k in ks:
                recalls[k].append(len(relevant & set(ranked[:k])) / len(relevant))
        out[mode] = ModeScores(mode, len(queries), sum(rr) / len(rr), {k: sum(v) / len(v) for k, v in recalls.items()})
    return out
