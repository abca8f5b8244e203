"""A worker process for the Redis ledger test: paid calls to the fake provider under RedisLedger.

Usage: python -m tests.core.redis_ledger_worker WORKER_ID N_WORKS FAKE_BASE_URL
Each work is one ``complete_json_budgeted`` call (key ``w{worker}:{index}``) with a 0.05 USD
estimate. Prints one JSON line: {"done": n, "refused": n, "failed": n, "garbage": n}.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal


def main() -> None:
    worker, count, base_url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.budget import RedisLedger
    from hokan.core.errors import BudgetExceeded, LLMOutputError, LLMTransientError
    from hokan.core.llm import JsonRequest, OpenAICompatClient, complete_json_budgeted

    ledger = RedisLedger()
    client = OpenAICompatClient("perplexity", "sonar", "test-key", base_url, max_retries=0, timeout_s=30)
    request = JsonRequest(system="JSONのみ", user="企業名: 株式会社テスト", schema_name="lead",
                          schema={"type": "object", "properties": {"設立年": {"type": ["string", "null"]}}})
    result = {"done": 0, "refused": 0, "failed": 0, "garbage": 0}
    for index in range(count):
        try:
            complete_json_budgeted(client, request, ledger=ledger, estimate_usd=Decimal("0.05"),
                                                key=f"w{worker}:{index}")
        except BudgetExceeded:
            result["refused"] += 1
            continue
        except LLMTransientError:
            result["failed"] += 1
            continue
        except LLMOutputError:
            result["garbage"] += 1
            continue
        result["done"] += 1
    print(json.dumps(result))


if __name__ == "__main__":
    main()
