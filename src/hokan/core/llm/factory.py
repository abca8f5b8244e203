"""Build the configured LLM client from Django settings.

Settings (see src/hokan/settings.py, "# --- LLM (core.llm)"):

    HOKAN_LLM_PROVIDER      "" = auto: "perplexity" if PERPLEXITY_API_KEY is set, else
                            "openai" if OPENAI_API_KEY is set, else "offline".
                            Explicit: perplexity | openai | azure | openai_compatible | offline.
    HOKAN_LLM_MODEL         "" = provider default; for azure the deployment name.
    HOKAN_LLM_BASE_URL      API root ("" = provider default; required for openai_compatible).
    HOKAN_LLM_API_STYLE     "chat_completions".
    HOKAN_LLM_RESPONSE_FORMAT  "" = provider default | json_schema | json_object | none.
    HOKAN_LLM_TIMEOUT_S, HOKAN_LLM_MAX_RETRIES, HOKAN_LLM_RATE_LIMIT_WAIT_S
    HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD / HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD  price overrides
    PERPLEXITY_API_KEY, OPENAI_API_KEY, AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT,
    AZURE_OPENAI_API_VERSION   (secrets come only from the environment)

``PROVIDERS`` maps a provider name to a constructor taking the settings object and
``max_retries`` (like healthchecks' ``TRANSPORTS``); a new adapter (e.g. "gemini") registers
itself there.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from hokan.core.errors import LLMConfigError
from hokan.core.llm.client import LLMClient
from hokan.core.llm.offline import OfflineClient
from hokan.core.llm.openai_compat import OpenAICompatClient
from hokan.core.llm.prices import price_table


def _decimal_setting(settings: Any, name: str) -> Decimal | None:
    value = str(getattr(settings, name, "") or "").strip()
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise LLMConfigError(f"{name}: 数値を指定してください({value!r})", provider="config") from None


def _openai_compat(provider: str, key_setting: str) -> Callable[[Any, int], LLMClient]:
    def build(settings: Any, max_retries: int) -> LLMClient:
        model = getattr(settings, "HOKAN_LLM_MODEL", "")
        client = OpenAICompatClient(
            provider,
            model,
            getattr(settings, key_setting, ""),
            getattr(settings, "HOKAN_LLM_BASE_URL", ""),
            api_style=getattr(settings, "HOKAN_LLM_API_STYLE", "") or "chat_completions",
            max_retries=max_retries,
            rate_limit_wait_s=settings.HOKAN_LLM_RATE_LIMIT_WAIT_S,
            timeout_s=settings.HOKAN_LLM_TIMEOUT_S,
            azure_endpoint=getattr(settings, "AZURE_OPENAI_ENDPOINT", "") or None,
            azure_api_version=getattr(settings, "AZURE_OPENAI_API_VERSION", "") or None,
            response_format=getattr(settings, "HOKAN_LLM_RESPONSE_FORMAT", "") or None,
        )
        client.price_table = price_table(
            client.model,
            input_per_mtok_usd=_decimal_setting(settings, "HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD"),
            output_per_mtok_usd=_decimal_setting(settings, "HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD"),
        )
        return client

    return build


PROVIDERS: dict[str, Callable[[Any, int], LLMClient]] = {
    "perplexity": _openai_compat("perplexity", "PERPLEXITY_API_KEY"),
    "openai": _openai_compat("openai", "OPENAI_API_KEY"),
    "azure": _openai_compat("azure", "AZURE_OPENAI_API_KEY"),
    # Ollama / vLLM usually need no key; the SDK insists on one, so any placeholder works.
    "openai_compatible": _openai_compat("openai_compatible", "OPENAI_API_KEY"),
    "offline": lambda settings, max_retries: OfflineClient(),
}


def resolve_provider(settings: Any) -> str:
    """The provider name the settings select (auto-selection when HOKAN_LLM_PROVIDER is "")."""
    name = (getattr(settings, "HOKAN_LLM_PROVIDER", "") or "").strip().lower()
    if name:
        return name
    if getattr(settings, "PERPLEXITY_API_KEY", ""):
        return "perplexity"
    if getattr(settings, "OPENAI_API_KEY", ""):
        return "openai"
    return "offline"


def get_client(*, max_retries: int | None = None) -> LLMClient:
    """The client the Django settings describe.

    max_retries: None = HOKAN_LLM_MAX_RETRIES; Celery tasks pass 0 and retry themselves.

    Raises:
        LLMConfigError: unknown provider, or the chosen provider lacks its key / endpoint.
    """
    from django.conf import settings  # lazy: core.llm is usable without Django configured

    name = resolve_provider(settings)
    build = PROVIDERS.get(name)
    if build is None:
        raise LLMConfigError(
            f"HOKAN_LLM_PROVIDER={name!r} は未対応です(対応: {', '.join(sorted(PROVIDERS))})", provider=name
        )
    retries = settings.HOKAN_LLM_MAX_RETRIES if max_retries is None else max_retries
    return build(settings, retries)
