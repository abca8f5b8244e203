"""LLM adapters of the estimate (design document 004 §6.1-§6.6).

::

    LLMAdapter (the three calls)
      ├─ ClientAdapter(GeminiClient)       LLM_PROVIDER=gemini (default), model GEMINI_MODEL
      ├─ ClientAdapter(OpenAICompatClient) LLM_PROVIDER=openai, model OPENAI_MODEL
      └─ FallbackAdapter                   LLM_PROVIDER=fallback, or the provider's key is missing

The client comes from core: ``hokan.core.llm.get_client(profile="estimate", max_retries=0)``
reads document 004's settings (LLM_PROVIDER, GEMINI_*, OPENAI_*, LLM_TIMEOUT; see
core/llm/factory.py) and answers an OfflineClient for "fallback" or a missing key; its calls
go through the guarded HTTP client and count in the ledger scope "estimate" (``client.scope``).

The three calls (§6.2), each with system and user roles separated (prompt file = system,
the JSON input = user):

=====================  ============  ========================  =========================
method                 temperature   prompt                    retries / validation
=====================  ============  ========================  =========================
generate_dynamic_...   0.7           dynamic_questions.txt     up to LLM_MAX_RETRIES, §7.1
generate_estimate      0.5           estimate_generation.txt   up to LLM_MAX_RETRIES, §7.2
audit_estimate         AUDIT_TEMP.   audit_check.txt           one call, none (§6.5)
=====================  ============  ========================  =========================

Retries live in one layer, here, through core's ``RetryPolicy``: the provider client is built
with ``max_retries=0`` and each attempt (a transient error or an invalid answer alike) counts
against ``LLM_MAX_RETRIES``. Between attempts after a transient error the adapter waits the
server's Retry-After, else a short exponential backoff (0.5 s doubling), never more than
``ESTIMATE_LLM_RETRY_WAIT_MAX_S``; an invalid answer is asked again at once. A 4xx other than
429 is not retried. When every attempt fails, ``LLMAttemptsExhausted`` is raised and the
caller uses the FallbackAdapter (§11.1).

Deadline: every LLM call of one request path (step 7's questions; ``generate``'s text and
audit), with its retries and waits, ends within ``ESTIMATE_LLM_DEADLINE_S`` (default 90 s,
below gunicorn's 120 s worker timeout) of the adapter's creation — one adapter per request.
A hung provider (connection accepted, no answer) is cut off at the deadline, and
``LLMAttemptsExhausted(deadline_exceeded=True)`` sends the caller to its fallback.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from hokan.core.budget import Limits, get_ledger
from hokan.core.errors import (
    AlreadyPaid,
    BudgetExceeded,
    HokanError,
    LLMConfigError,
    LLMDeadlineExceeded,
    LLMError,
    LLMOutputError,
    LLMTransientError,
    RateLimited,
)
from hokan.core.llm.budgeted import BudgetedClient
from hokan.core.llm.client import JsonRequest, LLMClient
from hokan.core.llm.factory import get_client
from hokan.core.llm.limited import limited_client
from hokan.core.llm.retry import Deadline, RetryPolicy, capped_timeout
from hokan.estimate import catalogue
from hokan.estimate.validation import dynamic_questions_problems, estimate_output_problems, feature_bounds

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DYNAMIC_TEMPERATURE = 0.7
ESTIMATE_TEMPERATURE = 0.5


class LLMAttemptsExhausted(HokanError):
    """Every attempt of one call failed. ``problems``: what went wrong, one entry per attempt
    (and a last one for the deadline); ``deadline_exceeded``: the request path's deadline
    (ESTIMATE_LLM_DEADLINE_S) ended the attempts."""

    def __init__(self, message: str, *, call: str, problems: list[str], deadline_exceeded: bool = False) -> None:
        super().__init__(message)
        self.call = call
        self.problems = problems
        self.deadline_exceeded = deadline_exceeded


class InvalidAnswer(LLMOutputError):
    """The answer is a JSON object but fails the §7 checks; retried like an unparsable answer."""


@cache
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>``; raises LLMConfigError (with the path) when missing or empty."""
    path = PROMPTS_DIR / name
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LLMConfigError(f"プロンプトファイルを読めません: {path}", provider="estimate") from exc
    if not text:
        raise LLMConfigError(f"プロンプトファイルが空です: {path}", provider="estimate")
    return text


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1)


