"""A worker process for the cross-process rate-limit test.

Usage: python -m tests.core.ratelimit_worker LIMIT WINDOW_S N_REQUESTS FAKE_BASE_URL
Sends N requests to the fake provider through ``RateLimitedClient`` with a RedisRateLimiter
named "llm:test" (REDIS_URL from the environment). Prints one JSON line:
{"admitted_us": [Redis server time of each admission, µs], "waited_s": total seconds waited}.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    limit, window_s, count, base_url = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.llm import JsonRequest, OpenAICompatClient
    from hokan.core.ratelimit import RateLimitedClient, RedisRateLimiter

    limiter = RedisRateLimiter("llm:test", limit, window_s)
    waits: list[float] = []
    acquire = limiter.acquire

    def recording_acquire(**kwargs):  # the limiter's own result: seconds waited
        waited = acquire(**kwargs)
        waits.append(waited)
        admitted.append(limiter.last_admitted_us)
        return waited

    admitted: list[int] = []
    limiter.acquire = recording_acquire  # type: ignore[method-assign]
    client = RateLimitedClient(OpenAICompatClient("perplexity", "sonar", "test-key", base_url, max_retries=0), limiter)
    request = JsonRequest(system="JSONのみ", user="テスト", schema={"type": "object"}, schema_name="t")
    for _ in range(count):
        client.complete_json(request)
    print(json.dumps({"admitted_us": admitted, "waited_s": sum(waits)}))


if __name__ == "__main__":
    main()
