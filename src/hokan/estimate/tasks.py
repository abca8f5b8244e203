"""Celery tasks of the estimate (thin: each calls one function).

With a broker (``CELERY_BROKER_URL``, else ``REDIS_URL``: see ``hokan/celery.py``) the
after-response work of §9 is queued on Celery's default queue after the transaction commits
(``hokan worker`` consumes it). Without one it runs in-process after the commit: in a daemon
thread (``ESTIMATE_FOLLOWUPS=thread``, the default, so the response is not held up), in the
request itself (``sync``, used by tests) or not at all (``off``).

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

log = logging.getLogger(__name__)


@shared_task(name="estimate.run_followups", acks_late=True)
def run_followups_task(estimate_id: str) -> None:
    from hokan.estimate.followups import run_followups

    run_followups(estimate_id)


@shared_task(name="estimate.cleanup_expired")
def cleanup_expired_task() -> None:
    from hokan.estimate.cleanup import delete_expired

    sessions, estimates = delete_expired()
    log.info("estimate cleanup: %d sessions, %d estimates deleted", sessions, estimates)


def _run_safely(estimate_id: str) -> None:
    from hokan.estimate.followups import run_followups

    try:
        run_followups(estimate_id)
    except Exception:  # in-process follow-ups must never break the request or die silently
        log.exception("Follow-ups failed for estimate %s", estimate_id)


def _run_in_thread(estimate_id: str) -> None:
    try:
        _run_safely(estimate_id)
    finally:
        close_old_connections()  # the thread's own connection


def schedule_followups(estimate_id: Any) -> None:
    """Queue §9's work for after the current transaction commits (see the module docstring)."""
    key = str(estimate_id)
    from hokan.celery import app as celery_app
    from hokan.celery import has_broker

    if has_broker(celery_app):
        transaction.on_commit(lambda: run_followups_task.delay(key))
        return
    mode = settings.ESTIMATE_FOLLOWUPS
    if mode == "off":
        return
    if mode == "sync":
        transaction.on_commit(lambda: _run_safely(key))
        return
    transaction.on_commit(lambda: threading.Thread(target=_run_in_thread, args=(key,), daemon=True,
                                                   name=f"estimate-followups-{key[:8]}").start())
