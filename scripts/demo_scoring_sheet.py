"""The scoring demo's sheet and its display (scripts/demo_scoring.sh).

    python scripts/demo_scoring_sheet.py make OUT.csv [--rows 40]   # a sheet of real utterances
    python scripts/demo_scoring_sheet.py show SCORED.csv            # the scored sheet as a table

``make`` writes JMultiWOZ-TC user turns of the held-out split (hokan.scoring.offline_eval,
fixed seed) as a UTF-8 CSV with the columns ID, 発話, 正解ラベル (the dataset's tool label, kept
only to show agreement). ``show`` prints, per row, the utterance, the label, the category with the
highest score, that score and the status column, then the agreement of the top category with
the label on this sheet.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

LABEL = "正解ラベル"
TEXT = "発話"
STATUS = "採点ステータス"


def make(out: Path, rows: int) -> None:
    from hokan.scoring.offline_eval import load, sample

    shared = Path(os.environ.get("HOKAN_SHARED_DATA", REPO.parent / "shared" / "data"))
    turns = sample(load(shared), "test", rows, seed=2026)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", TEXT, LABEL])
        for number, turn in enumerate(turns, start=1):
            writer.writerow([f"U{number:03d}", turn.text, "|".join(sorted(turn.labels))])
    print(f"{out}: {len(turns)} 行（JMultiWOZ-TC の発話、CC BY 4.0）")


def show(path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        lines = list(reader)
    status = next((f for f in fields if f not in ("ID", TEXT, LABEL) and "ステータス" in f), fields[-1])
    categories = [f for f in fields if f not in ("ID", TEXT, LABEL, status)]
    table = Table(title=f"採点結果: {path.name}（{len(lines)} 行 × {len(categories)} カテゴリ）")
    for header in ("ID", TEXT, LABEL, "最上位カテゴリ", "スコア", "ステータス"):
        table.add_column(header, overflow="fold", max_width=48 if header == TEXT else None)
    agree = scored = 0
    for line in lines:
        values = {c: float(line[c]) for c in categories if line.get(c, "") != ""}
        best = max(values, key=values.get) if values else ""
        if best:
            scored += 1
            agree += best in line.get(LABEL, "").split("|")
        mark = "" if not best else ("✓ " if best in line.get(LABEL, "").split("|") else "✗ ")
        table.add_row(line.get("ID", ""), line.get(TEXT, "")[:80], line.get(LABEL, ""), mark + best,
                      f"{values[best]:g}" if best else "", line.get(status, ""))
    console = Console()
    console.print(table)
    if scored:
        console.print(f"最上位カテゴリと正解ラベルの一致: {agree}/{scored} 行（{agree / scored:.0%}）")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    m.add_argument("--rows", type=int, default=40)
    s = sub.add_parser("show")
    s.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.out, args.rows)
    else:
        show(args.path)


if __name__ == "__main__":
    main()