_STEP8_SCHEMA = {
    "type": "object",
    "properties": {
        "step8_features": {
            "type": "array",
            "minItems": 5,
            "maxItems": 7,
            "items": {
                "type": "object",
                "properties": {"value": {"type": "string"}, "label": {"type": "string"},
                               "category": {"type": "string"}},
                "required": ["value", "label", "category"],
            },
        }
    },
    "required": ["step8_features"],
}
_FEATURE_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "detail": {"type": "string"},
                   "standard_price": {"type": "integer"}, "hybrid_price": {"type": "integer"}},
    "required": ["name", "detail", "standard_price", "hybrid_price"],
}
_ESTIMATE_PROPERTIES = {
    "project_name": {"type": "string"},
    "summary": {"type": "string"},
    "development_model_explanation": {"type": "string"},
    "features": {"type": "array", "items": _FEATURE_SCHEMA},
    "discussion_agenda": {"type": "array", "items": {"type": "string"}},
    "total_cost": {
        "type": "object",
        "properties": {"standard": {"type": "integer"}, "hybrid": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["standard", "hybrid", "message"],
    },
    "confidence_note": {"type": "string"},
}
_ESTIMATE_SCHEMA = {"type": "object", "properties": _ESTIMATE_PROPERTIES, "required": list(_ESTIMATE_PROPERTIES)}
_AUDIT_SCHEMA = {
    "type": "object",
    "properties": {**_ESTIMATE_PROPERTIES, "audit_warnings": {"type": "array", "items": {"type": "string"}}},
    "required": [*_ESTIMATE_PROPERTIES, "audit_warnings"],
}


def dynamic_questions_input(user_input: dict[str, Any]) -> dict[str, Any]:
    """The first call's input of §6.3, from the sanitised steps 1-7."""
    return {
        "business_type": user_input.get("step_1"),
        "industry": user_input.get("step_2"),
        "user_count": user_input.get("step_3"),
        "challenges": user_input.get("step_4"),
        "deployment_target": user_input.get("step_5"),
        "system_type": user_input.get("step_6"),
        "development_type": user_input.get("step_7"),
    }


def _calculated_for_llm(calculated: dict[str, Any]) -> dict[str, Any]:
    """What the second call sees of ``calculated_data`` (§6.4): prices, hints, confidence."""
    return {
        "features": [{"category": f["category"], "label": f["label"], "standard_price": f["standard_price"],
                      "hybrid_price": f["hybrid_price"]} for f in calculated["features"]],
        "total_standard": calculated["total_standard"],
        "total_hybrid": calculated["total_hybrid"],
        "discussion_hints": calculated.get("discussion_hints", []),
        "confidence": {k: calculated["confidence"][k] for k in ("range_label", "level")},
        "budget_status": calculated.get("budget_status"),
    }


def _llm_user_input(user_input: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user_input.items() if k.startswith("step_") and k[5:].isdigit()}


class LLMAdapter(Protocol):
    """The three AI calls of §6.2. ``name``: "gemini" | "openai" | "fallback"."""

    name: str

    def generate_dynamic_questions(self, user_input: dict[str, Any]) -> list[dict[str, str]]: ...

    def generate_estimate(self, user_input: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]: ...

    def audit_estimate(self, estimate: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]: ...


class FallbackAdapter:
    """Template answers without any LLM (§6.6): industry feature lists and estimate texts."""

    name = "fallback"

    def generate_dynamic_questions(self, user_input: dict[str, Any]) -> list[dict[str, str]]:
        """The industry's default features (7 industries + a generic list), 6 items."""
        return catalogue.industry_features(user_input.get("step_2"))

    def generate_estimate(self, user_input: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
        """The industry template with the price engine's numbers."""
        return catalogue.fallback_estimate(user_input, calculated)

    def audit_estimate(self, estimate: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
        """Pass-through: a copy of ``estimate``."""
        return copy.deepcopy(estimate)


class ClientAdapter:
    """The three calls through an ``LLMClient`` (Gemini or OpenAI).

    max_attempts: LLM_MAX_RETRIES (each failed answer or transient error is one attempt).
    timeout_s: LLM_TIMEOUT per request phase (seconds). audit_temperature: AUDIT_TEMPERATURE.
    max_retry_wait_s: ESTIMATE_LLM_RETRY_WAIT_MAX_S, the longest wait between attempts.
    deadline_s: ESTIMATE_LLM_DEADLINE_S, the limit of all calls of this adapter from its
        creation (seconds; None = none). deadline: the request's own Deadline instead (it
        started with the request; wins over deadline_s). sleep / clock: injectable for tests.
    """

    def __init__(self, client: LLMClient, *, max_attempts: int = 3, timeout_s: float = 45.0,
                 audit_temperature: float = 0.3, max_retry_wait_s: float = 5.0, deadline_s: float | None = 90.0,
                 deadline: Deadline | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.name = client.provider
        self.max_attempts = max(1, max_attempts)
        self.timeout_s = timeout_s
        self.audit_temperature = audit_temperature
        self.max_retry_wait_s = max_retry_wait_s
        self.deadline = deadline if deadline is not None else (
            Deadline.after(deadline_s, clock=clock) if deadline_s else None)
        self.retry_policy = RetryPolicy(
            max_retries=self.max_attempts - 1, rate_limit_wait_s=None, backoff_initial_s=0.5,
            backoff_max_s=max_retry_wait_s, max_wait_s=max_retry_wait_s, long_wait="cap",
            retry_on=(LLMTransientError, LLMOutputError),
        )
        self._sleep = sleep

    def _ask(self, call: str, prompt: str, payload: Any, schema: dict[str, Any], temperature: float,
             check: Callable[[Any], list[str]]) -> dict[str, Any]:
        request = JsonRequest(system=load_prompt(prompt), user=_dumps(payload), schema=schema, schema_name=call,
                              temperature=temperature, max_output_tokens=8192)
        problems: list[str] = []
        total = self.max_attempts

        def attempt(left: float | None) -> dict[str, Any]:
            number = len(problems) + 1
            try:
                completion = self.client.complete_json(request, timeout_s=capped_timeout(self.timeout_s, left),
                                                       deadline=self.deadline)
            except LLMConfigError:
                raise
            except LLMError as exc:
                problems.append(f"attempt {number}: {type(exc).__name__}: {exc}")
                log.warning("estimate %s: attempt %d/%d failed: %s", call, number, total, exc)
                raise
            found = check(completion.data)
            if found:
                problems.append(f"attempt {number}: invalid output: {'; '.join(found[:5])}")
                log.warning("estimate %s: attempt %d/%d invalid: %s", call, number, total, found[:5])
                raise InvalidAnswer(f"{call}: invalid output", provider=self.name, schema_name=call,
                                    raw_output=completion.raw_text)
            return completion.data

        try:
            data, _ = self.retry_policy.call(attempt, provider=self.name, sleep=self._sleep, deadline=self.deadline)
        except LLMConfigError:
            raise
        except (BudgetExceeded, AlreadyPaid, RateLimited) as exc:  # no call made: limit, paid, or no slot in time
            problems.append(f"budget: {exc}")
            raise LLMAttemptsExhausted(f"{call}: 利用上限または送信枠のため呼び出せません", call=call, problems=problems) from exc
        except LLMDeadlineExceeded as exc:
            problems.append(f"deadline: {exc}")
            raise LLMAttemptsExhausted(f"{call}: 制限時間内に完了しませんでした", call=call, problems=problems,
                                       deadline_exceeded=True) from exc
        except LLMError as exc:  # transient / invalid after the last attempt, or a 4xx (not retried)
            raise LLMAttemptsExhausted(f"{call}: {len(problems)}回とも失敗しました", call=call,
                                       problems=problems) from exc
        return data

    def generate_dynamic_questions(self, user_input: dict[str, Any]) -> list[dict[str, str]]:
        """Feature candidates for step 8 (§6.3). Raises LLMAttemptsExhausted / LLMConfigError."""
        data = self._ask("dynamic_questions", "dynamic_questions.txt", dynamic_questions_input(user_input),
                         _STEP8_SCHEMA, DYNAMIC_TEMPERATURE, dynamic_questions_problems)
        return [{"value": f["value"], "label": f["label"], "category": f["category"]} for f in data["step8_features"]]

    def generate_estimate(self, user_input: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
        """The estimate text (§6.4), validated by §7.2. Raises LLMAttemptsExhausted / LLMConfigError."""
        payload = {"user_input": _llm_user_input(user_input), "calculated": _calculated_for_llm(calculated)}
        low, high = feature_bounds(len(calculated["features"]))

        def check(data: Any) -> list[str]:
            return estimate_output_problems(data, min_features=low, max_features=high)

        return self._ask("estimate_generation", "estimate_generation.txt", payload, _ESTIMATE_SCHEMA,
                         ESTIMATE_TEMPERATURE, check)

    def audit_estimate(self, estimate: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
        """One audit call (§6.5), returned unvalidated: the caller validates and enforces.

        Raises LLMError (any; LLMDeadlineExceeded past the deadline) on failure; the caller
        falls back to ``estimate``.
        """
        public = {k: v for k, v in estimate.items() if k not in ("user_input", "confidence", "budget")}
        payload = {"estimate": public, "user_input": _llm_user_input(calculated.get("user_input", {})),
                   "calculated_features": _calculated_for_llm(calculated)}
        request = JsonRequest(system=load_prompt("audit_check.txt"), user=_dumps(payload), schema=_AUDIT_SCHEMA,
                              schema_name="audit_check", temperature=self.audit_temperature, max_output_tokens=8192)
        return self.client.complete_json(request, timeout_s=self.timeout_s, deadline=self.deadline).data


def create_llm_adapter(settings: Any, *, work_key: str | None = None,
                       deadline: Deadline | None = None) -> LLMAdapter:
    """The adapter for ``settings.LLM_PROVIDER`` (§6.1); Fallback when its key is empty.

    The client is core's ``get_client(profile="estimate", max_retries=0)``; the deadline is
    ``deadline`` (the request's, started when the request came in: ``generate`` and
    ``steps`` pass it) or else ``ESTIMATE_LLM_DEADLINE_S`` from now, so create one adapter per
    request. Unknown providers fall back too (logged), so a typo never takes the API down.

    Every call is paid work in the ledger's ``estimate`` scope (limits HOKAN_ESTIMATE_*),
    reserved as ``estimate:{work_key}:{n}`` (work_key: e.g. the estimate's id; default a fresh
    UUID per adapter), and passes the provider's shared rate limiter on every attempt. A
    closed budget makes a call fail like an exhausted one, so the fallback text is used.
    """
    try:
        client = get_client(profile="estimate", max_retries=0)
    except LLMConfigError as exc:
        log.error("%s; using the fallback templates", exc)
        return FallbackAdapter()
    if not client.available:
        provider = (getattr(settings, "LLM_PROVIDER", "gemini") or "gemini").strip().lower()
        if provider != "fallback":
            log.warning("LLM_PROVIDER=%s has no API key; using the fallback templates", provider)
        return FallbackAdapter()
    # Every paid call passes the estimate scope's ledger (outermost) and the provider's shared
    # limiter (innermost, per HTTP attempt): ARCHITECTURE "cache → budget → rate limit → provider".
    client = BudgetedClient(
        limited_client(client),  # a slot is waited for until the request path's deadline
        ledger=get_ledger("estimate"),
        estimate_usd=Limits.from_settings("estimate").cost_per_call_usd,
        key=f"estimate:{work_key or uuid.uuid4().hex}",
    )
    return ClientAdapter(
        client,
        max_attempts=settings.LLM_MAX_RETRIES,
        timeout_s=settings.LLM_TIMEOUT,
        audit_temperature=settings.AUDIT_TEMPERATURE,
        max_retry_wait_s=getattr(settings, "ESTIMATE_LLM_RETRY_WAIT_MAX_S", 5.0),
        deadline_s=getattr(settings, "ESTIMATE_LLM_DEADLINE_S", 90.0) or None,
        deadline=deadline,
    )
