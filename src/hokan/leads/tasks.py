"""Celery tasks of the leads app (design document 000 §9–§12). Thin: each calls ``enrich_leads``.

- ``leads.tasks.run_ai_enrich`` — the nightly run (Beat, 03:00 Asia/Tokyo; queue ``ai_enrich``
  through the app's ``task_routes``; task rate limit 10/m as §9 says). Its ``EnrichmentRun`` (trigger "schedule") has the Celery
  task id as its public id, so retries and redeliveries of the same task continue the same run.
- ``leads.tasks.refresh_lead(run_id)`` — one lead now (``POST /api/leads/{id}/refresh/``, §14):
  runs the ``EnrichmentRun`` the API created (status QUEUED, with its lead); returns quietly
  when that row is gone.

Retries (§12 「リトライ 最大3回（Celery retry機構使用）」「API429時は 10分スリープ再試行」):
retries live in exactly one layer, here — the LLM client is built with ``max_retries=0``.
When ``enrich_leads`` stops on a provider failure (``report.interrupted_by``), the task is
retried with ``self.retry`` at most ``MAX_RETRIES`` times; the countdown is
``retry_countdown_s``: after HTTP 429 the longer of ``HOKAN_LLM_RATE_LIMIT_WAIT_S`` (600 s)
and the provider's Retry-After. Each attempt continues with the leads still to do: leads done
before are not selected again, and a lead's paid call is never made twice on one day
(``AlreadyPaid``, see hokan/leads/enrich.py). Without a broker (eager mode, no Redis) the task
runs in the calling process and is not retried: the run ends FAILED with the reason.

Delivery: ``acks_late`` + ``reject_on_worker_lost`` (hokan/celery.py): a task whose worker is
killed is delivered again and continues the same run; a run already finished (completed or
stopped on a limit) is not run twice.

Notifications (§11, hokan.core.notify; they never raise): success with the records done, the
calls and the estimated cost left this month (nightly run only); the limit warning with the
configured limits when the run stopped on a monthly limit; an error notice with the stack
trace and the company for each lead that failed (at most ``MAX_ERROR_NOTICES`` per run, the
rest are in the log), for a run interrupted after its last retry, and for a crash of the job.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from hokan.core.errors import LLMTransientError, RateLimited
from hokan.core.llm import get_client
from hokan.leads import notices as notify
from hokan.leads.columns import BY_NAME
from hokan.leads.enrich import EnrichReport, enrich_leads
from hokan.leads.models import EnrichmentRun

logger = logging.getLogger("hokan.leads.tasks")

MAX_RETRIES = 3  # document 000 §12
MAX_ERROR_NOTICES = 5
FINISHED = (EnrichmentRun.Status.SUCCEEDED, EnrichmentRun.Status.LIMITED)


def retry_countdown_s(exc: BaseException, retries: int) -> float:
    """Seconds to wait before the next attempt after ``exc`` (``retries`` = retries so far).

    HTTP 429: max(HOKAN_LLM_RATE_LIMIT_WAIT_S, Retry-After) (§12: 10 minutes by default).
    RateLimited (our shared limit): its ``retry_after_s``. Other transient failures (5xx,
    timeouts): 60 s × 2^retries, at most HOKAN_LLM_RATE_LIMIT_WAIT_S.
    """
    wait_s = float(settings.HOKAN_LLM_RATE_LIMIT_WAIT_S)
    if isinstance(exc, LLMTransientError) and exc.status_code == 429:
        return max(wait_s, float(exc.retry_after_s or 0))
    if isinstance(exc, RateLimited):
        return float(exc.retry_after_s)
    return min(wait_s, 60.0 * 2**retries)


def _summary(run: EnrichmentRun, report: EnrichReport) -> dict[str, Any]:
    run.refresh_from_db(fields=["status"])
    return {
        "run_id": report.run_id,
        "status": run.status,
        "leads_done": report.leads_done,
        "leads_failed": report.leads_failed,
        "llm_calls": report.llm_calls,
        "cost_usd": str(report.cost_usd),
        "stopped_reason": report.stopped_reason,
    }


def _filled_labels(report: EnrichReport) -> dict[str, int]:
    counts = Counter(
        BY_NAME[name].label if name in BY_NAME else name for o in report.outcomes for name in o.filled
    )
    return dict(counts.most_common())


def _notify_failed_leads(report: EnrichReport) -> None:
    failed = [o for o in report.outcomes if o.error]
    for outcome in failed[:MAX_ERROR_NOTICES]:
        notify.notify_error(company=outcome.name, error=outcome.exception or outcome.error)
    if len(failed) > MAX_ERROR_NOTICES:
        logger.error("%d more leads failed in run %s (see the log)", len(failed) - MAX_ERROR_NOTICES, report.run_id)


def _execute(task: Any, run: EnrichmentRun, *, success_notice: bool) -> dict[str, Any]:
    """Run ``run`` with ``enrich_leads``, then notify or schedule a retry (see the module docstring)."""
    if run.status in FINISHED:
        logger.info("run %s already finished (%s): not run again", run.public_id, run.status)
        return {"run_id": str(run.public_id), "status": run.status, "skipped": True}
    try:
        report = enrich_leads(run=run, client=get_client(max_retries=0), trigger=run.trigger)
    except Exception as exc:
        EnrichmentRun.objects.filter(pk=run.pk).update(
            status=EnrichmentRun.Status.FAILED, finished_at=timezone.now(), message=f"{type(exc).__name__}: {exc}"[:2000]
        )
        notify.notify_error(company="（補完ジョブ全体）", error=exc)
        raise
    _notify_failed_leads(report)
    if report.interrupted_by is not None:
        exc = report.interrupted_by
        retries = int(task.request.retries or 0)
        if not task.request.is_eager and retries < MAX_RETRIES:
            countdown = retry_countdown_s(exc, retries)
            EnrichmentRun.objects.filter(pk=run.pk).update(
                status=EnrichmentRun.Status.QUEUED,
                message=f"{report.stopped_reason}（{countdown:g}秒後に再試行 {retries + 1}/{MAX_RETRIES}）"[:2000],
            )
            logger.warning("run %s: retry %d/%d in %gs after %s", run.public_id, retries + 1, MAX_RETRIES, countdown, exc)
            raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES)
        notify.notify_error(company=report.interrupted_lead or "（補完ジョブ全体）", error=exc)
        return _summary(run, report)
    summary = _summary(run, report)
    usage = report.usage
    if summary["status"] == EnrichmentRun.Status.LIMITED and usage is not None:
        notify.notify_limit_reached(
            cost_limit_usd=usage.cost_limit_usd, call_limit=usage.call_limit, spent_usd=usage.cost_usd, calls=usage.calls
        )
    elif success_notice and usage is not None:
        notify.notify_success(
            records=report.leads_done,
            remaining_calls=usage.remaining_calls,
            remaining_cost_usd=usage.remaining_cost_usd,
            filled=_filled_labels(report),
            run_id=report.run_id,
        )
    return summary


def _run_public_id(task: Any) -> uuid.UUID:
    """The Celery task id as a UUID (stable across retries and redeliveries), else a new one."""
    try:
        return uuid.UUID(str(task.request.id))
    except ValueError:
        return uuid.uuid4()


@shared_task(
    bind=True, name="leads.tasks.run_ai_enrich", rate_limit="10/m",
    acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES,
)
def run_ai_enrich(self: Any) -> dict[str, Any]:
    """The nightly enrichment run (§10). Returns a summary: run_id, status, counts, cost_usd."""
    run, _ = EnrichmentRun.objects.get_or_create(public_id=_run_public_id(self), defaults={"trigger": "schedule"})
    return _execute(self, run, success_notice=True)


@shared_task(
    bind=True, name="leads.tasks.refresh_lead", rate_limit="10/m",
    acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES,
)
def refresh_lead(self: Any, run_id: int) -> dict[str, Any] | None:
    """Enrich the lead of ``EnrichmentRun(pk=run_id)`` now (§14). None when the run is gone."""
    run = EnrichmentRun.objects.filter(pk=run_id).first()
    if run is None:
        logger.info("refresh_lead: run %s no longer exists", run_id)
        return None
    return _execute(self, run, success_notice=False)
