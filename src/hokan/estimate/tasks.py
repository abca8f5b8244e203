"""The estimate's after-response work (design document 004 §9) as durable jobs, and its Celery tasks.

Every completed estimate gets one ``core.jobs`` job of kind ``estimate.followups`` (key
``estimate.followups:<estimate id>``, one chunk holding the estimate id), created in the same
transaction that completes the estimate — so the work is never lost, whatever happens to the
process afterwards. Who runs it (``schedule_followups``), after the transaction commits:

==========================  =================================================================
with a broker (REDIS_URL /  ``core.run_job_chunk`` Celery tasks on the default queue
CELERY_BROKER_URL)          ``celery`` (``hokan worker``); retries and dead workers: core.tasks
``ESTIMATE_FOLLOWUPS``
``process`` (default)       a drainer process on this host (``hokan.estimate.drainer``),
                            started on demand by the web worker, one per HOKAN_DATA_DIR (a
                            file lock), at low CPU priority; while estimates keep completing
                            it waits up to ESTIMATE_FOLLOWUPS_MAX_DELAY_S (60 s) before a
                            follow-up; it exits when nothing is left to do
``thread``                  a daemon thread of the web worker (it shares the worker's CPU and
                            GIL: generate is then several times slower under load)
``sync``                    in the request itself, before the response (tests)
``off``                     nothing is queued
==========================  =================================================================

The chunk handler (``followup_jobs.run_followups_chunk``) runs ``followups.run_followups``, which skips the
parts already done; a Notion page or mail that failed makes the chunk fail, so it is tried
again after the backoff of core.jobs (at most HOKAN_JOB_CHUNK_RETRY_LIMIT times) — the parts
that succeeded are not repeated. A worker killed mid-way leaves its chunk to be taken again
after HOKAN_JOB_LEASE_S. Pending follow-ups are also run by ``hokan estimate followups``
(for cron, or after a restart without a broker).

``estimate.cleanup_expired`` (§12, DATA_TTL_DAYS) is in the Beat schedule of
``hokan/celery.py`` (daily 04:30); without Beat run ``hokan estimate cleanup`` from cron.

``followups`` (and with it reportlab, for the PDF) is imported only when a follow-up runs,
so that ``generate`` can import this module without loading the PDF stack.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction

from hokan.core import jobs
from hokan.core.models import Job
from hokan.estimate.followup_jobs import FOLLOWUPS_KIND, followups_job_key, run_once

log = logging.getLogger(__name__)

MODES = ("process", "thread", "sync", "off")


@shared_task(name="estimate.run_followups", acks_late=True)
def run_followups_task(estimate_id: str) -> None:
    """Kept for messages queued before the follow-ups became jobs: runs §9.1 directly."""
    from hokan.estimate.followups import run_followups

    run_followups(estimate_id)


@shared_task(name="estimate.cleanup_expired")
def cleanup_expired_task() -> None:
    from hokan.estimate.cleanup import delete_expired

    sessions, estimates = delete_expired()
    log.info("estimate cleanup: %d sessions, %d estimates deleted", sessions, estimates)


def _run_in_thread(job: Job) -> None:
    try:
        run_once(job)
    finally:
        close_old_connections()  # the thread's own connection


def followups_mode() -> str:
    """``ESTIMATE_FOLLOWUPS`` (lower case); an unknown value is logged and means "process"."""
    mode = str(settings.ESTIMATE_FOLLOWUPS or "process").strip().lower()
    if mode not in MODES:
        log.error("ESTIMATE_FOLLOWUPS=%r is not one of %s; using 'process'", mode, ", ".join(MODES))
        return "process"
    return mode


def schedule_followups(estimate_id: Any) -> Job | None:
    """Create the follow-up job of a completed estimate (call inside the transaction that
    completes it) and arrange who runs it after the commit (see the module docstring).
    Idempotent per estimate (the job key). Returns the job, or None with ESTIMATE_FOLLOWUPS=off."""
    mode = followups_mode()
    if mode == "off":
        return None
    key = str(estimate_id)
    job = jobs.create_job(FOLLOWUPS_KIND, scope="estimate", item_keys=[key], chunk_row_limit=1,
                          key=followups_job_key(key))
    from hokan.celery import app as celery_app
    from hokan.celery import has_broker

    if has_broker(celery_app):
        from hokan.core.tasks import dispatch_job

        dispatch_job(job)  # core.run_job_chunk after the commit
    elif mode == "sync":
        transaction.on_commit(lambda: run_once(job))
    elif mode == "thread":
        transaction.on_commit(lambda: threading.Thread(target=_run_in_thread, args=(job,), daemon=True,
                                                       name=f"estimate-followups-{key[:8]}").start())
    else:
        from hokan.estimate import drainer

        transaction.on_commit(drainer.ensure_running)
    return job
