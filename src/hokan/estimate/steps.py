"""Sessions, step answers and the step-7 dynamic questions (design document 004 §2.1, §3, §6.3).

The answers' values and their validation are in ``answers``; the sanitiser (§4) in ``sanitizer``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction

from hokan.core.errors import LLMConfigError
from hokan.estimate.adapters import FallbackAdapter, LLMAdapter, LLMAttemptsExhausted, create_llm_adapter
from hokan.estimate.answers import clean_answers, validate_step_value
from hokan.estimate.errors import SessionNotFound
from hokan.estimate.models import EstimateSession
from hokan.estimate.sanitizer import sanitize

log = logging.getLogger(__name__)


def session_cache_key(session_id: Any) -> str:
    return f"estimate:session:{session_id}"


def shared_cache() -> BaseCache | None:
    """Django's default cache when every process shares it (Redis), else None.

    ``GET session/{id}`` is cached (§3: 5 minutes) only in a shared cache: a per-process one
    (LocMemCache, without REDIS_URL) served stale answers to the other workers (issue 9 §4),
    and a session is one primary-key read from the database anyway.
    """
    default = caches["default"]
    return None if isinstance(default, (LocMemCache, DummyCache)) else default


def forget_cached_session(session_id: Any) -> None:
    shared = shared_cache()
    if shared is not None:
        shared.delete(session_cache_key(session_id))


def create_session() -> EstimateSession:
    return EstimateSession.objects.create()


def get_session(session_id: Any) -> EstimateSession:
    session = EstimateSession.objects.filter(pk=session_id).first()
    if session is None:
        raise SessionNotFound(session_id)
    return session


def dynamic_features(user_input: dict[str, Any], adapter: LLMAdapter) -> tuple[list[dict[str, str]], str]:
    """The first AI call (§6.3) with its fallback: (features, source "gemini"/"openai"/"fallback")."""
    try:
        return adapter.generate_dynamic_questions(user_input), adapter.name
    except (LLMAttemptsExhausted, LLMConfigError) as exc:
        log.warning("Dynamic questions: using the industry defaults: %s", getattr(exc, "problems", exc))
    return FallbackAdapter().generate_dynamic_questions(user_input), "fallback"


def record_step(session_id: Any, step_number: int, value: Any, answers: dict[str, Any] | None = None,
                adapter: LLMAdapter | None = None) -> EstimateSession:
    """Save one answer (and any ``answers`` sent along). Step 7 with answers triggers §6.3.

    Raises:
        SessionNotFound: no such session.
        InputError: an invalid value (Japanese reason).
    """
    session = get_session(session_id)
    merged = clean_answers(answers)
    merged[f"step_{step_number}"] = validate_step_value(step_number, value)
    features: list[dict[str, str]] | None = None
    if step_number == 7 and answers is not None:  # the LLM call happens outside the row lock
        known = {**session.answers, **merged}
        user_input = sanitize({k: v for k, v in known.items() if k in {f"step_{n}" for n in range(1, 8)}})
        features, source = dynamic_features(user_input, adapter or create_llm_adapter(settings))
    with transaction.atomic():  # merge into the answers as stored now: a concurrent step is not lost
        session = EstimateSession.objects.select_for_update().get(pk=session.pk)
        session.answers = {**session.answers, **merged}
        session.current_step = max(session.current_step, step_number)
        fields = ["answers", "current_step", "updated_at"]
        if features is not None:
            session.step8_features = features
            session.step_8_categories = {f["value"]: f["category"] for f in features}
            session.features_source = source
            fields += ["step8_features", "step_8_categories", "features_source"]
        session.save(update_fields=fields)
    forget_cached_session(session.pk)
    return session
