"""Speed of the whole offline enrichment of the demo leads versus the rule extraction alone.

What ``scripts/demo.sh`` does, in one process with a temporary HOKAN_DATA_DIR (fresh SQLite):
write the demo lead list (``scripts/make_demo_leads.py``: the companies of the shared snapshot,
name and website only), import it (``hokan.leads.import_leads.import_leads``), enrich every lead
(``hokan.leads.enrich.enrich_leads``: empty local registry, the snapshot fetcher over
$HOKAN_SHARED_DATA/company_pages, the offline LLM client, no gBizINFO token, no Redis) and
export the CSV with sources (``export_leads``).

Baseline, in the same run: ``extract_profile`` alone over exactly the pages the enrichment
read (recorded by a thin wrapper around the snapshot fetcher), on their already decoded text.
The ratio enrich / extraction says how much the job adds around the rules: snapshot reads and
decoding, link finding and probing, the registry lookup, usage ledger, validation, and one
database transaction per lead with a provenance row per value.

``--repeat`` passes: before each one the leads are deleted and imported again, so every pass
starts from the same state (the daily record limit is raised for the benchmark).

Run from the repository root:  .venv/bin/python bench/enrich_demo.py [--repeat N]
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, setup_django, shared_data, table  # noqa: E402


class RecordingFetcher:
    """Delegates to a fetcher and keeps every page it returned (for the baseline)."""

    def __init__(self, fetcher) -> None:
        self.fetcher = fetcher
        self.pages: list = []

    def fetch(self, url: str):
        page = self.fetcher.fetch(url)
        self.pages.append(page)
        return page

    def close(self) -> None:
        self.fetcher.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes (default 5)")
    args = parser.parse_args()
    no_network()
    shared = shared_data()
    folder = shared / "company_pages"
    if not (folder / "snapshot.csv").is_file():
        print(f"shared data not found: {folder}", file=sys.stderr)
        return 2
    os.environ["HOKAN_SHARED_DATA"] = str(shared)
    os.environ["HOKAN_SNAPSHOT_DIR"] = str(folder)
    os.environ["POWERPLEXY_DAILY_RECORD_LIMIT"] = "1000000"
    with tempfile.TemporaryDirectory(prefix="hokan-bench-enrich-", ignore_cleanup_errors=True) as tmp:
        setup_django(tmp)
        return run(Path(tmp), folder, args.repeat)


def run(tmp: Path, folder: Path, repeat: int) -> int:
    sys.path.insert(0, str(REPO / "scripts"))
    import make_demo_leads

    from hokan.core.extract import extract_profile
    from hokan.core.llm import get_client
    from hokan.core.web.snapshot import SnapshotFetcher
    from hokan.leads.enrich import enrich_leads
    from hokan.leads.export_leads import export_leads
    from hokan.leads.import_leads import import_leads
    from hokan.leads.models import Lead

    # The job logs each value at INFO to its daily file (kept, as in a real run) and, through
    # the root logger, to the console: keep the console for warnings so the table stays readable.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    leads_csv = tmp / "demo_leads.csv"
    make_demo_leads.main(leads_csv)
    client = get_client()
    if client.available:
        print(f"an LLM provider is configured ({client.provider}); the benchmark runs offline only", file=sys.stderr)
        return 2
    timings: dict[str, list[float]] = {"import": [], "enrich": [], "export": [], "extract": []}
    filled = pages_read = leads = 0
    for _ in range(repeat + 1):  # the first pass warms up (imports, regexes) and is not counted
        Lead.objects.all().delete()
        fetcher = RecordingFetcher(SnapshotFetcher(folder))
        started = time.perf_counter()
        imported = import_leads(leads_csv)
        imported_s = time.perf_counter() - started
        started = time.perf_counter()
        report = enrich_leads(fetcher=fetcher, client=client)
        enrich_s = time.perf_counter() - started
        started = time.perf_counter()
        export_leads(tmp / "out.csv", with_sources=True)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        for page in fetcher.pages:
            extract_profile(page.text, url=page.final_url)
        extract_s = time.perf_counter() - started
        fetcher.close()
        if report.leads_failed or report.stopped_reason:
            print(f"enrichment did not complete: {report.leads_failed} failed, {report.stopped_reason}", file=sys.stderr)
            return 1
        for name, seconds in (("import", imported_s), ("enrich", enrich_s), ("export", export_s), ("extract", extract_s)):
            timings[name].append(seconds)
        leads, pages_read = imported.created, len(fetcher.pages)
        filled = sum(report.filled_by_method.values())
    for values in timings.values():
        del values[0]  # the warm-up pass

    med = {name: statistics.median(values) for name, values in timings.items()}
    print(f"offline enrichment of the demo leads: {leads} leads, {pages_read} pages read, {filled} values filled, "
          f"median of {repeat} passes ({machine()})\n")
    print(table(
        ("step", "seconds", "ms/lead", "leads/s"),
        [
            (label, f"{med[name]:.3f}", f"{med[name] / leads * 1000:.1f}", f"{leads / med[name]:,.1f}")
            for name, label in (
                ("import", "import_leads (demo CSV)"),
                ("enrich", "enrich_leads (registry, snapshot, rules, offline LLM)"),
                ("export", "export_leads (CSV with sources)"),
                ("extract", "baseline: extract_profile on the same pages"),
            )
        ],
    ))
    print(f"\nratio enrich / extraction alone: {med['enrich'] / med['extract']:.1f}x "
          f"(range over passes {min(e / x for e, x in zip(timings['enrich'], timings['extract'])):.1f}x-"
          f"{max(e / x for e, x in zip(timings['enrich'], timings['extract'])):.1f}x)")
    print(f"ratio import + enrich + export / extraction alone: "
          f"{(med['import'] + med['enrich'] + med['export']) / med['extract']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
