"""Measuring the offline scorer on labelled utterances (issue 11 §7): JMultiWOZ-TC tool labels.

Data: ``$HOKAN_SHARED_DATA/dialogue/jmultiwoz_tc/user_utterances_tool_labels.csv`` (columns
dialogue_id, user_turn, utterance, tools, ground_truth_json; 31,303 user turns; ``tools`` is
"none", one tool name, or two joined by "|" for the 13 turns that call two tools), derived from
github.com/llm-jp/JMultiWOZ-TC (CC BY 4.0; SOURCES.md of the shared data).

Splits are by dialogue, so no dialogue is in both: ``split_of(dialogue_id)`` is "fit" for the
dialogues whose SHA-256 of the id is 0 mod 5 (about 20 %: the category descriptions were
written looking at these, and the calibration is fitted on them), "test" otherwise (never
looked at; the figures of docs/perf/scoring_offline.md and the regression test come from it).
Samples are drawn with a fixed seed.

Agreement: the share of utterances whose top category (highest similarity) is one of the
utterance's labels. Baseline: always answering the most frequent label of the same sample
("none", about half of all turns).
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hokan.scoring.offline import Calibration, OfflineScorer

DATA_FILE = Path("dialogue") / "jmultiwoz_tc" / "user_utterances_tool_labels.csv"
CATEGORIES_FILE = Path(__file__).with_name("data") / "jmultiwoz_categories.yaml"


@dataclass(frozen=True)
class Labelled:
    """One user turn: dialogue id, the utterance, its tool labels (a set of category names)."""

    dialogue_id: str
    text: str
    labels: frozenset[str]


def split_of(dialogue_id: str) -> str:
    """"fit" (SHA-256 of the id ≡ 0 mod 5) or "test" (module docstring)."""
    return "fit" if int(hashlib.sha256(dialogue_id.encode("utf-8")).hexdigest(), 16) % 5 == 0 else "test"


def load(shared_data: Path) -> list[Labelled]:
    """Every labelled user turn of the CSV (file order)."""
    path = Path(shared_data) / DATA_FILE
    with path.open(encoding="utf-8", newline="") as handle:
        return [Labelled(row["dialogue_id"], row["utterance"], frozenset(row["tools"].split("|")))
                for row in csv.DictReader(handle) if row["utterance"].strip()]


def sample(rows: Sequence[Labelled], split: str, size: int | None, *, seed: int = 11) -> list[Labelled]:
    """``size`` turns of ``split`` drawn with ``seed`` (None = all of the split, in file order)."""
    chosen = [r for r in rows if split_of(r.dialogue_id) == split]
    if size is None or size >= len(chosen):
        return chosen
    return random.Random(seed).sample(chosen, size)


@dataclass
class Evaluation:
    """Agreement of the top category with the labels, against the majority-class baseline.

    n: utterances; agreement / baseline: shares in 0–1; majority: the baseline's label;
    tool_*: the same on the turns whose label is a tool (not "none"); per_label: label →
    (turns, recall of the top category); confusions: the most frequent (label, top) errors.
    """

    n: int
    agreement: float
    baseline: float
    majority: str
    tool_n: int
    tool_agreement: float
    tool_baseline: float
    per_label: dict[str, tuple[int, float]] = field(default_factory=dict)
    confusions: list[tuple[tuple[str, str], int]] = field(default_factory=list)

    @property
    def margin(self) -> float:
        return self.agreement - self.baseline

    def interval(self) -> tuple[float, float]:
        """A 95 % normal-approximation interval of ``agreement``."""
        half = 1.96 * (self.agreement * (1 - self.agreement) / max(1, self.n)) ** 0.5
        return self.agreement - half, self.agreement + half


def evaluate(top: Sequence[str], rows: Sequence[Labelled]) -> Evaluation:
    """Compare ``top`` (one category per row) with the rows' labels."""
    if len(top) != len(rows) or not rows:
        raise ValueError("evaluate: one top category per row, at least one row")
    hits = [t in r.labels for t, r in zip(top, rows, strict=True)]
    counts = Counter(label for r in rows for label in r.labels)
    majority = counts.most_common(1)[0][0]
    baseline = sum(majority in r.labels for r in rows) / len(rows)
    tools = [i for i, r in enumerate(rows) if "none" not in r.labels]
    tool_counts = Counter(label for i in tools for label in rows[i].labels)
    tool_majority = tool_counts.most_common(1)[0][0] if tools else ""
    per_label: dict[str, tuple[int, float]] = {}
    for label in sorted(counts):
        idx = [i for i, r in enumerate(rows) if label in r.labels]
        per_label[label] = (len(idx), sum(top[i] == label for i in idx) / len(idx))
    confusions = Counter((sorted(r.labels)[0], t) for t, r, ok in zip(top, rows, hits, strict=True) if not ok)
    return Evaluation(
        n=len(rows), agreement=sum(hits) / len(rows), baseline=baseline, majority=majority,
        tool_n=len(tools), tool_agreement=(sum(hits[i] for i in tools) / len(tools)) if tools else 0.0,
        tool_baseline=(sum(tool_majority in rows[i].labels for i in tools) / len(tools)) if tools else 0.0,
        per_label=per_label, confusions=confusions.most_common(8),
    )


def fit_calibration(scorer: OfflineScorer, rows: Sequence[Labelled]) -> Calibration:
    """Platt-scale the scorer's similarities on ``rows``: every (row, category) pair, label 1
    when the category is one of the row's labels (offline.py's docstring)."""
    sims = scorer.similarities([r.text for r in rows])
    labels = np.array([[name in r.labels for name in scorer.names] for r in rows], dtype=np.float64)
    return Calibration.fit(sims.ravel(), labels.ravel())
