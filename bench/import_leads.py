"""Speed of ``hokan leads import``: the bulk import against a bare bulk_create of the same rows and
against the per-row path it replaced, in the same run.

A lead list of ``--rows`` rows (default 50,000; nine columns as people bring them: 企業名, 法人番号,
業種, 所在地, 資本金 「1,000万円」, 従業員数 「120名」, 設立年 「1990年」, 電話番号, 公式サイト;
generated with a fixed seed, valid check digits and phone numbers) is written to a CSV (UTF-8 with
BOM, as Excel saves it). Each run has its own subprocess and a fresh SQLite database:

- ``import``: ``hokan.leads.import_leads.import_leads(path)`` — what ``hokan leads import`` runs:
  read, validate every cell (``core.fields.clean``), merge duplicates, write per 1,000 companies
  (bulk insert, provenance upsert) — then the same file again (the re-import: all "unchanged");
- ``bulk_create`` (the floor): the rows already parsed into Lead values outside the timer, then
  only ``Lead.objects.bulk_create`` of the leads and ``LeadFieldSource.objects.bulk_create`` of
  their provenance rows (one per non-blank value, as the import writes), batch 500, one
  transaction per 1,000 leads. Also timed: the leads alone, without provenance;
- ``per_row`` (before): the import loop as it was until this change — for each row
  ``parse_row``, then in its own transaction ``find_existing``, ``manual_fields`` and one
  ``update_or_create`` per value (the former ``store_row``, and ``apply_values`` from
  bench/_before_leads.py) and
  ``lead.save()`` — on the first ``--per-row`` rows (default 3,000), as rows per second.

Reported: seconds, rows/s, peak RSS of each process, and the ratios import / bulk_create (target:
within 3×) and import rows/s / per-row rows/s (target: at least 20×).

Run from the repository root:  .venv/bin/python bench/import_leads.py [--rows N] [--per-row N]
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _before_leads as before  # noqa: E402
from _common import machine, no_network, peak_rss_mib, run_json_worker, setup_django, table  # noqa: E402

HEADER = ["企業名", "法人番号", "業種", "所在地", "資本金", "従業員数", "設立年", "電話番号", "公式サイト"]
PLACES = [("東京都", "港区", "芝"), ("東京都", "渋谷区", "道玄坂"), ("大阪府", "大阪市北区", "梅田"),
          ("愛知県", "名古屋市中区", "栄"), ("福岡県", "福岡市博多区", "博多駅前"), ("北海道", "札幌市中央区", "北1条西"),
          ("神奈川県", "横浜市西区", "みなとみらい"), ("宮城県", "仙台市青葉区", "一番町")]
INDUSTRIES = ["情報通信業", "製造業", "卸売業", "小売業", "建設業", "不動産業", "人材サービス", "医療・福祉"]
FORMS = ["株式会社{}", "{}株式会社", "有限会社{}", "合同会社{}"]
SYLLABLES = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"


def corporate_number(base: int) -> str:
    """A valid 法人番号 from a 12-digit base (check digit per 国税庁「法人番号の構成」)."""
    digits = f"{base:012d}"
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(digits), start=1))
    return f"{9 - total % 9}{digits}"


def generate(rows: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    out = [HEADER]
    for i in range(rows):
        stem = "".join(rng.choice(SYLLABLES) for _ in range(4)) + str(i)
        prefecture, city, town = rng.choice(PLACES)
        out.append([
            rng.choice(FORMS).format(stem),
            corporate_number(100_000_000_000 + i * 7) if rng.random() < 0.8 else "",
            rng.choice(INDUSTRIES),
            f"{prefecture}{city}{town}{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}",
            f"{rng.choice([100, 300, 500, 1000, 3000, 5000]):,}万円",
            f"{rng.randint(3, 5000):,}名",
            f"{rng.randint(1950, 2024)}年",
            f"03-{rng.randint(5000, 6999)}-{rng.randint(1000, 9999)}",
            f"https://www.example{i}.co.jp/",
        ])
    return out


def write_file(path: Path, rows: int) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(generate(rows))
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))


def per_row_import(path: Path, limit: int) -> dict:
    """The import loop as it was before the bulk import (kept here as the baseline)."""
    from django.db import transaction

    from hokan.core import ja
    from hokan.core.fields import FieldValue
    from hokan.core.tabular import read_table
    from hokan.leads.import_leads import map_headers, parse_row
    from hokan.leads.models import Lead
    from hokan.leads.store import is_blank

    def _differs(current: object, new: object) -> bool:
        if current is None or current == "":
            return True
        try:
            return int(current) != int(new)
        except (TypeError, ValueError):
            return str(current) != str(new)

    def find_existing(values: dict) -> Lead | None:
        number = values.get("corporate_number")
        if number:
            found = Lead.objects.filter(corporate_number=number).first()
            if found:
                return found
        candidates = list(Lead.objects.filter(name_key=ja.company_name_key(str(values["name"])))[:2])
        return candidates[0] if len(candidates) == 1 else None

    table_ = read_table(path)
    _, header = next(table_.rows)
    mapping, _ = map_headers(header)
    started, cpu = time.perf_counter(), time.process_time()
    done = 0
    for number, cells in table_.rows:
        if done >= limit:
            break
        values = parse_row(cells, mapping, source=path.name, row=number)
        with transaction.atomic():
            lead = find_existing(values)
            created = lead is None
            if created:
                lead = Lead(name=str(values["name"]))
            changed = [FieldValue(field=n, value=v, raw=str(v), quote="", source_url=None, method="manual",
                                  confidence=1.0, extractor=f"import:{path.name}"[:40])
                       for n, v in values.items() if created or is_blank(getattr(lead, n)) or _differs(getattr(lead, n), v)]
            if before.apply_values(lead, changed, only_missing=False):
                lead.ai_source = Lead.Source.MANUAL
                lead.save()
        done += 1
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rows": done}


def bare_bulk_create(path: Path) -> dict:
    """Parse outside the timer, then only the inserts the import makes."""
    from django.db import transaction
    from django.utils import timezone

    from hokan.core import ja
    from hokan.core.tabular import read_table
    from hokan.leads.import_leads import map_headers, parse_row
    from hokan.leads.models import Lead, LeadFieldSource

    table_ = read_table(path)
    _, header = next(table_.rows)
    mapping, _ = map_headers(header)
    parsed = [parse_row(cells, mapping, source=path.name, row=number) for number, cells in table_.rows]
    result: dict = {"rows": len(parsed)}
    for with_sources in (False, True):
        Lead.objects.all().delete()
        now = timezone.now()
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(parsed), 1000):
            chunk = parsed[start : start + 1000]
            with transaction.atomic():
                leads = [Lead(**values, name_key=ja.company_name_key(str(values["name"])), ai_source="manual")
                         for values in chunk]
                Lead.objects.bulk_create(leads, batch_size=500)
                if with_sources:
                    LeadFieldSource.objects.bulk_create(
                        [LeadFieldSource(lead=lead, field=name, method="manual", raw=str(value), confidence=1.0,
                                         extractor=f"import:{path.name}"[:40], observed_at=now)
                         for lead, values in zip(leads, chunk) for name, value in values.items()],
                        batch_size=500,
                    )
        result["seconds" if with_sources else "leads_only_s"] = time.perf_counter() - started
        result["cpu" if with_sources else "leads_only_cpu"] = time.process_time() - cpu
    result["sources"] = LeadFieldSource.objects.count()
    return result


def worker(mode: str, folder: str, path: Path, per_row: int) -> dict:
    no_network()
    setup_django(folder)
    from hokan.leads.import_leads import import_leads
    from hokan.leads.models import Lead, LeadFieldSource

    result: dict = {"mode": mode}
    if mode == "import":
        started, cpu = time.perf_counter(), time.process_time()
        report = import_leads(path)
        result["seconds"] = time.perf_counter() - started
        result["cpu"] = time.process_time() - cpu
        result["rows"] = report.rows
        result["outcomes"] = [report.created, report.updated, report.unchanged, len(report.errors)]
        result["sources"] = LeadFieldSource.objects.count()
        started, cpu = time.perf_counter(), time.process_time()
        again = import_leads(path)
        result["reimport_s"] = time.perf_counter() - started
        result["reimport_cpu"] = time.process_time() - cpu
        result["reimport_outcomes"] = [again.created, again.updated, again.unchanged, len(again.errors)]
    elif mode == "bulk_create":
        result.update(bare_bulk_create(path))
    else:
        result.update(per_row_import(path, per_row))
    result["leads"] = Lead.objects.count()
    result["rss_peak_mib"] = peak_rss_mib()
    return result


def run_worker(mode: str, folder: Path, path: Path, per_row: int) -> dict:
    return run_json_worker(__file__, ["--worker", mode, "--folder", str(folder), "--file", str(path),
                                      "--per-row", str(per_row)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--per-row", type=int, default=3_000)
    parser.add_argument("--worker", choices=("import", "bulk_create", "per_row"))
    parser.add_argument("--folder")
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, Path(args.file), args.per_row)))
        return 0
    print(f"lead import: {args.rows:,} generated rows, 9 columns ({machine()})")
    with tempfile.TemporaryDirectory(prefix="hokan-bench-leads-import-", ignore_cleanup_errors=True) as tmp:
        path = Path(tmp) / "leads.csv"
        write_file(path, args.rows)
        runs = {}
        for mode in ("import", "bulk_create", "per_row"):
            (Path(tmp) / mode).mkdir()
            runs[mode] = run_worker(mode, Path(tmp) / mode, path, args.per_row)
    imp, bulk, per_row = runs["import"], runs["bulk_create"], runs["per_row"]
    n = imp["rows"]
    print(f"import: {imp['outcomes'][0]:,} created, {imp['outcomes'][3]} bad rows, {imp['sources']:,} provenance rows; "
          f"bulk_create: {bulk['leads']:,} leads, {bulk['sources']:,} provenance rows\n")
    bulk_n, per_n = bulk["rows"], per_row["rows"]
    print(table(
        ("run", "rows", "wall s", "CPU s", "rows/s (wall)", "rows/s (CPU)", "peak RSS MiB"),
        [
            ("import_leads", f"{n:,}", f"{imp['seconds']:.2f}", f"{imp['cpu']:.2f}", f"{n / imp['seconds']:,.0f}",
             f"{n / imp['cpu']:,.0f}", f"{imp['rss_peak_mib']:.0f}"),
            ("re-import (no change)", f"{n:,}", f"{imp['reimport_s']:.2f}", f"{imp['reimport_cpu']:.2f}",
             f"{n / imp['reimport_s']:,.0f}", f"{n / imp['reimport_cpu']:,.0f}", ""),
            ("floor: bare bulk_create + provenance", f"{bulk_n:,}", f"{bulk['seconds']:.2f}", f"{bulk['cpu']:.2f}",
             f"{bulk_n / bulk['seconds']:,.0f}", f"{bulk_n / bulk['cpu']:,.0f}", f"{bulk['rss_peak_mib']:.0f}"),
            ("floor: bare bulk_create, leads only", f"{bulk_n:,}", f"{bulk['leads_only_s']:.2f}",
             f"{bulk['leads_only_cpu']:.2f}", f"{bulk_n / bulk['leads_only_s']:,.0f}",
             f"{bulk_n / bulk['leads_only_cpu']:,.0f}", ""),
            ("before: per-row import", f"{per_n:,}", f"{per_row['seconds']:.2f}", f"{per_row['cpu']:.2f}",
             f"{per_n / per_row['seconds']:,.0f}", f"{per_n / per_row['cpu']:,.0f}", f"{per_row['rss_peak_mib']:.0f}"),
        ],
    ))
    print("\nratios (wall | CPU; CPU time is what a busy machine distorts least):")
    for label, ours, floor in (
        ("import / bare bulk_create with provenance (target ≤ 3x)", (imp["seconds"], imp["cpu"]), (bulk["seconds"], bulk["cpu"])),
        ("import / bare bulk_create, leads only", (imp["seconds"], imp["cpu"]), (bulk["leads_only_s"], bulk["leads_only_cpu"])),
        ("re-import / import", (imp["reimport_s"], imp["reimport_cpu"]), (imp["seconds"], imp["cpu"])),
    ):
        print(f"  {label}: {ours[0] / floor[0]:.2f}x | {ours[1] / floor[1]:.2f}x")
    speed_wall = (n / imp["seconds"]) / (per_n / per_row["seconds"])
    speed_cpu = (n / imp["cpu"]) / (per_n / per_row["cpu"])
    print(f"  import rows/s / per-row rows/s (target ≥ 20x): {speed_wall:.1f}x | {speed_cpu:.1f}x faster")
    print(f"  re-import outcomes created/updated/unchanged/errors: {imp['reimport_outcomes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
