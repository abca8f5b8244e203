"""Celery tasks of hokan.core: a job's chunks run as tasks on any number of workers.

``dispatch_job(job)`` sends one ``core.run_job_chunk`` task per claimable chunk, after the
current transaction commits, to the queue registered for the job's kind
(``jobs.register_chunk_handler(kind, fn, queue=...)``). Each task makes ONE claim: it takes
the next claimable chunk (whichever it is), runs the kind's handler, settles the chunk, and
ends. So a run spreads over every worker consuming that queue, on any machine sharing the
database and the broker; a task redelivered after a crash just claims what is left.

Keeping a job going:

- a chunk put back for a retry gets its own task, due when its backoff ends;
- a task that ends while another chunk's lease has expired (its worker was killed) sends a
  task for it at once;
- a task that ends while the job still has chunks running elsewhere (or waiting for a
  backoff) arranges one check of the job — a task due when the earliest of those leases or
  backoffs ends — unless a check is arranged already (``Job.swept_at``); a check that finds
  the holder alive arranges the next, so a running job is looked at once per lease;
- ``core.sweep_jobs`` (Celery beat, every HOKAN_JOB_SWEEP_INTERVAL_S seconds) is the safety net
  for lost messages (a broker restart, the delayed check held by a worker that was killed):
  it sends a task for every chunk whose lease expired and, for a job with claimable chunks,
  nothing running and no activity for a lease, one task per claimable chunk.

A killed worker's chunk is therefore taken again about HOKAN_JOB_LEASE_S (120 s) after its
last heartbeat, or at the latest one sweep interval (60 s) later.

Without a broker (no REDIS_URL / CELERY_BROKER_URL), ``dispatch_job`` runs the job in this
process (``jobs.run_job``) and returns when it is finished.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from hokan.core import jobs
from hokan.core.models import Job, JobChunk


def _send(job: Job, count: int, *, countdown: float | None = None) -> None:
    queue = jobs.chunk_queue(job.kind)
    options: dict[str, Any] = {"queue": queue} if queue else {}
    if countdown:
        options["countdown"] = countdown
    for _ in range(count):
        run_job_chunk.apply_async(args=[str(job.public_id)], **options)


def dispatch_job(job: Job) -> int:
    """Start (or continue) ``job`` on the Celery workers: one task per chunk claimable now,
    sent after the current transaction commits. Returns the number of tasks.

    Without a broker the job runs here, to its end (``jobs.run_job``), and 0 is returned.

    Raises:
        LookupError: no chunk handler is registered for the job's kind in this process
            (checked first, so a typo does not send tasks no worker can run).
    """
    from hokan.celery import app, has_broker

    jobs.chunk_handler(job.kind)
    if not has_broker(app):
        jobs.run_job(job)
        return 0
    count = jobs.claimable_chunks(job).count()
    transaction.on_commit(lambda: _send(job, count))
    return count


def run_one_chunk(job_id: str) -> dict[str, Any] | None:
    """The body of ``core.run_job_chunk``: one claim of the job ``job_id`` (public id), run and
    settled; then the follow-ups (the retry's task, tasks for expired leases). Returns a summary
    (``{"job", "chunk", "status"}``, chunk None when nothing was claimable), or None when the
    job does not exist (deleted: the task ends quietly)."""
    job = Job.objects.filter(public_id=job_id).first()
    if job is None:
        return None
    handler = jobs.chunk_handler(job.kind)
    chunk = jobs.claim_next_chunk(job)
    if chunk is None:
        _arrange_check(job)
        return {"job": job_id, "chunk": None, "status": None}
    chunk = jobs.run_chunk(job, chunk, handler)
    job.refresh_from_db()
    if job.status in jobs.ACTIVE:
        if chunk.status == JobChunk.Status.PENDING and chunk.available_at is not None:
            _send(job, 1, countdown=max(0.0, (chunk.available_at - timezone.now()).total_seconds()))
        _send(job, _expired_leases(job))
        _arrange_check(job)
    return {"job": job_id, "chunk": chunk.chunk_id, "status": chunk.status}


def _arrange_check(job: Job) -> None:
    """One delayed task for ``job`` when its next chunk may become claimable (a lease or a
    backoff ending), unless one is arranged already; a check arranged for now or earlier
    (it is running, or was lost) no longer counts."""
    job.refresh_from_db()
    if job.status not in jobs.ACTIVE:
        return
    wake = jobs.next_wakeup(job)
    if wake is None:
        return
    now = timezone.now()
    at = max(wake, now) + dt.timedelta(seconds=1)  # just after the lease ends, not just before
    arranged = Job.objects.filter(pk=job.pk).filter(
        Q(swept_at__isnull=True) | Q(swept_at__lt=now + dt.timedelta(seconds=2))).update(swept_at=at)
    if arranged:
        _send(job, 1, countdown=(at - now).total_seconds())


def _expired_leases(job: Job, now: dt.datetime | None = None) -> int:
    stale_before = (now or timezone.now()) - dt.timedelta(seconds=settings.HOKAN_JOB_LEASE_S)
    return JobChunk.objects.filter(job_id=job.pk, status=JobChunk.Status.RUNNING, heartbeat_at__lt=stale_before).count()


def sweep_jobs(*, now: dt.datetime | None = None) -> int:
    """Send tasks for the chunks of dead workers and for stalled jobs (see the module
    docstring); returns the number of tasks sent. Jobs whose kind has no handler in this
    process are skipped."""
    now = now or timezone.now()
    lease = dt.timedelta(seconds=settings.HOKAN_JOB_LEASE_S)
    sent = 0
    for job in Job.objects.filter(status__in=jobs.ACTIVE):
        try:
            jobs.chunk_handler(job.kind)
        except LookupError:
            continue
        expired = _expired_leases(job, now)
        _send(job, expired)
        sent += expired
        chunks = JobChunk.objects.filter(job_id=job.pk)
        if chunks.filter(status=JobChunk.Status.RUNNING).exists():
            continue
        claimable = jobs.claimable_chunks(job, now=now).count()
        if not claimable:
            continue
        activity = chunks.aggregate(beat=Max("heartbeat_at"), done=Max("finished_at"))
        last = max(t for t in (activity["beat"], activity["done"], job.started_at, job.created_at, job.swept_at) if t)
        if last > now - lease:
            continue
        if Job.objects.filter(pk=job.pk).filter(Q(swept_at__isnull=True) | Q(swept_at__lte=now - lease)).update(
                swept_at=now):
            _send(job, claimable)
            sent += claimable
    return sent


@shared_task(name="core.run_job_chunk", acks_late=True)
def run_job_chunk(job_id: str) -> dict[str, Any] | None:
    """Claim one chunk of job ``job_id`` (public id), run its kind's handler, settle it."""
    return run_one_chunk(job_id)


@shared_task(name="core.sweep_jobs")
def sweep_jobs_task() -> int:
    """Celery beat: tasks for expired leases and stalled jobs."""
    return sweep_jobs()
