"""Speed of the registry import: the bulk importer versus one save per row, in the same run.

Imports the shared EDINET code list ($HOKAN_SHARED_DATA/company_truth/edinet/
EdinetcodeDlInfo_20260811_cp932.csv, 11,374 rows, CP932) into a fresh SQLite database twice,
each in its own subprocess and its own database file in a temporary folder:

- ``bulk``: ``hokan.registry.import_registry.import_registry(path)`` — what ``hokan registry
  import`` runs (chunks of 500 rows, bulk INSERT / executemany UPDATE), then the same file again
  (the re-import: nothing changes, every company "unchanged");
- ``rows`` (the baseline): the same parsing (``parse_file``), then
  ``hokan.registry.records.upsert(parsed, source_file=…)`` for each parsed row — the
  per-row path the importer uses for single rows (API results): a lookup and one ``save()``
  per row, each committed on its own (Django autocommit).

Both include reading and validating the file (``parse_file``), which is timed on its own too.
Reported: seconds, companies written per second, the ratio baseline / bulk (how many times
faster the bulk import is), the re-import's seconds and its ratio to the first import, and
memory: the peak resident set size of each subprocess (``ru_maxrss``) and how much it grew
during the import (peak after minus peak before, both after Django start-up and migrations;
for the re-import: growth over the first import's peak).

Run from the repository root:  .venv/bin/python bench/registry_import.py [--rows-limit N]
(--rows-limit: write only the first N parsed companies in both runs, for a quick check).
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, no_network, peak_rss_mib, run_json_worker, setup_django, shared_data, table  # noqa: E402

EDINET_FILE = Path("company_truth") / "edinet" / "EdinetcodeDlInfo_20260811_cp932.csv"


def worker(mode: str, folder: str, path: Path, rows_limit: int | None) -> dict:
    """Run one import in this process (a fresh database in ``folder``); the measurements."""
    no_network()
    setup_django(folder)
    from hokan.registry import import_registry as importer
    from hokan.registry import records
    from hokan.registry.models import CompanyRecord

    result: dict = {"mode": mode}
    if rows_limit is not None:
        importer_parse = importer.parse_file

        def limited(*args, **kwargs):  # the same rows for both modes
            parsed, report = importer_parse(*args, **kwargs)
            return parsed[:rows_limit], report

        importer.parse_file = limited  # bench-only: shorten the file, the code under test is unchanged
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    parsed, report = importer.parse_file(path)
    result["parse_s"] = time.perf_counter() - started
    result["rows_read"] = report.rows
    result["companies"] = len(parsed)
    del parsed  # both runs below parse the file again, inside the timed part
    if mode == "bulk":
        started = time.perf_counter()
        report = importer.import_registry(path)
        result["seconds"] = time.perf_counter() - started
        result["outcomes"] = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
        result["errors"] = len(report.errors)
        result["rss_peak_mib"] = peak_rss_mib()
        started = time.perf_counter()
        again = importer.import_registry(path)
        result["reimport_s"] = time.perf_counter() - started
        result["reimport_rss_peak_mib"] = peak_rss_mib()
        result["reimport_outcomes"] = {"created": again.created, "updated": again.updated, "unchanged": again.unchanged}
    else:
        started = time.perf_counter()
        outcomes = {"created": 0, "updated": 0, "unchanged": 0}
        parsed, report = importer.parse_file(path)  # parsing is part of the import, as in bulk
        for row in parsed:
            _, outcome = records.upsert(row, source_file=path.name)
            outcomes[outcome] += 1
        result["seconds"] = time.perf_counter() - started
        result["outcomes"] = outcomes
        result["errors"] = len(report.errors)
        result["rss_peak_mib"] = peak_rss_mib()
    result["rss_before_mib"] = rss_before
    result["records"] = CompanyRecord.objects.count()
    return result


def run_worker(mode: str, folder: Path, path: Path, rows_limit: int | None) -> dict:
    args = ["--worker", mode, "--folder", str(folder), "--file", str(path)]
    return run_json_worker(__file__, args + (["--rows-limit", str(rows_limit)] if rows_limit is not None else []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-limit", type=int, default=None)
    parser.add_argument("--worker", choices=("bulk", "rows"))
    parser.add_argument("--folder")
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, Path(args.file), args.rows_limit)))
        return 0

    path = shared_data() / EDINET_FILE
    if not path.is_file():
        print(f"shared data not found: {path}", file=sys.stderr)
        return 2
    print(f"registry import: {path.name} ({machine()})")
    with tempfile.TemporaryDirectory(prefix="hokan-bench-import-", ignore_cleanup_errors=True) as tmp:
        (Path(tmp) / "bulk").mkdir()
        (Path(tmp) / "rows").mkdir()
        bulk = run_worker("bulk", Path(tmp) / "bulk", path, args.rows_limit)
        rows = run_worker("rows", Path(tmp) / "rows", path, args.rows_limit)
    if bulk["records"] != rows["records"] or bulk["outcomes"] != rows["outcomes"]:
        print(f"warning: the two databases differ: bulk {bulk['records']} records {bulk['outcomes']}, "
              f"rows {rows['records']} records {rows['outcomes']}")
    n = bulk["companies"]
    print(f"{bulk['rows_read']:,} rows read, {n:,} companies written "
          f"({bulk['outcomes']['created']:,} created), {bulk['errors']} bad rows; "
          f"parsing alone {bulk['parse_s']:.2f} s\n")
    print(table(
        ("run", "seconds", "companies/s", "peak RSS MiB", "RSS growth MiB"),
        [
            ("bulk import_registry", f"{bulk['seconds']:.2f}", f"{n / bulk['seconds']:,.0f}",
             f"{bulk['rss_peak_mib']:.0f}", f"{bulk['rss_peak_mib'] - bulk['rss_before_mib']:.0f}"),
            ("baseline: upsert per row", f"{rows['seconds']:.2f}", f"{n / rows['seconds']:,.0f}",
             f"{rows['rss_peak_mib']:.0f}", f"{rows['rss_peak_mib'] - rows['rss_before_mib']:.0f}"),
            ("re-import (bulk, no change)", f"{bulk['reimport_s']:.2f}", f"{n / bulk['reimport_s']:,.0f}",
             f"{bulk['reimport_rss_peak_mib']:.0f}", f"{bulk['reimport_rss_peak_mib'] - bulk['rss_peak_mib']:.0f}"),
        ],
    ))
    again = bulk["reimport_outcomes"]
    print(f"\nratio baseline / bulk: {rows['seconds'] / bulk['seconds']:.1f}x (bulk is that many times faster)")
    print(f"ratio re-import / first import: {bulk['reimport_s'] / bulk['seconds']:.2f}x "
          f"(re-import: {again['unchanged']:,} unchanged, {again['updated']} updated, {again['created']} created)")
    print(f"ratio peak RSS baseline / bulk: {rows['rss_peak_mib'] / bulk['rss_peak_mib']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
