"""A worker process for the ledger concurrency tests: reserves, then commits or releases.

Usage: python -m tests.core.ledger_worker WORKER_ID N_RESERVATIONS [SCOPE]
The ledger is ``get_ledger(SCOPE)`` (default "leads"): the database one, or Redis when
REDIS_URL is set. Keys are ``w{WORKER_ID}:{index}``, so workers of two scopes with the same id
ask for the same keys — each scope must count them on its own.
Prints one JSON line: {"reserved": n, "refused": n, "committed_micro_usd": n, "released": n}.
Actual costs are deterministic per reservation (so the parent can check the sums).
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal


def actual_cost(worker: int, index: int) -> Decimal:
    # 0.010000 .. 0.049999 USD, never above the 0.05 estimate.
    return Decimal(10_000 + (worker * 7919 + index * 104_729) % 40_000) / Decimal(1_000_000)


def main() -> None:
    worker, count = int(sys.argv[1]), int(sys.argv[2])
    scope = sys.argv[3] if len(sys.argv) > 3 else "leads"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.budget import get_ledger
    from hokan.core.errors import BudgetExceeded

    ledger = get_ledger(scope)
    result = {"reserved": 0, "refused": 0, "committed_micro_usd": 0, "released": 0}
    for index in range(count):
        try:
            reservation = ledger.reserve(cost_usd=Decimal("0.05"), key=f"w{worker}:{index}")
        except BudgetExceeded:
            result["refused"] += 1
            continue
        result["reserved"] += 1
        if index % 5 == 4:  # every fifth call "fails before being charged"
            ledger.release(reservation)
            result["released"] += 1
        else:
            cost = actual_cost(worker, index)
            ledger.commit(reservation, cost_usd=cost)
            result["committed_micro_usd"] += int(cost * 1_000_000)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
