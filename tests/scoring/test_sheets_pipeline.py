"""``hokan scoring run --sheet-url URL`` as a user runs it (issue 11 §1, §2 Writer, §8 "a Sheets
fake that answers 429 and 500"): a real process on a SQLite file with Redis (the shared Sheets
quota and the LLM limiter), the fake Sheets API + token endpoint and the fake provider on
127.0.0.1. The rows are read from the sheet, the scores stream back into it in batches (a 429
on the way), and a sheet that keeps answering 500 stops the run naming the rows not written —
which the resumed run writes without asking the provider again."""

from __future__ import annotations

import json

import pytest

from tests.fakes.faulty_provider import FaultyProvider
from tests.fakes.sheets_server import FakeSheetsServer, Fault
from tests.scoring.fake_scorer import ScoringAnswers, expected_score
from tests.scoring.helpers import site_factory  # noqa: F401  (a fixture)
from tests.scoring.helpers import CATEGORIES, texts, write_categories
from tests.servers import redis_server_url  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow


def sheet_site(site_factory, provider, sheets, info):  # noqa: F811
    return site_factory(provider, GOOGLE_SERVICE_ACCOUNT_JSON=json.dumps(info), HOKAN_SHEETS_API_BASE_URL=sheets.base_url,
                        HOKAN_SHEETS_MAX_RETRIES="2", HOKAN_SHEETS_BACKOFF_MAX_S="0.1",
                        HOKAN_SCORING_CHUNK_ROW_LIMIT="10", HOKAN_SCORING_UTTERANCES_PER_CALL="5")


def run_args(site, url, job):
    return ("scoring", "run", "--sheet-url", url, "--categories", str(site.tmp / "cats.json"),
            "--text-column", "発話", "--id-column", "ID", "--job", job)


def check_sheet(values, utterances):
    header = values[0]
    assert header[:2] == ["ID", "発話"] and header[2:] == [c["name"] for c in CATEGORIES] + ["採点ステータス"]
    assert len(values) == len(utterances) + 1
    for row, text in zip(values[1:], utterances, strict=True):
        assert row[1] == text
        for offset, cat in enumerate(CATEGORIES):
            assert row[2 + offset] == pytest.approx(expected_score(text, cat["name"]), abs=1e-9)
        assert row[-1] == "完了"


def test_a_google_sheet_is_read_scored_and_written_back_through_a_429(site_factory):  # noqa: F811
    utterances = texts(20, prefix="シート")
    answers = ScoringAnswers()
    with FakeSheetsServer() as sheets, FaultyProvider(answer=answers) as provider:
        info = sheets.service_account()
        sid = sheets.add_spreadsheet([["ID", "発話"]] + [[f"s{i}", t] for i, t in enumerate(utterances)],
                                     readers=[info["client_email"]])
        sheets.fail("write", Fault.rate_limited(retry_after="0.2"))
        site = sheet_site(site_factory, provider, sheets, info)
        write_categories(site.tmp / "cats.json")
        done = site.hokan(*run_args(site, sheets.url(sid), "sheet"))
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        check_sheet(sheets.values(sid), utterances)
        writes = sheets.writes
    assert answers.billed == {t: 1 for t in utterances}
    assert writes[0].status == 429 and all(w.status == 200 for w in writes[1:])
    assert len(writes) <= 12  # batched: a handful of batchUpdate requests for 20 rows x 4 cells
    assert all(len(w.json["data"]) >= 1 for w in writes if w.path.endswith("values:batchUpdate"))


def test_a_sheet_answering_500_stops_the_run_naming_the_rows_then_resume_writes_them(site_factory):  # noqa: F811
    utterances = texts(10, prefix="書込失敗")
    answers = ScoringAnswers()
    with FakeSheetsServer() as sheets, FaultyProvider(answer=answers) as provider:
        info = sheets.service_account()
        sid = sheets.add_spreadsheet([["ID", "発話"]] + [[f"s{i}", t] for i, t in enumerate(utterances)],
                                     readers=[info["client_email"]])
        sheets.always_fail("write", Fault.error(500))
        site = sheet_site(site_factory, provider, sheets, info)
        write_categories(site.tmp / "cats.json")
        stopped = site.hokan(*run_args(site, sheets.url(sid), "refused"))
        output = stopped.stdout + stopped.stderr
        assert stopped.returncode == 2, output[-3000:]
        assert "未書き込みの行" in output and "HTTP 500" in output
        assert site.state("refused")["cells_ok"] == 30  # scored and stored: nothing lost
        assert sheets.values(sid)[0] == ["ID", "発話"]  # nothing reached the sheet
        assert len(sheets.writes) == 3  # one flush: the first attempt and 2 retries, not retried again at close
        paid = answers.calls

        sheets.always_fail("write", None)  # Google is back
        again = site.hokan(*run_args(site, sheets.url(sid), "refused"))
        assert again.returncode == 0, again.stdout + again.stderr[-3000:]
        check_sheet(sheets.values(sid), utterances)
    assert answers.calls == paid and answers.billed == {t: 1 for t in utterances}  # not asked again
