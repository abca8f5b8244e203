"""The estimate generation flow of design document 004 §2.2 and §8 (``estimate_service.py``).

``generate_estimate(session_id, answers) -> Estimate``:

1. claim the session's one ``Estimate`` row (status processing) and save the request's
   answers, before any LLM call — idempotent: a session that already has a completed
   estimate gets it back, a concurrent request waits for the one in flight and gets the same
   row; nothing is recomputed, no LLM call is paid twice;
2. sanitise (§4) and price (§5);
3. second AI call (text, §6.4) with up to LLM_MAX_RETRIES attempts, else the fallback template;
4. ``enforce_calculated_prices`` (1st time);
5. audit (§8.2): skipped when ``AUDIT_ENABLED`` is false, when more than
   ``ESTIMATE_AUDIT_GUARD_S`` (80 s) have passed, or when less than ``AUDIT_MIN_LEFT_S``
   remain before the request's deadline (an audit cut off mid-answer is paid for nothing);
   an invalid answer or an exception keeps the step-4 result; a valid one is enforced again
   (2nd time), its ``audit_warnings`` are logged (and kept for the operator, never returned)
   and the diff is logged (§8.3);
6. save (status completed) and queue the after-response work (§9, ``tasks.schedule_followups``).

The request's deadline (issue 9 §1): one ``Deadline`` of ``ESTIMATE_LLM_DEADLINE_S`` (90 s)
starts when the request comes in and bounds everything it may wait for — another request's
generation, every LLM attempt, wait and retry (the socket operations are cut at it) — so the
request ends with the fallback text well inside gunicorn's 120 s worker timeout (``hokan
serve --timeout``) even when the provider accepts the connection and never answers.

A "processing" row never outlives its worker: it records its ``owner`` (``host:pid:start``).
It is *abandoned* (``abandoned``) when that process is gone (checked on the same host through
/proc: a kill -9, an OOM kill, a worker killed by gunicorn) or, from any host, when it was
started more than the deadline plus ``PROCESSING_MARGIN_S`` (30 s: 120 s with the defaults)
ago. The next ``POST generate`` takes an abandoned row over at once (a waiting one as soon as
it sees it), and ``GET result/{id}`` reports it ``failed`` (``settle_abandoned``), so a
client never polls "processing" forever. A late result of a taken-over run is dropped.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hokan.core.errors import LLMConfigError
from hokan.core.llm.retry import Deadline
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
PROCESSING_MARGIN_S = 30.0  # a run ends within its deadline; its row is abandoned this much later
NO_DEADLINE_STALE = timedelta(minutes=5)  # the same without a deadline (ESTIMATE_LLM_DEADLINE_S=0)
AUDIT_MIN_LEFT_S = 5.0  # an audit answer takes seconds: not started with less time left
WAIT_POLL_S = 0.25  # how often a concurrent POST generate looks at the running generation
ABANDONED_ERROR = "生成中のプロセスが終了したため、生成を完了できませんでした"
DIFF_FIELDS = ("project_name", "summary", "confidence_note")


# --- the request's deadline and abandoned generations ---------------------------------------------
def request_deadline() -> Deadline | None:
    """The deadline of one request path, from now: ``ESTIMATE_LLM_DEADLINE_S`` seconds
    (None when it is 0: no deadline)."""
    seconds = float(settings.ESTIMATE_LLM_DEADLINE_S or 0)
    return Deadline.after(seconds) if seconds > 0 else None


def stale_after() -> timedelta:
    """How old a processing row must be to count as abandoned whoever owns it: the request
    deadline plus PROCESSING_MARGIN_S (90 + 30 s), or NO_DEADLINE_STALE without a deadline."""
    seconds = float(settings.ESTIMATE_LLM_DEADLINE_S or 0)
    return timedelta(seconds=seconds + PROCESSING_MARGIN_S) if seconds > 0 else NO_DEADLINE_STALE


def _start_ticks(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22),
    None when the process does not exist, has ended (a zombie not yet reaped) or /proc
    cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": field 3 (state) onwards
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or of ``pid``): unlike a PID alone, it is not
    reused by a later process. ``start`` is empty where /proc is missing."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or ''}"


def owner_gone(owner: str) -> bool:
    """True when ``owner`` (a ``process_identity``) names a process of this host that has
    ended; False when it runs, is on another host, or cannot be checked (no /proc)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit() or not parts[2]:
        return False
    if _start_ticks(os.getpid()) is None:  # no /proc here: cannot tell
        return False
    return _start_ticks(int(parts[1])) != parts[2]


