"""The periodic update (document 003 §4.2; issue 10 §5): run again the municipalities whose last run
is older than HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS days, for the services they have drafts of.

The same queries are searched again (the query cache answers the LLM's), each page is read, and a
page whose text is unchanged (same SHA-256) costs no LLM call (``flow._extract``). The values
found are compared with the draft's (values, not page hashes); a change makes a new
``DraftVersion`` listing it (the admin's diff highlights it) and a 「draft_updated」 notice.

Celery beat runs ``municipal.periodic_update`` daily (entry "municipal-periodic-update" in
``hokan.celery``): at most HOKAN_MUNICIPAL_UPDATE_BATCH municipalities a day, oldest first, each as
its own core.jobs job (``dispatch_job``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from hokan.core.models import Job
from hokan.municipal import flow
from hokan.municipal.models import Draft, MunicipalRun, Municipality, Service


def due(*, now: dt.datetime | None = None, days: int | None = None) -> QuerySet[Municipality]:
    """Municipalities with drafts whose last completed run ended more than ``days`` days ago
    (default HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS; 0 = none is due) and no run still active."""
    days = int(settings.HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS) if days is None else days
    if days <= 0:
        return Municipality.objects.none()
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    active = MunicipalRun.objects.filter(job__status__in=(Job.Status.PENDING, Job.Status.RUNNING)).values(
        "municipality_id")
    return (Municipality.objects.filter(drafts__isnull=False).filter(Q(last_fetched_at__lt=cutoff)
                                                                     | Q(last_fetched_at__isnull=True))
            .exclude(pk__in=active).distinct().order_by("last_fetched_at", "lgcode"))


def start_update(municipality: Municipality) -> MunicipalRun:
    """A run (reason "update") over the services ``municipality`` has drafts of."""
    keys = Draft.objects.filter(municipality=municipality).values_list("service__key", flat=True)
    services = list(Service.objects.filter(key__in=list(keys)).order_by("key"))
    return flow.start_run(municipality, services, trigger="update", reason="update")


def periodic_update(*, now: dt.datetime | None = None) -> list[str]:
    """Start and dispatch the update of the due municipalities (at most HOKAN_MUNICIPAL_UPDATE_BATCH);
    returns their lgcodes."""
    from hokan.core.tasks import dispatch_job

    started = []
    for municipality in due(now=now)[: int(settings.HOKAN_MUNICIPAL_UPDATE_BATCH)]:
        run = start_update(municipality)
        dispatch_job(run.job)
        started.append(municipality.lgcode)
    return started
