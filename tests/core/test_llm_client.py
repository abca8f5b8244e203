"""OpenAICompatClient against the local fake provider (tests/fakes/openai_server.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from hokan.core.errors import LLMConfigError, LLMOutputError, LLMRequestError, LLMTransientError
from hokan.core.llm import JsonRequest, OpenAICompatClient, Price, parse_retry_after
from tests.fakes.openai_server import FakeOpenAIServer, Reply

SCHEMA = {
    "type": "object",
    "properties": {"設立年": {"type": ["string", "null"]}, "資本金": {"type": ["string", "null"]}},
    "required": ["設立年", "資本金"],
}
REQUEST = JsonRequest(
    system="あなたは企業情報の調査員です。JSONのみで答えてください。",
    user="企業名: 株式会社Lis\n欠損項目: 設立年, 資本金",
    schema=SCHEMA,
    schema_name="lead enrichment",
)


def make_client(server: FakeOpenAIServer, sleeps: list[float], **kwargs) -> OpenAICompatClient:
    kwargs.setdefault("timeout_s", 5.0)
    return OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, sleep=sleeps.append, **kwargs)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def test_it_returns_data_usage_provider_cost_and_citations(fake_openai_server, sleeps):
    reply = Reply.json(
        {"設立年": "2001", "資本金": "1000万円"},
        prompt_tokens=210,
        completion_tokens=40,
        citations=["https://lis-sales-japan.jp/about/"],
        search_results=[
            {"title": "会社概要", "url": "https://lis-sales-japan.jp/about/"},
            {"title": "登記", "url": "https://example.jp/lis"},
        ],
    )
    fake_openai_server.enqueue(reply)

    completion = make_client(fake_openai_server, sleeps).complete_json(REQUEST)

    assert completion.data == {"設立年": "2001", "資本金": "1000万円"}
    assert completion.provider == "perplexity"
    assert completion.model == "sonar"
    assert completion.usage.input_tokens == 210
    assert completion.usage.output_tokens == 40
    assert completion.usage.cost_source == "provider"
    assert completion.usage.cost_usd == Decimal("0.00525")  # 250 tokens × $1/1M + $0.005
    assert completion.usage.cost_usd == FakeOpenAIServer.expected_cost(reply)
    assert completion.citations == ["https://lis-sales-japan.jp/about/", "https://example.jp/lis"]
    assert completion.attempts == 1
    assert completion.repaired is False
    assert sleeps == []


def test_it_sends_model_roles_response_format_and_bearer_key(fake_openai_server, sleeps):
    make_client(fake_openai_server, sleeps).complete_json(REQUEST)

    [sent] = fake_openai_server.requests
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.json["model"] == "sonar"
    assert sent.roles == ["system", "user"]
    assert sent.json["messages"][1]["content"] == REQUEST.user
    assert sent.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "lead_enrichment", "schema": SCHEMA, "strict": False},
    }
    assert sent.json["temperature"] == 0.0
    assert sent.json["max_tokens"] == 1024


def test_it_can_send_json_object_or_no_response_format(fake_openai_server, sleeps):
    make_client(fake_openai_server, sleeps, response_format="json_object").complete_json(REQUEST)
    make_client(fake_openai_server, sleeps, response_format="none").complete_json(REQUEST)

    first, second = fake_openai_server.requests
    assert first.json["response_format"] == {"type": "json_object"}
    assert "response_format" not in second.json


def test_it_uses_the_price_table_when_the_provider_reports_no_cost(sleeps):
    with FakeOpenAIServer(report_cost=False) as server:
        server.enqueue(Reply.json({"a": 1}, prompt_tokens=1000, completion_tokens=500))
        client = OpenAICompatClient(
            "openai", "gpt-4.1-mini", "test-key", server.v1_url, sleep=sleeps.append, timeout_s=5
        )
        completion = client.complete_json(REQUEST)

        assert server.requests[0].path == "/v1/chat/completions"
        assert server.requests[0].json["max_completion_tokens"] == 1024
    # 1000 × $0.40/1M + 500 × $1.60/1M
    assert completion.usage.cost_usd == Decimal("0.0012")
    assert completion.usage.cost_source == "price_table"


def test_it_reports_no_cost_source_for_an_unpriced_model(sleeps):
    with FakeOpenAIServer(report_cost=False) as server:
        client = OpenAICompatClient(
            "openai_compatible", "llama3.1:8b", "test-key", server.v1_url, sleep=sleeps.append, timeout_s=5
        )
        completion = client.complete_json(REQUEST)
    assert completion.usage.cost_usd == Decimal("0")
    assert completion.usage.cost_source == "none"


def test_it_uses_a_custom_price_table_with_request_fee(sleeps):
    with FakeOpenAIServer(report_cost=False) as server:
        server.enqueue(Reply.json({"a": 1}, prompt_tokens=100, completion_tokens=100))
        table = {"m": Price(Decimal("2"), Decimal("4"), Decimal("0.01"))}
        client = OpenAICompatClient(
            "openai_compatible", "m", "test-key", server.v1_url, sleep=sleeps.append, timeout_s=5, price_table=table
        )
        completion = client.complete_json(REQUEST)
    assert completion.usage.cost_usd == Decimal("0.0106")


def test_it_waits_retry_after_seconds_on_429_then_succeeds(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="7"), Reply.json({"設立年": "2001"}))

    completion = make_client(fake_openai_server, sleeps).complete_json(REQUEST)

    assert sleeps == [7.0]
    assert completion.data == {"設立年": "2001"}
    assert completion.attempts == 2
    assert len(fake_openai_server.requests) == 2


def test_it_waits_the_configured_time_on_429_without_retry_after(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.rate_limited(), Reply.json({"a": 1}))

    make_client(fake_openai_server, sleeps, rate_limit_wait_s=600).complete_json(REQUEST)

    assert sleeps == [600]


def test_it_gives_up_after_max_retries_with_a_transient_error(fake_openai_server, sleeps):
    fake_openai_server.enqueue(*[Reply.rate_limited(retry_after="3")] * 4, Reply.json({"a": 1}))

    with pytest.raises(LLMTransientError) as caught:
        make_client(fake_openai_server, sleeps, max_retries=2).complete_json(REQUEST)

    assert caught.value.status_code == 429
    assert caught.value.retry_after_s == 3.0
    assert caught.value.provider == "perplexity"
    assert len(fake_openai_server.requests) == 3  # 1 + 2 retries
    assert sleeps == [3.0, 3.0]


def test_it_does_not_retry_when_max_retries_is_zero(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="30"), Reply.json({"a": 1}))

    with pytest.raises(LLMTransientError) as caught:
        make_client(fake_openai_server, sleeps, max_retries=0).complete_json(REQUEST)

    assert caught.value.retry_after_s == 30.0
    assert len(fake_openai_server.requests) == 1
    assert sleeps == []


def test_it_does_not_sleep_through_a_retry_after_longer_than_max_wait(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="3600"), Reply.json({"a": 1}))

    with pytest.raises(LLMTransientError) as caught:
        make_client(fake_openai_server, sleeps, max_wait_s=900).complete_json(REQUEST)

    assert caught.value.retry_after_s == 3600.0
    assert len(fake_openai_server.requests) == 1
    assert sleeps == []


def test_it_retries_a_500_with_backoff_then_succeeds(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.error(500, message="boom"), Reply.error(503), Reply.json({"a": 1}))

    completion = make_client(fake_openai_server, sleeps, backoff_initial_s=1, backoff_max_s=10).complete_json(REQUEST)

    assert completion.data == {"a": 1}
    assert completion.attempts == 3
    assert len(sleeps) == 2
    assert all(0 < s <= 10 for s in sleeps)


def test_it_retries_a_timeout_then_succeeds(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.slow(1.5), Reply.json({"a": 1}))

    completion = make_client(fake_openai_server, sleeps, timeout_s=0.3).complete_json(REQUEST)

    assert completion.data == {"a": 1}
    assert len(fake_openai_server.requests) == 2
    assert len(sleeps) == 1


def test_it_raises_transient_error_without_status_after_timeouts(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.slow(1.0))

    with pytest.raises(LLMTransientError) as caught:
        make_client(fake_openai_server, sleeps, max_retries=0).complete_json(REQUEST, timeout_s=0.2)

    assert caught.value.status_code is None
    assert caught.value.retry_after_s is None


def test_it_raises_request_error_on_400_without_retry(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.error(400, message="Invalid json_schema"), Reply.json({"a": 1}))

    with pytest.raises(LLMRequestError) as caught:
        make_client(fake_openai_server, sleeps).complete_json(REQUEST)

    assert caught.value.status_code == 400
    assert "Invalid json_schema" in str(caught.value)
    assert len(fake_openai_server.requests) == 1
    assert sleeps == []


def test_it_raises_config_error_on_a_wrong_key_without_retry(fake_openai_server, sleeps):
    client = OpenAICompatClient(
        "perplexity", "sonar", "wrong-key", fake_openai_server.base_url, sleep=sleeps.append, timeout_s=5
    )
    with pytest.raises(LLMConfigError):
        client.complete_json(REQUEST)
    assert len(fake_openai_server.requests) == 1


def test_it_raises_config_error_when_the_quota_is_exhausted(fake_openai_server, sleeps):
    fake_openai_server.enqueue(Reply.error(429, message="You exceeded your current quota", code="insufficient_quota"))

    with pytest.raises(LLMConfigError):
        make_client(fake_openai_server, sleeps).complete_json(REQUEST)
    assert len(fake_openai_server.requests) == 1


def test_it_raises_output_error_with_usage_on_garbage(fake_openai_server, sleeps):
    reply = Reply.text("申し訳ありませんが、その企業の情報は見つかりませんでした。")
    fake_openai_server.enqueue(reply)

    with pytest.raises(LLMOutputError) as caught:
        make_client(fake_openai_server, sleeps).complete_json(REQUEST)

    assert caught.value.raw_output == reply.content
    assert caught.value.schema_name == "lead enrichment"
    assert caught.value.usage.cost_usd == FakeOpenAIServer.expected_cost(reply)
    assert len(fake_openai_server.requests) == 1  # no re-ask inside the client


def test_it_repairs_prose_wrapped_and_truncated_answers(fake_openai_server, sleeps):
    fake_openai_server.enqueue(
        Reply.text('調査結果は以下の通りです。\n{"設立年": "2001", "資本金": null}\n以上です。'),
        Reply.text('```json\n{"設立年": "2001", "資本金": "1000万', finish_reason="length"),
    )
    client = make_client(fake_openai_server, sleeps)

    prose = client.complete_json(REQUEST)
    truncated = client.complete_json(REQUEST)

    assert prose.data == {"設立年": "2001", "資本金": None}
    assert prose.repaired is False
    assert truncated.data["設立年"] == "2001"
    assert truncated.repaired is True


def test_it_talks_to_azure_deployments_with_api_key_header(sleeps):
    with FakeOpenAIServer(report_cost=False) as server:
        client = OpenAICompatClient(
            "azure",
            "my-gpt41-mini",
            "test-key",
            sleep=sleeps.append,
            timeout_s=5,
            azure_endpoint=server.base_url,
            azure_api_version="2024-10-21",
        )
        completion = client.complete_json(REQUEST)

        [sent] = server.requests
    assert sent.path == "/openai/deployments/my-gpt41-mini/chat/completions"
    assert sent.deployment == "my-gpt41-mini"
    assert sent.query["api-version"] == ["2024-10-21"]
    assert sent.headers["api-key"] == "test-key"
    assert sent.json["response_format"]["type"] == "json_schema"
    assert completion.provider == "azure"
    assert completion.data == {"ok": True}


def test_it_refuses_incomplete_configuration():
    with pytest.raises(LLMConfigError):
        OpenAICompatClient("perplexity", "sonar", "")
    with pytest.raises(LLMConfigError):
        OpenAICompatClient("openai_compatible", "llama3", "k")  # no base_url
    with pytest.raises(LLMConfigError):
        OpenAICompatClient("azure", "dep", "k", azure_endpoint="http://127.0.0.1:9")  # no api version
    with pytest.raises(LLMConfigError):
        OpenAICompatClient("perplexity", "sonar", "k", api_style="completions")
    with pytest.raises(LLMConfigError):
        OpenAICompatClient("anthropic", "x", "k")


def test_it_defaults_the_perplexity_model_and_url():
    client = OpenAICompatClient("perplexity", "", "k")
    assert client.model == "sonar"
    assert str(client._sdk.base_url).rstrip("/") == "https://api.perplexity.ai"
    assert client._sdk.max_retries == 0


def test_it_parses_retry_after_seconds_and_http_dates():
    now = datetime(2026, 11, 21, 3, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after": "Sat, 21 Nov 2026 03:00:30 GMT"}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "Sat, 21 Nov 2026 02:00:00 GMT"}, now=now) == 0.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
