"""Commands run in a subprocess against the file database of the Celery end-to-end tests.

Usage: python -m tests.leads.task_helper seed N | enqueue | state
(DATABASE_URL, REDIS_URL and the LLM settings come from the environment.)

- ``seed N``: create N leads 株式会社テスト1..N (no website: the LLM is asked directly).
- ``enqueue``: send ``leads.tasks.run_ai_enrich`` to the broker; prints the task id.
- ``state``: prints JSON with the leads, the runs, the job chunks and the usage ledger (Redis or
  the database).
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokan.settings")
    import django

    django.setup()
    from hokan.core.budget import get_ledger
    from hokan.leads.models import EnrichmentRun, Lead

    command = sys.argv[1]
    if command == "seed":
        for i in range(1, int(sys.argv[2]) + 1):
            Lead.objects.create(name=f"株式会社テスト{i}")
        print(json.dumps(list(Lead.objects.order_by("pk").values_list("pk", flat=True))))
    elif command == "enqueue":
        from hokan.leads.tasks import run_ai_enrich

        print(run_ai_enrich.apply_async().id)
    elif command == "state":
        ledger = get_ledger()
        snap = ledger.snapshot()
        leads = list(Lead.objects.order_by("pk").values("pk", "name", "employee_count", "needs_ai_update",
                                                        "ai_last_enriched_at"))
        for lead in leads:
            lead["ai_last_enriched_at"] = str(lead["ai_last_enriched_at"] or "")
        reservations = {}
        for lead in leads:
            key = f"lead:{lead['pk']}:{snap.day.isoformat()}:1"
            if hasattr(ledger, "redis"):
                raw = ledger.redis.hget(f"usage:reservation:{key}", "status")
                reservations[lead["name"]] = raw.decode() if raw else None
            else:
                from hokan.core.models import UsageReservation

                reservations[lead["name"]] = UsageReservation.objects.filter(key=key).values_list(
                    "status", flat=True).first()
        runs = [
            {"public_id": str(r.public_id), "status": r.status, "trigger": r.trigger, "message": r.message,
             "leads_done": r.leads_done, "leads_failed": r.leads_failed, "leads_skipped": r.leads_skipped,
             "llm_calls": r.llm_calls, "cost_micro_usd": r.cost_micro_usd, "attempts": r.attempts}
            for r in EnrichmentRun.objects.order_by("pk")
        ]
        from hokan.core.models import JobChunk

        chunks = [{"chunk_id": c.chunk_id, "status": c.status, "claimed_by": c.claimed_by, "claims": c.claim_count}
                  for c in JobChunk.objects.order_by("job_id", "chunk_id")]
        print(json.dumps({
            "leads": leads, "runs": runs, "reservations": reservations, "chunks": chunks,
            "usage": {"calls": snap.calls, "cost_micro_usd": int(snap.cost_usd * 1_000_000),
                      "reserved_calls": snap.reserved_calls},
        }, ensure_ascii=False))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
