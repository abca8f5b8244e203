"""The overall deadline of an LLM call (retries and waits included), against the local fakes.

No test measures wall-clock time: they assert the error type and that the number of requests
sent is bounded. Waits between retries go through a fake clock that moves only when the
client sleeps; the hung provider (``hang()``: connection accepted, never answered) is cut off
by the socket deadline with a short real deadline (0.5 s) and a long request timeout (30 s).
"""

from __future__ import annotations

import pytest

from hokan.core.errors import LLMDeadlineExceeded, LLMTransientError
from hokan.core.llm import Deadline, GeminiClient, JsonRequest, OpenAICompatClient, RetryPolicy
from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply
from tests.fakes.openai_server import FakeOpenAIServer, Reply

REQUEST = JsonRequest(system="JSONで答えてください。", user="設立年は?", schema={"type": "object"}, schema_name="t")


class FakeClock:
    """Monotonic seconds that move only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def gemini():
    with FakeGeminiServer(api_key="k") as server:
        yield server


def openai_client(server: FakeOpenAIServer, **kwargs) -> OpenAICompatClient:
    kwargs.setdefault("timeout_s", 30.0)
    return OpenAICompatClient("openai", "gpt-4.1-mini", "test-key", server.v1_url, **kwargs)


def gemini_client(server: FakeGeminiServer, **kwargs) -> GeminiClient:
    kwargs.setdefault("timeout_s", 30.0)
    return GeminiClient("k", "gemini-2.5-flash", server.base_url, **kwargs)


# --- a provider that accepts the connection and never answers -----------------------------------
def test_a_hung_openai_provider_ends_in_the_deadline_error(fake_openai_server):
    fake_openai_server.enqueue(Reply.hang(), Reply.hang(), Reply.hang(), Reply.hang())
    client = openai_client(fake_openai_server, max_retries=3)
    with pytest.raises(LLMDeadlineExceeded) as caught:
        client.complete_json(REQUEST, deadline_s=0.5)
    assert isinstance(caught.value, LLMTransientError)  # retry code names one type
    assert caught.value.attempts == 1 and caught.value.deadline_s == 0.5
    assert len(fake_openai_server.requests) == 1  # the timed-out attempt is not retried past the deadline
    assert "制限時間(0.5秒)" in str(caught.value)


def test_a_hung_gemini_ends_in_the_deadline_error(gemini):
    gemini.enqueue(GeminiReply.hang(), GeminiReply.hang(), GeminiReply.hang())
    with pytest.raises(LLMDeadlineExceeded) as caught:
        gemini_client(gemini, max_retries=2).complete_json(REQUEST, deadline_s=0.5)
    assert caught.value.attempts == 1
    assert len(gemini.requests) == 1


def test_the_clients_own_deadline_applies_without_one_per_call(gemini):
    gemini.enqueue(GeminiReply.hang())
    with pytest.raises(LLMDeadlineExceeded):
        gemini_client(gemini, max_retries=3, deadline_s=0.5).complete_json(REQUEST)
    assert len(gemini.requests) == 1


def test_embeddings_have_the_deadline_too(fake_openai_server):
    fake_openai_server.enqueue(Reply.hang())
    with pytest.raises(LLMDeadlineExceeded):
        openai_client(fake_openai_server, max_retries=2).embed(["a"], deadline_s=0.5)
    assert len(fake_openai_server.requests) == 1


# --- retries and waits never pass the deadline ----------------------------------------------------
def test_backoff_stops_before_the_deadline_instead_of_sleeping_past_it(fake_openai_server):
    clock = FakeClock()
    fake_openai_server.default_reply = Reply.error(500, message="upstream down")
    client = openai_client(fake_openai_server, max_retries=10, backoff_initial_s=2.0, backoff_max_s=60.0,
                           sleep=clock.sleep, clock=clock)
    with pytest.raises(LLMDeadlineExceeded) as caught:
        client.complete_json(REQUEST, deadline_s=10.0)
    assert caught.value.status_code == 500
    assert sum(clock.sleeps) < 10.0  # no wait ended past the deadline
    assert 2 <= len(fake_openai_server.requests) == caught.value.attempts < 11  # bounded, not the 11 allowed


def test_a_retry_after_longer_than_the_time_left_is_not_waited_for(gemini):
    clock = FakeClock()
    gemini.enqueue(GeminiReply.rate_limited(retry_after="30"), GeminiReply.json({"ok": 1}))
    client = gemini_client(gemini, max_retries=3, max_wait_s=900, sleep=clock.sleep, clock=clock)
    with pytest.raises(LLMDeadlineExceeded) as caught:
        client.complete_json(REQUEST, deadline_s=20.0)
    assert clock.sleeps == [] and len(gemini.requests) == 1
    assert caught.value.retry_after_s == 30.0 and caught.value.status_code == 429


def test_a_retry_that_fits_in_the_deadline_is_made(gemini):
    clock = FakeClock()
    gemini.enqueue(GeminiReply.rate_limited(retry_after="3"), GeminiReply.json({"ok": 1}))
    client = gemini_client(gemini, max_retries=3, sleep=clock.sleep, clock=clock)
    completion = client.complete_json(REQUEST, deadline_s=20.0)
    assert completion.data == {"ok": 1} and completion.attempts == 2 and clock.sleeps == [3.0]


def test_nothing_is_sent_when_the_deadline_has_passed(fake_openai_server):
    clock = FakeClock()
    client = openai_client(fake_openai_server, clock=clock)
    with pytest.raises(LLMDeadlineExceeded) as caught:
        client.complete_json(REQUEST, deadline=clock() - 1)
    assert caught.value.attempts == 0 and fake_openai_server.requests == []


def test_the_earliest_deadline_wins():
    clock = FakeClock()
    shared = Deadline.after(5, clock=clock)
    assert Deadline.of(deadline=shared, deadline_s=60, default_s=90, clock=clock) is shared
    assert Deadline.of(deadline=clock() + 100, deadline_s=2, clock=clock).seconds == 2
    assert Deadline.of(clock=clock) is None


def test_without_a_deadline_the_last_transient_error_is_raised(fake_openai_server):
    clock = FakeClock()
    fake_openai_server.enqueue(Reply.error(503), Reply.error(503))
    client = openai_client(fake_openai_server, max_retries=1, sleep=clock.sleep, clock=clock)
    with pytest.raises(LLMTransientError) as caught:
        client.complete_json(REQUEST)
    assert not isinstance(caught.value, LLMDeadlineExceeded) and caught.value.status_code == 503
    assert len(fake_openai_server.requests) == 2


def test_the_policy_caps_long_waits_when_asked_to():
    clock = FakeClock()
    errors = [LLMTransientError("429", provider="p", status_code=429, retry_after_s=600.0)]

    def attempt(left: float | None) -> str:
        if errors:
            raise errors.pop()
        return "ok"

    policy = RetryPolicy(max_retries=2, max_wait_s=5.0, long_wait="cap")
    assert policy.call(attempt, provider="p", sleep=clock.sleep) == ("ok", 2)
    assert clock.sleeps == [5.0]
