"""The follow-up drainer: runs the estimate's pending follow-up jobs in a process of its own
(``ESTIMATE_FOLLOWUPS=process``, the default without a broker).

Why a process: PDF rendering, mail and Notion take more CPU than the request that completes
an estimate; run in a thread of the web worker they shared its CPU time and GIL and made
``generate`` several times slower under load (issue 9 §4, docs/perf/estimate_followups.md).
The drainer runs beside the web workers at a lower CPU priority (nice +``NICE``) and, while
estimates keep completing on this host (the web workers touch the lock file after each one;
touched less than ``QUIET_S`` ago = busy), it leaves the follow-ups of the last
``ESTIMATE_FOLLOWUPS_MAX_DELAY_S`` (60 s) for later: a burst of requests gets the CPU, its mails
go out as soon as it is over, and under sustained load every mail still leaves at most that
late. Nothing is lost meanwhile — the work is stored as ``core.jobs`` jobs
(``tasks.schedule_followups``).

Lifecycle, with no process manager to configure:

- ``ensure_running()`` (called by the web worker after an estimate's transaction commits)
  starts ``python -m hokan.estimate.drainer --lock <file>`` detached (its own session, so a
  restart of the web server does not interrupt a mail) unless a drainer holds the lock file
  ``HOKAN_DATA_DIR/estimate-followups.lock`` (``fcntl.flock``: one drainer per data folder,
  i.e. per host; the lock dies with its process; the file holds the drainer's PID,
  ``running_pid``). A worker starts at most one drainer per ``SPAWN_EVERY_S``.
- ``drain()`` claims chunks of unfinished follow-up jobs one after another (any number of
  drainers, Celery workers and ``hokan estimate followups`` may claim at once: core.jobs),
  waits ``POLL_S`` while jobs are held elsewhere or wait out a retry, and ends when no
  follow-up job has been unfinished for ``IDLE_EXIT_S``. A drainer killed mid-way leaves its
  chunk to the next one after the lease (HOKAN_JOB_LEASE_S).

Errors of the drainer (a database outage) are logged and retried after ``POLL_S``; they never
reach a request.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOCK_NAME = "estimate-followups.lock"
QUIET_S = 2.0  # no estimate completed on this host for this long: the web is quiet
IDLE_EXIT_S = 30.0  # the drainer ends after this long with no unfinished follow-up job
POLL_S = 0.5
NICE = 10  # CPU priority below the web workers'
SPAWN_EVERY_S = 5.0  # a web worker starts at most one drainer this often

_spawn_lock = threading.Lock()
_last_spawn = -SPAWN_EVERY_S
_spawned: subprocess.Popen[bytes] | None = None


def lock_path() -> Path:
    """``HOKAN_DATA_DIR/estimate-followups.lock``."""
    from django.conf import settings

    return Path(settings.HOKAN_DATA_DIR) / LOCK_NAME


def _try_lock(path: Path) -> IO[bytes] | None:
    """The open lock file, locked by this process, or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def is_running(path: Path | None = None) -> bool:
    """Whether a drainer holds the lock file (on this host)."""
    handle = _try_lock(path or lock_path())
    if handle is None:
        return True
    handle.close()  # closing releases the lock
    return False


