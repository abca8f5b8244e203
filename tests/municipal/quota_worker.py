"""A worker process for the free-tier concurrency test (tests/municipal/test_quotas.py).

Usage: python -m tests.municipal.quota_worker WORKER_ID ATTEMPTS MODE
Tries ATTEMPTS claims of each quota of ``MunicipalQuotas(MODE)`` (Brave and Google search
calls, LLM calls, OCR runs) with keys unique to the worker, committing what is granted.
Prints one JSON line: {"brave": granted, "google": granted, "llm": granted, "ocr": granted}.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    worker, attempts, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.errors import BudgetExceeded
    from hokan.municipal.quotas import MunicipalQuotas

    quotas = MunicipalQuotas(mode)
    search = quotas.search_quota()
    granted = {"brave": 0, "google": 0, "llm": 0, "ocr": 0}
    for index in range(attempts):
        key = f"w{worker}:{index}"
        for provider in ("brave", "google"):
            try:
                search.begin(provider, f"{provider}:{key}").commit()
                granted[provider] += 1
            except BudgetExceeded:
                pass
        try:
            quotas.claim_llm_call(key)
            granted["llm"] += 1
        except BudgetExceeded:
            pass
        try:
            with quotas.ocr(key=key):
                granted["ocr"] += 1
        except BudgetExceeded:
            pass
    print(json.dumps(granted))


if __name__ == "__main__":
    main()
