"""embed() and image inputs (vision) on the client interface, against the local fakes."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from hokan.core.errors import LLMConfigError, LLMOutputError
from hokan.core.llm import GeminiClient, ImageInput, JsonRequest, OfflineClient, OpenAICompatClient
from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply
from tests.fakes.openai_server import FakeOpenAIServer, Reply

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TEXTS = ["株式会社サンプル商事は東京都千代田区にあります。", "資本金は1億2,000万円です。"]


@pytest.fixture
def gemini():
    with FakeGeminiServer(api_key="k") as server:
        yield server


def openai_client(server: FakeOpenAIServer, provider: str = "openai", **kwargs) -> OpenAICompatClient:
    kwargs.setdefault("sleep", lambda s: None)
    base = server.v1_url if provider in ("openai", "openai_compatible") else server.base_url
    return OpenAICompatClient(provider, kwargs.pop("model", ""), "test-key", base, **kwargs)


# --- embeddings ---------------------------------------------------------------------------------------
def test_openai_embeds_texts_in_order_and_prices_the_tokens(fake_openai_server):
    result = openai_client(fake_openai_server).embed(TEXTS)
    assert result.vectors == [fake_openai_server.vector(t) for t in TEXTS]
    assert len(result.vectors[0]) == 8 and result.vectors[0] != result.vectors[1]
    sent = fake_openai_server.requests[0]
    assert sent.path == "/v1/embeddings"
    assert sent.json == {"model": "text-embedding-3-small", "input": TEXTS, "encoding_format": "float"}
    tokens = sum(len(t) for t in TEXTS)  # the fake counts characters as tokens
    assert (result.usage.input_tokens, result.usage.cost_source) == (tokens, "price_table")
    assert result.usage.cost_usd == Decimal(tokens) * Decimal("0.02") / Decimal(1_000_000)
    assert (result.provider, result.model, result.attempts) == ("openai", "text-embedding-3-small", 1)


def test_embeddings_are_retried_like_completions(fake_openai_server):
    fake_openai_server.enqueue(Reply.error(503))
    result = openai_client(fake_openai_server, max_retries=1).embed(["a"], model="text-embedding-3-large")
    assert result.attempts == 2 and fake_openai_server.requests[1].json["model"] == "text-embedding-3-large"


def test_a_malformed_embedding_answer_is_an_output_error(fake_openai_server):
    fake_openai_server.enqueue(Reply.json({}, body={"object": "list", "data": [{"index": 0, "embedding": [0.1]}]}))
    with pytest.raises(LLMOutputError):
        openai_client(fake_openai_server).embed(TEXTS)  # one vector for two texts


def test_azure_embeds_through_the_deployment():
    with FakeOpenAIServer() as server:
        client = OpenAICompatClient("azure", "chat-deployment", "test-key", azure_endpoint=server.base_url,
                                    azure_api_version="2024-10-21", embedding_model="embed-deployment")
        assert len(client.embed(["a", "b"]).vectors) == 2
    assert server.requests[0].path == "/openai/deployments/embed-deployment/embeddings"
    assert server.requests[0].query["api-version"] == ["2024-10-21"]


def test_perplexity_and_the_offline_client_have_no_embeddings(fake_openai_server):
    with pytest.raises(LLMConfigError):
        openai_client(fake_openai_server, provider="perplexity").embed(["a"])
    with pytest.raises(LLMConfigError):
        OfflineClient().embed(["a"])
    assert fake_openai_server.requests == []


def test_no_texts_no_call(fake_openai_server):
    result = openai_client(fake_openai_server).embed([])
    assert result.vectors == [] and result.attempts == 0 and fake_openai_server.requests == []


def test_gemini_embeds_with_batch_embed_contents(gemini):
    result = GeminiClient("k", base_url=gemini.base_url).embed(TEXTS)
    assert result.vectors == [gemini.vector(t) for t in TEXTS]
    sent = gemini.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json["requests"][1] == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": TEXTS[1]}]}}
    assert result.usage.cost_source == "none" and result.usage.calls == 1  # Gemini reports no tokens


def test_gemini_embeddings_retry_a_500(gemini):
    gemini.enqueue(GeminiReply.error(500))
    result = GeminiClient("k", base_url=gemini.base_url, sleep=lambda s: None).embed(["a"])
    assert result.attempts == 2 and len(result.vectors) == 1


# --- images --------------------------------------------------------------------------------------------
def test_an_image_input_is_hashable_and_checked():
    image = ImageInput(PNG, "image/png")
    assert hash(image) == hash(ImageInput(PNG, "image/png"))
    assert image.sha256 == ImageInput(PNG).sha256 and len(image.sha256) == 64
    assert image.data_url().startswith("data:image/png;base64,iVBOR")
    assert "bytes=" in repr(image) and "iVBOR" not in repr(image)
    with pytest.raises(ValueError):
        ImageInput(b"", "image/png")
    with pytest.raises(ValueError):
        ImageInput(PNG, "application/pdf")


def test_openai_chat_sends_images_as_data_url_parts(fake_openai_server):
    request = JsonRequest(system="画像の数字を読んでください。", user="売上は?", schema={"type": "object"},
                          schema_name="vision", images=(ImageInput(PNG, "image/png"), ImageInput(PNG, "image/jpeg")))
    openai_client(fake_openai_server).complete_json(request)
    content = fake_openai_server.requests[0].json["messages"][1]["content"]
    assert content[0] == {"type": "text", "text": "売上は?"}
    assert content[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    assert content[2]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_the_responses_api_sends_input_images(fake_openai_server):
    request = JsonRequest(system="s", user="u", schema={"type": "object"}, schema_name="v", images=(ImageInput(PNG),))
    openai_client(fake_openai_server, api_style="responses").complete_json(request)
    user = fake_openai_server.requests[0].json["input"][1]["content"]
    assert user == [{"type": "input_text", "text": "u"}, {"type": "input_image", "image_url": ImageInput(PNG).data_url()}]


def test_text_only_requests_keep_a_plain_string(fake_openai_server):
    request = JsonRequest(system="s", user="u", schema={"type": "object"}, schema_name="v")
    openai_client(fake_openai_server).complete_json(request)
    assert fake_openai_server.requests[0].json["messages"][1]["content"] == "u"


def test_gemini_sends_images_as_inline_data(gemini):
    request = JsonRequest(system="s", user="表の合計は?", schema={"type": "object"}, schema_name="v",
                          images=(ImageInput(PNG, "image/webp"),))
    GeminiClient("k", base_url=gemini.base_url).complete_json(request)
    parts = gemini.requests[0].json["contents"][0]["parts"]
    assert parts == [{"text": "表の合計は?"}, {"inlineData": {"mimeType": "image/webp", "data": base64.b64encode(PNG).decode()}}]
