"""The estimate generation flow of design document 004 §2.2 and §8 (``estimate_service.py``).

``generate_estimate(session_id, answers) -> Estimate``:

1. claim the session's one ``Estimate`` row (status processing) — idempotent: a session that
   already has a completed estimate gets it back, a concurrent request waits for the one in
   flight and gets the same row; nothing is recomputed, no LLM call is paid twice;
2. sanitise (§4) and price (§5);
3. second AI call (text, §6.4) with up to LLM_MAX_RETRIES attempts, else the fallback template;
4. ``enforce_calculated_prices`` (1st time);
5. audit (§8.2): skipped when ``AUDIT_ENABLED`` is false or more than
   ``ESTIMATE_AUDIT_GUARD_S`` (80 s) have passed; an invalid answer or an exception keeps the
   step-4 result; a valid one is enforced again (2nd time), its ``audit_warnings`` are logged
   (and kept for the operator, never returned) and the diff is logged (§8.3);
6. save (status completed) and schedule the after-response work (§9).
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hokan.core.errors import LLMConfigError
from hokan.estimate import amount_guard, pricing
from hokan.estimate.adapters import FallbackAdapter, LLMAdapter, LLMAttemptsExhausted, create_llm_adapter
from hokan.estimate.answers import clean_answers
from hokan.estimate.errors import SessionNotFound
from hokan.estimate.models import Estimate, EstimateSession
from hokan.estimate.sanitizer import sanitize
from hokan.estimate.tasks import schedule_followups
from hokan.estimate.validation import estimate_output_problems, feature_bounds

log = logging.getLogger(__name__)

DEFAULT_FEATURE_DETAIL = "業務効率化を支援する機能"
STALE_PROCESSING = timedelta(minutes=5)  # a generation still "processing" after this has died
WAIT_POLL_S = 0.25  # how often a concurrent POST generate looks at the running generation
DIFF_FIELDS = ("project_name", "summary", "confidence_note")


def enforce_calculated_prices(result: dict[str, Any], calculated: dict[str, Any]) -> dict[str, Any]:
    """§8.1 ``_enforce_calculated_prices``: the engine's prices overwrite the LLM's.

    Feature i keeps the LLM's name/detail when the LLM gave an i-th feature, else gets the
    category name and a default detail. Totals, ``confidence`` and ``user_input`` come from
    ``calculated``; yen amounts in the texts must be the engine's (``_guard_amounts_in_text``).
    Returns a new dict; ``result`` is not modified.
    """
    out = copy.deepcopy(result)
    llm_features = out.get("features") if isinstance(out.get("features"), list) else []
    features = []
    for i, calc in enumerate(calculated["features"]):
        if i < len(llm_features) and isinstance(llm_features[i], dict):
            feature = dict(llm_features[i])
        else:
            feature = {"name": calc["category"], "detail": DEFAULT_FEATURE_DETAIL}
        feature["standard_price"] = calc["standard_price"]
        feature["hybrid_price"] = calc["hybrid_price"]
        features.append(feature)
    out["features"] = features
    total = out.get("total_cost") if isinstance(out.get("total_cost"), dict) else {}
    out["total_cost"] = {**total, "standard": calculated["total_standard"], "hybrid": calculated["total_hybrid"]}
    out["confidence"] = copy.deepcopy(calculated["confidence"])
    out["user_input"] = copy.deepcopy(calculated["user_input"])
    _guard_amounts_in_text(out, calculated)
    return out


_TEXT_FIELDS = ("project_name", "summary", "development_model_explanation", "confidence_note")


def engine_cost_message(calculated: dict[str, Any]) -> str:
    """The ``total_cost.message`` used when the LLM's states other amounts (Japanese)."""
    standard, hybrid = calculated["total_standard"], calculated["total_hybrid"]
    return (f"標準開発では約{pricing.format_price(standard)}、ハイブリッド開発では約{pricing.format_price(hybrid)}"
            f"（いずれも税別）の見込みです。")


def _guard_amounts_in_text(out: dict[str, Any], calculated: dict[str, Any]) -> None:
    """Remove yen amounts the LLM wrote into free text that are not the engine's (in place).

    The document's guarantee (§8.1, §11.2) covers the price fields; the customer also reads
    the texts (response, PDF, e-mail), so an amount there must be one the engine computed
    (``amount_guard``): else ``total_cost.message`` becomes ``engine_cost_message``, other
    texts lose the sentence stating it (or, in a one-sentence title, the amount phrase).
    """
    allowed = amount_guard.engine_amounts(calculated)
    total = out["total_cost"]
    if isinstance(total.get("message"), str) and amount_guard.foreign_amounts(total["message"], allowed):
        log.info("LLM cost message stated other amounts, replaced: %r", total["message"])
        total["message"] = engine_cost_message(calculated)
    for key in _TEXT_FIELDS:
        if isinstance(out.get(key), str):
            out[key] = amount_guard.guard_text(out[key], allowed)
    for feature in out["features"]:
        for key in ("name", "detail"):
            if isinstance(feature.get(key), str):
                feature[key] = amount_guard.guard_text(feature[key], allowed)
    if isinstance(out.get("discussion_agenda"), list):
        out["discussion_agenda"] = [amount_guard.guard_text(item, allowed) if isinstance(item, str) else item
                                    for item in out["discussion_agenda"]]


