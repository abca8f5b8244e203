"""Build the configured LLM client of an app (a *profile*) from Django settings.

``get_client(profile="leads")`` returns the client the settings of that app describe; the
client carries ``profile`` and ``scope`` (the ledger scope its calls are counted in, = the
profile). Each app keeps its documented setting names:

``leads`` (document 000; src/hokan/settings.py "# --- LLM (core.llm)")::

    HOKAN_LLM_PROVIDER      "" = auto: "perplexity" if PERPLEXITY_API_KEY is set, else
                            "openai" if OPENAI_API_KEY is set, else "offline" (Gemini is never
                            chosen automatically). Explicit: perplexity | openai | azure |
                            openai_compatible | gemini | offline.
    HOKAN_LLM_MODEL         "" = provider default; for azure the deployment name.
    HOKAN_LLM_BASE_URL      API root ("" = provider default; required for openai_compatible).
    HOKAN_LLM_API_STYLE     "chat_completions" | "responses".
    HOKAN_LLM_RESPONSE_FORMAT  "" = provider default | json_schema | json_object | none.
    HOKAN_LLM_TIMEOUT_S, HOKAN_LLM_MAX_RETRIES, HOKAN_LLM_RATE_LIMIT_WAIT_S
    HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD / HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD  price overrides
    PERPLEXITY_API_KEY, OPENAI_API_KEY, AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT,
    AZURE_OPENAI_API_VERSION, GEMINI_API_KEY   (secrets come only from the environment)

``estimate`` (document 004 §10, names kept)::

    LLM_PROVIDER            gemini (default) | openai | fallback. "fallback", or the chosen
                            provider's key missing → OfflineClient (the adapter then uses the
                            templates of §6.6).
    GEMINI_API_KEY, GEMINI_MODEL, GEMINI_BASE_URL    / OPENAI_API_KEY, OPENAI_MODEL, OPENAI_BASE_URL
    LLM_TIMEOUT             seconds per request phase
    LLM_MAX_RETRIES         attempts in all (document: 「リトライ: 最大3回」); the client itself
                            retries LLM_MAX_RETRIES - 1 times (the adapter passes max_retries=0
                            and runs the one loop that also retries invalid answers)
    ESTIMATE_LLM_RETRY_WAIT_MAX_S   longest wait between attempts (seconds)
    ESTIMATE_LLM_DEADLINE_S         overall limit of a request path's LLM calls (seconds,
                                    default 90 < gunicorn's 120 s worker timeout)

``scoring``, ``municipal``, ``knowledge``: the leads settings (HOKAN_LLM_*), except
``HOKAN_<PROFILE>_LLM_PROVIDER`` / ``HOKAN_<PROFILE>_LLM_MODEL`` when set. With another
provider than the leads one, HOKAN_LLM_MODEL, HOKAN_LLM_BASE_URL and the price overrides
do not carry over (that provider's defaults apply).

Every client sends through the guarded HTTP client (``hokan.core.web.http``) with
``HOKAN_FETCH_ALLOW_HOSTS`` as its allow list. ``PROVIDERS`` maps a provider name to a
constructor taking the resolved ``ProviderConfig`` (like healthchecks' ``TRANSPORTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hokan.core.errors import LLMConfigError
from hokan.core.llm.client import LLMClient
from hokan.core.llm.gemini import GEMINI_PRICES, GeminiClient
from hokan.core.llm.offline import OfflineClient
from hokan.core.llm.openai_compat import OpenAICompatClient
from hokan.core.llm.prices import price_table

PROFILES = ("leads", "estimate", "scoring", "municipal", "knowledge")
SHARED_PROFILES = ("scoring", "municipal", "knowledge")  # HOKAN_LLM_* with per-profile overrides

# The environment variable holding each provider's key.
KEY_SETTINGS = {
    "perplexity": "PERPLEXITY_API_KEY",
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    # Ollama / vLLM usually need no key; the SDK insists on one, so any placeholder works.
    "openai_compatible": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
}


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider constructor needs, resolved for one profile.

    Times in seconds; max_retries counts retries after the first attempt; deadline_s is the
    client's default overall limit per call (None = none); price overrides in USD per 1M
    tokens (None = the table's). ``settings`` gives access to keys and endpoints.
    """

    profile: str
    provider: str
    model: str
    base_url: str
    timeout_s: float
    max_retries: int
    rate_limit_wait_s: float | None
    settings: Any
    api_style: str = "chat_completions"
    response_format: str | None = None
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 60.0
    max_wait_s: float = 900.0
    deadline_s: float | None = None
    price_input_per_mtok_usd: Decimal | None = None
    price_output_per_mtok_usd: Decimal | None = None

    @property
    def api_key(self) -> str:
        return str(getattr(self.settings, KEY_SETTINGS.get(self.provider, ""), "") or "")

    @property
    def allow_hosts(self) -> tuple[str, ...]:
        return tuple(getattr(self.settings, "HOKAN_FETCH_ALLOW_HOSTS", ()) or ())


