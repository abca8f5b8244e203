"""``python -m tests.scoring.chunk_worker JOB [INPUT CATEGORIES OUTPUT]``: (create the job, text
column 「発話」, then) work through a scoring job the way a Celery worker does — ``core.jobs.run_job`` claiming chunk after chunk and calling the registered handler of
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
    from hokan.scoring import service
    from hokan.scoring.config import load_categories
    from hokan.scoring.io import FileSource

    if len(sys.argv) > 2:
        service.prepare_job(FileSource(sys.argv[2]), categories=load_categories(sys.argv[3]), text_column="発話",
                            output=sys.argv[4], name=sys.argv[1])
    sjob = service.get_job(sys.argv[1])
    progress = jobs.run_job(sjob.job, poll_s=0.2)
    print(json.dumps({"status": progress.status, "done": progress.done, "failed": progress.failed,
                      "message": progress.message}, ensure_ascii=False))


if __name__ == "__main__":
    main()
