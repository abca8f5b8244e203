"""Jobs split into chunks, claimed atomically by any number of workers, resumable (issue 7 §6,
design document 002 §5). docs/jobs.md shows the whole flow.

A ``Job`` (kind, scope, params, status) owns ``JobChunk`` rows: rows ``[row_start, row_end)``
of a sheet, or ``item_keys`` (lead ids ...), ``chunk_row_limit`` per chunk. Workers — threads,
processes, Celery workers on several machines, all on one database — take chunks with
``claim_next_chunk``; nothing else coordinates them.

Lifecycle of a chunk::

    pending ──claim──► running ──complete_chunk (results stored in the same transaction)──► done
                                                          (last_error of a retried chunk is kept)
       ▲                  │
       │                  ├─ fail_chunk, retries left ──► pending, claimable after min(60, 2**retry) s
       │                  ├─ fail_chunk, no retry left ──► failed (last_error kept)
       │                  └─ release_chunk (interrupted, shutting down) ──► pending, no retry counted
       └── lease expired: no heartbeat for HOKAN_JOB_LEASE_S (the worker was killed) → the next
           claim takes it, counted as a retry (a chunk that kills its worker every time ends failed)

Guarantees:

- Two workers never hold the same chunk: a claim is one conditional UPDATE (``WHERE status =
  'pending'``, or ``'running' AND heartbeat_at < now - lease``), atomic on SQLite and
  PostgreSQL; the claimer owns the chunk only if its UPDATE changed the row.
- Every claim increments ``claim_count``, the claim's token. heartbeat / complete / fail /
  release are conditional on it, so a worker whose lease expired (paused, partitioned) and
  whose chunk was reclaimed gets ``ChunkLost`` and stores nothing: ``complete_chunk`` marks
  the chunk done and runs the caller's ``save`` in one transaction — a chunk is done only if
  its results are stored, and results are stored only by the chunk's current holder.
- The job's status is derived from its chunks (``refresh_job_status``): completed when every
  chunk is done, failed when every chunk is done or failed and one failed (§5.1 last item),
  interrupted when ``interrupt_job`` stopped it (a fatal error such as a bad API key or the
  budget, or an operator); ``resume_job`` makes it claimable again (failed chunks get a fresh
  retry budget), done chunks are never run again.

Settings: HOKAN_JOB_LEASE_S (120 s), HOKAN_JOB_CHUNK_ROW_LIMIT (500), HOKAN_JOB_CHUNK_RETRY_LIMIT
(3 retries), HOKAN_JOB_RETRY_BACKOFF_MAX_S (60 s), HOKAN_JOB_SWEEP_INTERVAL_S (60 s).

Running chunks: ``run_job(job)`` works through a job in this process (the CLI, tests);
``hokan.core.tasks.dispatch_job(job)`` spreads it over Celery workers (one task per chunk
claim). Both call the handler registered for the job's kind (``register_chunk_handler``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from hokan.core.errors import BudgetExceeded, ChunkLost, LLMConfigError
from hokan.core.models import Job, JobChunk

log = logging.getLogger(__name__)

Status = Job.Status
ChunkStatus = JobChunk.Status
ACTIVE = (Status.PENDING, Status.RUNNING)
# Errors after which no other chunk can succeed either: the job is interrupted at once
# (issue 8 §1: a bad key stops the run, not one doomed request per chunk).
FATAL_ERRORS: tuple[type[BaseException], ...] = (LLMConfigError, BudgetExceeded)


# --- creating ------------------------------------------------------------------------------------
def create_job(
    kind: str,
    *,
    scope: str = "",
    params: Mapping[str, Any] | None = None,
    total_rows: int | None = None,
    item_keys: Iterable[Any] | None = None,
    chunk_row_limit: int | None = None,
    retry_limit: int | None = None,
    key: str | None = None,
) -> Job:
    """Create a job and its chunks in one transaction.

    Give exactly one of ``total_rows`` (rows 0..total_rows-1 become chunks of
    ``chunk_row_limit`` rows: [0, 500), [500, 1000), ...) or ``item_keys`` (JSON values, split
    in order into lists of ``chunk_row_limit``). chunk_row_limit / retry_limit: None =
    HOKAN_JOB_CHUNK_ROW_LIMIT / HOKAN_JOB_CHUNK_RETRY_LIMIT. key: idempotency key — when a job
    with this key exists (also one created concurrently by another process) it is returned
    unchanged. A job with nothing to do is created completed.

    Raises:
        ValueError: neither or both of total_rows and item_keys; a negative row count;
            chunk_row_limit below 1; retry_limit below 0.
    """
    if (total_rows is None) == (item_keys is None):
        raise ValueError("create_job: give exactly one of total_rows and item_keys")
    limit = settings.HOKAN_JOB_CHUNK_ROW_LIMIT if chunk_row_limit is None else chunk_row_limit
    retries = settings.HOKAN_JOB_CHUNK_RETRY_LIMIT if retry_limit is None else retry_limit
    if limit < 1 or retries < 0 or (total_rows is not None and total_rows < 0):
        raise ValueError(f"create_job: bad sizes (rows={total_rows}, chunk_row_limit={limit}, retry_limit={retries})")
    if key is not None and (existing := Job.objects.filter(key=key).first()):
        return existing
    if total_rows is not None:
        spans: list[dict[str, Any]] = [{"row_start": start, "row_end": min(start + limit, total_rows)}
                                       for start in range(0, total_rows, limit)]
        items = total_rows
    else:
        keys = list(item_keys or [])
        spans = [{"item_keys": keys[start:start + limit]} for start in range(0, len(keys), limit)]
        items = len(keys)
    try:
        with transaction.atomic():
            job = Job.objects.create(kind=kind, scope=scope, key=key, params=dict(params or {}),
                                     chunk_row_limit=limit, retry_limit=retries, total_chunks=len(spans),
                                     total_items=items)
            JobChunk.objects.bulk_create([JobChunk(job=job, chunk_id=i, **span) for i, span in enumerate(spans)],
                                         batch_size=500)
    except IntegrityError:
        if key is not None and (existing := Job.objects.filter(key=key).first()):
            return existing
        raise
    if not spans:
        return refresh_job_status(job)
    return job


def get_job(public_id: str | Any) -> Job:
    """The job with this public id (UUID or its string). Raises ``Job.DoesNotExist``."""
    return Job.objects.get(public_id=public_id)


# --- claiming and settling -----------------------------------------------------------------------
def default_worker_id() -> str:
    """``host:pid:thread`` — who holds a chunk, shown in the admin and in last_error."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def _lease(lease_s: float | None) -> dt.timedelta:
    return dt.timedelta(seconds=settings.HOKAN_JOB_LEASE_S if lease_s is None else lease_s)


