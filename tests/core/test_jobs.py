"""core.jobs in one process: chunking, claims, leases, retries, derived status, progress, resume.

Time is passed in (``now=``) instead of waited for. Claims by real concurrent processes, kill -9
and PostgreSQL are in test_jobs_processes.py; Celery workers in test_job_tasks.py.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from hokan.core import jobs
from hokan.core.errors import BudgetExceeded, ChunkLost, LLMConfigError
from hokan.core.models import Job, JobChunk

pytestmark = pytest.mark.django_db


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def spans(job: Job) -> list[tuple]:
    return [(c.chunk_id, c.row_start, c.row_end, c.item_keys) for c in job.chunks.order_by("chunk_id")]


def test_it_splits_rows_into_chunks_of_the_row_limit():
    job = jobs.create_job("scoring.run", scope="scoring", total_rows=1500, chunk_row_limit=500)
    assert spans(job) == [(0, 0, 500, None), (1, 500, 1000, None), (2, 1000, 1500, None)]  # document 002 §5.3
    assert (job.total_chunks, job.total_items, job.status) == (3, 1500, "pending")
    odd = jobs.create_job("scoring.run", total_rows=1001, chunk_row_limit=500)
    assert spans(odd)[-1] == (2, 1000, 1001, None)


def test_it_splits_item_keys_in_order_and_uses_the_settings_by_default(settings):
    settings.HOKAN_JOB_CHUNK_ROW_LIMIT = 3
    settings.HOKAN_JOB_CHUNK_RETRY_LIMIT = 5
    job = jobs.create_job("leads.enrich", item_keys=[7, 3, 9, 1, 4, 2, 8])
    assert [c[3] for c in spans(job)] == [[7, 3, 9], [1, 4, 2], [8]]
    assert (job.chunk_row_limit, job.retry_limit, job.total_items) == (3, 5, 7)


def test_a_job_key_makes_creation_idempotent():
    first = jobs.create_job("leads.enrich", item_keys=[1, 2], key="leads.nightly:2026-12-01")
    again = jobs.create_job("leads.enrich", item_keys=[1, 2, 3], key="leads.nightly:2026-12-01")
    assert again.pk == first.pk and JobChunk.objects.count() == 1


def test_a_job_with_nothing_to_do_is_completed_at_once():
    assert jobs.create_job("scoring.run", total_rows=0).status == "completed"


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        jobs.create_job("k")
    with pytest.raises(ValueError):
        jobs.create_job("k", total_rows=5, item_keys=[1])
    with pytest.raises(ValueError):
        jobs.create_job("k", total_rows=5, chunk_row_limit=0)


def test_claims_take_each_chunk_once_in_order():
    job = jobs.create_job("k", total_rows=30, chunk_row_limit=10)
    claims = [jobs.claim_next_chunk(job, worker=f"w{i}") for i in range(4)]
    assert [c.chunk_id for c in claims[:3]] == [0, 1, 2] and claims[3] is None
    assert [(c.claimed_by, c.claim_count, c.status) for c in claims[:3]] == [
        ("w0", 1, "running"), ("w1", 1, "running"), ("w2", 1, "running")]
    job.refresh_from_db()
    assert job.status == "running" and job.started_at is not None


def test_a_chunk_is_done_only_together_with_its_stored_results():
    job = jobs.create_job("k", total_rows=4, chunk_row_limit=2)
    chunk = jobs.claim_next_chunk(job, worker="w")

    def broken_save():
        Group.objects.create(name="row 0")
        raise OSError("disk full")

    with pytest.raises(OSError):
        jobs.complete_chunk(chunk, result={"rows": 2}, save=broken_save)
    assert not Group.objects.exists()
    chunk.refresh_from_db()
    assert chunk.status == "running"  # still held: the caller fails or releases it
    done = jobs.complete_chunk(chunk, result={"rows": 2}, save=lambda: Group.objects.create(name="row 0"))
    assert done.status == "done" and done.result == {"rows": 2} and Group.objects.count() == 1


def test_a_worker_whose_lease_expired_cannot_store_its_results(settings):
    settings.HOKAN_JOB_LEASE_S = 120
    job = jobs.create_job("k", total_rows=2, chunk_row_limit=2)
    slow = jobs.claim_next_chunk(job, worker="slow")
    assert jobs.claim_next_chunk(job, worker="other", now=later(119)) is None  # lease still running
    taken = jobs.claim_next_chunk(job, worker="other", now=later(121))
    assert taken.pk == slow.pk and taken.claim_count == 2 and taken.retry_count == 1
    assert "slow" in taken.last_error and "120" in taken.last_error
    with pytest.raises(ChunkLost) as lost:
        jobs.complete_chunk(slow, result={"rows": 2}, save=lambda: Group.objects.create(name="twice"))
    assert lost.value.reason == "reclaimed" and lost.value.chunk_id == 0
    with pytest.raises(ChunkLost):
        jobs.heartbeat(slow)
    with pytest.raises(ChunkLost):
        jobs.fail_chunk(slow, "late")
    assert not Group.objects.exists()
    jobs.complete_chunk(taken, result={"rows": 2})
    assert Job.objects.get(pk=job.pk).status == "completed"


def test_a_heartbeat_keeps_the_lease(settings):
    settings.HOKAN_JOB_LEASE_S = 120
    job = jobs.create_job("k", total_rows=1, chunk_row_limit=1)
    chunk = jobs.claim_next_chunk(job, worker="w")
    jobs.heartbeat(chunk, now=later(100))
    assert jobs.claim_next_chunk(job, worker="x", now=later(200)) is None
    assert jobs.claim_next_chunk(job, worker="x", now=later(221)) is not None


def test_failed_chunks_are_retried_with_backoff_then_failed_and_the_job_fails_only_when_all_chunks_end(settings):
    settings.HOKAN_JOB_RETRY_BACKOFF_MAX_S = 60
    job = jobs.create_job("k", total_rows=20, chunk_row_limit=10, retry_limit=2)
    first = jobs.claim_next_chunk(job, worker="w")
    failed = jobs.fail_chunk(first, RuntimeError("HTTP 500"))
    assert (failed.status, failed.retry_count, failed.last_error) == ("pending", 1, "RuntimeError: HTTP 500")
    assert failed.available_at - timezone.now() > dt.timedelta(seconds=1.5)  # min(60, 2**1) = 2 s
    other = jobs.claim_next_chunk(job, worker="w")
    assert other.chunk_id == 1  # chunk 0 waits for its backoff
    assert jobs.claim_next_chunk(job, worker="w") is None
    again = jobs.claim_next_chunk(job, worker="w", now=later(3))
    assert again.chunk_id == 0
    again = jobs.fail_chunk(again, "timeout")
    assert again.retry_count == 2 and again.available_at - timezone.now() > dt.timedelta(seconds=3.5)  # 4 s
    last = jobs.claim_next_chunk(job, worker="w", now=later(5))
    assert jobs.fail_chunk(last, "timeout again").status == "failed"
    assert Job.objects.get(pk=job.pk).status == "running"  # chunk 1 is still running
    jobs.complete_chunk(other, result={"rows": 10})
    job.refresh_from_db()
    assert job.status == "failed" and "チャンク 0" in job.message and "timeout again" in job.message
    assert job.finished_at is not None


def test_the_backoff_is_min_of_the_setting_and_two_to_the_retry(settings):
    settings.HOKAN_JOB_RETRY_BACKOFF_MAX_S = 60
    assert [jobs.backoff_s(r) for r in (1, 2, 5, 6, 40)] == [2, 4, 32, 60, 60]


def test_a_chunk_that_keeps_losing_its_worker_ends_failed(settings):
    settings.HOKAN_JOB_LEASE_S = 10
    job = jobs.create_job("k", total_rows=1, chunk_row_limit=1, retry_limit=1)
    jobs.claim_next_chunk(job, worker="a")
    assert jobs.claim_next_chunk(job, worker="b", now=later(11)).retry_count == 1
    assert jobs.claim_next_chunk(job, worker="c", now=later(30)) is None
    chunk = JobChunk.objects.get()
    assert chunk.status == "failed" and "上限" in chunk.last_error
    assert Job.objects.get(pk=job.pk).status == "failed"


def test_progress_and_totals_add_up_the_done_chunks():
    job = jobs.create_job("k", total_rows=25, chunk_row_limit=10)
    for cost in ("0.0123", "0.0200"):
        chunk = jobs.claim_next_chunk(job, worker="w")
        jobs.complete_chunk(chunk, result={"rows": chunk.item_count, "calls": 3, "cost_usd": cost, "note": "x"})
    state = jobs.progress(job)
    assert (state.total, state.done, state.pending, state.items_done, state.items_total) == (3, 2, 1, 20, 25)
    assert state.totals == {"rows": 20, "calls": 6, "cost_usd": "0.0323"} and state.fraction == pytest.approx(2 / 3)
    assert not state.finished
    jobs.complete_chunk(jobs.claim_next_chunk(job, worker="w"), result={"rows": 5, "calls": 1, "cost_usd": "0.001"})
    state = jobs.progress(job)
    assert state.finished and state.status == "completed" and state.totals["cost_usd"] == "0.0333"
    assert Job.objects.get(pk=job.pk).totals == state.totals


def test_an_interrupted_job_hands_out_nothing_until_resumed_and_done_chunks_are_never_redone(settings):
    job = jobs.create_job("k", total_rows=30, chunk_row_limit=10, retry_limit=0)
    jobs.complete_chunk(jobs.claim_next_chunk(job, worker="w"), result={"rows": 10})
    held = jobs.claim_next_chunk(job, worker="w")
    jobs.fail_chunk(held, "bad row")  # retry_limit 0: failed at once
    running = jobs.claim_next_chunk(job, worker="w")
    jobs.interrupt_job(job, "キャンセルされました")
    assert jobs.claim_next_chunk(job, worker="w") is None
    with pytest.raises(ChunkLost) as lost:
        jobs.heartbeat(running)
    assert lost.value.reason == "interrupted"
    jobs.release_chunk(running)
    assert Job.objects.get(pk=job.pk).status == "interrupted"
    job = jobs.resume_job(job)
    assert job.status == "running" and job.message == ""
    again = [jobs.claim_next_chunk(job, worker="w") for _ in range(3)]
    assert [c.chunk_id if c else None for c in again] == [1, 2, None]  # chunk 0 is done
    assert again[0].retry_count == 0  # a fresh retry budget after resume
    for chunk in again[:2]:
        jobs.complete_chunk(chunk, result={"rows": 10})
    assert jobs.progress(job).status == "completed"


def test_next_wakeup_is_the_earliest_backoff_or_lease_end(settings):
    settings.HOKAN_JOB_LEASE_S = 100
    settings.HOKAN_JOB_RETRY_BACKOFF_MAX_S = 60
    job = jobs.create_job("k", total_rows=2, chunk_row_limit=1)
    held = jobs.claim_next_chunk(job, worker="w")
    jobs.fail_chunk(jobs.claim_next_chunk(job, worker="w"), "x")  # back in 2 s
    wake = jobs.next_wakeup(job)
    assert later(1) < wake < later(3)
    jobs.complete_chunk(jobs.claim_next_chunk(job, worker="w", now=later(3)), result={})
    assert later(90) < jobs.next_wakeup(job) <= held.heartbeat_at + dt.timedelta(seconds=100)


# --- running chunks with a handler ----------------------------------------------------------------
def test_run_job_runs_every_chunk_retries_a_failure_and_completes(settings):
    settings.HOKAN_JOB_RETRY_BACKOFF_MAX_S = 0
    job = jobs.create_job("test.inline", total_rows=50, chunk_row_limit=10, params={"fail": 2})
    seen = []

    def handler(job, chunk):
        seen.append((chunk.chunk_id, chunk.retry_count))
        if chunk.chunk_id == job.params["fail"] and chunk.retry_count == 0:
            raise RuntimeError("HTTP 503")
        rows = range(chunk.row_start, chunk.row_end)
        return jobs.ChunkResult({"rows": len(rows)},
                                save=lambda: Group.objects.bulk_create([Group(name=f"r{r}") for r in rows]))

    state = jobs.run_job(job, handler, worker="cli")
    assert state.status == "completed" and state.totals == {"rows": 50}
    assert sorted(seen) == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 0), (4, 0)]
    assert Group.objects.count() == 50
    assert JobChunk.objects.get(chunk_id=2).last_error == "RuntimeError: HTTP 503"


def test_run_job_waits_for_chunks_held_elsewhere_polling_and_ends_when_they_finish(settings):
    settings.HOKAN_JOB_LEASE_S = 120
    job = jobs.create_job("k", total_rows=2, chunk_row_limit=1)
    elsewhere = jobs.claim_next_chunk(job, worker="other-machine")
    sleeps = []

    def sleep(seconds):  # the other worker finishes while this one waits
        sleeps.append(seconds)
        if len(sleeps) == 2:
            jobs.complete_chunk(elsewhere, result={"rows": 1})

    state = jobs.run_job(job, lambda job, chunk: {"rows": 1}, poll_s=2.0, sleep=sleep)
    assert state.status == "completed" and state.totals == {"rows": 2}
    assert sleeps == [2.0, 2.0]  # polled, instead of sleeping until the other lease ends (120 s)


@pytest.mark.parametrize("error", [LLMConfigError("401 invalid key", provider="openai"),
                                   BudgetExceeded("月額上限", scope="monthly_cost", limit=150, spent=150)])
def test_a_fatal_error_interrupts_the_job_at_once_and_gives_the_chunk_back(error):
    job = jobs.create_job("k", total_rows=30, chunk_row_limit=10)
    calls = []

    def handler(job, chunk):
        calls.append(chunk.chunk_id)
        raise error

    state = jobs.run_job(job, handler)
    assert calls == [0]  # not one doomed call per chunk
    assert state.status == "interrupted" and str(error) in state.message and type(error).__name__ in state.message
    assert state.pending == 3 and JobChunk.objects.get(chunk_id=0).retry_count == 0


def test_the_handler_registry():
    @jobs.register_chunk_handler("test.registered", queue="q1")
    def handler(job, chunk):
        return {"rows": chunk.item_count}

    assert jobs.chunk_handler("test.registered") is handler and jobs.chunk_queue("test.registered") == "q1"
    with pytest.raises(LookupError, match="test.unknown"):
        jobs.chunk_handler("test.unknown")
    job = jobs.create_job("test.registered", item_keys=["a", "b"], chunk_row_limit=1)
    assert jobs.run_job(job).totals == {"rows": 2}


@pytest.mark.django_db(transaction=True)
def test_keep_alive_beats_from_a_thread_and_notices_a_lost_chunk(settings):
    job = jobs.create_job("k", total_rows=1, chunk_row_limit=1)
    chunk = jobs.claim_next_chunk(job, worker="w")
    first_beat = chunk.heartbeat_at
    beaten = threading.Event()
    with jobs.keep_alive(chunk, every_s=0.02) as lease:
        while not beaten.wait(0.02):
            beaten.set() if JobChunk.objects.get(pk=chunk.pk).heartbeat_at > first_beat else None
        jobs.interrupt_job(job, "止めました")
        while lease.lost is None and lease._thread.is_alive():
            lease._thread.join(0.05)
    assert lease.lost is not None and lease.lost.reason == "interrupted"