def _decimal_setting(settings: Any, name: str) -> Decimal | None:
    value = str(getattr(settings, name, "") or "").strip()
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise LLMConfigError(f"{name}: 数値を指定してください({value!r})", provider="config") from None


def _client_options(config: ProviderConfig) -> dict[str, Any]:
    """The constructor arguments both client classes take, from ``config``."""
    return {
        "max_retries": config.max_retries,
        "rate_limit_wait_s": config.rate_limit_wait_s,
        "timeout_s": config.timeout_s,
        "backoff_initial_s": config.backoff_initial_s,
        "backoff_max_s": config.backoff_max_s,
        "max_wait_s": config.max_wait_s,
        "deadline_s": config.deadline_s,
        "allow_hosts": config.allow_hosts,
        "profile": config.profile,
    }


def _with_prices(client: OpenAICompatClient | GeminiClient, config: ProviderConfig, base: Any = None) -> LLMClient:
    client.price_table = price_table(
        client.model,
        input_per_mtok_usd=config.price_input_per_mtok_usd,
        output_per_mtok_usd=config.price_output_per_mtok_usd,
        base=base,
    )
    return client


def _openai_compat(config: ProviderConfig) -> LLMClient:
    settings = config.settings
    client = OpenAICompatClient(
        config.provider,
        config.model,
        config.api_key,
        config.base_url,
        api_style=config.api_style,
        azure_endpoint=getattr(settings, "AZURE_OPENAI_ENDPOINT", "") or None,
        azure_api_version=getattr(settings, "AZURE_OPENAI_API_VERSION", "") or None,
        response_format=config.response_format,
        **_client_options(config),
    )
    return _with_prices(client, config)


def _gemini(config: ProviderConfig) -> LLMClient:
    client = GeminiClient(config.api_key, config.model, config.base_url, **_client_options(config))
    return _with_prices(client, config, GEMINI_PRICES)


PROVIDERS: dict[str, Callable[[ProviderConfig], LLMClient]] = {
    "perplexity": _openai_compat,
    "openai": _openai_compat,
    "azure": _openai_compat,
    "openai_compatible": _openai_compat,
    "gemini": _gemini,
    "offline": lambda config: OfflineClient(profile=config.profile),
}


def resolve_provider(settings: Any, profile: str = "leads") -> str:
    """The provider name the settings select for ``profile`` (see the module docstring)."""
    if profile == "estimate":
        name = (getattr(settings, "LLM_PROVIDER", "gemini") or "gemini").strip().lower()
        if name == "fallback":
            return "offline"
        if name in ("gemini", "openai") and not getattr(settings, KEY_SETTINGS[name], ""):
            return "offline"  # document 004 §6.1: no key → the fallback templates
        return name
    if profile in SHARED_PROFILES:
        name = (getattr(settings, f"HOKAN_{profile.upper()}_LLM_PROVIDER", "") or "").strip().lower()
        if name:
            return name
    name = (getattr(settings, "HOKAN_LLM_PROVIDER", "") or "").strip().lower()
    if name:
        return name
    if getattr(settings, "PERPLEXITY_API_KEY", ""):
        return "perplexity"
    if getattr(settings, "OPENAI_API_KEY", ""):
        return "openai"
    return "offline"