def _claimable(now: dt.datetime, stale_before: dt.datetime) -> Q:
    pending = Q(status=ChunkStatus.PENDING) & (Q(available_at__isnull=True) | Q(available_at__lte=now))
    return pending | Q(status=ChunkStatus.RUNNING, heartbeat_at__lt=stale_before)


def claimable_chunks(job: Job, *, now: dt.datetime | None = None, lease_s: float | None = None) -> Any:
    """The chunks of ``job`` a claim could take at ``now`` (a QuerySet): pending past their
    backoff, or running with an expired lease."""
    now = now or timezone.now()
    return JobChunk.objects.filter(Q(job_id=job.pk) & _claimable(now, now - _lease(lease_s)))


def claim_next_chunk(
    job: Job, *, worker: str | None = None, lease_s: float | None = None, now: dt.datetime | None = None
) -> JobChunk | None:
    """Take the lowest-numbered claimable chunk of ``job`` for ``worker``, or None.

    Claimable: pending (and past its backoff), or running with a heartbeat older than the
    lease (lease_s, default HOKAN_JOB_LEASE_S seconds) — its worker is presumed dead; such a
    reclaim counts as a retry and, beyond the job's retry limit, fails the chunk instead.
    Returns None when the job is not pending/running (completed, failed, interrupted) or no
    chunk is claimable now. now: the current time (tests pass a later one instead of waiting).

    The returned chunk is held by this claim (``claim_count`` is its token) until it is
    completed, failed or released, or its lease expires without a ``heartbeat``.
    """
    worker = worker or default_worker_id()
    now = now or timezone.now()
    lease = _lease(lease_s)
    stale_before = now - lease
    while Job.objects.filter(pk=job.pk, status__in=ACTIVE).exists():
        candidates = list(JobChunk.objects.filter(Q(job_id=job.pk) & _claimable(now, stale_before))
                          .order_by("chunk_id").values_list("pk", "status", "claimed_by", "retry_count")[:10])
        if not candidates:
            return None
        for pk, status, previous, retries in candidates:
            held = {"status": ChunkStatus.RUNNING, "claimed_by": worker[:200], "claimed_at": now, "heartbeat_at": now,
                    "claim_count": F("claim_count") + 1, "finished_at": None}
            if status == ChunkStatus.PENDING:
                won = (JobChunk.objects.filter(pk=pk, status=ChunkStatus.PENDING)
                       .filter(Q(available_at__isnull=True) | Q(available_at__lte=now)).update(**held))
            else:
                lost = (f"作業者 {previous} から {int(lease.total_seconds())} 秒以上応答がありません"
                        "（強制終了された可能性）")
                stale = JobChunk.objects.filter(pk=pk, status=ChunkStatus.RUNNING, heartbeat_at__lt=stale_before,
                                                retry_count=retries)
                if retries >= job.retry_limit:
                    if stale.update(status=ChunkStatus.FAILED, last_error=f"{lost}。再試行の上限に達しました",
                                    finished_at=now, claimed_by=""):
                        refresh_job_status(job)
                    continue
                won = stale.update(**held, retry_count=F("retry_count") + 1, last_error=lost)
            if won:
                Job.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
                Job.objects.filter(pk=job.pk, status=Status.PENDING).update(status=Status.RUNNING)
                return JobChunk.objects.select_related("job").get(pk=pk)
        # every candidate was taken by someone else in the meantime: look again
    return None


