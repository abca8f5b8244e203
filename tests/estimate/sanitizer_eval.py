"""Recall and false-positive rate of the sanitiser on our labelled set, per kind.

``python -m tests.estimate.sanitizer_eval`` prints the table; ``test_sanitizer_quality.py``
asserts the targets of issue 9 §5 (PII recall ≥ 98 %, injection detection ≥ 95 %, benign
sentences altered ≤ 1 %).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hokan.core.ja.pii import TOKENS, mask_pii
from hokan.core.prompt_injection import FILTERED, filter_injection, is_injection

LABELLED = Path(__file__).resolve().parents[1] / "data" / "sanitizer_labelled.json"


@dataclass
class Report:
    found: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def rate(self, kind: str) -> float:
        return self.found[kind] / self.total[kind] if self.total[kind] else 1.0

    def overall(self, kinds: list[str]) -> float:
        found = sum(self.found[k] for k in kinds)
        total = sum(self.total[k] for k in kinds)
        return found / total if total else 1.0


def sanitise_free_text(text: str) -> str:
    """What a free-text answer (step 4 / step 12) becomes before an LLM reads it."""
    return filter_injection(mask_pii(text))


def evaluate() -> Report:
    data = json.loads(LABELLED.read_text(encoding="utf-8"))
    report = Report()
    for case in data["pii"]:
        kind = case["kind"]
        masked = mask_pii(case["text"])
        report.total[kind] += 1
        if case["secret"] not in masked and TOKENS[kind] in masked:
            report.found[kind] += 1
        else:
            report.misses.append(f"pii/{kind}: {case['text']!r} -> {masked!r}")
    for text in data["benign"]:
        report.total["benign_altered"] += 1
        out = sanitise_free_text(text)
        if out != text:
            report.found["benign_altered"] += 1
            report.misses.append(f"benign altered: {text!r} -> {out!r}")
    for case in data["injection"]:
        report.total["injection"] += 1
        out = filter_injection(case["text"])
        payload = case.get("payload")
        if is_injection(case["text"]) and FILTERED in out and (payload is None or payload not in out):
            report.found["injection"] += 1
        else:
            report.misses.append(f"injection missed: {case['text']!r} -> {out!r}")
    return report


def main() -> None:
    report = evaluate()
    pii_kinds = sorted(k for k in report.total if k in TOKENS)
    print(f"{'kind':<16}{'found':>7}{'total':>7}{'rate':>9}")
    for kind in [*pii_kinds, "injection", "benign_altered"]:
        print(f"{kind:<16}{report.found[kind]:>7}{report.total[kind]:>7}{report.rate(kind):>9.1%}")
    print(f"{'PII overall':<16}{'':>14}{report.overall(pii_kinds):>9.1%}")
    for miss in report.misses:
        print("  " + miss)


if __name__ == "__main__":
    main()
