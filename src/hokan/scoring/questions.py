"""The question a scoring call asks and the check of its answer (document 002 §2: JSON schema,
score range and shape, repair).

One call asks ``n`` utterances × one block of categories (at most 10). The utterances are
numbered "1".."n" in the prompt (positions, not row ids: the question for one utterance
alone is then the same whatever row it came from, so its cache key is too). The answer::

    {"results": [{"id": "1", "scores": {"<category>": <number>, ...}}, ...]}

Each utterance's part is validated on its own (``check_part``): the JSON schema of one
result (jsonschema, draft 2020-12) and the scale — 0–1 real numbers or 1–5 integers. Repair
is limited to what cannot change a value: a number sent as text ("0.8", full-width "４"), a
1–5 score sent as 4.0. Anything else (out of range, missing, another category) fails the part;
the row is then asked again alone (engine).

Nothing personal reaches the provider: utterances pass through ``hokan.core.ja.pii.mask_pii``
before they are put into the prompt (the masked text is what the cache key hashes).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jsonschema

from hokan.core.ja.pii import mask_pii
from hokan.core.llm.client import JsonRequest
from hokan.scoring.config import Category, RunConfig

SCHEMA_NAME = "utterance_scores"
SCALE_TEXT = {
    "0-1": "0〜1 の実数（0 = まったく当てはまらない、1 = 完全に当てはまる。小数第2位まで）",
    "1-5": "1〜5 の整数（1 = まったく当てはまらない、5 = 完全に当てはまる）",
}


def score_schema(categories: Sequence[Category], scale: str) -> dict[str, Any]:
    """The JSON schema of an answer for ``categories`` on ``scale``."""
    low, high = (0, 1) if scale == "0-1" else (1, 5)
    kind = "number" if scale == "0-1" else "integer"
    scores = {
        "type": "object",
        "properties": {c.name: {"type": kind, "minimum": low, "maximum": high} for c in categories},
        "required": [c.name for c in categories],
        "additionalProperties": False,
    }
    item = {"type": "object", "properties": {"id": {"type": "string"}, "scores": scores},
            "required": ["id", "scores"], "additionalProperties": False}
    return {"type": "object", "properties": {"results": {"type": "array", "items": item}},
            "required": ["results"], "additionalProperties": False}


def masked(text: str) -> str:
    """The utterance as sent: personal data masked (core.ja.pii), surrounding blanks trimmed."""
    return mask_pii(text.strip())


def build_request(texts: Sequence[str], categories: Sequence[Category], *, system_prompt: str,
                  config: RunConfig) -> JsonRequest:
    """The request for ``texts`` (already masked) × ``categories``; ids "1".."n" by position."""
    listed = [{"name": c.name, "description": c.description} for c in categories]
    items = [{"id": str(number), "text": text} for number, text in enumerate(texts, start=1)]
    user = (
        f"尺度: {SCALE_TEXT[config.scale]}\n\n"
        f"カテゴリ（名前と説明）:\n{json.dumps(listed, ensure_ascii=False, indent=1)}\n\n"
        f"採点する発話（{len(items)} 件。id はこの一覧の番号です）:\n{json.dumps(items, ensure_ascii=False, indent=1)}\n\n"
        "すべての発話について、id ごとに全カテゴリのスコアを results に入れて返してください。"
    )
    return JsonRequest(
        system=system_prompt, user=user, schema=score_schema(categories, config.scale), schema_name=SCHEMA_NAME,
        temperature=config.temperature, max_output_tokens=config.output_tokens(len(items), len(categories)),
    )


@lru_cache(maxsize=64)
def _validator(names: tuple[str, ...], scale: str) -> jsonschema.Draft202012Validator:
    schema = score_schema([Category(n, "") for n in names], scale)
    return jsonschema.Draft202012Validator(schema["properties"]["results"]["items"])


def _number(value: Any) -> Any:
    """A number sent as text becomes the number; anything else is returned unchanged."""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        try:
            return int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return value
    return value


def parts_by_id(data: Any) -> dict[str, Any]:
    """The answer's results by id (str); {} when the shape is wrong. A duplicated id is
    dropped altogether (which of the two is meant cannot be told)."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return {}
    found: dict[str, Any] = {}
    duplicated: set[str] = set()
    for part in results:
        if not isinstance(part, dict) or "id" not in part:
            continue
        key = unicodedata.normalize("NFKC", str(part["id"])).strip()
        if key in found:
            duplicated.add(key)
        found[key] = part
    for key in duplicated:
        found.pop(key)
    return found


def check_part(part: Any, categories: Sequence[Category], scale: str) -> tuple[dict[str, float] | None, str]:
    """Validate one utterance's part: (scores by category, "") or (None, the reason in Japanese).

    Repairs only numbers sent as text and integral floats on the 1–5 scale (module docstring).
    """
    if part is None:
        return None, "回答にこの発話の結果がありません"
    if not isinstance(part, dict):
        return None, "結果の形式が不正です"
    scores = part.get("scores")
    if isinstance(scores, dict):
        repaired = {}
        for name, value in scores.items():
            value = _number(value)
            if scale == "1-5" and isinstance(value, float) and value.is_integer():
                value = int(value)
            repaired[name] = value
        part = {**part, "scores": repaired}
    names = tuple(c.name for c in categories)
    errors = sorted(_validator(names, scale).iter_errors(part), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "結果"
        return None, f"スキーマに合いません（{where}: {first.message[:200]}）"
    return {name: float(part["scores"][name]) for name in names}, ""
