"""Score the rule extraction against the hand-labelled pages of ``municipal/service_pages``.

The folder holds ``pages/<slug>.html``, ``labels.json`` (per page: municipality, url, ``values``
{variable: {verbatim, normalised, also}}, ``absent`` [variables], ``distractors``) and
``snapshot.csv`` (url,path,content_type; the content type gives the charset). Its README's rule
("Checking a result against the key") is applied as written:

- compare after folding (``core.ja.fold``: NFKC, dash variants as "-") and deleting whitespace;
- a value is right when it equals or contains ``verbatim`` or one of ``also``, or — phone,
  postal_code, email, fee, online_available — when its normalised form equals ``normalised``
  (digits for a phone, ``NNN-NNNN``, lower-case e-mail, int yen or 無料, true);
- a value for a variable listed in ``absent`` is an invention: a false positive;
- a wrong value for a labelled variable is one false positive and one false negative.

Precision first (issue 10 §7): the set is split by government into a *fit* part, whose pages
were used to write and tune the rules, and a *held-out* part, reported separately; the split is
``HELD_OUT`` (by municipality, so no held-out government has a page in the fit part).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from hokan.core.extract.evaluate import FieldScore, Mismatch, Report
from hokan.core.web import decode_html
from hokan.municipal.extraction import extract_page
from hokan.municipal.extraction.text import squeeze

VARIABLES: tuple[str, ...] = (
    "department", "phone", "email", "address", "postal_code", "office_hours", "fee", "required_documents",
    "application_method", "online_available", "location", "access", "parking",
)  # fmt: skip
# Governments whose pages were kept out of the rules' tuning (9 pages, 6 governments).
HELD_OUT: frozenset[str] = frozenset({"東京都", "愛媛県", "高知県", "岡山市", "岡山県", "徳島県"})
SPLITS = ("all", "fit", "held_out")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", squeeze(text))


def is_right(variable: str, got: Any, raw: str, label: dict[str, Any]) -> bool:
    """Whether the extracted value (``got``, printed ``raw``) matches a labelled value."""
    answers = [label["verbatim"], *label.get("also", [])]
    text = squeeze(str(got))
    if any(squeeze(answer) and squeeze(answer) in text for answer in answers):
        return True
    normalised = label.get("normalised")
    if variable == "phone":
        return _digits(str(got)) == str(normalised)
    if variable == "postal_code":
        return _digits(str(got)) == _digits(str(normalised))
    if variable == "email":
        return text.lower() == str(normalised).lower()
    if variable == "fee":
        got_norm = "無料" if "無料" in text else _digits(text.split("円")[0])
        return str(got_norm) == str(normalised) or (normalised == "無料" and got_norm == "無料")
    if variable == "online_available":
        return got is True and normalised in (True, "true")
    return False


def load(folder: Path) -> list[tuple[str, dict[str, Any], str]]:
    """[(page path, label record, html)] of the folder, the html decoded as its snapshot says."""
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    types: dict[str, str] = {}
    snapshot = folder / "snapshot.csv"
    if snapshot.is_file():
        with snapshot.open(encoding="utf-8", newline="") as handle:
            types = {row["path"]: row.get("content_type", "") for row in csv.DictReader(handle)}
    out = []
    for path, record in labels.items():
        html, _ = decode_html((folder / path).read_bytes(), types.get(path) or None)
        out.append((path, record, html))
    return out


def evaluate(folder: Path, *, split: str = "all") -> Report:
    """Run the rules (no LLM) over the labelled pages of ``split`` ("all", "fit", "held_out").

    Returns ``core.extract.evaluate.Report`` (the one report of ``hokan extract evaluate``): per
    variable ``FieldScore`` (tp, fp, fn, precision, recall), the "合計" row, every mismatch
    (expected None = invented, got None = missed).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    report = Report(fields={name: FieldScore() for name in VARIABLES})
    for path, record, html in load(folder):
        held = record.get("municipality") in HELD_OUT
        if (split == "fit" and held) or (split == "held_out" and not held):
            continue
        report.pages += 1
        found = extract_page(None, html=html, url=record.get("url"), variables=VARIABLES)
        values = record.get("values", {})
        for name in VARIABLES:
            score = report.fields[name]
            value = found.get(name)
            label = values.get(name)
            if value is None:
                if label is not None:
                    score.fn += 1
                    report.mismatches.append(Mismatch(path, name, label["verbatim"], None, None))
                continue
            if label is None:
                score.fp += 1
                report.mismatches.append(Mismatch(path, name, None, value.value, value.quote))
            elif is_right(name, value.value, value.raw, label):
                score.tp += 1
            else:
                score.fp += 1
                score.fn += 1
                report.mismatches.append(Mismatch(path, name, label["verbatim"], value.value, value.quote))
    return report