def _held(chunk: JobChunk) -> Any:
    return JobChunk.objects.filter(pk=chunk.pk, status=ChunkStatus.RUNNING, claim_count=chunk.claim_count)


def _lost(chunk: JobChunk, action: str) -> ChunkLost:
    job_id = str(Job.objects.filter(pk=chunk.job_id).values_list("public_id", flat=True).first())
    return ChunkLost(f"チャンク {chunk.chunk_id} はこの作業者の担当ではなくなりました（{action}できません）",
                     job_id=job_id, chunk_id=chunk.chunk_id, reason="reclaimed")


def heartbeat(chunk: JobChunk, *, now: dt.datetime | None = None) -> None:
    """Extend the lease of a held chunk (call at least every lease / 3 seconds while working;
    ``keep_alive`` does it from a thread).

    Raises:
        ChunkLost: reason "reclaimed" — the chunk is no longer this claim's (stop, store
            nothing); reason "interrupted" — the job was interrupted (``release_chunk`` it and stop).
    """
    if not _held(chunk).update(heartbeat_at=now or timezone.now()):
        raise _lost(chunk, "ハートビート")
    status, public_id = Job.objects.filter(pk=chunk.job_id).values_list("status", "public_id").get()
    if status == Status.INTERRUPTED:
        raise ChunkLost(f"ジョブ {public_id} は中断されました", job_id=str(public_id), chunk_id=chunk.chunk_id,
                        reason="interrupted")


