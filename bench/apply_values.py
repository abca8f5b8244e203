"""Speed of ``hokan.leads.store.apply_values`` (one select, one upsert) against the per-value
``update_or_create`` it replaced, in the same run and database.

The enrichment job writes each lead's values the same way (``hokan.leads.enrich``): in one
transaction, lock the lead (``select_for_update``), ``apply_values`` the FieldValues found, save
the lead. This benchmark does exactly that for ``--leads`` blank leads (default 1,000) with 8
values each (the rule extractor's usual haul: 法人番号, 所在地 (3 columns), 資本金, 従業員数,
設立年, 電話番号), then writes them a second time with ``only_missing=False`` (every provenance
row updated, not created) — once with the current ``apply_values`` and once with the former one
(bench/_before_leads.py: ``manual_fields`` then one ``update_or_create`` per value), alternating in rounds
of 100 leads so both see the same database size and machine load.

Reported: seconds of ``apply_values`` alone and of the whole per-lead write, per path, and the
ratios new / old (lower is better).

Run from the repository root:  .venv/bin/python bench/apply_values.py [--leads N]
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _before_leads as before  # noqa: E402
from _common import machine, no_network, setup_django, table  # noqa: E402

ROUND = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000)
    args = parser.parse_args()
    no_network()
    with tempfile.TemporaryDirectory(prefix="hokan-bench-apply-", ignore_cleanup_errors=True) as tmp:
        setup_django(tmp)
        return run(args.leads)


def run(total: int) -> int:
    from django.db import transaction

    from hokan.core.fields import FieldValue
    from hokan.leads.models import Lead, LeadFieldSource
    from hokan.leads.store import apply_values

    def values_for(i: int) -> list[FieldValue]:
        url = f"https://www.example{i}.co.jp/company/"
        pairs = [("corporate_number", "6120001271738"), ("prefecture", "大阪府"), ("city", "大阪市西区"),
                 ("location", f"北堀江1-{i % 30}-24"), ("capital", 10_000_000 + i), ("employee_count", 10 + i % 90),
                 ("established_year", 1960 + i % 60), ("phone", "06-4400-8401")]
        return [FieldValue(field=name, value=value, raw=str(value), quote=f"{name} {value}", source_url=url,
                           method="rule", confidence=0.9, extractor="table") for name, value in pairs]

    timings = {"new": [0.0, 0.0], "old": [0.0, 0.0]}  # [apply_values alone, the whole per-lead write]
    paths = {"new": apply_values, "old": before.apply_values}
    for start in range(0, total, ROUND):
        for name in ("old", "new") if (start // ROUND) % 2 else ("new", "old"):
            leads = Lead.objects.bulk_create([Lead(name=f"株式会社{name}{start + i}", name_key=f"{name}{start + i}")
                                              for i in range(ROUND)])
            for only_missing in (True, False):  # the first write creates the rows, the second updates them
                for i, lead in enumerate(leads):
                    values = values_for(start + i)
                    began = time.perf_counter()
                    with transaction.atomic():
                        fresh = Lead.objects.select_for_update().get(pk=lead.pk)
                        applied = time.perf_counter()
                        paths[name](fresh, values, only_missing=only_missing)
                        timings[name][0] += time.perf_counter() - applied
                        fresh.save()
                    timings[name][1] += time.perf_counter() - began
    if LeadFieldSource.objects.filter(lead__name__startswith="株式会社new").count() != total * 8:
        raise SystemExit("the new path did not write every provenance row")
    if LeadFieldSource.objects.filter(lead__name__startswith="株式会社old").count() != total * 8:
        raise SystemExit("the old path did not write every provenance row")
    new, old = timings["new"], timings["old"]
    print(f"apply_values: {total:,} leads × 8 values, written twice (create, then update) ({machine()})\n")
    print(table(
        ("path", "apply_values s", "per-lead write s", "leads/s (write)"),
        [("old: update_or_create per value", f"{old[0]:.2f}", f"{old[1]:.2f}", f"{2 * total / old[1]:,.0f}"),
         ("new: one select + one upsert", f"{new[0]:.2f}", f"{new[1]:.2f}", f"{2 * total / new[1]:,.0f}")],
    ))
    print(f"\nratio new / old, apply_values alone: {new[0] / old[0]:.2f}x")
    print(f"ratio new / old, the whole per-lead write (lock, apply, save): {new[1] / old[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
