"""Validators for LLM output (design document 004 §7, ``llm_output.py``). Pure, no Django.

Each ``*_problems`` function returns a list of problems (English, for logs), empty when the
output passes; ``validate_*`` returns ``not problems``. Every check of the two tables:

§7.1 ``validate_dynamic_questions``: (1) ``step8_features`` a list of 5-7 objects with
value/label/category; (2) placeholder labels (「機能1」, "Feature A"); (3) refusal labels
(「情報が不足」, 「提供できません」); (4) value lower snake_case, 3-30 chars; (5) label at most
20 chars; (6) category one of the 17 of ``tables.BASE_PRICES``.

§7.2 ``validate_estimate_output``: (1) required fields, 3-8 features, 3-5 agenda items;
(2) prices numeric; (3) no duplicate feature names; (4) Σ feature prices == total_cost.
"""

from __future__ import annotations

import re
from typing import Any

from hokan.estimate.tables import BASE_PRICES

_PLACEHOLDER_RE = re.compile(
    r"^\s*(?:機能|項目|選択肢|オプション|サンプル|feature|function|item|option|sample)\s*[_\-]?\s*"
    r"(?:[0-9０-９]{1,2}|[a-zａ-ｚ]|[①-⑳]|[一二三四五六七八九十])\s*$"
    r"|^\s*(?:[〇○◯xX×＊*]{2,}|[A-ZＡ-Ｚ]{1}|tbd|todo|n/?a|null|none|未定|ラベル|label)\s*(?:機能)?\s*$",
    re.IGNORECASE,
)
_REFUSAL_RE = re.compile(
    r"情報が不足|情報不足|提供できません|提供いたしかねます|お答えできません|回答できません|できかねます|申し訳|わかりません|"
    r"判断できません|i cannot|i can't|i am unable|i'm unable|unable to|insufficient information|not enough information|"
    r"sorry",
    re.IGNORECASE,
)
_VALUE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")

ESTIMATE_REQUIRED = ("project_name", "summary", "development_model_explanation", "features",
                     "discussion_agenda", "total_cost", "confidence_note")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def dynamic_questions_problems(data: Any) -> list[str]:
    """Problems of a first-call answer ``{"step8_features": [{value, label, category}]}`` (§7.1)."""
    if not isinstance(data, dict) or not isinstance(data.get("step8_features"), list):
        return ["step8_features is not a list"]
    features = data["step8_features"]
    problems: list[str] = []
    if not 5 <= len(features) <= 7:
        problems.append(f"step8_features has {len(features)} items, expected 5-7")
    for i, item in enumerate(features):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k).strip()
                                                 for k in ("value", "label", "category")):
            problems.append(f"step8_features[{i}] lacks value/label/category")
            continue
        label, value, category = item["label"], item["value"], item["category"]
        if _PLACEHOLDER_RE.search(label):
            problems.append(f"step8_features[{i}].label is a placeholder: {label!r}")
        if _REFUSAL_RE.search(label):
            problems.append(f"step8_features[{i}].label is a refusal: {label!r}")
        if not (3 <= len(value) <= 30 and _VALUE_RE.match(value)):
            problems.append(f"step8_features[{i}].value is not snake_case of 3-30 chars: {value!r}")
        if len(label) > 20:
            problems.append(f"step8_features[{i}].label is longer than 20 chars")
        if category not in BASE_PRICES:
            problems.append(f"step8_features[{i}].category is unknown: {category!r}")
    return problems


def validate_dynamic_questions(data: Any) -> bool:
    """True when ``data`` passes every check of §7.1."""
    return not dynamic_questions_problems(data)


def estimate_output_problems(data: Any, *, min_features: int = 3, max_features: int = 8) -> list[str]:
    """Problems of a second/third-call answer (the estimate JSON of §6.4) per §7.2.

    ``min_features`` / ``max_features``: the document's 3-8. The flow widens them to the number
    of priced features when the customer chose fewer than 3 or more than 8 (see
    ``feature_bounds``), because every priced feature must appear in the estimate.
    """
    if not isinstance(data, dict):
        return ["output is not an object"]
    missing = [k for k in ESTIMATE_REQUIRED if k not in data or data[k] is None]
    if missing:
        return [f"missing fields: {', '.join(missing)}"]
    problems: list[str] = []
    features, agenda, total = data["features"], data["discussion_agenda"], data["total_cost"]
    for key in ("project_name", "summary", "development_model_explanation", "confidence_note"):
        if not isinstance(data[key], str) or not data[key].strip():
            problems.append(f"{key} is not a non-empty string")
    if not isinstance(features, list) or not min_features <= len(features) <= max_features:
        problems.append(f"features must be a list of {min_features}-{max_features} items")
        features = features if isinstance(features, list) else []
    if not isinstance(agenda, list) or not 3 <= len(agenda) <= 5 or not all(isinstance(a, str) for a in agenda):
        problems.append("discussion_agenda must be a list of 3-5 strings")
    if not isinstance(total, dict) or not all(k in total for k in ("standard", "hybrid", "message")):
        problems.append("total_cost lacks standard/hybrid/message")
        total = {}
    names: list[str] = []
    prices_ok = True
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or not all(k in feature for k in ("name", "detail", "standard_price",
                                                                             "hybrid_price")):
            problems.append(f"features[{i}] lacks name/detail/standard_price/hybrid_price")
            prices_ok = False
            continue
        if not isinstance(feature["name"], str) or not feature["name"].strip():
            problems.append(f"features[{i}].name is empty")
        else:
            names.append(feature["name"].strip())
        if not (_is_number(feature["standard_price"]) and _is_number(feature["hybrid_price"])):
            problems.append(f"features[{i}] prices are not numbers")
            prices_ok = False
    if total and not (_is_number(total.get("standard")) and _is_number(total.get("hybrid"))):
        problems.append("total_cost prices are not numbers")
        prices_ok = False
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate feature names: {duplicates}")
    if prices_ok and total and features:
        if sum(f["standard_price"] for f in features) != total["standard"]:
            problems.append("sum of standard_price differs from total_cost.standard")
        if sum(f["hybrid_price"] for f in features) != total["hybrid"]:
            problems.append("sum of hybrid_price differs from total_cost.hybrid")
    return problems


def validate_estimate_output(data: Any, *, min_features: int = 3, max_features: int = 8) -> bool:
    """True when ``data`` passes every check of §7.2."""
    return not estimate_output_problems(data, min_features=min_features, max_features=max_features)


def feature_bounds(priced_features: int) -> tuple[int, int]:
    """(min, max) feature count for an estimate of ``priced_features`` priced features."""
    return min(3, priced_features), max(8, priced_features)
