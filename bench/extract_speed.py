"""Speed of the rule extraction: ``extract_profile`` versus a bare lxml parse, in the same run.

Reads every saved page of the shared snapshot ($HOKAN_SHARED_DATA/company_pages/*.html and
jsonld_pages/*.html, 20 pages; decoded once with ``hokan.core.web.decode_html`` and the
content type of snapshot.csv, outside the timing), then, ``--repeat`` times, for each page:

- ``extract``: ``hokan.core.extract.extract_profile(html, url=url)`` — parse, visible text,
  label/value pairs, JSON-LD, and every field rule;
- ``baseline``: ``lxml.html.fromstring(html).text_content()`` — the cheapest way to get a
  page's text with the same parser;
- ``old path``: ``extract_profile`` as it was before issue 8 §4 — ``labels.label_kind`` not
  memoised and ``pairs._glued`` classifying each label prefix before it checks the value
  pattern (both restored for that call only, see ``old_label_path``). Its output is compared
  with the current path's on every page: the run fails (exit 1) if any value differs.

The three alternate page by page, so that all see the same machine load. Reported: pages per
second for each, the ratios extract / baseline (how many bare parses one extraction costs)
and extract / old path, and the slowest pages by median extraction time with their own ratio
and size.

Run from the repository root:  .venv/bin/python bench/extract_speed.py [--repeat N] [--slowest K]
No network: sockets other than loopback are refused (bench/_common.py); the pages are files.
"""

from __future__ import annotations

import argparse
import contextlib
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


@contextlib.contextmanager
def old_label_path():
    """Run ``extract_profile`` on the pre-issue-8 path inside the block: ``label_kind``
    without its memo and the label-first ``_glued``. Restored afterwards."""
    from hokan.core.extract import labels, pairs

    uncached = labels.label_kind.__wrapped__

    def glued_label_first(folded: str) -> re.Match[str] | None:
        for size in range(2, min(8, len(folded) - 1) + 1):
            head, tail = folded[:size], folded[size:]
            if uncached(head) in pairs._SPACE_KINDS and pairs._GLUED_VALUE_START.match(tail):
                return re.match(rf"^({re.escape(head)})(.+)$", folded)
        return None

    saved = (labels.label_kind, pairs.label_kind, pairs._glued)
    labels.label_kind = pairs.label_kind = uncached
    pairs._glued = glued_label_first
    try:
        yield
    finally:
        labels.label_kind, pairs.label_kind, pairs._glued = saved


def comparable(found: dict) -> dict:
    """A page's values without the time they were read at."""
    return {name: {k: v for k, v in value.as_dict().items() if k != "observed_at"} for name, value in found.items()}


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
    differ: list[str] = []
    for name, html, url in pages:  # warm-up (imports, regex compilation, lxml) and the output check
        found = extract_profile(html, url=url)
        baseline(html)
        with old_label_path():
            old = extract_profile(html, url=url)
        if comparable(found) != comparable(old):
            differ.append(name)

    times: dict[str, dict[str, list[float]]] = {name: {"extract": [], "baseline": [], "old": []} for name, _, _ in pages}
    fields = {name: 0 for name, _, _ in pages}
    for _ in range(args.repeat):
        for name, html, url in pages:
            started = time.perf_counter()
            found = extract_profile(html, url=url)
            middle = time.perf_counter()
            baseline(html)
            ended = time.perf_counter()
            with old_label_path():
                old_started = time.perf_counter()
                extract_profile(html, url=url)
                old_ended = time.perf_counter()
            times[name]["extract"].append(middle - started)
            times[name]["baseline"].append(ended - middle)
            times[name]["old"].append(old_ended - old_started)
            fields[name] = len(found)

    total_extract = sum(sum(t["extract"]) for t in times.values())
    total_base = sum(sum(t["baseline"]) for t in times.values())
    total_old = sum(sum(t["old"]) for t in times.values())
    n = len(pages) * args.repeat
    size = sum(len(html) for _, html, _ in pages)
    print(f"rule extraction: {len(pages)} pages ({size / 1000:,.0f} k characters) x {args.repeat} passes ({machine()})\n")
    print(table(
        ("run", "pages/s", "ms/page (mean)", "total s"),
        [
            ("extract_profile", f"{n / total_extract:,.0f}", f"{total_extract / n * 1000:.2f}", f"{total_extract:.2f}"),
            ("old path: label_kind not memoised, label first in _glued", f"{n / total_old:,.0f}",
             f"{total_old / n * 1000:.2f}", f"{total_old:.2f}"),
            ("baseline: lxml fromstring + text_content", f"{n / total_base:,.0f}", f"{total_base / n * 1000:.2f}",
             f"{total_base:.2f}"),
        ],
    ))
    old_ratios = [statistics.median(t["extract"]) / statistics.median(t["old"]) for t in times.values()]
    print(f"\nratio extract / old path: {total_extract / total_old:.2f}x "
          f"(per page median {statistics.median(old_ratios):.2f}x, range {min(old_ratios):.2f}x-{max(old_ratios):.2f}x); "
          + (f"OUTPUT DIFFERS on {', '.join(differ)}" if differ else f"identical output on all {len(pages)} pages"))
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
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
