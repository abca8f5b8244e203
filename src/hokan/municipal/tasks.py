"""Celery tasks of the municipal app. Importing this module registers the chunk handler of
``municipal.run`` jobs (``hokan.municipal.flow``), so every worker can run a municipality's
services (``core.run_job_chunk``)."""

from __future__ import annotations

from celery import shared_task

from hokan.municipal import flow  # noqa: F401  (registers the "municipal.run" chunk handler)


@shared_task(name="municipal.periodic_update")
def periodic_update_task() -> list[str]:
    """Celery beat (daily): re-run the municipalities not updated for N days (§4.2)."""
    from hokan.municipal.update import periodic_update

    return periodic_update()
