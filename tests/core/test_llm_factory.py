"""get_client: provider selection from settings; OfflineClient."""

from __future__ import annotations

import pytest

from hokan.core.errors import LLMConfigError
from hokan.core.llm import JsonRequest, OfflineClient, OpenAICompatClient, get_client
from hokan.core.llm.prices import DEFAULT_PRICES


@pytest.fixture
def llm_settings(settings):
    settings.HOKAN_LLM_PROVIDER = ""
    settings.HOKAN_LLM_MODEL = ""
    settings.HOKAN_LLM_BASE_URL = ""
    settings.HOKAN_LLM_API_STYLE = "chat_completions"
    settings.HOKAN_LLM_RESPONSE_FORMAT = ""
    settings.HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD = ""
    settings.HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD = ""
    settings.PERPLEXITY_API_KEY = ""
    settings.OPENAI_API_KEY = ""
    settings.AZURE_OPENAI_API_KEY = ""
    settings.AZURE_OPENAI_ENDPOINT = ""
    settings.AZURE_OPENAI_API_VERSION = ""
    settings.HOKAN_LLM_MAX_RETRIES = 3
    settings.HOKAN_LLM_TIMEOUT_S = 60.0
    settings.HOKAN_LLM_RATE_LIMIT_WAIT_S = 600.0
    return settings


def test_it_is_offline_without_keys(llm_settings):
    client = get_client()
    assert isinstance(client, OfflineClient)
    assert client.available is False
    assert client.provider == "offline"


def test_it_picks_perplexity_first_when_its_key_is_set(llm_settings):
    llm_settings.PERPLEXITY_API_KEY = "pplx-test"
    llm_settings.OPENAI_API_KEY = "sk-test"
    client = get_client()
    assert isinstance(client, OpenAICompatClient)
    assert (client.provider, client.model, client.available) == ("perplexity", "sonar", True)
    assert client.max_retries == 3
    assert client.rate_limit_wait_s == 600.0


def test_it_picks_openai_when_only_its_key_is_set(llm_settings):
    llm_settings.OPENAI_API_KEY = "sk-test"
    client = get_client(max_retries=0)
    assert (client.provider, client.model) == ("openai", "gpt-4.1-mini")
    assert client.max_retries == 0


def test_it_honours_an_explicit_offline_provider(llm_settings):
    llm_settings.HOKAN_LLM_PROVIDER = "offline"
    llm_settings.PERPLEXITY_API_KEY = "pplx-test"
    assert isinstance(get_client(), OfflineClient)


def test_it_builds_azure_from_settings(llm_settings):
    llm_settings.HOKAN_LLM_PROVIDER = "azure"
    llm_settings.HOKAN_LLM_MODEL = "my-deployment"
    llm_settings.AZURE_OPENAI_API_KEY = "az-test"
    llm_settings.AZURE_OPENAI_ENDPOINT = "https://example-resource.openai.azure.com"
    llm_settings.AZURE_OPENAI_API_VERSION = "2024-10-21"
    client = get_client()
    assert (client.provider, client.model) == ("azure", "my-deployment")


def test_it_applies_price_overrides_to_the_configured_model(llm_settings):
    from decimal import Decimal

    llm_settings.PERPLEXITY_API_KEY = "pplx-test"
    llm_settings.HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD = "1.5"
    client = get_client()
    price = client.price_table["sonar"]
    assert price.input_per_mtok_usd == Decimal("1.5")
    assert price.output_per_mtok_usd == DEFAULT_PRICES["sonar"].output_per_mtok_usd
    assert price.request_fee_usd == DEFAULT_PRICES["sonar"].request_fee_usd


def test_it_rejects_unknown_providers_and_missing_keys(llm_settings):
    llm_settings.HOKAN_LLM_PROVIDER = "powerplexy"
    with pytest.raises(LLMConfigError):
        get_client()
    llm_settings.HOKAN_LLM_PROVIDER = "openai"
    with pytest.raises(LLMConfigError):
        get_client()


def test_the_offline_client_refuses_to_answer():
    request = JsonRequest(system="s", user="u", schema={"type": "object"}, schema_name="x")
    with pytest.raises(LLMConfigError) as caught:
        OfflineClient().complete_json(request)
    assert "offline" in str(caught.value)