def abandoned(estimate: Estimate, *, now: datetime | None = None) -> bool:
    """Whether a processing ``estimate`` has no live run any more: its owner process is gone,
    or it started more than ``stale_after()`` ago. False for any other status."""
    if estimate.status != Estimate.Status.PROCESSING:
        return False
    started = estimate.started_at or estimate.created_at
    if started < (now or timezone.now()) - stale_after():
        return True
    return bool(estimate.owner) and owner_gone(estimate.owner)


def settle_abandoned(estimate: Estimate) -> Estimate:
    """``estimate`` as stored, marked failed (``ABANDONED_ERROR``) when it was processing
    and is abandoned; the next ``POST generate`` runs it again. For ``GET result/{id}``."""
    if abandoned(estimate):
        marked = Estimate.objects.filter(pk=estimate.pk, status=Estimate.Status.PROCESSING,
                                         started_at=estimate.started_at).update(
            status=Estimate.Status.FAILED, error=ABANDONED_ERROR)
        if marked:
            log.warning("Estimate %s was abandoned by %s; marked failed", estimate.pk, estimate.owner or "?")
            EstimateSession.objects.filter(pk=estimate.session_id).update(status=EstimateSession.Status.FAILED)
        estimate.refresh_from_db()
    return estimate


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
                   start_time: float, deadline: Deadline | None = None,
                   ) -> tuple[dict[str, Any], str, list[str], list[dict[str, Any]]]:
    """§8.2 ``_audit_estimate``. Returns (estimate, audit_status, warnings, diff).

    start_time: ``time.monotonic()`` when the request began. deadline: the request's (default:
    the adapter's own, if any). audit_status: "disabled" | "skipped_timeout" (more than
    ESTIMATE_AUDIT_GUARD_S elapsed, or less than AUDIT_MIN_LEFT_S left) | "passthrough"
    (fallback adapter) | "invalid" | "error" | "audited". Only "audited" replaces ``estimate``.
    """
    if not settings.AUDIT_ENABLED:
        return estimate, "disabled", [], []
    elapsed = time.monotonic() - start_time
    if elapsed > settings.ESTIMATE_AUDIT_GUARD_S:
        log.info("Audit skipped: %.1fs elapsed (guard %.1fs)", elapsed, settings.ESTIMATE_AUDIT_GUARD_S)
        return estimate, "skipped_timeout", [], []
    deadline = deadline if deadline is not None else getattr(adapter, "deadline", None)
    if deadline is not None and not isinstance(adapter, FallbackAdapter) and deadline.remaining() < AUDIT_MIN_LEFT_S:
        log.info("Audit skipped: %.1fs left before the request's deadline", deadline.remaining())
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
                 start_time: float | None = None, deadline: Deadline | None = None) -> dict[str, Any]:
    """Steps 3-6 of §2.2 for an already sanitised ``user_input``, without the database.

    start_time: ``time.monotonic()`` at the request's start (default now); deadline: the
    request's (the adapter's own when None). Returns ``{"estimate", "calculated",
    "text_source", "audit_status", "audit_warnings", "audit_diff"}``.
    """
    start = time.monotonic() if start_time is None else start_time
    calculated = pricing.calculate(user_input)
    text, source = write_estimate(user_input, calculated, adapter)
    estimate = enforce_calculated_prices(text, calculated)
    estimate["budget"] = _public_budget(calculated)
    estimate, audit_status, warnings, diff = audit_estimate(estimate, calculated, adapter, start, deadline)
    return {"estimate": estimate, "calculated": calculated, "text_source": source, "audit_status": audit_status,
            "audit_warnings": warnings, "audit_diff": diff}


