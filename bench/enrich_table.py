"""Peak memory of the results output of ``hokan leads enrich`` for a large run.

A run's report for ``--leads`` leads (default 5,000) is built in memory: each lead with 10
filled values (value, method, confidence, a quote of ~40 characters) and 5 still-missing
fields, as the offline demo produces them. Then, each in its own process (peak memory is
per process):

- ``baseline``: build the report and print the summary only (``--no-table``);
- ``first rows``: the default output — the summary and the first ``TABLE_LEADS`` companies;
- ``full table``: ``--all`` (what every run printed before issue 8 §4).

Output goes to a rich ``Console`` writing to /dev/null at 160 columns (what the demo uses).
Reported: peak RSS of each and the ratio to the baseline.

Run from the repository root:  .venv/bin/python bench/enrich_table.py [--leads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, peak_rss_mib, setup_django, table  # noqa: E402

FIELDS = ("industry", "business_description", "prefecture", "city", "location", "postal_code", "employee_count",
          "capital", "established_year", "phone")
MISSING = ("corporate_number", "facebook_url", "revenue", "contact_email", "representative_title")


def build_report(leads: int):
    from hokan.core.fields import FieldValue
    from hokan.leads.enrich import EnrichReport, LeadOutcome

    report = EnrichReport(run_id="bench", dry_run=False, provider="offline")
    for i in range(leads):
        values = {
            name: FieldValue(field=name, value=(1000 * i + n if name in ("employee_count", "capital") else f"値{i}-{n}"),
                             raw=f"値{i}-{n}", quote=f"{name} の根拠の文章 {i} 番目の会社の {n} 番目の項目です",
                             source_url=f"https://example{i}.co.jp/company/", method="rule", confidence=0.9)
            for n, name in enumerate(FIELDS)
        }
        report.outcomes.append(LeadOutcome(
            lead_id=i + 1, name=f"株式会社ベンチ{i}", missing_before=list(FIELDS + MISSING), filled=values,
            still_missing=list(MISSING), fetched=[f"https://example{i}.co.jp/", f"https://example{i}.co.jp/company/"],
            llm="offline",
        ))
    return report


def child(mode: str, leads: int, folder: str) -> None:
    """One measurement: build, print, report peak RSS as JSON on stdout."""
    setup_django(folder)
    from rich.console import Console

    from hokan.leads import command

    with open("/dev/null", "w", encoding="utf-8") as sink:
        command.console = Console(file=sink, width=160, force_terminal=False)
        report = build_report(leads)
        started = time.perf_counter()
        if mode == "first":
            command._print_values(report, limit=command.TABLE_LEADS)
        elif mode == "full":
            command._print_values(report, limit=None)
        command._print_summary(report)
        elapsed = time.perf_counter() - started
    print(json.dumps({"mode": mode, "peak_mib": peak_rss_mib(), "print_s": elapsed}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--child", choices=("baseline", "first", "full"))
    parser.add_argument("--folder")
    args = parser.parse_args()
    no_network()
    if args.child:
        child(args.child, args.leads, args.folder)
        return 0
    results = {}
    for mode in ("baseline", "first", "full"):
        with tempfile.TemporaryDirectory(prefix="hokan-bench-") as folder:
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--leads", str(args.leads), "--folder", folder],
                cwd=REPO, capture_output=True, text=True, check=True,
            )
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["baseline"]["peak_mib"]
    print(f"results output of `hokan leads enrich`, {args.leads:,} leads ({machine()})\n")
    labels = {"baseline": "baseline: summary only (--no-table)", "first": "default: summary + first rows",
              "full": "--all: the full table (the old default)"}
    print(table(
        ("output", "peak MiB", "ratio to baseline", "print s"),
        [(labels[m], f"{r['peak_mib']:.0f}", f"{r['peak_mib'] / base:.2f}x", f"{r['print_s']:.2f}")
         for m, r in results.items()],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