def complete_chunk(
    chunk: JobChunk,
    *,
    result: Mapping[str, Any] | None = None,
    save: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> JobChunk:
    """Mark a held chunk done and store its results, atomically.

    result: a JSON summary kept on the chunk (numbers are summed into ``Job.totals``).
    save: writes the chunk's results; it runs inside the same transaction, after the chunk's
        row is locked, so either both the results and "done" are stored or neither.

    Raises:
        ChunkLost: the chunk was reclaimed by another worker (nothing stored).
        Whatever ``save`` raises (nothing stored; the chunk is still held: fail or release it).
    """
    now = now or timezone.now()
    with transaction.atomic():
        if not _held(chunk).update(status=ChunkStatus.DONE, result=dict(result or {}), finished_at=now,
                                   heartbeat_at=now, available_at=None):
            raise _lost(chunk, "完了")
        if save is not None:
            save()
    refresh_job_status(chunk.job)
    chunk.refresh_from_db()
    return chunk


def backoff_s(retry: int) -> int:
    """Seconds before the ``retry``-th retry of a chunk: min(HOKAN_JOB_RETRY_BACKOFF_MAX_S, 2**retry)
    (document 002 §5.1: min(60, 2^retry))."""
    return min(settings.HOKAN_JOB_RETRY_BACKOFF_MAX_S, 2 ** min(retry, 30))


def describe_error(error: BaseException | str) -> str:
    """The text kept in ``last_error``: "TypeName: message" (at most 2,000 characters)."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:2000]


def fail_chunk(chunk: JobChunk, error: BaseException | str, *, now: dt.datetime | None = None) -> JobChunk:
    """Record a failed attempt of a held chunk: back to pending after ``backoff_s`` while
    retries are left (``retry_count`` < the job's retry limit), else failed.

    Returns the chunk (status pending or failed, retry_count and last_error updated).

    Raises:
        ChunkLost: the chunk was reclaimed meanwhile (its new holder decides).
    """
    now = now or timezone.now()
    limit = Job.objects.filter(pk=chunk.job_id).values_list("retry_limit", flat=True).get()
    message = describe_error(error)
    held = _held(chunk).filter(retry_count=chunk.retry_count)
    if chunk.retry_count < limit:
        retry = chunk.retry_count + 1
        won = held.update(status=ChunkStatus.PENDING, retry_count=retry, last_error=message, claimed_by="",
                          available_at=now + dt.timedelta(seconds=backoff_s(retry)))
    else:
        won = held.update(status=ChunkStatus.FAILED, last_error=message, finished_at=now, claimed_by="")
    if not won:
        raise _lost(chunk, "失敗の記録")
    refresh_job_status(chunk.job)
    chunk.refresh_from_db()
    return chunk


def release_chunk(chunk: JobChunk, *, reason: str = "") -> None:
    """Give a held chunk back (pending at once, no retry counted): the job was interrupted or
    the worker is shutting down. A chunk already lost is left alone."""
    _held(chunk).update(status=ChunkStatus.PENDING, claimed_by="", available_at=None,
                        **({"last_error": describe_error(reason)} if reason else {}))


# --- the job's state -----------------------------------------------------------------------------
def _sum_numbers(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the numeric values of chunk results: ints stay ints; decimal strings ("0.0123", for
    money) are summed exactly and kept as strings; other values are ignored."""
    totals: dict[str, Any] = {}
    for result in results:
        for name, value in result.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                totals[name] = totals.get(name, 0) + value
            elif isinstance(value, str) and name.endswith(("_usd", "_jpy")):
                try:
                    totals[name] = str(Decimal(totals.get(name, "0")) + Decimal(value))
                except InvalidOperation:
                    continue
    return totals


def refresh_job_status(job: Job) -> Job:
    """Derive the job's status and totals from its chunks and store them; returns the job.

    completed: every chunk done (or no chunk). failed: every chunk done or failed, one
    failed (``message`` lists the failed chunks). Otherwise running once a chunk was claimed,
    else pending — an interrupted job stays interrupted until resumed (or until every chunk
    is finished anyway). Safe to call from any number of workers at once: a non-final state
    is only written over a non-final one, so a late writer never undoes "completed".
    """
    counts = {row["status"]: row["n"] for row in
              JobChunk.objects.filter(job_id=job.pk).order_by().values("status").annotate(n=Count("pk"))}
    total = sum(counts.values())
    done, failed = counts.get(ChunkStatus.DONE, 0), counts.get(ChunkStatus.FAILED, 0)
    totals = _sum_numbers(JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.DONE)
                          .values_list("result", flat=True))
    now = timezone.now()
    if done + failed == total:
        if failed:
            errors = list(JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.FAILED).order_by("chunk_id")
                          .values_list("chunk_id", "last_error")[:5])
            listed = "; ".join(f"チャンク {cid}: {err}" for cid, err in errors)
            status, message = Status.FAILED, f"{total} 個中 {failed} 個のチャンクが失敗しました（{listed}）"[:4000]
        else:
            status, message = Status.COMPLETED, ""
        Job.objects.filter(pk=job.pk).exclude(status=status).update(status=status, message=message, totals=totals,
                                                                   finished_at=now)
        Job.objects.filter(pk=job.pk, status=status).update(totals=totals)
    else:
        started = total - counts.get(ChunkStatus.PENDING, 0) > 0 or JobChunk.objects.filter(
            job_id=job.pk, claim_count__gt=0).exists()
        Job.objects.filter(pk=job.pk, status__in=ACTIVE).update(
            status=Status.RUNNING if started else Status.PENDING, totals=totals)
        Job.objects.filter(pk=job.pk, status=Status.INTERRUPTED).update(totals=totals)
    job.refresh_from_db()
    return job


def interrupt_job(job: Job, reason: str) -> Job:
    """Stop handing out chunks of ``job`` (status interrupted, ``message`` = reason). Chunks
    being worked on finish or are released by their workers (their next ``heartbeat`` raises
    ChunkLost "interrupted"); nothing done is undone. No effect on a finished job."""
    Job.objects.filter(pk=job.pk, status__in=ACTIVE).update(status=Status.INTERRUPTED, message=reason[:4000],
                                                            finished_at=timezone.now())
    job.refresh_from_db()
    return job


