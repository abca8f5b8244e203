"""Input sanitising before anything reaches an LLM (design document 004 §4). Pure, no Django.

``sanitize(answers, step_8_categories=None) -> dict`` (the ``user_input`` of §2.2):

1. keys ``"1"``…``"13"`` become ``step_1``…``step_13`` (``answers.normalise_answers``);
2. keys ``email``, ``phone``, ``company_name``, ``user_name``, ``address`` and ``step_13``
   are dropped entirely (§4.1);
3. in every remaining free text, personal data is masked with one token per kind
   (``hokan.core.ja.pii``: [EMAIL], [URL], [PHONE], [ADDRESS], [NAME], [MY_NUMBER], [CARD],
   [BANK_ACCOUNT]) — §4.1 names e-mail, phone and URL; the other kinds are this project's;
4. in ``step_4`` and ``step_12``, each sentence that attempts a prompt injection, and the
   payload sentences right after it, become ``[FILTERED]`` (§4.2; ``hokan.core.prompt_injection``);
5. step-8 values the pricing table does not know (the client can send any string) are
   labels the LLM will read: an injection among them is dropped, PII masked, and each kept
   value cut to ``STEP_8_VALUE_MAX_CHARS``;
6. the ``step_8_categories`` saved by the first AI call is merged in.

The recall and false-positive figures of the masking and the filter, per kind, on our own
labelled set (``tests/data/sanitizer_labelled.json``) are in docs/estimate.md.
"""

from __future__ import annotations

from typing import Any

from hokan.core.ja.pii import mask_pii
from hokan.core.prompt_injection import FILTERED, filter_injection, is_injection
from hokan.estimate.answers import normalise_answers
from hokan.estimate.pricing import FEATURE_TO_CATEGORY

__all__ = ["FILTERED", "filter_injection", "is_injection", "mask_pii", "sanitize"]

PII_KEYS = frozenset({"email", "phone", "company_name", "user_name", "address", "step_13"})
INJECTION_FIELDS = ("step_4", "step_12")
STEP_8_VALUE_MAX_CHARS = 60


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items() if k not in PII_KEYS}
    return value


def _clean_step_8(values: list[Any]) -> list[Any]:
    """Step-8 values: catalogue keys as they are; any other value is a client-written label."""
    kept: list[Any] = []
    for value in values:
        if not isinstance(value, str) or value in FEATURE_TO_CATEGORY:
            kept.append(value)
            continue
        if is_injection(value):
            continue
        kept.append(value[:STEP_8_VALUE_MAX_CHARS])
    return kept


def sanitize(answers: dict[str, Any] | None, step_8_categories: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``user_input`` sent to LLMs and the price engine (see the module docstring)."""
    normalised = normalise_answers(answers)
    result: dict[str, Any] = {}
    for key, value in normalised.items():
        if key in PII_KEYS:
            continue
        value = _mask_value(value)
        if key in INJECTION_FIELDS and isinstance(value, str):
            value = filter_injection(value)
        if key == "step_8" and isinstance(value, list):
            value = _clean_step_8(value)
        result[key] = value
    if step_8_categories:
        merged = dict(result.get("step_8_categories") or {}) if isinstance(result.get("step_8_categories"), dict) else {}
        merged.update(step_8_categories)
        result["step_8_categories"] = merged
    return result