def provider_config(settings: Any, profile: str = "leads", *, max_retries: int | None = None) -> ProviderConfig:
    """The resolved configuration of ``profile`` (module docstring).

    max_retries: None = the profile's setting.

    Raises:
        LLMConfigError: unknown profile, or a price override that is not a number.
    """
    if profile not in PROFILES:
        raise LLMConfigError(f"未対応のプロファイルです: {profile!r}(対応: {', '.join(PROFILES)})", provider="config")
    provider = resolve_provider(settings, profile)
    if profile == "estimate":
        if provider not in ("gemini", "openai", "offline"):
            raise LLMConfigError(f"LLM_PROVIDER={provider!r} は未対応です(対応: gemini, openai, fallback)",
                                 provider=provider)
        wait_max = float(getattr(settings, "ESTIMATE_LLM_RETRY_WAIT_MAX_S", 5.0))
        model = getattr(settings, "OPENAI_MODEL", "") if provider == "openai" else getattr(settings, "GEMINI_MODEL", "")
        base_url = (getattr(settings, "OPENAI_BASE_URL", "") if provider == "openai"
                    else getattr(settings, "GEMINI_BASE_URL", ""))
        attempts = int(getattr(settings, "LLM_MAX_RETRIES", 3))
        return ProviderConfig(
            profile=profile, provider=provider, model=model or "", base_url=base_url or "",
            timeout_s=float(getattr(settings, "LLM_TIMEOUT", 45.0)),
            max_retries=max(0, attempts - 1) if max_retries is None else max_retries,
            rate_limit_wait_s=None, backoff_initial_s=0.5, backoff_max_s=max(wait_max, 0.0), max_wait_s=wait_max,
            deadline_s=float(getattr(settings, "ESTIMATE_LLM_DEADLINE_S", 90.0)) or None,
            settings=settings,
        )
    shared = resolve_provider(settings, "leads")
    same = provider == shared
    model = str(getattr(settings, "HOKAN_LLM_MODEL", "") or "") if same else ""
    if profile in SHARED_PROFILES:
        override = str(getattr(settings, f"HOKAN_{profile.upper()}_LLM_MODEL", "") or "")
        if override and override != model:
            model, same = override, False
    return ProviderConfig(
        profile=profile, provider=provider, model=model,
        base_url=str(getattr(settings, "HOKAN_LLM_BASE_URL", "") or "") if provider == shared else "",
        api_style=str(getattr(settings, "HOKAN_LLM_API_STYLE", "") or "chat_completions"),
        response_format=str(getattr(settings, "HOKAN_LLM_RESPONSE_FORMAT", "") or "") or None,
        timeout_s=float(settings.HOKAN_LLM_TIMEOUT_S),
        max_retries=int(settings.HOKAN_LLM_MAX_RETRIES) if max_retries is None else max_retries,
        rate_limit_wait_s=float(settings.HOKAN_LLM_RATE_LIMIT_WAIT_S),
        price_input_per_mtok_usd=_decimal_setting(settings, "HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD") if same else None,
        price_output_per_mtok_usd=_decimal_setting(settings, "HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD") if same else None,
        settings=settings,
    )


def get_client(*, profile: str = "leads", max_retries: int | None = None) -> LLMClient:
    """The client the Django settings describe for ``profile`` (module docstring).

    profile: "leads" | "estimate" | "scoring" | "municipal" | "knowledge"; the client's
        ``profile`` and ``scope`` (ledger scope) are set to it.
    max_retries: None = the profile's setting; Celery tasks and the estimate adapter pass 0
        and retry themselves.

    Raises:
        LLMConfigError: unknown profile or provider, or the chosen provider lacks its key /
            endpoint (the estimate profile answers OfflineClient for a missing key instead).
    """
    from django.conf import settings  # lazy: core.llm is usable without Django configured

    config = provider_config(settings, profile, max_retries=max_retries)
    build = PROVIDERS.get(config.provider)
    if build is None:
        setting = {"estimate": "LLM_PROVIDER"}.get(profile, "HOKAN_LLM_PROVIDER")
        own = f"HOKAN_{profile.upper()}_LLM_PROVIDER"
        if profile in SHARED_PROFILES and str(getattr(settings, own, "") or ""):
            setting = own
        raise LLMConfigError(
            f"{setting}={config.provider!r} は未対応です(対応: {', '.join(sorted(PROVIDERS))})",
            provider=config.provider,
        )
    return build(config)
