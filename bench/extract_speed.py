"""Speed of the rule extraction: ``extract_profile`` versus a bare lxml parse, in the same run.

Reads every saved page of the shared snapshot ($HOKAN_SHARED_DATA/company_pages/*.html and
jsonld_pages/*.html, 20 pages; decoded once with ``hokan.core.web.decode_html`` and the
content type of snapshot.csv, outside the timing), then, ``--repeat`` times, for each page:

- ``extract``: ``hokan.core.extract.extract_profile(html, url=url)`` — parse, visible text,
  label/value pairs, JSON-LD, and every field rule;
- ``baseline``: ``lxml.html.fromstring(html).text_content()`` — the cheapest way to get a
  page's text with the same parser.

The two alternate page by page, so that both see the same machine load. Reported: pages per
second for each, the ratio extract / baseline (how many bare parses one extraction costs),
and the slowest pages by median extraction time with their own ratio and size.

Run from the repository root:  .venv/bin/python bench/extract_speed.py [--repeat N] [--slowest K]
No network: sockets other than loopback are refused (bench/_common.py); the pages are files.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, shared_data, table  # noqa: E402

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)


def load_pages(folder: Path) -> list[tuple[str, str, str | None]]:
    """[(relative path, decoded html, url or None)] for every .html file under ``folder``."""
    from hokan.core.web import decode_html

    snapshot: dict[str, tuple[str, str | None]] = {}
    if (folder / "snapshot.csv").is_file():
        with (folder / "snapshot.csv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                snapshot[row["path"]] = (row["url"], row.get("content_type") or None)
    pages = []
    for path in sorted(folder.rglob("*.html")):
        name = path.relative_to(folder).as_posix()
        url, content_type = snapshot.get(name, (None, None))
        html, _ = decode_html(path.read_bytes(), content_type)
        pages.append((name, html, url))
    return pages


def baseline(html: str) -> str:
    """Parse with lxml and take all text (lxml refuses str input with an XML declaration)."""
    import lxml.html

    return lxml.html.fromstring(_XML_DECL.sub("", html)).text_content()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over all pages (default 20)")
    parser.add_argument("--slowest", type=int, default=5, help="slowest pages to list (default 5)")
    args = parser.parse_args()
    no_network()
    sys.path.insert(0, str(REPO / "src"))
    from hokan.core.extract import extract_profile

    folder = shared_data() / "company_pages"
    pages = load_pages(folder)
    if not pages:
        print(f"no pages in {folder}", file=sys.stderr)
        return 2
    for name, html, url in pages:  # warm-up: imports, regex compilation, lxml
        extract_profile(html, url=url)
        baseline(html)

    times: dict[str, dict[str, list[float]]] = {name: {"extract": [], "baseline": []} for name, _, _ in pages}
    fields = {name: 0 for name, _, _ in pages}
    for _ in range(args.repeat):
        for name, html, url in pages:
            started = time.perf_counter()
            found = extract_profile(html, url=url)
            middle = time.perf_counter()
            baseline(html)
            ended = time.perf_counter()
            times[name]["extract"].append(middle - started)
            times[name]["baseline"].append(ended - middle)
            fields[name] = len(found)

    total_extract = sum(sum(t["extract"]) for t in times.values())
    total_base = sum(sum(t["baseline"]) for t in times.values())
    n = len(pages) * args.repeat
    size = sum(len(html) for _, html, _ in pages)
    print(f"rule extraction: {len(pages)} pages ({size / 1000:,.0f} k characters) x {args.repeat} passes ({machine()})\n")
    print(table(
        ("run", "pages/s", "ms/page (mean)", "total s"),
        [
            ("extract_profile", f"{n / total_extract:,.0f}", f"{total_extract / n * 1000:.2f}", f"{total_extract:.2f}"),
            ("baseline: lxml fromstring + text_content", f"{n / total_base:,.0f}", f"{total_base / n * 1000:.2f}",
             f"{total_base:.2f}"),
        ],
    ))
    medians = {
        name: (statistics.median(t["extract"]), statistics.median(t["baseline"])) for name, t in times.items()
    }
    per_page_ratios = [e / b for e, b in medians.values()]
    print(f"\nratio extract / baseline: {total_extract / total_base:.1f}x "
          f"(one extraction costs that many bare parses; per page median "
          f"{statistics.median(per_page_ratios):.1f}x, range {min(per_page_ratios):.1f}x-{max(per_page_ratios):.1f}x)")
    chars = {name: len(html) for name, html, _ in pages}
    slowest = sorted(medians, key=lambda name: medians[name][0], reverse=True)[: args.slowest]
    print(f"\nslowest pages (median of {args.repeat}):")
    print(table(
        ("page", "extract ms", "baseline ms", "ratio", "k chars", "fields"),
        [
            (name, f"{medians[name][0] * 1000:.2f}", f"{medians[name][1] * 1000:.2f}",
             f"{medians[name][0] / medians[name][1]:.1f}x", f"{chars[name] / 1000:.1f}", fields[name])
            for name in slowest
        ],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
