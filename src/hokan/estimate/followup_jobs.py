"""The estimate's follow-ups as ``core.jobs`` jobs: their kind, key, chunk handler and the
one-claim runner (``tasks`` decides who runs them; ``drainer`` runs them in a process of its own).

Light on purpose: ``followups`` (and with it reportlab, for the PDF) is imported only when a
chunk runs. Importing this module registers the chunk handler of ``FOLLOWUPS_KIND`` — every
process that runs follow-up chunks imports it (Celery through ``tasks``, the drainer, the CLI).
"""

from __future__ import annotations

import logging
from typing import Any

from hokan.core import jobs
from hokan.core.errors import HokanError
from hokan.core.models import Job, JobChunk

log = logging.getLogger(__name__)

FOLLOWUPS_KIND = "estimate.followups"
RETRIED_PARTS = ("notion", "customer_mail", "operator_mail")  # a failed PDF only drops the attachment


class FollowupsIncomplete(HokanError):
    """A Notion page or a mail of the follow-ups failed; the chunk is retried (parts done are kept)."""


def followups_job_key(estimate_id: Any) -> str:
    return f"{FOLLOWUPS_KIND}:{estimate_id}"


@jobs.register_chunk_handler(FOLLOWUPS_KIND)
def run_followups_chunk(job: Job, chunk: JobChunk) -> jobs.ChunkResult:
    """The chunk handler: §9.1 for each estimate id of the chunk.

    Raises:
        FollowupsIncomplete: a Notion page or a mail failed (the chunk is retried).
    """
    from hokan.estimate.followups import run_followups

    failed: list[str] = []
    for estimate_id in chunk.item_keys or []:
        outcome = run_followups(estimate_id)
        failed += [f"{estimate_id} {part}: {outcome[part]}" for part in RETRIED_PARTS
                   if str(outcome.get(part, "")).startswith("failed")]
    if failed:
        raise FollowupsIncomplete("; ".join(failed))
    return jobs.ChunkResult(summary={"estimates": len(chunk.item_keys or [])})


def run_once(job: Job) -> None:
    """Claim the job's chunk and run it here, once (no wait for a retry's backoff: a failed
    part stays pending for the drainer, a worker or ``hokan estimate followups``). Never raises."""
    try:
        chunk = jobs.claim_next_chunk(job)
        if chunk is not None:
            jobs.run_chunk(job, chunk)
    except Exception:  # in-process follow-ups must never break the request or die silently
        log.exception("Follow-ups failed for job %s", job.public_id)


def pending_followups() -> Any:
    """The follow-up jobs not finished yet (a QuerySet of Job, oldest first)."""
    return Job.objects.filter(kind=FOLLOWUPS_KIND, status__in=jobs.ACTIVE).order_by("created_at", "pk")
