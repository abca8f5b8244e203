"""A scoring job stopped by a fatal error, and a hung provider (issue 11 §2, §3): the budget of
the "scoring" ledger runs out → the whole pipeline stops with a clear message, held chunks are put
back, nothing stored is lost; raising the limit and running the job again finishes it without
paying any row twice. A request that never answers ends at the call's deadline."""

from __future__ import annotations

import csv

import pytest

from tests.fakes.faulty_provider import FaultyProvider
from tests.fakes.openai_server import Reply
from tests.scoring.fake_scorer import ScoringAnswers
from tests.scoring.helpers import site_factory  # noqa: F401  (a fixture)
from tests.scoring.helpers import texts, write_categories, write_csv
from tests.servers import redis_server_url  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow




def test_the_budget_stops_the_whole_run_cleanly_a_cancel_stops_a_running_process_and_no_row_is_paid_twice(
        site_factory):
    import time

    utterances = texts(200, prefix="予算")
    answers = ScoringAnswers()
    with FaultyProvider(answer=answers) as provider:
        s = site_factory(provider, HOKAN_SCORING_CHUNK_ROW_LIMIT="40", HOKAN_SCORING_MONTHLY_CALL_LIMIT="10",
                 HOKAN_SCORING_CONCURRENCY_MAX="2", HOKAN_SCORING_CALL_DEADLINE_S="3")
        write_csv(s.tmp / "in.csv", utterances)
        write_categories(s.tmp / "cats.json")
        provider.enqueue(Reply.hang())  # the first request never answers
        args = ("scoring", "run", str(s.tmp / "in.csv"), "--categories", str(s.tmp / "cats.json"), "--text-column",
                "発話", "--output", str(s.tmp / "out.csv"), "--job", "budget")
        stopped = s.hokan(*args)
        halfway = s.state("budget")
        held = s.query("SELECT COUNT(*) FROM core_jobchunk WHERE status='running'")[0][0]
        s.env["HOKAN_SCORING_MONTHLY_CALL_LIMIT"] = "1000"
        provider.latency_s = 1.0  # slow answers: the next run is still working when it is cancelled
        running = s.start("scoring", "resume", "budget")
        while answers.calls < 12 and running.poll() is None:
            time.sleep(0.05)
        cancel = s.hokan("scoring", "cancel", "budget")
        cancelled_at = time.monotonic()
        running.communicate(timeout=60)
        sent_after_cancel = sum(1 for at, _ in provider.arrivals() if at > cancelled_at)
        after_cancel = s.state("budget")
        held_after_cancel = s.query("SELECT COUNT(*) FROM core_jobchunk WHERE status='running'")[0][0]
        provider.latency_s = 0.0
        finished = s.hokan("scoring", "resume", "budget")
        final = s.state("budget")
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr[-2000:]
    assert "予算の上限に達したため停止しました" in stopped.stdout and "Traceback" not in stopped.stderr
    assert halfway["status"] == "interrupted" and "予算" in halfway["message"] and held == 0  # chunks put back
    assert 0 < halfway["cells_ok"] < 360 and halfway["calls"] <= 10
    assert cancel.returncode == 0 and "中断" in cancel.stdout
    # the running process noticed within its second: what it sent after the cancel is what its 2
    # workers (1 s answers) send in about two seconds, not the rest of the sheet
    assert running.returncode == 2 and sent_after_cancel <= 6, sent_after_cancel
    assert after_cancel["status"] == "interrupted" and held_after_cancel == 0
    assert halfway["cells_ok"] < after_cancel["cells_ok"] < 600  # what it stored before stopping is kept
    assert finished.returncode == 0, finished.stdout + finished.stderr[-2000:]
    assert answers.billed == {t: 1 for t in utterances}  # the hung call was never answered; no row paid twice
    assert (final["status"], final["cells_ok"], final["calls"]) == ("completed", 600, 40)
    with (s.tmp / "out.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert [r["採点ステータス"] for r in csv.DictReader(handle)] == ["完了"] * 200


def test_two_jobs_in_two_processes_share_one_rate_limit(site_factory):
    import threading
    import time

    from tests.scoring.fake_scorer import parse_prompt

    answers = ScoringAnswers()
    both_at_work = threading.Event()
    released: list[float] = []

    def held_answer(body):
        # Answers wait until both processes are at work, so that they overlap however late the
        # second one starts. (A 503 outage did this before, but a process whose retry backoff had
        # grown long started after the other had done most of its rows: CI, 2026-12-01.)
        both_at_work.wait(120)
        return answers(body)

    with FaultyProvider(answer=held_answer, per_minute=600, latency_s=0.05) as provider:
        # the held first answers must not time out on the client (which would ask again and pay twice)
        s = site_factory(provider, HOKAN_LLM_RATE_LIMIT_PER_MIN="600", HOKAN_LLM_RATE_LIMIT_BURST="1",
                         HOKAN_LLM_TIMEOUT_S="150")
        write_categories(s.tmp / "cats.json")
        procs = []
        for name in ("甲", "乙"):
            write_csv(s.tmp / f"{name}.csv", texts(400, prefix=name))
            procs.append(s.start("scoring", "run", str(s.tmp / f"{name}.csv"), "--categories", str(s.tmp / "cats.json"),
                                 "--text-column", "発話", "--job", name))
        # "At work": each has sent a request, or each has its job running (the first one's held
        # requests may hold every slot of the shared concurrency limit, so the second one waits)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not both_at_work.is_set():
            sent = {parse_prompt(body)[1][0]["text"][0] for _, body in provider.arrivals()}
            running = s.query("SELECT COUNT(*) FROM scoring_scoringjob s JOIN core_job j ON j.id = s.job_id "
                              "WHERE j.status = 'running'")[0][0]
            if sent >= {"甲", "乙"} or (running == 2 and sent):
                released.append(time.monotonic())
                both_at_work.set()
            time.sleep(0.05)
        outputs = [proc.communicate(timeout=240) for proc in procs]
        opened = released[0] if released else float("inf")
        arrivals = [(at, parse_prompt(body)[1][0]["text"][0]) for at, body in provider.arrivals() if at >= opened]
    assert both_at_work.is_set()  # the hold ended because both were at work, not by its timeout
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert provider.rate_limited == 0 and answers.calls == 160  # 2 × 400 rows / 5 per call (16 s at 600/min: a long overlap)
    times = {name: [at for at, who in arrivals if who == name] for name in ("甲", "乙")}
    assert min(times["乙"]) < max(times["甲"]) and min(times["甲"]) < max(times["乙"])  # they ran at the same time
    overlap = (max(min(times["甲"]), min(times["乙"])), min(max(times["甲"]), max(times["乙"])))
    span = max(times["甲"] + times["乙"]) - min(times["甲"] + times["乙"])
    # neither starves: freed slots go to the oldest waiter across processes (core.ratelimit's
    # queue); before it, the process with more threads kept every slot and the overlap was 1 s of 16
    assert overlap[1] - overlap[0] >= max(2.0, span / 3), (overlap, span)
    # one pace for both processes: 600/min = one request per 0.1 s, about 20 in any 2 s (a few
    # more where the arrivals jitter) — two processes pacing on their own would send about 40
    both = sorted(at for at, _ in arrivals)
    busiest = max(sum(1 for t in both if start <= t < start + 2.0) for start in both)
    assert busiest <= 24, busiest


def test_chunks_run_by_the_registered_handler_as_celery_workers_run_them(site_factory):
    import json
    import subprocess
    import sys

    from tests.scoring.helpers import REPO_ROOT

    utterances = texts(60, prefix="委任")
    answers = ScoringAnswers(broken={utterances[45]: "prose"})
    with FaultyProvider(answer=answers) as provider:
        s = site_factory(provider, HOKAN_SCORING_CHUNK_ROW_LIMIT="20", HOKAN_SCORING_CHUNK_RETRY_LIMIT="0")
        write_csv(s.tmp / "in.csv", utterances)
        write_categories(s.tmp / "cats.json")
        done = subprocess.run([sys.executable, "-m", "tests.scoring.chunk_worker", "tasks", str(s.tmp / "in.csv"),
                               str(s.tmp / "cats.json"), str(s.tmp / "out.csv")], env=s.env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=240)
        state = s.state("tasks")
    assert done.returncode == 0, done.stderr[-3000:]
    progress = json.loads(done.stdout.strip().splitlines()[-1])
    assert (progress["status"], progress["done"], progress["failed"]) == ("failed", 2, 1)
    chunk = state["chunks"][2]
    assert chunk["status"] == "failed" and "CellsNotScored" in chunk["last_error"] and "47行目" in chunk["last_error"]
    assert {t: n for t, n in answers.billed.items() if n != 1} == {utterances[45]: 3, **{
        t: 2 for t in utterances[45:50] if t != utterances[45]}}  # the prose call, then alone
    assert state["cells_ok"] == 59 * 3
    with (s.tmp / "out.csv").open(encoding="utf-8-sig", newline="") as handle:
        statuses = [r["採点ステータス"] for r in csv.DictReader(handle)]
    assert statuses.count("完了") == 59 and statuses[45].startswith("エラー（")
