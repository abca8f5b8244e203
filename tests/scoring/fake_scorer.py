"""The answers of a fake scoring provider: reads the utterances and categories out of the
prompt ``hokan.scoring.questions.build_request`` writes, and answers every utterance with a
deterministic score (``expected_score``), so a test can check each score landed in its row.

Use as the ``answer`` of ``tests.fakes.faulty_provider.FaultyProvider``::

    answers = ScoringAnswers()
    with FaultyProvider(per_minute=500, latency_s=1.0, answer=answers) as provider: ...
    answers.billed            # Counter: utterance text → answers sent containing it (what is paid)

Faults, per utterance text (``broken``: text → kind): "missing" (its result left out),
"out_of_range" (score 7), "truncated" (the whole answer cut mid-JSON), "prose" (no JSON at
all), "wrong_type" (a score as a word). A text in ``broken_once`` is broken only the first time.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from typing import Any

from tests.fakes.openai_server import Reply

_DECODER = json.JSONDecoder()


def expected_score(text: str, category: str, scale: str = "0-1") -> float:
    """The score the fake gives ``text`` for ``category``."""
    digest = int(hashlib.sha256(f"{text}\x00{category}".encode()).hexdigest()[:8], 16)
    if scale == "1-5":
        return float(1 + digest % 5)
    return (digest % 101) / 100


def parse_prompt(body: Any) -> tuple[list[str], list[dict[str, str]], str]:
    """(category names, utterances [{"id", "text"}], scale) from a chat-completions body."""
    messages = (body or {}).get("messages", [])
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(user, list):  # content parts
        user = "".join(part.get("text", "") for part in user if isinstance(part, dict))
    scale = "1-5" if "1〜5 の整数" in user else "0-1"
    cats_at = user.index("[", user.index("カテゴリ（名前と説明）"))
    categories, _ = _DECODER.raw_decode(user, cats_at)
    items_at = user.index("[", user.index("採点する発話"))
    items, _ = _DECODER.raw_decode(user, items_at)
    return [c["name"] for c in categories], items, scale


class ScoringAnswers:
    """A callable ``answer`` for FaultyProvider (module docstring). Thread-safe."""

    def __init__(self, *, broken: dict[str, str] | None = None, broken_once: dict[str, str] | None = None,
                 gate: threading.Event | None = None) -> None:
        self.broken = dict(broken or {})
        self.broken_once = dict(broken_once or {})
        self.billed: Counter[str] = Counter()
        self.calls = 0
        self.sizes: list[int] = []
        self.gate = gate
        self._lock = threading.Lock()

    def __call__(self, body: Any) -> Reply:
        if self.gate is not None:
            self.gate.wait()
        names, items, scale = parse_prompt(body)
        kinds = {}
        with self._lock:
            self.calls += 1
            self.sizes.append(len(items))
            for item in items:
                self.billed[item["text"]] += 1
                kind = self.broken.get(item["text"]) or self.broken_once.pop(item["text"], None)
                if kind:
                    kinds[item["id"]] = kind
        if "prose" in kinds.values():
            return Reply.text("申し訳ありませんが、この発話は採点できません。")
        results = []
        for item in items:
            kind = kinds.get(item["id"])
            if kind == "missing":
                continue
            scores: dict[str, Any] = {name: expected_score(item["text"], name, scale) for name in names}
            if kind == "out_of_range":
                scores[names[0]] = 7
            if kind == "wrong_type":
                scores[names[0]] = "高い"
            results.append({"id": item["id"], "scores": scores})
        text = json.dumps({"results": results}, ensure_ascii=False)
        if "truncated" in kinds.values():
            return Reply.text(text[: len(text) // 2], finish_reason="length")
        return Reply.text(text)