def _claim(session_id: Any, answers: dict[str, Any] | None) -> tuple[Estimate, datetime | None]:
    """Lock the session, merge ``answers``, and claim its one Estimate row.

    Returns ``(estimate, claim)``: ``claim`` is the ``started_at`` written by this call when the
    caller must run the generation (no row yet, a failed one, or an ``abandoned`` one), else
    None (completed, or another live request is generating it). Concurrent callers are
    serialised by the session row lock (PostgreSQL) or the write lock taken by ``BEGIN
    IMMEDIATE`` (SQLite, settings.py), and the one-to-one constraint. The row's ``owner``
    becomes this process.
    """
    with transaction.atomic():
        session = EstimateSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise SessionNotFound(session_id)
        now = timezone.now()
        owner = process_identity()
        estimate, created = Estimate.objects.get_or_create(session=session,
                                                           defaults={"started_at": now, "owner": owner})
        if not created:
            dead = abandoned(estimate, now=now)
            if estimate.status != Estimate.Status.FAILED and not dead:
                return estimate, None
            if dead:
                log.warning("Estimate %s: taking over a generation abandoned by %s (started %s)", estimate.pk,
                            estimate.owner or "?", estimate.started_at)
            estimate.status = Estimate.Status.PROCESSING
            estimate.error = ""
            estimate.started_at = now
            estimate.owner = owner
            estimate.save(update_fields=["status", "error", "started_at", "owner"])
        if answers:
            session.answers = {**session.answers, **clean_answers(answers)}
        session.status = EstimateSession.Status.GENERATING
        session.save(update_fields=["answers", "status", "updated_at"])
        return estimate, now


def _wait_while_processing(estimate: Estimate, deadline: Deadline | None) -> Estimate:
    """Wait (polling the row) while another live request generates ``estimate``: until it is
    no longer processing, is ``abandoned``, or ``ESTIMATE_GENERATE_WAIT_S`` — at most until the
    request's ``deadline`` — has passed. Returns the row as last read."""
    wait_s = float(settings.ESTIMATE_GENERATE_WAIT_S)
    if deadline is not None:
        wait_s = min(wait_s, deadline.remaining())
    until = time.monotonic() + wait_s
    while estimate.status == Estimate.Status.PROCESSING and not abandoned(estimate):
        left = until - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(WAIT_POLL_S, left))
        estimate.refresh_from_db()
    return estimate


def generate_estimate(session_id: Any, answers: dict[str, Any] | None = None,
                      adapter: LLMAdapter | None = None, *, deadline: Deadline | None = None) -> Estimate:
    """Run (or return the stored result of) ``POST generate`` for a session.

    Idempotent per session, also under concurrency: exactly one request runs the generation
    (and pays for its LLM calls); the others wait for its result (``_wait_while_processing``)
    and return the same row — or take the generation over when its run is ``abandoned``.
    ``answers`` of a request that does not run are ignored. deadline: the request's (default
    ``request_deadline()`` from now); past it the fallback text is used and the audit
    skipped, and a request still waiting returns the row "processing" (the client polls
    ``GET result/{id}``).

    Raises:
        SessionNotFound: no such session.
    """
    start = time.monotonic()
    deadline = request_deadline() if deadline is None else deadline
    while True:
        estimate, claim = _claim(session_id, answers)
        if claim is not None:
            break
        if estimate.status == Estimate.Status.COMPLETED:
            return estimate
        estimate = _wait_while_processing(estimate, deadline)
        if estimate.status == Estimate.Status.COMPLETED or (
                estimate.status == Estimate.Status.PROCESSING and not abandoned(estimate)):
            return estimate  # done, or still running elsewhere when this request's time is up
        # failed or abandoned meanwhile: claim it (or find who did)
    mine = Estimate.objects.filter(pk=estimate.pk, started_at=claim)  # unless a take-over replaced us
    session = estimate.session
    adapter = adapter or create_llm_adapter(settings, deadline=deadline)
    try:
        user_input = sanitize(session.answers, session.step_8_categories)
        labels = {f["value"]: f["label"] for f in session.step8_features if isinstance(f, dict) and "value" in f}
        if labels:
            user_input["step_8_labels"] = labels
        result = run_pipeline(user_input, adapter, start, deadline)
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
        "status": Estimate.Status.COMPLETED, "completed_at": timezone.now(), "owner": "",
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
