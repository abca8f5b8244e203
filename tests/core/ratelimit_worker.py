"""A worker process for the cross-process tests of hokan.core.ratelimit.

    python -m tests.core.ratelimit_worker

The store is the one the settings choose: Redis when REDIS_URL is set in the environment,
else the database of DATABASE_URL (already migrated by the test). Prints "ready" once Django
and the LLM client are loaded, then answers each JSON line on stdin with one JSON line, until
stdin closes. The test gives every worker of a pool its command first and "go" after, so
that their work overlaps however long each took to read it. Commands:

    {"mode": "llm", "key": K, "count": N, "limit": L, "period_s": P, "burst": B, "base_url": U}
        N requests to the fake OpenAI server at U, each in ``limiter.slot()`` of a Limiter on K
        (rate L per P seconds with burst B, or no rate when L is 0; AIMD concurrency 1..8). A
        transient error (a 429) is counted, not raised.
        → {"admitted": [slot of each answered request, store clock s], "waited": [s each],
           "errors": count, "blocked_until": the key's Retry-After block at the end (store clock s)}
    {"mode": "api", "count": N, "limit": L}
        N calls of the estimate API's per-IP limit (ip 10.0.0.9) and of the per-API-key limit
        (key 7), L per minute each. → {"ip_admitted": count, "key_admitted": count}
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def llm(key: str, count: int, limit: int, period_s: float, burst: int, base_url: str) -> dict[str, Any]:
    from hokan.core.errors import LLMTransientError
    from hokan.core.llm import JsonRequest, OpenAICompatClient
    from hokan.core.ratelimit import Concurrency, Limiter, Rate

    rate = Rate(limit, period_s, burst) if limit > 0 else None
    limiter = Limiter(key, rate=rate, concurrency=Concurrency(minimum=1, maximum=8))
    client = OpenAICompatClient("perplexity", "sonar", "test-key", base_url, max_retries=0)
    request = JsonRequest(system="JSONのみ", user="テスト", schema={"type": "object"}, schema_name="t")
    admitted, waited, errors = [], [], 0
    for _ in range(count):
        try:
            with limiter.slot() as permit:
                client.complete_json(request)
        except LLMTransientError:
            errors += 1
            continue
        admitted.append(permit.admitted_at)
        waited.append(permit.waited_s)
    state, _ = limiter.store.read(key, clock=None)
    return {"admitted": admitted, "waited": waited, "errors": errors, "blocked_until": state.blocked_until}


def api(count: int, limit: int) -> dict[str, int]:
    from django.conf import settings

    from hokan.core.api_keys import check_rate
    from hokan.core.errors import RateLimited
    from hokan.estimate.ratelimit import hit

    settings.HOKAN_API_RATE_LIMIT_PER_MIN = limit
    ip_admitted = sum(hit("10.0.0.9", limit)[0] for _ in range(count))
    key_admitted = 0
    for _ in range(count):
        try:
            check_rate(7)
            key_admitted += 1
        except RateLimited:
            pass
    return {"ip_admitted": ip_admitted, "key_admitted": key_admitted}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    import hokan.core.llm  # noqa: F401  (the SDK import takes a while: before "ready")
    import hokan.estimate.ratelimit  # noqa: F401

    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        sys.stdin.readline()  # "go"
        mode = command.pop("mode")
        result = llm(**command) if mode == "llm" else api(**command)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