def running_pid(path: Path | None = None) -> int | None:
    """The PID of the drainer holding the lock file (it writes its PID there), else None."""
    path = path or lock_path()
    if not is_running(path):
        return None
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def touch(path: Path) -> None:
    """Mark that an estimate has just completed on this host (the lock file's mtime)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def web_busy(path: Path, *, now: float | None = None) -> bool:
    """Whether an estimate completed on this host less than QUIET_S ago (``touch``)."""
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - touched < QUIET_S


def ensure_running() -> bool:
    """Note the completed estimate (``touch``) and start a drainer unless one runs (or this
    process started one less than SPAWN_EVERY_S ago). Returns True when one was started.
    Never raises (a failure is logged: the jobs wait for the next estimate, ``hokan estimate
    followups`` or a broker)."""
    global _last_spawn, _spawned
    try:
        touch(lock_path())
        with _spawn_lock:
            if _spawned is not None and _spawned.poll() is not None:
                _spawned = None  # reaped
            if time.monotonic() - _last_spawn < SPAWN_EVERY_S:
                return False
            path = lock_path()
            if is_running(path):
                return False
            _last_spawn = time.monotonic()
            _spawned = subprocess.Popen(
                [sys.executable, "-m", "hokan.estimate.drainer", "--lock", str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
            log.info("estimate follow-ups: started drainer pid %d", _spawned.pid)
            return True
    except Exception:
        log.exception("estimate follow-ups: could not start the drainer")
        return False


def run_claimable(worker: str | None = None, *, older_than_s: float = 0.0) -> int:
    """Claim and run one chunk of the oldest unfinished follow-up job that has one claimable
    now (and, with ``older_than_s``, was created at least that many seconds ago). Returns 1
    when a chunk ran, else 0."""
    from django.utils import timezone

    from hokan.core import jobs
    from hokan.estimate.followup_jobs import pending_followups

    pending = pending_followups()
    if older_than_s > 0:
        pending = pending.filter(created_at__lte=timezone.now() - timedelta(seconds=older_than_s))
    for job in pending[:100]:
        chunk = jobs.claim_next_chunk(job, worker=worker)
        if chunk is not None:
            jobs.run_chunk(job, chunk)
            return 1
    return 0


def drain(*, idle_exit_s: float = IDLE_EXIT_S, poll_s: float = POLL_S, worker: str | None = None,
          max_delay_s: float = 0.0, busy: Callable[[], bool] = lambda: False,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    """Run follow-up chunks until no follow-up job has been unfinished for ``idle_exit_s``
    (0: return as soon as nothing is claimable). While ``busy()`` (the web is busy), only jobs
    older than ``max_delay_s`` are run (0 = no deferral). Returns the number of chunks run."""
    from django.db import DatabaseError, close_old_connections

    from hokan.estimate.followup_jobs import pending_followups

    ran = 0
    idle_since = clock()
    while True:
        try:
            if run_claimable(worker, older_than_s=max_delay_s if max_delay_s > 0 and busy() else 0.0):
                ran += 1
                idle_since = clock()
                continue
            if idle_exit_s <= 0:
                return ran
            if pending_followups().exists():
                idle_since = clock()  # held elsewhere or waiting for a retry: stay for it
        except DatabaseError:
            log.exception("estimate follow-ups: database error; trying again in %.1f s", poll_s)
            close_old_connections()
        if clock() - idle_since >= idle_exit_s:
            return ran
        sleep(poll_s)


def _write_pid(handle: IO[bytes]) -> None:
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m hokan.estimate.drainer [--lock FILE] [--idle-exit S]``: take the lock (exit
    0 at once when another drainer has it), lower the priority, drain, exit."""
    parser = argparse.ArgumentParser(prog="python -m hokan.estimate.drainer")
    parser.add_argument("--lock", type=Path, default=None)
    parser.add_argument("--idle-exit", type=float, default=IDLE_EXIT_S)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    held = _try_lock(args.lock) if args.lock is not None else None
    if args.lock is not None and held is None:
        return 0  # another drainer runs
    if held is not None:
        _write_pid(held)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    import django

    django.setup()
    if held is None:
        held = _try_lock(lock_path())
        if held is None:
            return 0
        _write_pid(held)
    import hokan.estimate.followup_jobs  # noqa: F401  (registers the chunk handler)

    from django.conf import settings

    lock = args.lock or lock_path()
    ran = drain(idle_exit_s=args.idle_exit, max_delay_s=float(settings.ESTIMATE_FOLLOWUPS_MAX_DELAY_S or 0),
                busy=lambda: web_busy(lock))
    log.info("estimate follow-ups: drainer pid %d ran %d chunk(s), exiting", os.getpid(), ran)
    held.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
