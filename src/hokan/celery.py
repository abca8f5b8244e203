"""The one Celery app of hokan (design document 000 §9), for every app's tasks.

Configuration, all from Django settings (src/hokan/settings.py, "# --- Celery / Redis"):

- broker: ``CELERY_BROKER_URL`` when set, else ``REDIS_URL``; the result backend is
  ``REDIS_URL`` (or the broker when it is a Redis URL). With neither, there is no broker and
  tasks run eagerly: ``.delay()`` / ``.apply_async()`` run the task in the calling process
  (``Task.apply``), so the CLI and the API work on a machine without Redis. This is
  Celery's ``task_always_eager``, decided at call time by ``HokanTask`` from the broker URL in
  force (so a test or a process that sets ``app.conf.broker_url`` later gets real queueing).
- queues: ``ai_enrich`` for the lead tasks (``leads.tasks.*``, §9 "Queue名：ai_enrich") and
  Celery's default ``celery`` for the others (the estimate follow-ups). ``hokan worker``
  consumes both unless told otherwise.
- delivery: ``task_acks_late`` + ``task_reject_on_worker_lost`` + prefetch 1, so a task whose
  worker is killed is delivered again, to this or another worker; with Redis an
  unacknowledged message comes back after ``HOKAN_CELERY_VISIBILITY_TIMEOUT_S``. The tasks
  are written to be run twice (see hokan/leads/tasks.py).
- Beat: ``django_celery_beat``'s DatabaseScheduler; the nightly entry (03:00 Asia/Tokyo,
  §9/§12) is created at migrate time by ``hokan.leads.schedule`` and edited in the admin.

Start a worker with ``hokan worker`` (or ``celery -A hokan.celery worker -Q ai_enrich,celery``)
and the scheduler with ``hokan beat``. The app is imported when Django starts
(``CoreConfig.ready``), so ``shared_task`` functions bind to it in every process.
"""

from __future__ import annotations

import os

from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")

AI_ENRICH_QUEUE = "ai_enrich"
DEFAULT_QUEUE = "celery"


def broker_url() -> str:
    """The broker URL in force: CELERY_BROKER_URL, else REDIS_URL, else "" (eager mode)."""
    from django.conf import settings

    return getattr(settings, "CELERY_BROKER_URL", "") or getattr(settings, "REDIS_URL", "")


def has_broker(celery_app: Celery) -> bool:
    """Whether ``celery_app`` has a real broker (not the in-memory placeholder of eager mode)."""
    url = str(celery_app.conf.broker_url or "")
    return bool(url) and not url.startswith("memory://")


class HokanTask(Task):
    """The base of every task of the app: eager (``apply`` in-process) when there is no broker."""

    def apply_async(self, args: Any = None, kwargs: Any = None, task_id: str | None = None, *a: Any,
                    **options: Any) -> Any:
        if not has_broker(self.app) and not self.app.conf.task_always_eager:
            from celery.utils import uuid

            options.pop("countdown", None)
            options.pop("eta", None)
            return self.apply(args, kwargs, task_id=task_id or uuid(), **options)
        return super().apply_async(args, kwargs, task_id, *a, **options)


def configure(celery_app: Celery) -> None:
    """Apply the settings to ``celery_app`` (called at import; tests call it again after
    changing settings)."""
    from django.conf import settings

    broker = broker_url()
    redis_url = getattr(settings, "REDIS_URL", "")
    backend = redis_url or (broker if broker.startswith(("redis://", "rediss://", "unix://")) else "")
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=backend or None,
        task_ignore_result=False,
        result_expires=7 * 24 * 3600,
        timezone=settings.TIME_ZONE,
        enable_utc=True,
        task_default_queue=DEFAULT_QUEUE,
        task_queues=(
            # Each queue on its own routing key, so a message can only ever reach its queue.
            Queue(AI_ENRICH_QUEUE, Exchange(AI_ENRICH_QUEUE, type="direct"), routing_key=AI_ENRICH_QUEUE),
            Queue(DEFAULT_QUEUE, Exchange(DEFAULT_QUEUE, type="direct"), routing_key=DEFAULT_QUEUE),
        ),
        task_routes={"leads.tasks.*": {"queue": AI_ENRICH_QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.HOKAN_CELERY_VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
        # Entries listed here are written into the database schedule each time beat starts
        # (django-celery-beat); the nightly lead run is created once instead
        # (hokan.leads.schedule) so that an operator's change in the admin stays.
        beat_schedule={
            "estimate-cleanup-expired": {"task": "estimate.cleanup_expired", "schedule": crontab(minute=30, hour=4)},
            # chunks of killed workers and stalled jobs are sent again (hokan.core.tasks)
            "core-sweep-jobs": {"task": "core.sweep_jobs", "schedule": float(settings.HOKAN_JOB_SWEEP_INTERVAL_S)},
            # municipalities not updated for HOKAN_MUNICIPAL_UPDATE_AFTER_DAYS run again (hokan.municipal.update)
            "municipal-periodic-update": {"task": "municipal.periodic_update", "schedule": crontab(minute=15, hour=3)},
        },
        worker_hijack_root_logger=False,
    )


app = Celery("hokan", task_cls=HokanTask)
configure(app)
app.autodiscover_tasks()
