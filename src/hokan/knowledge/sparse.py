"""Japanese sparse vectors for Qdrant (issue 12 §1 "Japanese hybrid retrieval").

Text → SudachiPy (sudachidict-core) morphemes in split mode C, each taken in its *normalised
form* (``Morpheme.normalized_form()``: 「３，９８０」→「3980」, 「1.2万」→「12000」, 「ＭＡＲＫ」→「Mark」,
「売れた」→「売れる」), lower-cased. Content words only (POS 名詞, 動詞, 形容詞, 形状詞, 副詞;
particles, auxiliaries, symbols, suffixes and blanks are dropped). A C unit that Sudachi splits
further in mode A adds its A parts too (「ビタミンC美容液」 also matches 「美容液」), and adjacent
content words add their bigram (「クレンジング」+「バーム」), which keeps product names precise.

Each term is hashed to a sparse index (the first 4 bytes of BLAKE2b, 31 bits; collisions are
rare and harmless for ranking). Document values are a saturated term frequency
``tf·(k1+1)/(tf+k1)`` (BM25's, k1 = 1.2, without length normalisation); query values are 1.0.
The IDF factor is Qdrant's: the collection's sparse vector is configured with
``Modifier.IDF`` (https://qdrant.tech/documentation/concepts/indexing/#idf-modifier), so
score = Σ idf(term)·value_doc·value_query over shared terms.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass

CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞"})
K1 = 1.2

_local = threading.local()


def _tokenizer():
    """One Sudachi tokenizer per thread (a tokenizer is not thread-safe; the dictionary is
    loaded once per process by SudachiPy)."""
    tok = getattr(_local, "tokenizer", None)
    if tok is None:
        from sudachipy import Dictionary

        dictionary = getattr(_tokenizer, "dictionary", None)
        if dictionary is None:
            dictionary = Dictionary(dict="core")
            _tokenizer.dictionary = dictionary  # type: ignore[attr-defined]
        tok = dictionary.create() if not hasattr(dictionary, "tokenizer") else dictionary.tokenizer()
        _local.tokenizer = tok
    return tok


def terms(text: str) -> list[str]:
    """The index terms of ``text`` in order (module docstring), with repeats."""
    from sudachipy import SplitMode

    text = unicodedata.normalize("NFKC", text or "").strip()
    if not text:
        return []
    out: list[str] = []
    previous: str | None = None
    # Sudachi refuses inputs over ~49,149 bytes; long transcripts are tokenised in pieces.
    for piece in _pieces(text, 12_000):
        for m in _tokenizer().tokenize(piece, SplitMode.C):
            if m.part_of_speech()[0] not in CONTENT_POS:
                previous = None
                continue
            term = m.normalized_form().lower().strip()
            if not term:
                previous = None
                continue
            out.append(term)
            parts = m.split(SplitMode.A)
            if len(parts) > 1:
                for part in parts:
                    sub = part.normalized_form().lower().strip()
                    if sub and sub != term and part.part_of_speech()[0] in CONTENT_POS:
                        out.append(sub)
            if previous is not None:
                out.append(f"{previous}_{term}")
            previous = term
    return out


def _pieces(text: str, size: int) -> list[str]:
    if len(text) <= size:
        return [text]
    pieces, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        cut = max(text.rfind("。", start, end), text.rfind("\n", start, end))
        if end < len(text) and cut > start:
            end = cut + 1
        pieces.append(text[start:end])
        start = end
    return pieces


def term_index(term: str) -> int:
    """The sparse index of ``term``: 31 bits of BLAKE2b (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Sparse:
    """A sparse vector: ``indices`` (sorted, unique ints) and ``values`` (floats), same length."""

    indices: list[int]
    values: list[float]

    def to_qdrant(self):
        from qdrant_client import models

        return models.SparseVector(indices=self.indices, values=self.values)


def _vector(weights: dict[int, float]) -> Sparse:
    indices = sorted(weights)
    return Sparse(indices=indices, values=[weights[i] for i in indices])


def document_vector(text: str) -> Sparse:
    """The sparse vector of a stored text: saturated term frequencies (module docstring)."""
    weights: dict[int, float] = {}
    for term, tf in Counter(terms(text)).items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + K1)
    return _vector(weights)


def query_vector(text: str) -> Sparse:
    """The sparse vector of a query: 1.0 per distinct term."""
    return _vector({term_index(term): 1.0 for term in set(terms(text))})
