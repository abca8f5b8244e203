"""Chunk handlers for the job tests, imported by the test process and by Celery workers
(``celery worker --include tests.core.job_handlers``).

``test.rows``: each row of a chunk becomes an ``auth.Group`` named ``{job}:{row}`` — a real
table written in the transaction that marks the chunk done, and unique, so a row stored twice
would fail. Behaviour from ``job.params``:

- ``log``: a file; every attempt appends ``start <chunk_id> <pid> <retry_count>``.
- ``fail_first``: chunk ids whose first attempt raises RuntimeError.
- ``block_first``: chunk ids whose first attempt waits forever (its worker gets killed).
- ``meet``: wait (at most 20 s) until this many different processes have started a chunk, so
  one worker cannot take every chunk alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hokan.core.jobs import ChunkResult, register_chunk_handler


def _started_pids(log: Path) -> set[str]:
    if not log.exists():
        return set()
    return {line.split()[2] for line in log.read_text().splitlines() if line.startswith("start ")}


@register_chunk_handler("test.rows")
def rows_handler(job, chunk):
    from django.contrib.auth.models import Group

    params = job.params
    log = Path(params["log"]) if params.get("log") else None
    if log is not None:
        with log.open("a") as f:
            f.write(f"start {chunk.chunk_id} {os.getpid()} {chunk.retry_count}\n")
    first = chunk.retry_count == 0
    if first and chunk.chunk_id in params.get("block_first", []):
        while True:
            time.sleep(0.1)
    if first and chunk.chunk_id in params.get("fail_first", []):
        raise RuntimeError(f"chunk {chunk.chunk_id}: provider answered 500")
    if params.get("meet") and log is not None:
        deadline = time.monotonic() + 20
        while len(_started_pids(log)) < params["meet"] and time.monotonic() < deadline:
            time.sleep(0.05)
    rows = range(chunk.row_start, chunk.row_end)

    def save():
        Group.objects.bulk_create([Group(name=f"{job.public_id}:{row}") for row in rows])

    return ChunkResult(summary={"rows": len(rows), "row_sum": sum(rows), "cost_usd": "0.001"}, save=save)
