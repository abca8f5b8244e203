"""Batch mode (issue 11 §4): the OpenAI Batch API and the Gemini Batch API against local fakes
speaking their wire formats (tests/fakes/openai_batch_server.py, gemini_batch_server.py):
submit → poll → results at half price through the scoring ledger, a restart mid-poll resumes
the same batch (counted at the fake: one create), failed lines asked again online or
reported. Real ledger (database), real SDK/HTTP; the clock is a fake one moved by ``sleep``."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from hokan.core.budget import DatabaseLedger, Limits
from hokan.core.llm import GeminiClient, JsonRequest, OpenAICompatClient, complete_json_budgeted
from hokan.scoring.batch import (
    BatchError,
    BatchFailed,
    BatchItem,
    BatchRecord,
    BatchRunner,
    BatchTimeout,
    BatchUnknown,
    FileBatchStore,
    batch_backend,
)
from tests.fakes.clock import FakeClock
from tests.fakes.gemini_batch_server import FakeGeminiBatchServer
from tests.fakes.gemini_server import GeminiReply
from tests.fakes.openai_batch_server import FakeOpenAIBatchServer
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}


class Killed(BaseException):
    """The process dies here (like kill -9: nothing after it runs)."""


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def ledger():
    return DatabaseLedger(Limits(cost_usd=Decimal("10"), calls=1000, daily_records_setting=0), scope="scoring")


@pytest.fixture
def store(tmp_path):
    return FileBatchStore(tmp_path / "batches")


def items(n: int, prefix: str = "scoring:job1:b0:r") -> list[BatchItem]:
    return [BatchItem(f"{prefix}{i}-{i + 1}", JsonRequest(system="発話を採点してください", user=f"発話{i}: 良い",
                                                         schema=SCHEMA, schema_name="scores"))
            for i in range(n)]


def score_of(user_text: str) -> float:
    return int(user_text.split(":")[0].removeprefix("発話")) / 10


def openai_answer(body: dict) -> Reply:
    return Reply.json({"score": score_of(body["messages"][1]["content"])})


def gemini_answer(request: dict) -> GeminiReply:
    return GeminiReply.json({"score": score_of(request["contents"][0]["parts"][0]["text"])})


def runner_for(backend, store, ledger, clock, **kwargs) -> BatchRunner:
    return BatchRunner(backend, store=store, ledger=ledger, estimate_usd=Decimal("0.01"), poll_interval_s=60,
                       sleep=kwargs.pop("sleep", clock.sleep), clock=clock, **kwargs)


@pytest.fixture
def openai_fake():
    with FakeOpenAIBatchServer(polls_to_finish=3) as server:
        server.line_responder = openai_answer
        yield server


def openai_client(server, clock) -> OpenAICompatClient:
    return OpenAICompatClient("openai", "gpt-4.1-mini", "test-key", server.v1_url, sleep=clock.sleep,
                              rate_limit_wait_s=None, max_retries=3)


def test_openai_submit_poll_and_results_at_half_price(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    work = items(5)
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk0", work)

    assert not run.resumed and run.polls == 3 and run.failed == []
    assert {k: r.completion.data["score"] for k, r in run.results.items()} == {w.key: i / 10 for i, w in enumerate(work)}
    # gpt-4.1-mini $0.40 / $1.60 per 1M tokens, 120 + 30 tokens a line, half price in a batch
    assert all(r.completion.usage.cost_usd == Decimal("0.000048") for r in run.results.values())
    assert run.committed_usd == Decimal("0.000240")
    usage = ledger.snapshot()
    assert usage.cost_usd == Decimal("0.000240") and usage.calls == 5 and usage.reserved_calls == 0
    assert (openai_fake.uploads, openai_fake.creates) == (1, 1)
    assert clock.sleeps == [60, 60]  # two waits between three polls, none on the wall clock
    # the input file holds exactly what the online call would send, keyed by the idempotency key
    batch = next(iter(openai_fake.batches.values()))
    lines = [json.loads(x) for x in openai_fake.files[batch.input_file_id]["data"].decode().splitlines()]
    assert [line["custom_id"] for line in lines] == [w.key for w in work]
    assert lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"] == client._params(work[0].request)
    assert batch.metadata == {"hokan_key": "scoring:job1:chunk0"}
    assert store.get("scoring:job1:chunk0").state == "finished"


def test_a_restart_mid_poll_polls_the_same_batch(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    work = items(4)

    def die(seconds: float) -> None:
        raise Killed

    with pytest.raises(Killed):
        runner_for(batch_backend(client), store, ledger, clock, sleep=die).run("scoring:job1:chunk1", work)
    assert openai_fake.creates == 1 and ledger.snapshot().reserved_calls == 4  # in flight, reserved

    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk1", work)
    assert run.resumed and len(run.results) == 4 and run.failed == []
    assert (openai_fake.uploads, openai_fake.creates) == (1, 1)  # nothing submitted (or paid) twice
    usage = ledger.snapshot()
    assert usage.calls == 4 and usage.reserved_calls == 0 and usage.cost_usd == Decimal("0.000192")

    again = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk1", work)
    assert again.resumed and again.committed_usd == 0 and ledger.snapshot().cost_usd == Decimal("0.000192")
    assert openai_fake.creates == 1  # results downloaded again for free


def test_killed_between_create_and_record_finds_the_batch_by_its_key(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    work = items(3)
    backend = batch_backend(client)
    ledger.reserve(cost_usd=Decimal("0.015"), calls=3, key="scoring:job1:chunk2:batch")  # the dead run's
    store.put(BatchRecord("scoring:job1:chunk2", "openai", "gpt-4.1-mini", state="creating"))
    backend.submit("scoring:job1:chunk2", work)  # it reached the provider; the record never got the id
    for other in ("scoring:other:a", "scoring:other:b"):  # newer batches: ours is on the third page
        backend.submit(other, items(1, other + ":"))
    openai_fake.list_page_size = 1

    run = runner_for(backend, store, ledger, clock).run("scoring:job1:chunk2", work)
    assert run.resumed and run.failed == [] and openai_fake.creates == 3
    assert sum(1 for r in openai_fake.requests if r.method == "GET" and r.path == "/v1/batches") == 3  # paged
    assert ledger.snapshot().reserved_calls == 0

    store.put(BatchRecord("scoring:job1:chunk3", "openai", "gpt-4.1-mini", state="creating"))
    ledger.reserve(cost_usd=Decimal("0.015"), calls=3, key="scoring:job1:chunk3:batch")
    with pytest.raises(BatchUnknown, match="二重払いを避けるため再送信しません"):
        runner_for(backend, store, ledger, clock).run("scoring:job1:chunk3", items(3, "scoring:job1:b1:r"))
    assert openai_fake.creates == 3

    # stopped while uploading (the create request never left): submitted now, under the same reservation
    store.put(BatchRecord("scoring:job1:chunk4", "openai", "gpt-4.1-mini", state="submitting"))
    ledger.reserve(cost_usd=Decimal("0.015"), calls=3, key="scoring:job1:chunk4:batch")
    run = runner_for(backend, store, ledger, clock).run("scoring:job1:chunk4", items(3, "scoring:job1:b2:r"))
    assert not run.resumed and run.failed == [] and openai_fake.creates == 4
    assert ledger.snapshot().reserved_calls == 3  # only chunk3's (unknown) reservation is still open


def test_a_create_request_that_times_out_is_not_sent_again(openai_fake, store, ledger, clock):
    """The provider created the batch but its answer was lost: the create is not retried (that
    could pay twice); the next run finds the batch by its key."""
    client = OpenAICompatClient("openai", "gpt-4.1-mini", "test-key", openai_fake.v1_url, sleep=clock.sleep,
                                max_retries=3, timeout_s=0.3)
    openai_fake.fail_control(Reply.slow(0.0), Reply.slow(1.0))  # the upload on time, the create's answer late
    with pytest.raises(BatchError, match="再送信せず"):
        runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk9", items(2))
    assert openai_fake.creates == 1 and store.get("scoring:job1:chunk9").state == "creating"
    deadline = time.monotonic() + 10
    while not openai_fake.batches and time.monotonic() < deadline:  # the fake finishes its late create
        time.sleep(0.05)
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk9", items(2))
    assert run.resumed and run.failed == [] and (openai_fake.uploads, openai_fake.creates) == (1, 1)


def test_failed_lines_are_retried_online_or_reported(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    work = items(4)
    openai_fake.fail_line(work[1].key, Reply.error(500, message="upstream error"))
    openai_fake.fail_line(work[2].key, Reply.error(400, message="Invalid schema for response_format"))
    openai_fake.default_reply = Reply.json({"score": 0.7})  # the online answer

    def online(item: BatchItem):
        return complete_json_budgeted(client, item.request, ledger=ledger, estimate_usd=Decimal("0.01"),
                                      key=f"{item.key}:online", reask=False)

    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk4", work, online=online)
    assert run.retried_online == 1 and openai_fake.chat_requests == 1
    assert run.results[work[1].key].source == "online" and run.results[work[1].key].completion.data == {"score": 0.7}
    refused = run.results[work[2].key]
    assert not refused.ok and not refused.retryable and refused.status_code == 400
    assert "Invalid schema" in refused.error
    assert [r.key for r in run.failed] == [work[2].key]
    assert run.committed_usd == Decimal("0.000096")  # two answered lines at the batch price


def test_an_expired_batch_keeps_its_answers_and_reports_the_rest(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    openai_fake.expire, openai_fake.expire_completed = True, 2
    work = items(4)
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk5", work)
    assert [r.key for r in run.results.values() if r.ok] == [work[0].key, work[1].key]
    assert [(r.key, r.retryable) for r in run.failed] == [(work[2].key, True), (work[3].key, True)]
    assert "batch_expired" in run.failed[0].error
    assert ledger.snapshot().cost_usd == Decimal("0.000096")


def test_429_on_the_batch_api_waits_its_retry_after(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    openai_fake.fail_control(Reply.rate_limited(retry_after="5"), Reply.error(503))
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk6", items(2))
    assert run.failed == [] and openai_fake.uploads == 3 and openai_fake.creates == 1
    assert clock.sleeps[0] == 5.0


def test_a_failed_batch_releases_its_reservation_and_is_submitted_afresh(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    openai_fake.fail_batch = True
    with pytest.raises(BatchFailed, match="The model is not available for batch"):
        runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk7", items(2))
    usage = ledger.snapshot()
    assert usage.reserved_calls == 0 and usage.calls == 0 and usage.cost_usd == 0
    openai_fake.fail_batch = False
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job1:chunk7", items(2))
    assert not run.resumed and run.failed == [] and openai_fake.creates == 2


def test_a_slow_batch_times_out_and_the_next_run_resumes_it(openai_fake, store, ledger, clock):
    client = openai_client(openai_fake, clock)
    openai_fake.polls_to_finish = 10
    with pytest.raises(BatchTimeout, match="次の実行で結果を受け取ります"):
        runner_for(batch_backend(client), store, ledger, clock, max_wait_s=120).run("scoring:job1:chunk8", items(2))
    run = runner_for(batch_backend(client), store, ledger, clock, max_wait_s=3600).run("scoring:job1:chunk8", items(2))
    assert run.resumed and run.failed == [] and openai_fake.creates == 1


# --- Gemini ----------------------------------------------------------------------------------------
@pytest.fixture
def gemini_fake():
    with FakeGeminiBatchServer(polls_to_finish=2) as server:
        server.line_responder = gemini_answer
        yield server


def gemini_client(server, clock) -> GeminiClient:
    return GeminiClient("test-key", "gemini-2.5-flash", server.base_url, sleep=clock.sleep, max_retries=3,
                        rate_limit_wait_s=None)


def test_gemini_submit_poll_results_and_a_failed_line_online(gemini_fake, store, ledger, clock):
    client = gemini_client(gemini_fake, clock)
    work = items(3)
    gemini_fake.fail_line(work[2].key, 13, "Internal error")
    gemini_fake.default_reply = GeminiReply.json({"score": 0.9})

    def online(item: BatchItem):
        return complete_json_budgeted(client, item.request, ledger=ledger, estimate_usd=Decimal("0.01"),
                                      key=f"{item.key}:online", reask=False)

    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job2:chunk0", work, online=online)
    assert {k: r.completion.data["score"] for k, r in run.results.items()} == {
        work[0].key: 0.0, work[1].key: 0.1, work[2].key: 0.9}
    assert run.results[work[2].key].source == "online" and gemini_fake.generate_requests == 1
    # gemini-2.5-flash $0.30 / $2.50 per 1M: 150 in, 60 + 20 thinking out → $0.000245, half in a batch
    assert run.results[work[0].key].completion.usage.cost_usd == Decimal("0.000123")
    created = next(r for r in gemini_fake.requests if r.path.endswith(":batchGenerateContent"))
    inline = created.json["batch"]["inputConfig"]["requests"]["requests"]
    assert created.json["batch"]["displayName"] == "scoring:job2:chunk0"
    assert [r["metadata"]["key"] for r in inline] == [w.key for w in work]
    assert inline[0]["request"] == client.payload(work[0].request)


def test_gemini_restart_mid_poll_and_an_expired_batch(gemini_fake, store, ledger, clock):
    client = gemini_client(gemini_fake, clock)
    work = items(2)

    def die(seconds: float) -> None:
        raise Killed

    with pytest.raises(Killed):
        runner_for(batch_backend(client), store, ledger, clock, sleep=die).run("scoring:job3:chunk0", work)
    run = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job3:chunk0", work)
    assert run.resumed and run.failed == [] and gemini_fake.creates == 1

    gemini_fake.expire = True
    expired = runner_for(batch_backend(client), store, ledger, clock).run("scoring:job3:chunk1", items(2, "x:"))
    assert [r.retryable for r in expired.failed] == [True, True]
    assert "期限" in expired.failed[0].error