def audit_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """§8.3: changes to project_name, summary, confidence_note, features[i].name/detail,
    discussion_agenda and total_cost.message, as ``[{"field", "before", "after"}]``."""
    changes: list[dict[str, Any]] = []
    for key in DIFF_FIELDS:
        if before.get(key) != after.get(key):
            changes.append({"field": key, "before": before.get(key), "after": after.get(key)})
    old_features, new_features = before.get("features") or [], after.get("features") or []
    for i in range(max(len(old_features), len(new_features))):
        old = old_features[i] if i < len(old_features) else {}
        new = new_features[i] if i < len(new_features) else {}
        for key in ("name", "detail"):
            if old.get(key) != new.get(key):
                changes.append({"field": f"features[{i}].{key}", "before": old.get(key), "after": new.get(key)})
    if before.get("discussion_agenda") != after.get("discussion_agenda"):
        changes.append({"field": "discussion_agenda", "before": before.get("discussion_agenda"),
                        "after": after.get("discussion_agenda")})
    old_msg = (before.get("total_cost") or {}).get("message")
    new_msg = (after.get("total_cost") or {}).get("message")
    if old_msg != new_msg:
        changes.append({"field": "total_cost.message", "before": old_msg, "after": new_msg})
    return changes


def _log_audit_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    changes = audit_diff(before, after)
    if changes:
        log.info("Audit diff (%d changes): %s", len(changes), changes)
    return changes


def audit_estimate(estimate: dict[str, Any], calculated: dict[str, Any], adapter: LLMAdapter,
                   start_time: float) -> tuple[dict[str, Any], str, list[str], list[dict[str, Any]]]:
    """§8.2 ``_audit_estimate``. Returns (estimate, audit_status, warnings, diff).

    audit_status: "disabled" | "skipped_timeout" | "passthrough" (fallback adapter) |
    "invalid" | "error" | "audited". Only "audited" replaces ``estimate``.
    """
    if not settings.AUDIT_ENABLED:
        return estimate, "disabled", [], []
    elapsed = time.monotonic() - start_time
    if elapsed > settings.ESTIMATE_AUDIT_GUARD_S:
        log.info("Audit skipped: %.1fs elapsed (guard %.1fs)", elapsed, settings.ESTIMATE_AUDIT_GUARD_S)
        return estimate, "skipped_timeout", [], []
    if isinstance(adapter, FallbackAdapter):
        return estimate, "passthrough", [], []
    try:
        audited = adapter.audit_estimate(estimate, calculated)
        low, high = feature_bounds(len(calculated["features"]))
        problems = estimate_output_problems(audited, min_features=low, max_features=high)
        if problems:
            log.warning("Audit output invalid, keeping the original: %s", problems[:5])
            return estimate, "invalid", [], []
        audited = enforce_calculated_prices(audited, calculated)
        warnings = audited.pop("audit_warnings", []) or []
        if not isinstance(warnings, list):
            warnings = [str(warnings)]
        if warnings:
            log.info("Audit warnings: %s", warnings)
        if "budget" in estimate:  # not part of the audit's input; keep the engine's
            audited["budget"] = estimate["budget"]
        diff = _log_audit_diff(estimate, audited)
        return audited, "audited", [str(w) for w in warnings], diff
    except Exception:  # §8.2: any failure of the audit keeps the original estimate
        log.warning("Audit failed, keeping the original", exc_info=True)
        return estimate, "error", [], []


def write_estimate(user_input: dict[str, Any], calculated: dict[str, Any],
                   adapter: LLMAdapter) -> tuple[dict[str, Any], str]:
    """The second AI call with its fallback (§6.4, §11.1). Returns (estimate, text_source)."""
    try:
        return adapter.generate_estimate(user_input, calculated), adapter.name
    except (LLMAttemptsExhausted, LLMConfigError) as exc:
        log.warning("Estimate text: using the fallback template: %s", getattr(exc, "problems", exc))
    return FallbackAdapter().generate_estimate(user_input, calculated), "fallback"


def _public_budget(calculated: dict[str, Any]) -> dict[str, Any]:
    budget = calculated["budget"]
    return {"status": budget["status"], "message": budget["message"]}


