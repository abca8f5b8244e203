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
from hokan.core.llm.retry import Deadline
from hokan.estimate.adapters import FallbackAdapter, LLMAdapter, LLMAttemptsExhausted, create_llm_adapter
from hokan.estimate.answers import clean_answers, validate_step_value
from hokan.estimate.errors import SessionNotFound
from hokan.estimate.generate import request_deadline
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


def _save_answers(session_id: Any, step_number: int, merged: dict[str, Any]) -> EstimateSession:
    with transaction.atomic():  # merge into the answers as stored now: a concurrent step is not lost
        session = EstimateSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise SessionNotFound(session_id)
        session.answers = {**session.answers, **merged}
        session.current_step = max(session.current_step, step_number)
        session.save(update_fields=["answers", "current_step", "updated_at"])
    return session


def record_step(session_id: Any, step_number: int, value: Any, answers: dict[str, Any] | None = None,
                adapter: LLMAdapter | None = None, *, deadline: Deadline | None = None) -> EstimateSession:
    """Save one answer (and any ``answers`` sent along). Step 7 with answers triggers §6.3.

    The answers are saved first, in their own transaction, so that nothing the customer typed
    is lost whatever the LLM does; the step-8 feature candidates are saved after the call
    (outside any lock). The call ends by the request's ``deadline`` (default
    ``ESTIMATE_LLM_DEADLINE_S`` from now, ``generate.request_deadline``); past it, or when every
    attempt failed, the industry's default features are saved (``features_source`` "fallback").

    Raises:
        SessionNotFound: no such session.
        InputError: an invalid value (Japanese reason); nothing is saved then.
    """
    deadline = request_deadline() if deadline is None else deadline
    get_session(session_id)  # an unknown session is a 404 before any 400 about its values
    merged = clean_answers(answers)
    merged[f"step_{step_number}"] = validate_step_value(step_number, value)
    session = _save_answers(session_id, step_number, merged)
    forget_cached_session(session.pk)
    if step_number != 7 or answers is None:
        return session
    user_input = sanitize({k: v for k, v in session.answers.items() if k in {f"step_{n}" for n in range(1, 8)}})
    features, source = dynamic_features(user_input, adapter or create_llm_adapter(settings, deadline=deadline))
    with transaction.atomic():
        session = EstimateSession.objects.select_for_update().get(pk=session.pk)
        session.step8_features = features
        session.step_8_categories = {f["value"]: f["category"] for f in features}
        session.features_source = source
        session.save(update_fields=["step8_features", "step_8_categories", "features_source", "updated_at"])
    forget_cached_session(session.pk)
    return session
