"""Score :func:`~hokan.core.extract.rules.extract_profile` against hand-labelled pages.

The folder holds the pages, ``labels.json`` (one object per page: ``file``, ``name``,
``address``, ``capital_yen``, ``corporate_number``, ``employees``, ``established``,
``phone``, ``representative``) and optionally ``snapshot.csv`` (url,path,content_type) giving
each page's URL and content type. A label of None means "not on the page": any value
extracted for it is a false positive. A labelled value that is itself invalid (a 14-digit
法人番号) also means "must not be extracted".

Both sides are normalised with :mod:`hokan.core.ja` before comparing:

- ``address``: prefecture + city + rest, width-folded, without spaces, postal code and
  parenthetical notes (the label may lack the prefecture: it is inferred from the city);
- ``established``: the year; ``phone``: national format; ``capital``/``employees``: ints;
- ``representative``: the person's name without spaces; ``name``: the normalised company
  name without spaces; ``corporate_number``: 13 validated digits.

A wrong value counts as one false positive and one false negative.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hokan.core.extract.rules import extract_profile
from hokan.core.fields import FieldValue
from hokan.core.ja import (
    fold,
    normalize_company_name,
    parse_corporate_number,
    parse_phone,
    parse_year,
    split_address,
    split_representative,
)
from hokan.core.web import decode_html

# Evaluated field → label key in labels.json.
LABELLED_FIELDS: dict[str, str] = {
    "name": "name",
    "address": "address",
    "capital": "capital_yen",
    "corporate_number": "corporate_number",
    "employee_count": "employees",
    "established_year": "established",
    "phone": "phone",
    "representative_name": "representative",
}
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】")
_SPACES = re.compile(r"\s+")


@dataclass
class FieldScore:
    """Counts for one field: tp (right), fp (extracted but wrong or unlabelled), fn (missed or wrong)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        """tp / (tp + fp), or None when nothing was extracted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """tp / (tp + fn), or None when nothing was labelled."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: expected None means "not on the page", got None means "missed"."""

    file: str
    field: str
    expected: Any
    got: Any
    quote: str | None


@dataclass
class Report:
    """Per-field scores over all pages, their sum, and every mismatch."""

    pages: int = 0
    fields: dict[str, FieldScore] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def total(self) -> FieldScore:
        """All fields together."""
        return FieldScore(
            tp=sum(s.tp for s in self.fields.values()),
            fp=sum(s.fp for s in self.fields.values()),
            fn=sum(s.fn for s in self.fields.values()),
        )

    def rows(self) -> list[tuple[str, int, int, int, float | None, float | None]]:
        """(field, tp, fp, fn, precision, recall) per field, then "合計" for the total."""
        out = [(name, s.tp, s.fp, s.fn, s.precision, s.recall) for name, s in self.fields.items()]
        t = self.total
        out.append(("合計", t.tp, t.fp, t.fn, t.precision, t.recall))
        return out

    def table(self) -> str:
        """A plain-text table of :meth:`rows` (for logs and test output)."""

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        lines = [f"{'field':<20} {'TP':>3} {'FP':>3} {'FN':>3} {'precision':>9} {'recall':>7}"]
        for name, tp, fp, fn, p, r in self.rows():
            lines.append(f"{name:<20} {tp:>3} {fp:>3} {fn:>3} {pct(p):>9} {pct(r):>7}")
        return "\n".join(lines)


def _norm_address(text: str) -> str | None:
    text = _PARENS.sub("", fold(text))
    address = split_address(text)
    if address is None:
        return None
    return _SPACES.sub("", f"{address.prefecture}{address.city or ''}{fold(address.rest)}")


def expected_value(field_name: str, label: Any) -> Any:
    """The label of one field, normalised for comparison (None when absent or invalid)."""
    if label is None or label == "":
        return None
    if field_name == "address":
        return _norm_address(str(label))
    if field_name == "established_year":
        return parse_year(str(label))
    if field_name == "phone":
        phone = parse_phone(str(label))
        return phone.national if phone else None
    if field_name == "representative_name":
        rep = split_representative(str(label))
        return rep.name.replace(" ", "") if rep else None
    if field_name == "corporate_number":
        return parse_corporate_number(str(label)) if re.fullmatch(r"\d{13}", str(label)) else None
    if field_name == "name":
        return _SPACES.sub("", normalize_company_name(str(label)))
    return int(label)


def extracted_value(field_name: str, found: dict[str, FieldValue]) -> Any:
    """The extracted value of one evaluated field, normalised like :func:`expected_value`."""
    if field_name == "address":
        parts = [found.get(k) for k in ("prefecture", "city", "location")]
        if any(p is None for p in parts):
            return None
        return _SPACES.sub("", fold("".join(str(p.value) for p in parts if p is not None)))
    value = found.get(field_name)
    if value is None:
        return None
    if field_name == "representative_name":
        return str(value.value).replace(" ", "")
    if field_name == "name":
        return _SPACES.sub("", normalize_company_name(str(value.value)))
    return value.value


def load_pages(folder: Path) -> list[tuple[dict[str, Any], str, str | None]]:
    """(label object, decoded html, url) for every labelled page of ``folder``."""
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    snapshot: dict[str, tuple[str, str | None]] = {}
    if (folder / "snapshot.csv").is_file():
        with (folder / "snapshot.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                snapshot[row["path"]] = (row["url"], row.get("content_type") or None)
    pages = []
    for label in labels:
        url, content_type = snapshot.get(label["file"], (None, None))
        html, _ = decode_html((folder / label["file"]).read_bytes(), content_type)
        pages.append((label, html, url))
    return pages


def evaluate(folder: Path) -> Report:
    """Run extract_profile on every labelled page of ``folder`` and score it (see module doc).

    Raises FileNotFoundError when ``folder/labels.json`` or a labelled page is missing.
    """
    report = Report(fields={name: FieldScore() for name in LABELLED_FIELDS})
    for label, html, url in load_pages(folder):
        report.pages += 1
        found = extract_profile(html, url=url)
        for field_name, key in LABELLED_FIELDS.items():
            expected = expected_value(field_name, label.get(key))
            got = extracted_value(field_name, found)
            score = report.fields[field_name]
            if got is None and expected is None:
                continue
            if got is not None and got == expected:
                score.tp += 1
                continue
            if got is not None:
                score.fp += 1
            if expected is not None:
                score.fn += 1
            quote_of = found.get("prefecture" if field_name == "address" else field_name)
            report.mismatches.append(
                Mismatch(label["file"], field_name, expected, got, quote_of.quote if quote_of else None)
            )
    return report
