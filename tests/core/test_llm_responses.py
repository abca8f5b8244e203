"""api_style="responses": Perplexity Agent API / OpenAI Responses against the local fake."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.core.errors import LLMConfigError, LLMTransientError
from hokan.core.llm import JsonRequest, OpenAICompatClient
from tests.fakes.openai_server import FakeOpenAIServer, Reply

SCHEMA = {"type": "object", "properties": {"従業員数": {"type": ["integer", "null"]}}}
REQUEST = JsonRequest(system="JSONのみで答えてください。", user="企業名: 株式会社Lis", schema=SCHEMA, schema_name="lead")


def agent_client(server: FakeOpenAIServer, sleeps: list[float], **kwargs) -> OpenAICompatClient:
    return OpenAICompatClient(
        "perplexity", "", "test-key", server.v1_url, api_style="responses", sleep=sleeps.append, timeout_s=5, **kwargs
    )


def test_it_calls_the_perplexity_agent_api(fake_openai_server):
    reply = Reply.json(
        {"従業員数": 45},
        prompt_tokens=500,
        completion_tokens=20,
        search_results=[{"title": "会社概要", "url": "https://lis-sales-japan.jp/about/"}],
    )
    fake_openai_server.enqueue(reply)

    completion = agent_client(fake_openai_server, []).complete_json(REQUEST)

    assert completion.data == {"従業員数": 45}
    assert completion.model == "perplexity/sonar"
    assert completion.usage.cost_source == "provider"
    assert completion.usage.cost_usd == FakeOpenAIServer.expected_cost(reply) == Decimal("0.00552")
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (500, 20)
    assert completion.citations == ["https://lis-sales-japan.jp/about/"]
    [sent] = fake_openai_server.requests
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.json["model"] == "perplexity/sonar"
    assert [item["role"] for item in sent.json["input"]] == ["system", "user"]
    assert sent.json["tools"] == [{"type": "web_search"}]
    assert sent.json["max_output_tokens"] == 1024
    assert sent.json["response_format"] == {"type": "json_schema", "json_schema": {"name": "lead", "schema": SCHEMA}}
    assert "text" not in sent.json and "messages" not in sent.json


def test_it_retries_a_run_that_failed_with_http_200(fake_openai_server):
    sleeps: list[float] = []
    fake_openai_server.enqueue(Reply.failed_run(), Reply.json({"従業員数": 3}))

    completion = agent_client(fake_openai_server, sleeps).complete_json(REQUEST)

    assert completion.data == {"従業員数": 3}
    assert completion.attempts == 2
    assert len(sleeps) == 1


def test_it_raises_transient_error_for_a_failed_run_without_retries(fake_openai_server):
    fake_openai_server.enqueue(Reply.failed_run("upstream_structured_output_failed"))

    with pytest.raises(LLMTransientError):
        agent_client(fake_openai_server, [], max_retries=0).complete_json(REQUEST)


def test_it_repairs_an_incomplete_run(fake_openai_server):
    fake_openai_server.enqueue(Reply.text('{"従業員数": 45, "所在地": "東京', finish_reason="length"))

    completion = agent_client(fake_openai_server, []).complete_json(REQUEST)

    assert completion.data["従業員数"] == 45
    assert completion.repaired is True


def test_it_sends_openai_text_format_for_openai_responses():
    with FakeOpenAIServer(report_cost=False) as server:
        server.enqueue(Reply.json({"従業員数": 1}, prompt_tokens=1000, completion_tokens=1000))
        client = OpenAICompatClient(
            "openai", "gpt-4.1-mini", "test-key", server.v1_url, api_style="responses", sleep=lambda s: None
        )
        completion = client.complete_json(REQUEST)
        [sent] = server.requests

    assert sent.json["text"] == {
        "format": {"type": "json_schema", "name": "lead", "schema": SCHEMA, "strict": False}
    }
    assert "response_format" not in sent.json and "tools" not in sent.json
    assert completion.usage.cost_source == "price_table"
    assert completion.usage.cost_usd == Decimal("0.002")


def test_it_refuses_responses_style_for_azure():
    with pytest.raises(LLMConfigError):
        OpenAICompatClient(
            "azure", "dep", "k", api_style="responses", azure_endpoint="http://127.0.0.1:9", azure_api_version="v"
        )
