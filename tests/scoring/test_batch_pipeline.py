"""``hokan scoring run --mode batch`` as a user runs it (issue 11 §4): a real process on a SQLite
file with Redis (tests/scoring/helpers.py ``site_factory``), the fake OpenAI Batch API on
127.0.0.1 (and the fake Sheets API for a sheet input). Each chunk goes out as one batch with
the online mode's prompts and keys; the answers are validated by the normal pipeline into the
result store, the sheet and the output file; a
failed line is asked online; a run killed with SIGKILL mid-poll resumes the same batches
(counted at the fake: no second upload or create, every row paid once)."""

from __future__ import annotations

import csv
import json
import time
from decimal import Decimal

import pytest

from tests.fakes.openai_batch_server import FakeOpenAIBatchServer
from tests.fakes.openai_server import Reply
from tests.fakes.sheets_server import FakeSheetsServer
from tests.scoring.fake_scorer import ScoringAnswers, expected_score
from tests.scoring.helpers import site_factory  # noqa: F401  (a fixture)
from tests.scoring.helpers import CATEGORIES, texts, write_categories, write_csv
from tests.servers import redis_server_url  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow


def batch_site(site_factory, fake, **env):  # noqa: F811
    return site_factory(fake, HOKAN_LLM_PROVIDER="openai", OPENAI_API_KEY="test-key", HOKAN_LLM_BASE_URL=fake.v1_url,
                        HOKAN_LLM_MODEL="gpt-4.1-mini", HOKAN_SCORING_CHUNK_ROW_LIMIT="10",
                        HOKAN_SCORING_UTTERANCES_PER_CALL="5", HOKAN_SCORING_BATCH_POLL_INTERVAL_S="0.05", **env)


def run_args(site, job):
    return ("scoring", "run", str(site.tmp / "in.csv"), "--categories", str(site.tmp / "cats.json"),
            "--text-column", "発話", "--id-column", "ID", "--output", str(site.tmp / "out.csv"), "--job", job,
            "--mode", "batch")


def read_output(path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def answers_of(site, job):
    (sjob_id,), = site.query("SELECT id FROM scoring_scoringjob WHERE name = ?", job)
    return {key: Decimal(str(cost)) for key, cost in site.query(
        "SELECT key, cost_usd FROM scoring_scoringanswer WHERE job_id = ?", sjob_id)}


def test_batch_mode_on_a_google_sheet_scores_every_row_once_and_asks_a_failed_line_online(site_factory):  # noqa: F811
    """The input is a Google Sheet (the fake Sheets API): the results go back into it and into
    the output file."""
    utterances = texts(20, prefix="一括")
    answers = ScoringAnswers()
    with FakeOpenAIBatchServer(polls_to_finish=2) as fake, FakeSheetsServer() as sheets:
        fake.line_responder = answers
        fake.online_responder = answers
        # the line of rows 5-9 (chunk 0, second group) fails with a 500 inside the batch
        fake.line_fault = lambda index, key: Reply.error(500, message="upstream error") if key.endswith(":b0:r5-10") else None
        info = sheets.service_account()
        sid = sheets.add_spreadsheet([["ID", "発話"]] + [[f"s{i}", t] for i, t in enumerate(utterances)],
                                     readers=[info["client_email"]])
        site = batch_site(site_factory, fake, GOOGLE_SERVICE_ACCOUNT_JSON=json.dumps(info),
                          HOKAN_SHEETS_API_BASE_URL=sheets.base_url)
        write_categories(site.tmp / "cats.json")
        args = ("scoring", "run", "--sheet-url", sheets.url(sid), "--categories", str(site.tmp / "cats.json"),
                "--text-column", "発話", "--id-column", "ID", "--output", str(site.tmp / "out.csv"), "--job", "batch",
                "--mode", "batch")
        dry = site.hokan(*args, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr[-3000:]
        assert "バッチ方式で半額" in dry.stdout and fake.requests == []  # priced at half, nothing sent
        done = site.hokan(*args)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        status = site.state("batch")
        assert fake.creates == 2 and fake.uploads == 2  # one batch per chunk of 10 rows
        assert fake.chat_requests == 1  # the failed line, asked online by the pipeline
        values = sheets.values(sid)
    assert values[0] == ["ID", "発話"] + [c["name"] for c in CATEGORIES] + ["採点ステータス"]
    for row, text in zip(values[1:], utterances, strict=True):
        assert row[2:5] == [pytest.approx(expected_score(text, c["name"]), abs=1e-9) for c in CATEGORIES]
        assert row[5] == "完了"
    assert answers.billed == {t: 1 for t in utterances}  # every row answered (and paid) once
    assert (status["status"], status["cells_ok"], status["chunks_done"]) == ("completed", 60, 2)
    paid = answers_of(site, "batch")
    batch = [cost for key, cost in paid.items() if key.endswith(":batch")]
    online = [cost for key, cost in paid.items() if not key.endswith(":batch")]
    assert len(batch) == 3 and len(online) == 1
    assert online[0] == 2 * batch[0] > 0  # the same tokens at full price online, half in the batch
    rows = read_output(site.tmp / "out.csv")
    assert len(rows) == 20
    for row in rows:
        for cat in CATEGORIES:
            assert float(row[cat["name"]]) == pytest.approx(expected_score(row["発話"], cat["name"]), abs=1e-9)
        assert row["採点ステータス"] == "完了"


def test_killed_mid_poll_resumes_the_same_batches_without_paying_twice(site_factory):  # noqa: F811
    utterances = texts(20, prefix="再開")
    answers = ScoringAnswers()
    with FakeOpenAIBatchServer(polls_to_finish=10**9) as fake:
        fake.line_responder = answers
        site = batch_site(site_factory, fake)
        write_csv(site.tmp / "in.csv", utterances)
        write_categories(site.tmp / "cats.json")
        proc = site.start(*run_args(site, "resumed"))
        deadline = time.monotonic() + 120
        while fake.polls < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL by PID, mid-poll
        proc.wait(timeout=10)
        assert proc.returncode == -9, proc.stderr.read()[-3000:] if proc.stderr else ""
        assert (fake.uploads, fake.creates) == (2, 2) and answers.billed == {}

        fake.polls_to_finish = 0  # the provider finishes the batches
        again = site.hokan(*run_args(site, "resumed"))
        assert again.returncode == 0, again.stdout + again.stderr[-3000:]
        assert (fake.uploads, fake.creates, fake.chat_requests) == (2, 2, 0)  # polled, never resubmitted
    assert answers.billed == {t: 1 for t in utterances}
    status = site.state("resumed")
    assert (status["status"], status["cells_ok"]) == ("completed", 60)
    assert len(answers_of(site, "resumed")) == 4
