"""Scoring jobs on Celery workers: the chunk handler of job kind ``scoring.score``.

``hokan.core.tasks.dispatch_job(sjob.job)`` sends one task per claimable chunk; each worker that
takes one runs ``score_chunk`` through ``core.jobs.run_chunk`` (lease, heartbeat, settling):
the chunk's rows go through the same pipeline as ``hokan scoring run`` (``engine.ScoringRun`` with
``fixed=chunk``: the same questions, idempotency keys, cache and validation), and the chunk is
completed with its summary, or failed — ``CellsNotScored`` naming the rows and reasons, retried
after ``min(60, 2**retry)`` s by core.tasks — or, on a fatal error (budget, API key), the job is
interrupted. Workers import this module through Celery's autodiscovery (``hokan/celery.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hokan.core import jobs
from hokan.core.errors import HokanError
from hokan.core.models import Job, JobChunk

KIND = "scoring.score"


class CellsNotScored(HokanError):
    """Some cells of a chunk could not be scored (the message names rows and reasons); the chunk
    is retried by core.jobs and, after its retry limit, failed with this message."""


@jobs.register_chunk_handler(KIND)
def score_chunk(job: Job, chunk: JobChunk) -> jobs.ChunkResult:
    """Score the rows of ``chunk`` (held by the caller, core.jobs.run_chunk).

    Raises:
        CellsNotScored: a cell could not be scored (the chunk fails, retried with backoff).
        BudgetExceeded, LLMConfigError: fatal (run_chunk interrupts the job).
    """
    from hokan.scoring import service
    from hokan.scoring.engine import ScoringRun
    from hokan.scoring.models import ScoringJob

    sjob = ScoringJob.objects.select_related("job").get(job=job)
    table = service.open_source(sjob).read()
    scorer, counters = service.build_scorer(sjob, table)
    sinks: list[Any] = []
    if sjob.source_kind == "sheet":
        from hokan.scoring.sheets import sheet_sink

        sinks.append(sheet_sink(sjob, table))
    own = service.file_sink(sjob, table)
    if own is not None:
        sinks.append(own)
    rows = service.job_rows(sjob, table)
    counters.rows_total, counters.chunks_total = len(rows), job.total_chunks
    run = ScoringRun(sjob, rows, scorer, sinks, counters=counters, fixed=chunk)
    asyncio.run(run.run())
    if run.fixed_failure:
        raise CellsNotScored(run.fixed_failure)
    return jobs.ChunkResult(summary=run.fixed_summary)
