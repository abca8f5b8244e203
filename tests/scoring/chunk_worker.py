"""``python -m tests.scoring.chunk_worker JOB``: work through a scoring job the way a Celery worker
does — ``core.jobs.run_job`` claiming chunk after chunk and calling the registered handler of
kind ``scoring.score`` (hokan.scoring.tasks) — and print the progress as JSON."""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    django.setup()
    import hokan.scoring.tasks  # noqa: F401  (registers the handler, as Celery's autodiscovery does)
    from hokan.core import jobs
    from hokan.scoring.service import get_job

    sjob = get_job(sys.argv[1])
    progress = jobs.run_job(sjob.job, poll_s=0.2)
    print(json.dumps({"status": progress.status, "done": progress.done, "failed": progress.failed,
                      "message": progress.message}, ensure_ascii=False))


if __name__ == "__main__":
    main()
