"""Speed of ``hokan leads export`` without ``--with-sources``: the export as it is (no provenance
read) against the export as it was (the provenance rows prefetched for every lead and thrown
away), in the same run and database.

``--leads`` leads (default 5,000) with 10 provenance rows each are created in a fresh SQLite
database; then, alternating for ``--repeat`` passes (default 3): ``export_leads(path)`` (CSV,
BOM UTF-8) and the former loop — the same ``rows_for`` and CSV writer over
``Lead.objects.order_by("pk").prefetch_related("sources")`` — and, for context, the export with
``--with-sources`` (which needs the rows). Reported: the best seconds of each and the ratio
new / old (lower is better). The files written are compared byte for byte.

Run from the repository root:  .venv/bin/python bench/export_leads.py [--leads N] [--repeat N]
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, no_network, setup_django, table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    no_network()
    with tempfile.TemporaryDirectory(prefix="hokan-bench-export-", ignore_cleanup_errors=True) as tmp:
        setup_django(tmp)
        return run(Path(tmp), args.leads, args.repeat)


def run(folder: Path, total: int, repeat: int) -> int:
    from hokan.leads.export_leads import export_leads, rows_for
    from hokan.leads.models import Lead, LeadFieldSource

    leads = Lead.objects.bulk_create(
        [Lead(name=f"株式会社エクスポート{i}", name_key=f"エクスポート{i}", capital=10_000_000 + i, employee_count=i % 500 + 1,
              prefecture="東京都", city="港区", location=f"芝{i % 9 + 1}-1-1", phone="03-5555-1234",
              website_url=f"https://www.example{i}.co.jp/") for i in range(total)],
        batch_size=500,
    )
    fields = ("name", "capital", "employee_count", "prefecture", "city", "location", "phone", "website_url",
              "industry", "established_year")
    LeadFieldSource.objects.bulk_create(
        [LeadFieldSource(lead=lead, field=name, method="rule", source_url=lead.website_url, raw="x", quote="資本金 1億円",
                         confidence=0.9, extractor="table") for lead in leads for name in fields],
        batch_size=1000,
    )

    def old_export(path: Path) -> int:  # the former loop: provenance prefetched whatever the flag
        queryset = Lead.objects.order_by("pk").prefetch_related("sources")
        count = 0
        with path.open("w", encoding="utf-8-sig", errors="replace", newline="") as handle:
            writer = csv.writer(handle)
            for index, row in enumerate(rows_for(queryset.iterator(chunk_size=500), with_sources=False)):
                writer.writerow(row)
                count += 1 if index else 0
        return count

    best = {"new": float("inf"), "old": float("inf"), "with_sources": float("inf")}
    runs = {
        "new": lambda p: export_leads(p),
        "old": old_export,
        "with_sources": lambda p: export_leads(p, with_sources=True),
    }
    for n in range(repeat):
        for name in (("new", "old", "with_sources") if n % 2 == 0 else ("old", "new", "with_sources")):
            path = folder / f"{name}.csv"
            started = time.perf_counter()
            count = runs[name](path)
            best[name] = min(best[name], time.perf_counter() - started)
            if count != total:
                raise SystemExit(f"{name}: {count} leads written, expected {total}")
    if (folder / "new.csv").read_bytes() != (folder / "old.csv").read_bytes():
        raise SystemExit("the two exports differ")
    print(f"export: {total:,} leads, {total * len(fields):,} provenance rows, best of {repeat} ({machine()})\n")
    print(table(
        ("export", "seconds", "leads/s"),
        [("old: provenance prefetched, unused", f"{best['old']:.2f}", f"{total / best['old']:,.0f}"),
         ("new: no provenance read", f"{best['new']:.2f}", f"{total / best['new']:,.0f}"),
         ("--with-sources (context)", f"{best['with_sources']:.2f}", f"{total / best['with_sources']:,.0f}")],
    ))
    print(f"\nratio new / old (export without --with-sources): {best['new'] / best['old']:.2f}x; identical files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
