"""How much the registry fills for a lead list of company names only (issue 3, the closing note).

Builds a throw-away registry (SQLite in a temporary folder) from the shared EDINET code list and
the two gBizINFO-style CSVs, takes 200 company names from the EDINET list (every 40th row of the
8,085 company rows — individuals and foreign governments left out — so that the 200 spread over
the whole file), writes a quarter of them as (株), a quarter in full-width letters and a quarter
with extra spaces, and matches each name alone (no 法人番号, no prefecture) with
``hokan.registry.match.match_lead``. Prints how many leads matched, how many names were
ambiguous, and how many fields ``registry_values`` fills, in total and per field.

Run from the repository root:  .venv/bin/python bench/registry_fill.py
(HOKAN_SHARED_DATA points at the shared data folder; default ../shared/data)

Caveat: the names come from the same EDINET list the registry is built from, so "not found" is
expected to be near zero; the figures measure name normalisation, ambiguity and the number of
values the registry holds, not coverage of an arbitrary lead list.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SAMPLE_SIZE = 200
STEP = 40


def full_width(text: str) -> str:
    """ASCII letters/digits/punctuation and spaces to their full-width forms (as Excel users type)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in text)


def variant(name: str, index: int) -> str:
    """The name as a lead list might write it: as is, (株), full-width or with extra spaces."""
    kind = index % 4
    if kind == 1 and "株式会社" in name:
        return name.replace("株式会社", "(株)", 1)
    if kind == 2:
        return full_width(name)
    if kind == 3:
        return " " + name.replace("株式会社", "株式会社 ").replace("・", " ・ ") + "  "
    return name


def sample_names(path: Path) -> list[str]:
    text = path.read_bytes().decode("cp932")
    rows = list(csv.reader(io.StringIO(text, newline="")))[2:]  # title line, header
    companies = [r for r in rows if not r[1].startswith(("個人", "外国政府等"))]
    return [r[6] for r in companies[::STEP][:SAMPLE_SIZE]]


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    shared = Path(os.environ.get("HOKAN_SHARED_DATA", repo.parent / "shared" / "data")).resolve()
    truth = shared / "company_truth"
    edinet = truth / "edinet" / "EdinetcodeDlInfo_20260811_cp932.csv"
    if not edinet.is_file():
        print(f"shared data not found: {edinet}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hokan-bench-registry-", ignore_cleanup_errors=True) as folder:
        return run(edinet, truth, repo, folder)


def run(edinet: Path, truth: Path, repo: Path, folder: str) -> int:
    os.environ["HOKAN_DATA_DIR"] = folder
    os.environ["DATABASE_URL"] = f"sqlite:///{os.environ['HOKAN_DATA_DIR']}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "hokan.settings"
    sys.path.insert(0, str(repo / "src"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from hokan.registry.import_registry import import_registry
    from hokan.registry.match import REGISTRY_FIELDS, match_lead
    from hokan.registry.models import CompanyRecord

    for path in (edinet, truth / "gbizinfo_derived" / "it_companies_gbizinfo.csv",
                 truth / "gbizinfo_derived" / "tochigi_companies_sample10.csv"):
        started = time.monotonic()
        report = import_registry(path)
        print(f"import {path.name}: {report.rows} rows, {report.created} new, {report.updated} updated, "
              f"{len(report.errors)} errors, {time.monotonic() - started:.1f} s")
    print(f"registry: {CompanyRecord.objects.count()} records")

    names = [variant(name, i) for i, name in enumerate(sample_names(edinet))]
    statuses: Counter[str] = Counter()
    per_field: Counter[str] = Counter()
    by_variant: Counter[tuple[int, str]] = Counter()
    ambiguous: list[str] = []
    for index, name in enumerate(names):
        result = match_lead(corporate_number="", name=name)
        statuses[result.status] += 1
        by_variant[(index % 4, result.status)] += 1
        if result.status == "ambiguous":
            ambiguous.append(f"{name.strip()} ({len(result.candidates)} 件)")
        for value in result.values(REGISTRY_FIELDS):
            per_field[value.field] += 1
    total = sum(per_field.values())
    print(f"\nleads: {len(names)} names only (no 法人番号, no prefecture)")
    print("match: " + ", ".join(f"{s} {statuses[s]}" for s in ("name", "ambiguous", "not_found", "corporate_number")))
    labels = ("as is", "(株)", "full-width", "extra spaces")
    for kind, label in enumerate(labels):
        print(f"  {label:<12} " + ", ".join(f"{s} {by_variant[(kind, s)]}" for s in ("name", "ambiguous", "not_found")))
    print(f"fields filled: {total} of {len(names) * len(REGISTRY_FIELDS)} "
          f"({len(names)} leads x {len(REGISTRY_FIELDS)} registry fields)")
    for name in REGISTRY_FIELDS:
        print(f"  {name:<17} {per_field[name]}")
    print(f"ambiguous names ({len(ambiguous)}): " + "; ".join(ambiguous))

    # The same question for every company name of the EDINET list (as written, no prefecture).
    text = edinet.read_bytes().decode("cp932")
    rows = [r for r in list(csv.reader(io.StringIO(text, newline="")))[2:] if not r[1].startswith(("個人", "外国政府等"))]
    whole: Counter[str] = Counter(match_lead(corporate_number="", name=r[6]).status for r in rows)
    print(f"\nwhole EDINET company list ({len(rows)} names): "
          + ", ".join(f"{s} {whole[s]}" for s in ("name", "ambiguous", "not_found")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
