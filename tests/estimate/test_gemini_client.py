"""GeminiClient against the local fake speaking generateContent (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.core.errors import LLMConfigError, LLMOutputError, LLMRequestError, LLMTransientError
from hokan.core.llm.client import JsonRequest
from hokan.core.llm.gemini import GeminiClient
from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply

REQUEST = JsonRequest(system="あなたは見積もり担当です。", user='{"a": 1}', schema={"type": "object"},
                      schema_name="test", temperature=0.5, max_output_tokens=256)


@pytest.fixture
def server():
    with FakeGeminiServer(api_key="k") as fake:
        yield fake


def client(server, **kwargs):
    kwargs.setdefault("sleep", lambda s: None)
    return GeminiClient("k", "gemini-2.5-flash", server.base_url, timeout_s=2, **kwargs)


def test_it_sends_the_real_request_shape_and_reads_usage(server):
    server.enqueue(GeminiReply.json({"答え": "はい"}, prompt_tokens=1000, output_tokens=200, thoughts_tokens=100))
    completion = client(server).complete_json(REQUEST)
    assert completion.data == {"答え": "はい"}
    sent = server.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "k"
    assert sent.system_text == "あなたは見積もり担当です。"
    assert sent.user_text == '{"a": 1}'
    assert sent.json["contents"][0]["role"] == "user"
    assert sent.json["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                                             "temperature": 0.5, "maxOutputTokens": 256}
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (1000, 300)
    # $0.30 / 1M input + $2.50 / 1M output (thinking billed as output)
    assert completion.usage.cost_usd == Decimal("0.0003") + Decimal("0.00075")
    assert completion.model == "gemini-2.5-flash"


def test_it_waits_retry_after_on_429(server):
    sleeps: list[float] = []
    server.enqueue(GeminiReply.rate_limited(retry_after="7"), GeminiReply.json({"ok": 1}))
    completion = client(server, sleep=sleeps.append, max_retries=2).complete_json(REQUEST)
    assert completion.data == {"ok": 1} and completion.attempts == 2
    assert sleeps == [7.0]


def test_it_reads_the_retry_info_delay_of_the_body(server):
    sleeps: list[float] = []
    server.enqueue(GeminiReply.rate_limited(retry_delay="12s"), GeminiReply.json({"ok": 1}))
    client(server, sleep=sleeps.append, max_retries=1).complete_json(REQUEST)
    assert sleeps == [12.0]


def test_it_raises_transient_with_retries_off(server):
    server.enqueue(GeminiReply.rate_limited(retry_after="3"))
    with pytest.raises(LLMTransientError) as info:
        client(server, max_retries=0).complete_json(REQUEST)
    assert info.value.status_code == 429 and info.value.retry_after_s == 3.0


def test_it_retries_a_500(server):
    server.enqueue(GeminiReply.error(500), GeminiReply.error(503), GeminiReply.json({"ok": 1}))
    assert client(server, max_retries=3).complete_json(REQUEST).attempts == 3


def test_it_times_out_on_a_slow_answer(server):
    server.enqueue(GeminiReply.slow(1.5, GeminiReply.json({"late": True})))
    with pytest.raises(LLMTransientError):
        GeminiClient("k", "gemini-2.5-flash", server.base_url, max_retries=0, timeout_s=0.3).complete_json(REQUEST)


def test_it_raises_output_error_on_invalid_json(server):
    server.enqueue(GeminiReply.raw_text("申し訳ありませんが、お答えできません。"))
    with pytest.raises(LLMOutputError) as info:
        client(server).complete_json(REQUEST)
    assert "お答えできません" in info.value.raw_output


def test_it_repairs_truncated_json(server):
    server.enqueue(GeminiReply.raw_text('{"a": 1, "b": "途中で切れ', finish_reason="MAX_TOKENS"))
    completion = client(server).complete_json(REQUEST)
    assert completion.repaired and completion.data["a"] == 1


def test_it_maps_a_wrong_key_to_config_error(server):
    with pytest.raises(LLMConfigError):
        GeminiClient("wrong", "gemini-2.5-flash", server.base_url, max_retries=0).complete_json(REQUEST)


def test_it_maps_a_400_to_request_error(server):
    server.enqueue(GeminiReply.error(400, "Invalid JSON payload"))
    with pytest.raises(LLMRequestError):
        client(server).complete_json(REQUEST)


def test_it_refuses_an_empty_key():
    with pytest.raises(LLMConfigError):
        GeminiClient("", "gemini-2.5-flash")
