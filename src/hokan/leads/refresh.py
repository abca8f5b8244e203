"""Enrich one lead now (design document 000 §14 「手動再取得」): the REST API's and the admin's entry.

``queue_refresh`` records an ``EnrichmentRun(lead=…, status="queued")`` and, once that row is
committed, hands its pk to the Celery task ``hokan.leads.tasks.refresh_lead``. Without a broker
the project's tasks run in-process (``hokan/celery.py``). One lead has at most one queued or
running run at a time.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from django.utils import timezone

from hokan.core.errors import HokanError
from hokan.leads.models import EnrichmentRun, Lead

log = logging.getLogger(__name__)

ACTIVE = (EnrichmentRun.Status.QUEUED, EnrichmentRun.Status.RUNNING)


class AlreadyEnriching(HokanError):
    """The lead already has a queued or running run (``run``); the API answers 409."""

    def __init__(self, message: str, *, run: EnrichmentRun) -> None:
        super().__init__(message)
        self.run = run


def queue_refresh(lead: Lead, *, trigger: str) -> EnrichmentRun:
    """Create a queued run for ``lead`` and enqueue ``refresh_lead(run.pk)`` after commit.

    trigger: who asked, stored on the run ("api", "admin").

    Raises:
        AlreadyEnriching: the lead already has a queued or running run.
    """
    with transaction.atomic():
        # The row lock serialises two refreshes of one lead on PostgreSQL (SQLite's IMMEDIATE
        # transactions serialise all writers), so a lead never gets two active runs.
        Lead.objects.select_for_update().filter(pk=lead.pk).first()
        active = lead.runs.filter(status__in=ACTIVE).first()
        if active is not None:
            raise AlreadyEnriching(
                f"この企業は補完中です（実行ID {active.public_id}、{active.get_status_display()}）", run=active
            )
        run = EnrichmentRun.objects.create(lead=lead, trigger=trigger, status=EnrichmentRun.Status.QUEUED)
        transaction.on_commit(partial(_enqueue, run.pk))
    return run


def _enqueue(run_pk: int) -> None:
    """Send the run to the queue; if that fails, the run is marked failed rather than left queued."""
    try:
        from hokan.leads.tasks import refresh_lead  # imported late: the Celery app loads on demand

        refresh_lead.delay(run_pk)
    except Exception:  # ImportError, kombu OperationalError, …: the request itself succeeded
        log.exception("Could not enqueue the refresh of run %s", run_pk)
        EnrichmentRun.objects.filter(pk=run_pk, status=EnrichmentRun.Status.QUEUED).update(
            status=EnrichmentRun.Status.FAILED, finished_at=timezone.now(),
            message="キューに登録できませんでした（ワーカー・Redis の状態を確認してください）",
        )