def run_pipeline(user_input: dict[str, Any], adapter: LLMAdapter,
                 start_time: float | None = None) -> dict[str, Any]:
    """Steps 3-6 of §2.2 for an already sanitised ``user_input``, without the database.

    Returns ``{"estimate", "calculated", "text_source", "audit_status", "audit_warnings",
    "audit_diff"}``.
    """
    start = time.monotonic() if start_time is None else start_time
    calculated = pricing.calculate(user_input)
    text, source = write_estimate(user_input, calculated, adapter)
    estimate = enforce_calculated_prices(text, calculated)
    estimate["budget"] = _public_budget(calculated)
    estimate, audit_status, warnings, diff = audit_estimate(estimate, calculated, adapter, start)
    return {"estimate": estimate, "calculated": calculated, "text_source": source, "audit_status": audit_status,
            "audit_warnings": warnings, "audit_diff": diff}


def _claim(session_id: Any, answers: dict[str, Any] | None) -> tuple[Estimate, datetime | None]:
    """Lock the session, merge ``answers``, and claim its one Estimate row.

    Returns ``(estimate, claim)``: ``claim`` is the ``started_at`` written by this call when the
    caller must run the generation (no row yet, a failed one, or one stuck in processing for
    more than STALE_PROCESSING), else None (completed, or another request is generating it).
    Concurrent callers are serialised by the session row lock (PostgreSQL) or the write lock
    taken by ``BEGIN IMMEDIATE`` (SQLite, settings.py), and the one-to-one constraint.
    """
    with transaction.atomic():
        session = EstimateSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise SessionNotFound(session_id)
        now = timezone.now()
        estimate, created = Estimate.objects.get_or_create(session=session, defaults={"started_at": now})
        if not created:
            started = estimate.started_at or estimate.created_at
            stale = estimate.status == Estimate.Status.PROCESSING and started < now - STALE_PROCESSING
            if estimate.status != Estimate.Status.FAILED and not stale:
                return estimate, None
            estimate.status = Estimate.Status.PROCESSING
            estimate.error = ""
            estimate.started_at = now
            estimate.save(update_fields=["status", "error", "started_at"])
        if answers:
            session.answers = {**session.answers, **clean_answers(answers)}
        session.status = EstimateSession.Status.GENERATING
        session.save(update_fields=["answers", "status", "updated_at"])
        return estimate, now


def _wait_while_processing(estimate: Estimate) -> Estimate:
    """Wait (polling the row) until another request's generation of ``estimate`` ends, at most
    ``ESTIMATE_GENERATE_WAIT_S`` seconds; a row still processing then is returned as it is
    (the client polls ``GET result/{id}``, §2.1)."""
    deadline = time.monotonic() + settings.ESTIMATE_GENERATE_WAIT_S
    while estimate.status == Estimate.Status.PROCESSING and time.monotonic() < deadline:
        time.sleep(WAIT_POLL_S)
        estimate.refresh_from_db()
    return estimate


def generate_estimate(session_id: Any, answers: dict[str, Any] | None = None,
                      adapter: LLMAdapter | None = None) -> Estimate:
    """Run (or return the stored result of) ``POST generate`` for a session.

    Idempotent per session, also under concurrency: exactly one request runs the generation
    (and pays for its LLM calls); the others wait for its result (``_wait_while_processing``)
    and return the same row. ``answers`` of a request that does not run are ignored.

    Raises:
        SessionNotFound: no such session.
    """
    start = time.monotonic()
    estimate, claim = _claim(session_id, answers)
    if claim is None:
        return _wait_while_processing(estimate)
    mine = Estimate.objects.filter(pk=estimate.pk, started_at=claim)  # unless a stale take-over replaced us
    session = estimate.session
    adapter = adapter or create_llm_adapter(settings)
    try:
        user_input = sanitize(session.answers, session.step_8_categories)
        labels = {f["value"]: f["label"] for f in session.step8_features if isinstance(f, dict) and "value" in f}
        if labels:
            user_input["step_8_labels"] = labels
        result = run_pipeline(user_input, adapter, start)
    except Exception as exc:
        log.exception("Estimate generation failed for session %s", session.pk)
        if mine.update(status=Estimate.Status.FAILED, error=f"{type(exc).__name__}: {exc}"):
            EstimateSession.objects.filter(pk=session.pk).update(status=EstimateSession.Status.FAILED)
        estimate.refresh_from_db()
        return estimate

    calculated = result["calculated"]
    fields = {
        "raw_json": result["estimate"], "calculated_json": calculated,
        "total_standard": calculated["total_standard"], "total_hybrid": calculated["total_hybrid"],
        "provider": adapter.name, "text_source": result["text_source"], "audit_status": result["audit_status"],
        "audit_warnings": result["audit_warnings"], "audit_diff": result["audit_diff"],
        "status": Estimate.Status.COMPLETED, "completed_at": timezone.now(),
    }
    with transaction.atomic():
        if not mine.update(**fields):
            log.warning("Estimate %s was taken over by a later request; this run's result is dropped", estimate.pk)
            estimate.refresh_from_db()
            return estimate
        EstimateSession.objects.filter(pk=session.pk).update(status=EstimateSession.Status.COMPLETED,
                                                             updated_at=timezone.now())
        schedule_followups(estimate.pk)
    estimate.refresh_from_db()
    return estimate
