"""Subprocess of tests/scoring/test_video.py's kill -9 test: scores one video row and is killed
while it waits for the uploaded file to become ACTIVE.

Usage: python -m tests.scoring.video_worker FILES_BASE_URL VIDEO_URL STATE_DIR

Prints "uploading" once started; never returns on its own while the fake keeps the file PROCESSING.
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.llm.client import JsonRequest
    from hokan.core.llm.gemini import GeminiClient
    from hokan.core.llm.gemini_files import GeminiFilesClient
    from hokan.scoring.video import VideoScorer, VideoSettings

    base, video, state = sys.argv[1:4]
    settings = VideoSettings(poll_interval_s=0.02, active_timeout_s=3600, upload_chunk_bytes=256 * 1024,
                             state_dir=Path(state), cost_per_call_usd=Decimal("0.10"))
    files = GeminiFilesClient("test-key", base, chunk_bytes=256 * 1024, allow_hosts=["127.0.0.1"])
    client = GeminiClient("test-key", base_url=base, allow_hosts=["127.0.0.1"])

    async def run() -> None:
        async with VideoScorer(client=client, files=files, ledger=None, settings=settings) as scorer:
            print("uploading", flush=True)
            await scorer.score(video, JsonRequest(system="s", user="u", schema={}, schema_name="t"), key="k")

    asyncio.run(run())


if __name__ == "__main__":
    main()
