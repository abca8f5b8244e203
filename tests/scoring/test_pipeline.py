"""The pipeline under faults, as a user runs it (issue 11 §2, §3, §8): `hokan scoring run` in a
real process on a SQLite file, Redis for the shared limiter, ledger and cache, the fake provider
on 127.0.0.1 answering with broken JSON, missing and out-of-range scores, 500s and a 429 storm."""

from __future__ import annotations

import csv
import time

import pytest

from tests.fakes.faulty_provider import FaultyProvider
from tests.scoring.fake_scorer import ScoringAnswers, expected_score
from tests.scoring.helpers import site_factory  # noqa: F401  (a fixture)
from tests.scoring.helpers import CATEGORIES, texts, write_categories, write_csv
from tests.servers import redis_server_url  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow




def read_output(path):
    csv.field_size_limit(64 * 1024 * 1024)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def run_args(site, job, *extra):
    return ("scoring", "run", str(site.tmp / "in.csv"), "--categories", str(site.tmp / "cats.json"),
            "--text-column", "発話", "--id-column", "ID", "--output", str(site.tmp / "out.csv"), "--job", job, *extra)


def test_broken_answers_are_asked_again_alone_and_an_unscorable_row_fails_its_chunk_after_its_retry(site_factory):
    utterances = texts(200, prefix="故障")
    bad, huge = utterances[120], "あ" * 5_000_000  # a 5 MB cell (never sent: longer than the model takes)
    utterances[130] = huge
    once = {utterances[3]: "missing", utterances[57]: "out_of_range", utterances[171]: "wrong_type",
            utterances[190]: "truncated"}
    answers = ScoringAnswers(broken={bad: "prose"}, broken_once=dict(once))
    with FaultyProvider(answer=answers, error_rate=0.05, seed=11) as provider:
        site = site_factory(provider, HOKAN_SCORING_CHUNK_ROW_LIMIT="50", HOKAN_SCORING_CHUNK_RETRY_LIMIT="1")
        write_csv(site.tmp / "in.csv", utterances, encoding="cp932")  # Excel's CSV on Japanese Windows
        write_categories(site.tmp / "cats.json")
        provider.storm(1.5, retry_after_s=1, from_next_request=True)  # a 429 storm at the start
        done = site.hokan(*run_args(site, "faults"))
        status = site.status("faults")
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]  # finished, one chunk failed
    assert provider.rate_limited > 0 and provider.errors > 0  # the faults happened
    # paid work at the fake: each good row once; a row whose part was broken twice (the call,
    # then alone); the rows sharing the call with the prose answer twice; the bad row 3 + 2
    # (first try: call, alone, stricter re-ask; the chunk's retry: a call of that row alone, re-ask)
    group = set(utterances[120:125]) - {bad}
    for text in utterances:
        if text == huge:
            assert answers.billed[text] == 0
        elif text == bad:
            assert answers.billed[text] == 5
        elif text in once and once[text] != "truncated":
            assert answers.billed[text] == 2, once[text]
        elif text in group:
            assert answers.billed[text] == 2
        elif text in utterances[190:195]:
            assert 1 <= answers.billed[text] <= 2
        else:
            assert answers.billed[text] == 1, text
    assert status["status"] == "failed" and "チャンク 2" in status["message"]
    chunks = {c["chunk_id"]: c for c in status["chunks"]}
    assert [chunks[i]["status"] for i in range(4)] == ["done", "done", "failed", "done"]
    assert chunks[2]["retry_count"] == 1 and "122行目" in chunks[2]["last_error"]  # row 121 of data = line 122
    assert "発話が長すぎます" in chunks[2]["last_error"]
    assert status["cells_ok"] == 198 * 3 and status["cells_failed"] == 2 * 3
    rows = read_output(site.tmp / "out.csv")
    assert len(rows) == 200
    assert rows[120]["採点ステータス"].startswith("エラー（") and "再質問後も" in rows[120]["採点ステータス"]
    assert rows[120]["不満"] == "" and "発話が長すぎます" in rows[130]["採点ステータス"]
    for index in (0, 3, 57, 121, 171, 190, 199):
        row = rows[index]
        assert row["採点ステータス"] == "完了", index
        for cat in CATEGORIES:
            assert float(row[cat["name"]]) == pytest.approx(expected_score(utterances[index], cat["name"]))
    assert "429" in done.stdout and "再質問" in done.stdout


def test_killed_with_kill_9_and_run_again_loses_no_row_and_pays_no_row_twice(site_factory):
    utterances = texts(600, prefix="中断")
    answers = ScoringAnswers()
    with FaultyProvider(answer=answers, latency_s=0.2) as provider:
        site = site_factory(provider, HOKAN_SCORING_CHUNK_ROW_LIMIT="100", HOKAN_SCORING_CONCURRENCY_MAX="4")
        write_csv(site.tmp / "in.csv", utterances)
        write_categories(site.tmp / "cats.json")
        proc = site.start(*run_args(site, "killed"))
        deadline = time.monotonic() + 120
        while answers.calls < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        provider.outage(600, status=503, from_next_request=False)  # nothing answered from now on (unpaid 503s)
        time.sleep(1.0)  # the answers decided before the outage arrive and are stored
        paid_before = answers.calls
        proc.kill()  # SIGKILL by PID: no cleanup of any kind
        proc.wait(timeout=10)
        assert proc.returncode == -9
        stopped_in = site.query("SELECT COUNT(*) FROM core_jobchunk WHERE status='running'")[0][0]
        provider.outage(0, from_next_request=False)
        again = site.hokan(*run_args(site, "killed"))
        status = site.state("killed")
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    print(f"kill -9 after {paid_before} paid calls; resumed run: {answers.calls - paid_before} calls;",
          next((line for line in again.stdout.splitlines() if "今回の問い合わせ" in line), ""))
    assert 40 <= paid_before < 120 and stopped_in >= 1  # killed mid-run, a chunk held
    assert answers.billed == {t: 1 for t in utterances}  # no row lost, none paid twice
    assert answers.calls == 120
    assert (status["status"], status["cells_ok"], status["calls"]) == ("completed", 1800, 120)
    rows = read_output(site.tmp / "out.csv")
    assert [r["採点ステータス"] for r in rows] == ["完了"] * 600