def resume_job(job: Job) -> Job:
    """Make an interrupted or failed job claimable again: failed chunks become pending with
    their retry count reset (last_error kept); done chunks stay done. Returns the job."""
    with transaction.atomic():
        JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.FAILED).update(
            status=ChunkStatus.PENDING, retry_count=0, available_at=None, finished_at=None)
        Job.objects.filter(pk=job.pk, status__in=(Status.INTERRUPTED, Status.FAILED)).update(
            status=Status.PENDING, message="", finished_at=None)
    return refresh_job_status(job)


@dataclass(frozen=True)
class JobProgress:
    """Where a job stands. Counts are chunks unless named items; fraction = done / total (0.0–1.0)."""

    public_id: str
    status: str
    message: str
    total: int
    pending: int
    running: int
    done: int
    failed: int
    items_total: int
    items_done: int
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def finished(self) -> bool:
        return self.status in (Status.COMPLETED, Status.FAILED)


def progress(job: Job) -> JobProgress:
    """The job's progress from its chunks, read now (one query per figure, no lock)."""
    job.refresh_from_db()
    rows = list(JobChunk.objects.filter(job_id=job.pk).values_list("status", "row_start", "row_end", "item_keys",
                                                                   "result"))
    counts = {s: 0 for s in ChunkStatus.values}
    items_done = 0
    done_results = []
    for status, start, end, keys, result in rows:
        counts[status] += 1
        if status == ChunkStatus.DONE:
            items_done += len(keys) if keys is not None else (end or 0) - (start or 0)
            done_results.append(result or {})
    return JobProgress(public_id=str(job.public_id), status=job.status, message=job.message, total=len(rows),
                       pending=counts[ChunkStatus.PENDING], running=counts[ChunkStatus.RUNNING],
                       done=counts[ChunkStatus.DONE], failed=counts[ChunkStatus.FAILED],
                       items_total=job.total_items, items_done=items_done, totals=_sum_numbers(done_results))


def next_wakeup(job: Job, *, lease_s: float | None = None) -> dt.datetime | None:
    """When a chunk of ``job`` that is not claimable now may become so: the earliest backoff
    end of a pending chunk or lease end of a running one; None when there is none."""
    lease = _lease(lease_s)
    times = [t for t in JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.PENDING,
                                                available_at__isnull=False).values_list("available_at", flat=True)
             if t is not None]
    times += [t + lease for t in JobChunk.objects.filter(job_id=job.pk, status=ChunkStatus.RUNNING)
              .values_list("heartbeat_at", flat=True) if t is not None]
    return min(times) if times else None


# --- keeping a lease -----------------------------------------------------------------------------
class keep_alive:  # noqa: N801  (used as a context manager, like contextlib's)
    """Heartbeat a held chunk from a background thread every ``every_s`` seconds (default a
    third of HOKAN_JOB_LEASE_S) while the ``with`` block runs.

    ``lost`` is the ChunkLost the heartbeat raised (the chunk was reclaimed or the job
    interrupted), else None; after that the thread stops beating. The thread uses its own
    database connection and closes it when it ends.
    """

    def __init__(self, chunk: JobChunk, *, every_s: float | None = None) -> None:
        self.chunk = chunk
        self.every_s = every_s if every_s is not None else settings.HOKAN_JOB_LEASE_S / 3
        self.lost: ChunkLost | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{chunk.pk}", daemon=True)

    def __enter__(self) -> keep_alive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    heartbeat(self.chunk)
                except ChunkLost as exc:
                    self.lost = exc
                    return
                except Exception:  # a database hiccup: the next beat may succeed; the lease is long
                    log.warning("heartbeat of chunk %s failed", self.chunk.pk, exc_info=True)
        finally:
            connection.close()


# --- handlers and running ------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkResult:
    """What a chunk handler returns: ``summary`` (JSON, kept on the chunk, numbers summed into
    the job's totals) and optionally ``save``, which writes the chunk's results inside the
    transaction that marks it done."""

    summary: Mapping[str, Any] = field(default_factory=dict)
    save: Callable[[], None] | None = None


ChunkHandler = Callable[[Job, JobChunk], "ChunkResult | Mapping[str, Any] | None"]


@dataclass(frozen=True)
class _Registered:
    handler: ChunkHandler
    queue: str | None


_HANDLERS: dict[str, _Registered] = {}


