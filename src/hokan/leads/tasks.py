"""Celery tasks of the leads app (design document 000 §9–§12). Thin: the run is
``hokan.leads.enrich``; here it is started, spread over the workers and resumed.

- ``leads.tasks.run_ai_enrich`` — the nightly run (Beat, 03:00 Asia/Tokyo; queue ``ai_enrich``
  through the app's ``task_routes``; task rate limit 10/m as §9 says). Its ``EnrichmentRun``
  (trigger "schedule") has the Celery task id as its public id, so a redelivered task
  continues the same run.
- ``leads.tasks.refresh_lead(run_id)`` — one lead now (``POST /api/leads/{id}/refresh/``, §14):
  runs the ``EnrichmentRun`` the API created (status QUEUED, with its lead); returns quietly
  when that row is gone.
- ``leads.tasks.resume_run(run_id)`` — continues a run that stopped because the provider was
  down (see below).

With a broker, a task selects the run's leads and creates its job of chunks (``start_run``),
then sends one ``core.run_job_chunk`` task per chunk (``hokan.core.tasks.dispatch_job``) to
the ``ai_enrich`` queue: every worker consuming it takes chunks, and the leads of a chunk are
enriched concurrently within the provider's shared limit. The chunk handler registered here
(kind ``leads.enrich``) builds the fetcher, the client (with its retries per call) and the
ledger from the settings. The last chunk to finish ends the run and sends its notice. A worker
killed by ``kill -9`` loses its chunk's lease: another worker takes the chunk over (within
HOKAN_JOB_LEASE_S plus a sweep, or when the broker redelivers the killed task) and resumes
it without redoing or repaying its finished leads.

Retries (§12 「リトライ 最大3回（Celery retry機構使用）」「API429時は 10分スリープ再試行」):
each LLM call retries itself (HOKAN_LLM_MAX_RETRIES, 3; after a 429 it waits the provider's
Retry-After, else HOKAN_LLM_RATE_LIMIT_WAIT_S, 600 s), every attempt through the shared
limiter. Only a provider still failing after that — down — stops the run; it is then resumed
by ``resume_run`` after ``retry_countdown_s`` (the longer of HOKAN_LLM_RATE_LIMIT_WAIT_S and
Retry-After for a 429), at most ``MAX_RETRIES`` times. Without a broker (eager mode, no
Redis) the task runs the whole run in the calling process and is not retried: the run ends
FAILED with the reason; a refresh then runs inside the web request that asked for it, so its
call neither retries nor waits long for the limiter (``REQUEST_PATH_LIMITER_WAIT_S``). A 401
(bad key) stops the run at once; it is never retried.

Notifications (§11, hokan.leads.notices; they never raise): success with the records done,
the calls and the estimated cost left this month (nightly run only); the limit warning with
the configured limits when a monthly limit stopped the run; an error notice with the company
for each lead that failed (at most ``MAX_ERROR_NOTICES`` per run, the rest are in the log), for
a run that stopped for good, and for a crash of the job.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task
from django.utils import timezone

from hokan.celery import AI_ENRICH_QUEUE
from hokan.core import jobs
from hokan.core.budget import from_micro_usd, get_ledger
from hokan.core.models import Job, JobChunk
from hokan.leads.enrich import (
    FINISHED,
    KIND,
    MAX_ERROR_NOTICES,
    MAX_RETRIES,
    RunContext,
    enrich_chunk,
    enrich_leads,
    retry_countdown_s,
    start_run,
)
from hokan.leads.models import EnrichmentRun

__all__ = ["MAX_ERROR_NOTICES", "MAX_RETRIES", "refresh_lead", "resume_run", "retry_countdown_s", "run_ai_enrich"]

logger = logging.getLogger("hokan.leads.tasks")


def _has_broker() -> bool:
    from hokan.celery import app, has_broker

    return has_broker(app)


def _chunk_handler(job: Job, chunk: JobChunk) -> jobs.ChunkResult:
    """A chunk of a run on a Celery worker: the configured fetcher, client and ledger."""
    run = EnrichmentRun.objects.select_related("job").get(pk=job.params["run"])
    ctx = RunContext.from_settings(run, notify=True, success_notice=run.trigger == "schedule",
                                   can_retry=_has_broker())
    return enrich_chunk(ctx, job, chunk)


jobs.register_chunk_handler(KIND, _chunk_handler, queue=AI_ENRICH_QUEUE)


def _summary(run: EnrichmentRun, **extra: Any) -> dict[str, Any]:
    run.refresh_from_db()
    return {
        "run_id": str(run.public_id),
        "status": run.status,
        "leads_done": run.leads_done,
        "leads_failed": run.leads_failed,
        "leads_skipped": run.leads_skipped,
        "llm_calls": run.llm_calls,
        "cost_usd": format(from_micro_usd(run.cost_micro_usd).normalize(), "f"),
        "stopped_reason": run.message,
        **extra,
    }


# Without a broker a refresh runs inside the web request that asked for it: its LLM call gets
# no retries and waits at most this long for the shared limiter, so the request cannot outlive
# the web worker's timeout (a run that cannot call now ends FAILED, the refresh can be asked again).
REQUEST_PATH_LIMITER_WAIT_S = 20.0


def _execute(run: EnrichmentRun, *, success_notice: bool, request_path: bool = False) -> dict[str, Any]:
    """Start ``run`` on the workers (broker) or run it here (no broker); see the module docstring.

    request_path: the task was called from a web request (a refresh); without a broker it then
    runs with a client that neither retries nor waits long (``REQUEST_PATH_LIMITER_WAIT_S``).
    """
    if run.status in FINISHED:
        logger.info("run %s already finished (%s): not run again", run.public_id, run.status)
        return {"run_id": str(run.public_id), "status": run.status, "skipped": True}
    try:
        if not _has_broker():
            client = None
            if request_path:
                from hokan.core.llm import get_client
                from hokan.core.llm.limited import limited_client

                client = limited_client(get_client(max_retries=0), max_wait_s=REQUEST_PATH_LIMITER_WAIT_S)
            enrich_leads(run=run, trigger=run.trigger, notify=True, success_notice=success_notice, client=client)
            return _summary(run)
        from hokan.core.tasks import dispatch_job
        from hokan.leads import notices

        EnrichmentRun.objects.filter(pk=run.pk, status=EnrichmentRun.Status.QUEUED).update(
            status=EnrichmentRun.Status.RUNNING)
        run.refresh_from_db()
        ledger = get_ledger()
        run = start_run(run, ledger=ledger, day=timezone.localdate(), lead_ids=[run.lead_id] if run.lead_id else None)
        if run.job is None or run.status in FINISHED:
            if run.status == EnrichmentRun.Status.LIMITED and ledger.snapshot().limit_reached:
                usage = ledger.snapshot()
                notices.notify_limit_reached(cost_limit_usd=usage.cost_limit_usd, call_limit=usage.call_limit,
                                             spent_usd=usage.cost_usd, calls=usage.calls)
            return _summary(run)
        if run.job.status == Job.Status.COMPLETED:  # nothing to do (an empty selection)
            from hokan.leads.enrich import finish_if_done

            finish_if_done(run.pk, notify=True, success_notice=success_notice)
            return _summary(run)
        sent = dispatch_job(run.job)
        return _summary(run, chunks_sent=sent)
    except Exception as exc:
        EnrichmentRun.objects.filter(pk=run.pk).update(
            status=EnrichmentRun.Status.FAILED, finished_at=timezone.now(), message=f"{type(exc).__name__}: {exc}"[:2000]
        )
        from hokan.leads import notices

        notices.notify_error(company="（補完ジョブ全体）", error=exc)
        raise


def _run_public_id(task: Any) -> uuid.UUID:
    """The Celery task id as a UUID (stable across retries and redeliveries), else a new one."""
    try:
        return uuid.UUID(str(task.request.id))
    except ValueError:
        return uuid.uuid4()


@shared_task(bind=True, name="leads.tasks.run_ai_enrich", rate_limit="10/m", acks_late=True, reject_on_worker_lost=True)
def run_ai_enrich(self: Any) -> dict[str, Any]:
    """The nightly enrichment run (§10). Returns a summary: run_id, status, counts, cost_usd."""
    run, _ = EnrichmentRun.objects.get_or_create(public_id=_run_public_id(self), defaults={"trigger": "schedule"})
    return _execute(run, success_notice=True)


@shared_task(bind=True, name="leads.tasks.refresh_lead", rate_limit="10/m", acks_late=True, reject_on_worker_lost=True)
def refresh_lead(self: Any, run_id: int) -> dict[str, Any] | None:
    """Enrich the lead of ``EnrichmentRun(pk=run_id)`` now (§14). None when the run is gone."""
    run = EnrichmentRun.objects.filter(pk=run_id).first()
    if run is None:
        logger.info("refresh_lead: run %s no longer exists", run_id)
        return None
    return _execute(run, success_notice=False, request_path=True)


@shared_task(name="leads.tasks.resume_run", acks_late=True, reject_on_worker_lost=True)
def resume_run(run_id: int) -> dict[str, Any] | None:
    """Continue a run stopped by a provider outage (status QUEUED, scheduled by ``stop_run``):
    its job's unfinished chunks are claimable again and sent to the workers."""
    from hokan.core.tasks import dispatch_job

    run = EnrichmentRun.objects.select_related("job").filter(pk=run_id).first()
    if run is None or run.job is None:
        return None
    if not EnrichmentRun.objects.filter(pk=run.pk, status=EnrichmentRun.Status.QUEUED).update(
            status=EnrichmentRun.Status.RUNNING):
        return {"run_id": str(run.public_id), "status": run.status, "skipped": True}
    jobs.resume_job(run.job)
    logger.info("run %s resumed (attempt %d)", run.public_id, run.attempts)
    return _summary(run, chunks_sent=dispatch_job(run.job))
