"""A worker process for the feedback concurrency test: rates one video N times.

Usage: python -m tests.knowledge.feedback_worker VIDEO_ID N RATING BARRIER_DIR
The worker writes ``BARRIER_DIR/ready-<pid>`` once Django is set up and waits for
``BARRIER_DIR/go`` before rating, so the workers' ratings overlap. Prints {"rated": n}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    video_id, count, rating, barrier = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.knowledge.feedback import rate

    (barrier / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.01)
    for _ in range(count):
        rate(video_id, rating, comment="並行評価", source="test", sync_index=False)
    print(json.dumps({"rated": count}))


if __name__ == "__main__":
    main()