def register_chunk_handler(kind: str, handler: ChunkHandler | None = None, *, queue: str | None = None) -> Any:
    """Register the function that works on one chunk of jobs of ``kind``.

    handler(job, chunk) does the chunk's work (rows ``chunk.row_start..row_end`` or
    ``chunk.item_keys``) and returns a ChunkResult, a summary mapping, or None. An exception
    fails the chunk (retried up to the job's limit); one of ``FATAL_ERRORS`` interrupts the
    job. queue: the Celery queue of this kind's chunk tasks (None = the default queue).
    Register at import time of a module every worker imports (the app's tasks.py) — a worker
    without the handler leaves the job's chunks to the others. Usable as a decorator.
    """
    if handler is None:
        return lambda fn: register_chunk_handler(kind, fn, queue=queue)
    _HANDLERS[kind] = _Registered(handler, queue)
    return handler


def chunk_handler(kind: str) -> ChunkHandler:
    """The handler registered for ``kind``. Raises LookupError when there is none."""
    try:
        return _HANDLERS[kind].handler
    except KeyError:
        raise LookupError(f"no chunk handler registered for job kind {kind!r} in this process "
                          f"(register_chunk_handler in the app's tasks.py)") from None


def chunk_queue(kind: str) -> str | None:
    """The Celery queue registered for ``kind`` (None = default)."""
    registered = _HANDLERS.get(kind)
    return registered.queue if registered else None


def run_chunk(job: Job, chunk: JobChunk, handler: ChunkHandler | None = None, *,
              fatal: tuple[type[BaseException], ...] = FATAL_ERRORS) -> JobChunk:
    """Run ``handler`` (default: the registered one) on a held chunk, keeping its lease alive,
    and settle the chunk: done with the handler's results, failed/pending on an exception.

    A ``fatal`` exception interrupts the job (message: the error) and puts the chunk back;
    BaseException (KeyboardInterrupt, SystemExit at shutdown) puts it back and is re-raised.
    A chunk lost meanwhile (reclaimed) is logged and left to its new holder. Returns the
    chunk as stored.
    """
    handler = handler or chunk_handler(job.kind)
    with keep_alive(chunk):
        try:
            outcome = handler(job, chunk)
            if not isinstance(outcome, ChunkResult):
                outcome = ChunkResult(summary=dict(outcome or {}))
            return complete_chunk(chunk, result=outcome.summary, save=outcome.save)
        except ChunkLost as exc:
            if exc.reason == "interrupted":
                release_chunk(chunk, reason=str(exc))
            log.warning("chunk %s of job %s: %s", chunk.chunk_id, job.public_id, exc)
        except fatal as exc:
            release_chunk(chunk)
            interrupt_job(job, describe_error(exc))
            log.error("job %s interrupted by chunk %s: %s", job.public_id, chunk.chunk_id, describe_error(exc))
        except Exception as exc:
            log.warning("chunk %s of job %s failed: %s", chunk.chunk_id, job.public_id, describe_error(exc))
            log.debug("chunk %s of job %s failed", chunk.chunk_id, job.public_id, exc_info=True)
            try:
                fail_chunk(chunk, exc)
            except ChunkLost as lost:
                log.warning("chunk %s of job %s: %s", chunk.chunk_id, job.public_id, lost)
        except BaseException:
            release_chunk(chunk, reason="作業者が停止しました")
            raise
    chunk.refresh_from_db()
    return chunk


def run_job(job: Job, handler: ChunkHandler | None = None, *, worker: str | None = None,
            max_chunks: int | None = None, fatal: tuple[type[BaseException], ...] = FATAL_ERRORS,
            poll_s: float = 1.0, sleep: Callable[[float], None] | None = None) -> JobProgress:
    """Work through ``job`` in this process until no chunk is left to do: claim, run, repeat.

    While the chunks left are held by other workers or wait out a retry backoff, look again
    every ``poll_s`` seconds at most (``sleep``, default ``time.sleep``): this process ends as
    soon as the others finish, and takes a chunk over when its holder's lease expires. Returns
    the progress when the job is finished or interrupted, or after ``max_chunks`` chunks.
    """
    import time

    sleep = sleep or time.sleep
    worker = worker or default_worker_id()
    handler = handler or chunk_handler(job.kind)
    ran = 0
    while max_chunks is None or ran < max_chunks:
        chunk = claim_next_chunk(job, worker=worker)
        if chunk is None:
            job.refresh_from_db()
            wake = next_wakeup(job) if job.status in ACTIVE else None
            if wake is None:
                break
            sleep(min(max(0.05, (wake - timezone.now()).total_seconds()), poll_s))
            continue
        run_chunk(job, chunk, handler, fatal=fatal)
        ran += 1
    return progress(job)
