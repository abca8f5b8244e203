"""``hokan scoring run|status|resume|cancel`` as a user runs them: real processes on a SQLite
file, the fake provider on 127.0.0.1 (issue 11 §6, §8)."""

from __future__ import annotations

import csv

import pytest

from tests.fakes.faulty_provider import FaultyProvider
from tests.scoring.fake_scorer import ScoringAnswers, expected_score
from tests.scoring.helpers import site_factory  # noqa: F401  (a fixture)
from tests.scoring.helpers import CATEGORIES, texts, write_categories, write_csv
from tests.servers import redis_server_url  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow




def read_output(path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def run_args(site, *extra):
    return ("scoring", "run", str(site.tmp / "in.csv"), "--categories", str(site.tmp / "cats.json"),
            "--text-column", "発話", "--id-column", "ID", "--output", str(site.tmp / "out.csv"), *extra)


def test_dry_run_then_1500_rows_in_3_chunks_each_paid_once_then_a_second_job_is_all_cache(site_factory):
    answers = ScoringAnswers()
    utterances = texts(1500)
    with FaultyProvider(answer=answers) as provider:
        site = site_factory(provider)
        write_csv(site.tmp / "in.csv", utterances)
        write_categories(site.tmp / "cats.json")
        dry = site.hokan(*run_args(site, "--job", "first", "--dry-run"))
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert len(provider.requests) == 0  # a dry run asks nothing
        assert "1,500 行" in dry.stdout and "300 回" in dry.stdout and "料金表（sonar）" in dry.stdout
        done = site.hokan(*run_args(site, "--job", "first"))  # the job the dry run planned
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ジョブ「first」を再開します" in done.stderr
        status = site.state("first")
        assert answers.billed == {t: 1 for t in utterances}  # every row paid exactly once
        assert answers.calls == 300 and set(answers.sizes) == {5}
        # the same sheet again, as another job: answered from the cache, nothing paid
        again = site.hokan(*run_args(site, "--job", "second", "--output", str(site.tmp / "out2.csv")))
        assert again.returncode == 0, again.stdout + again.stderr
        second = site.state("second")
    assert answers.calls == 300  # no new call
    assert (status["status"], status["chunks_total"], status["chunks_done"], status["calls"]) == ("completed", 3, 3, 300)
    assert [c["row_range"] for c in status["chunks"]] == [[0, 500], [500, 1000], [1000, 1500]]
    assert (second["status"], second["calls"], second["cache_hits"]) == ("completed", 0, 4500)
    assert "ヒット率 100.0%" in again.stdout
    rows = read_output(site.tmp / "out.csv")
    assert len(rows) == 1500 and rows == read_output(site.tmp / "out2.csv")
    for row in rows[::37]:
        for cat in CATEGORIES:
            assert float(row[cat["name"]]) == pytest.approx(expected_score(row["発話"], cat["name"]), abs=1e-9)
        assert row["採点ステータス"] == "完了" and row["備考"] == "x"
