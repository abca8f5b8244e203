"""Turn an LLM answer text into one JSON object (a dict), repairing it when needed.

Order of attempts (the first that yields a dict wins):

1. the whole text is JSON (``{"a": 1}``);
2. the body of a Markdown code fence (```` ```json ... ``` ````);
3. the first complete ``{...}`` found in prose ("はい、結果です: {...} 以上です");
4. ``json_repair`` on the text from the first ``{`` on: closes truncated strings, arrays
   and objects, drops trailing commas (an answer cut off by ``max_tokens``).

Reasoning models (e.g. Perplexity ``sonar-reasoning``) put a ``<think>...</think>`` block
before the answer; it is removed first.

Steps 1-3 give the object exactly as sent (``repaired=False``); step 4 may have invented
closing brackets, and a truncated last string value is kept as far as it got, so callers
should treat a repaired object with less confidence (``repaired=True``). An empty object
produced by repair (the text was only ``{``) counts as nothing usable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import json_repair

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ParsedJson:
    """data: the JSON object; repaired: True when json_repair had to change the text."""

    data: dict[str, Any]
    repaired: bool


def extract_json_object(text: str) -> ParsedJson | None:
    """Find one JSON object in ``text``; None when there is nothing usable.

    Never raises: the caller decides what "nothing usable" means (the client raises
    ``LLMOutputError`` with the raw text).
    """
    if not text or not text.strip():
        return None
    text = _THINK.sub("", text).strip()

    candidates = [text]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        data = _loads_object(candidate)
        if data is not None:
            return ParsedJson(data, repaired=False)

    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        if not _closes(text, match.start()):
            # This object runs to the end of the text (a truncated answer): every later
            # "{" is nested inside it, and returning an inner object as the answer would
            # be wrong. Repair the whole object instead.
            break
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return ParsedJson(value, repaired=False)

    start = text.find("{")
    if start < 0:
        return None
    # Inside a fence the closing ``` may be missing (truncated answer): repair the fence body.
    tail = text[start:]
    fence_end = tail.find("```")
    if fence_end >= 0:
        tail = tail[:fence_end]
    try:
        value = json_repair.loads(tail)
    except Exception:  # json_repair documents no exception types; treat any failure as "unusable"
        return None
    if isinstance(value, dict) and value:
        return ParsedJson(value, repaired=True)
    return None


def _closes(text: str, start: int) -> bool:
    """Whether the ``{`` at ``start`` is closed before the text ends (strings respected)."""
    depth = 0
    in_string = escaped = False
    for char in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return True
    return False


def _loads_object(candidate: str) -> dict[str, Any] | None:
    try:
        value = json.loads(candidate)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
