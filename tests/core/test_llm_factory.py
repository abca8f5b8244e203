"""get_client: provider selection from settings per profile (leads, estimate, scoring, ...); OfflineClient."""

from __future__ import annotations

from decimal import Decimal

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
    settings.GEMINI_API_KEY = ""
    for profile in ("SCORING", "MUNICIPAL", "KNOWLEDGE"):
        setattr(settings, f"HOKAN_{profile}_LLM_PROVIDER", "")
        setattr(settings, f"HOKAN_{profile}_LLM_MODEL", "")
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


# --- Gemini and profiles ------------------------------------------------------------------------
def test_gemini_is_a_registered_provider(llm_settings):
    from hokan.core.llm import PROVIDERS, GeminiClient

    assert "gemini" in PROVIDERS
    llm_settings.HOKAN_LLM_PROVIDER = "gemini"
    llm_settings.GEMINI_API_KEY = "g-test"
    llm_settings.HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD = "0.5"
    client = get_client()
    assert isinstance(client, GeminiClient)
    assert (client.model, client.profile, client.scope) == ("gemini-2.5-flash", "leads", "leads")
    assert client.price_table["gemini-2.5-flash"].input_per_mtok_usd == Decimal("0.5")
    llm_settings.GEMINI_API_KEY = ""
    with pytest.raises(LLMConfigError):
        get_client()


def test_a_gemini_key_alone_does_not_switch_leads_to_gemini(llm_settings):
    llm_settings.GEMINI_API_KEY = "g-test"  # the estimate app's key
    assert isinstance(get_client(), OfflineClient)


def test_every_client_names_its_profile_and_ledger_scope(llm_settings):
    llm_settings.PERPLEXITY_API_KEY = "pplx-test"
    for profile in ("leads", "scoring", "municipal", "knowledge"):
        client = get_client(profile=profile)
        assert (client.provider, client.profile, client.scope) == ("perplexity", profile, profile)
    llm_settings.PERPLEXITY_API_KEY = ""
    offline = get_client(profile="scoring")
    assert isinstance(offline, OfflineClient) and offline.scope == "scoring"
    with pytest.raises(LLMConfigError):
        get_client(profile="marketing")


def test_shared_profiles_use_the_leads_settings_unless_overridden(llm_settings):
    llm_settings.OPENAI_API_KEY = "sk-test"
    llm_settings.GEMINI_API_KEY = "g-test"
    llm_settings.HOKAN_LLM_MODEL = "gpt-4.1"
    llm_settings.HOKAN_LLM_BASE_URL = "http://127.0.0.1:9/v1"
    llm_settings.HOKAN_LLM_TIMEOUT_S = 33.0
    scoring = get_client(profile="scoring")
    assert (scoring.provider, scoring.model, scoring.timeout_s) == ("openai", "gpt-4.1", 33.0)
    assert str(scoring._sdk.base_url).rstrip("/") == "http://127.0.0.1:9/v1"

    llm_settings.HOKAN_SCORING_LLM_MODEL = "gpt-4.1-nano"
    assert get_client(profile="scoring").model == "gpt-4.1-nano"
    assert get_client(profile="leads").model == "gpt-4.1"

    # another provider: the leads model, base URL and price overrides do not carry over
    llm_settings.HOKAN_SCORING_LLM_MODEL = ""
    llm_settings.HOKAN_MUNICIPAL_LLM_PROVIDER = "gemini"
    llm_settings.HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD = "9"
    municipal = get_client(profile="municipal")
    assert (municipal.provider, municipal.model) == ("gemini", "gemini-2.5-flash")
    assert municipal.base_url == "https://generativelanguage.googleapis.com"
    assert municipal.price_table["gemini-2.5-flash"].input_per_mtok_usd == Decimal("0.30")
    llm_settings.HOKAN_KNOWLEDGE_LLM_PROVIDER = "powerplexy"
    with pytest.raises(LLMConfigError) as caught:
        get_client(profile="knowledge")
    assert "HOKAN_KNOWLEDGE_LLM_PROVIDER" in str(caught.value)


@pytest.fixture
def estimate_settings(llm_settings):
    llm_settings.LLM_PROVIDER = "gemini"
    llm_settings.GEMINI_API_KEY = ""
    llm_settings.GEMINI_MODEL = "gemini-2.5-flash"
    llm_settings.GEMINI_BASE_URL = ""
    llm_settings.OPENAI_MODEL = "gpt-4.1-nano"
    llm_settings.OPENAI_BASE_URL = ""
    llm_settings.LLM_TIMEOUT = 45.0
    llm_settings.LLM_MAX_RETRIES = 3
    llm_settings.ESTIMATE_LLM_RETRY_WAIT_MAX_S = 5.0
    llm_settings.ESTIMATE_LLM_DEADLINE_S = 90.0
    return llm_settings


def test_the_estimate_profile_keeps_document_004s_names(estimate_settings):
    from hokan.core.llm import GeminiClient

    assert isinstance(get_client(profile="estimate"), OfflineClient)  # no key → the fallback templates
    estimate_settings.GEMINI_API_KEY = "g-test"
    estimate_settings.HOKAN_LLM_MODEL = "sonar-pro"  # the leads settings play no part
    gemini = get_client(profile="estimate")
    assert isinstance(gemini, GeminiClient)
    assert (gemini.model, gemini.timeout_s, gemini.max_retries, gemini.deadline_s) == ("gemini-2.5-flash", 45.0, 2, 90.0)
    assert gemini.retry_policy.max_wait_s == 5.0 and gemini.retry_policy.rate_limit_wait_s is None

    estimate_settings.LLM_PROVIDER = "openai"
    assert isinstance(get_client(profile="estimate"), OfflineClient)
    estimate_settings.OPENAI_API_KEY = "sk-test"
    openai_client = get_client(profile="estimate")
    assert (openai_client.provider, openai_client.model, openai_client.profile) == ("openai", "gpt-4.1-nano", "estimate")

    estimate_settings.LLM_PROVIDER = "fallback"
    assert isinstance(get_client(profile="estimate"), OfflineClient)
    estimate_settings.LLM_PROVIDER = "azure"
    with pytest.raises(LLMConfigError):
        get_client(profile="estimate")
