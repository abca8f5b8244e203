"""Subprocess commands of the multi-process job and cache tests (DATABASE_URL etc. from the env).

Usage: python -m tests.core.jobs_worker COMMAND ARGS...

- ``create ROWS LIMIT [PARAMS_JSON]``: a ``test.rows`` job; prints its public id.
- ``claim-all JOB GO_FILE``: waits for GO_FILE, then claims and completes chunks (each
  completion stores a Group row per chunk) until none is left; prints {"pid", "claimed"}.
- ``hold JOB READY_FILE``: claims one chunk, keeps its lease alive from a thread, writes the
  chunk id to READY_FILE and waits to be killed.
- ``claim JOB LATER_S...``: one claim per LATER_S, as if that many seconds had passed; prints
  the chunks claimed (null where none was).
- ``cache-race GO_FILE KEYS MAX``: waits for GO_FILE, then stores and reads KEYS keys in a
  database cache holding at most MAX; prints {"pid", "hits"}.
- ``cache-count``: prints {"rows", "keys"} of the "race" scope (rows == keys: no duplicate).
- ``dispatch JOB``: ``core.tasks.dispatch_job``; prints the number of tasks sent.
- ``state JOB``: prints the job's progress, its chunks and the number of stored rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.005)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from hokan.core import jobs
    from tests.core import job_handlers  # noqa: F401  (registers test.rows)

    command, *args = sys.argv[1:]
    if command == "create":
        params = json.loads(args[2]) if len(args) > 2 else {}
        job = jobs.create_job("test.rows", scope="test", total_rows=int(args[0]), chunk_row_limit=int(args[1]),
                              params=params)
        print(job.public_id)
    elif command == "claim-all":
        job = jobs.get_job(args[0])
        _wait_for(args[1])
        claimed = []
        worker = f"w{os.getpid()}"
        while (chunk := jobs.claim_next_chunk(job, worker=worker)) is not None:
            claimed.append(chunk.chunk_id)
            name = f"{job.public_id}:{chunk.chunk_id}"
            jobs.complete_chunk(chunk, result={"rows": chunk.item_count},
                                save=lambda name=name: Group.objects.create(name=name))
        print(json.dumps({"pid": os.getpid(), "claimed": claimed}))
    elif command == "hold":
        job = jobs.get_job(args[0])
        chunk = jobs.claim_next_chunk(job, worker=f"holder-{os.getpid()}")
        with jobs.keep_alive(chunk, every_s=0.2):
            Path(args[1]).write_text(str(chunk.chunk_id))
            while True:
                time.sleep(1)
    elif command == "claim":
        job = jobs.get_job(args[0])
        claims = []
        for later_s in args[1:]:
            chunk = jobs.claim_next_chunk(job, worker="reclaimer",
                                          now=timezone.now() + dt.timedelta(seconds=float(later_s)))
            claims.append(None if chunk is None else {"chunk_id": chunk.chunk_id, "retry_count": chunk.retry_count,
                                                      "last_error": chunk.last_error,
                                                      "claimed_by": chunk.claimed_by, "claim_count": chunk.claim_count})
        print(json.dumps(claims, ensure_ascii=False))
    elif command == "cache-race":
        from hokan.core.cache import DatabaseCache
        from hokan.core.llm.client import Completion, Usage

        cache = DatabaseCache(ttl_s=600, max_entries=int(args[2]))
        _wait_for(args[0])
        hits = 0
        for i in range(int(args[1])):
            key = f"{i:064d}"
            if cache.lookup("race", key) is not None:
                hits += 1
            cache.put("race", key, Completion(data={"i": i}, usage=Usage(calls=1), provider="p", model="m"))
        print(json.dumps({"pid": os.getpid(), "hits": hits}))
    elif command == "cache-count":
        from hokan.core.models import LLMCacheEntry

        rows = LLMCacheEntry.objects.filter(scope="race")
        print(json.dumps({"rows": rows.count(), "keys": rows.values("key").distinct().count()}))
    elif command == "dispatch":
        from hokan.core.tasks import dispatch_job

        print(dispatch_job(jobs.get_job(args[0])))
    elif command == "state":
        job = jobs.get_job(args[0])
        state = jobs.progress(job)
        chunks = list(job.chunks.order_by("chunk_id").values("chunk_id", "status", "retry_count", "last_error",
                                                              "claimed_by", "claim_count"))
        print(json.dumps({"status": state.status, "message": state.message, "done": state.done,
                          "total": state.total, "totals": state.totals, "chunks": chunks,
                          "stored": Group.objects.filter(name__startswith=f"{job.public_id}:").count()},
                         ensure_ascii=False))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
