"""Write the demo lead list: the real companies whose pages are in the shared snapshot.

Only the company name and website are written, everything else is blank: the demo shows
what hokan fills. The website is the site's homepage when the snapshot holds it, else the
saved page's URL. Reads $HOKAN_SHARED_DATA/company_pages/{labels.json,snapshot.csv}.

Usage: python scripts/make_demo_leads.py OUT.csv
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

# (name as a sales list would have it, 法人番号 or "", the name as the EDINET list spells it)
REGISTRY_LEADS = (
    ("トヨタ自動車株式会社", "1180301018771", "トヨタ自動車株式会社"),
    ("(株)サカタのタネ", "", "株式会社　サカタのタネ"),
    ("任天堂株式会社", "", "任天堂株式会社"),
)
EDINET_UTF8 = "company_truth/edinet/EdinetcodeDlInfo_20260811_utf8.csv"


def registry_leads(shared: Path) -> list[tuple[str, str]]:
    """[(name, 法人番号)] of REGISTRY_LEADS that the shared EDINET list holds."""
    path = shared / EDINET_UTF8
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    return [(name, number) for name, number, listed in REGISTRY_LEADS if f'"{listed}"' in text]


def main(out: Path) -> None:
    shared = Path(os.environ.get("HOKAN_SHARED_DATA", "../shared/data"))
    folder = shared / "company_pages"
    if not (folder / "snapshot.csv").is_file():
        sys.exit(f"共有データが見つかりません: {folder}（HOKAN_SHARED_DATA を設定してください）")
    with (folder / "snapshot.csv").open(encoding="utf-8") as handle:
        snapshot = list(csv.DictReader(handle))
    url_of = {row["path"]: row["url"] for row in snapshot}
    urls = {row["url"] for row in snapshot}
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["企業名", "公式サイト", "法人番号"])
        for name, number in registry_leads(shared):
            writer.writerow([name, "", number])
        for label in labels:
            page_url = url_of.get(label["file"])
            if page_url is None:
                continue
            parts = urlsplit(page_url)
            home = f"{parts.scheme}://{parts.netloc}/"
            writer.writerow([label["name"], home if home in urls else page_url, ""])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
