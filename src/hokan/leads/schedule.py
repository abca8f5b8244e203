"""The nightly enrichment entry of the Beat schedule (design document 000 §9/§12: 毎日 03:00).

The schedule lives in the database (django-celery-beat), so an operator changes the time or
pauses it in the admin (「Periodic tasks」). ``ensure_enrich_schedule`` runs after every
``migrate`` and creates the entry only when no periodic task runs ``leads.tasks.run_ai_enrich``
yet: a changed time stays changed. To stop the nightly run, untick 有効 (enabled) in the admin
rather than deleting the entry, which the next ``migrate`` would create again.

The initial time is ``HOKAN_ENRICH_SCHEDULE_CRON`` ("0 3 * * *": minute hour day month
weekday) in TIME_ZONE (Asia/Tokyo).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from hokan.celery import AI_ENRICH_QUEUE

logger = logging.getLogger(__name__)

ENRICH_TASK = "leads.tasks.run_ai_enrich"
ENRICH_SCHEDULE_NAME = "営業リストのAI補完（毎日）"


def ensure_enrich_schedule(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> bool:
    """Create the nightly periodic task unless one exists; True when created.

    A ``post_migrate`` receiver (connected in ``LeadsConfig.ready``); does nothing while
    django-celery-beat's tables are missing (a partial migrate).

    Raises:
        ValueError: HOKAN_ENRICH_SCHEDULE_CRON does not have five fields.
    """
    if "django_celery_beat_periodictask" not in connections[using].introspection.table_names():
        return False
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.using(using).filter(task=ENRICH_TASK).exists():
        return False
    fields = settings.HOKAN_ENRICH_SCHEDULE_CRON.split()
    if len(fields) != 5:
        raise ValueError(f"HOKAN_ENRICH_SCHEDULE_CRON: expected 5 crontab fields, got {settings.HOKAN_ENRICH_SCHEDULE_CRON!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.using(using).create(
        name=ENRICH_SCHEDULE_NAME,
        task=ENRICH_TASK,
        crontab=crontab,
        queue=AI_ENRICH_QUEUE,
        description="設計書000 §9/§12: 欠損項目の補完を毎日実行します。時刻はここで変更できます。",
    )
    logger.info("created the nightly schedule %s (%s %s)", ENRICH_TASK, settings.HOKAN_ENRICH_SCHEDULE_CRON, settings.TIME_ZONE)
    return True
