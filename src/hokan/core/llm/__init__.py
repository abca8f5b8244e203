"""hokan.core.llm: "give me a JSON object matching this JSON schema" (and embeddings), for every provider.

Public names::

    from hokan.core.llm import get_client, JsonRequest, complete_json_budgeted

    client = get_client(profile="leads", max_retries=0)   # from Django settings; OfflineClient if no key
    if client.available:
        completion = complete_json_budgeted(client, JsonRequest(...), ledger=ledger,
                                            estimate_usd=Decimal("0.05"), key="lead:42:2026-11-21")
    client.complete_json(request, deadline_s=90)          # whole call incl. retries → LLMDeadlineExceeded
    client.embed(["文1", "文2"]).vectors                    # OpenAI / Azure / Gemini

See client.py for the shapes, factory.py for the profiles and their settings, retry.py for the
one retry policy and the deadline, openai_compat.py / gemini.py for the wire formats,
budgeted.py for the ledger rules and the re-ask.
"""

from hokan.core.llm.budgeted import REASK_INSTRUCTION, complete_json_budgeted
from hokan.core.llm.client import Completion, EmbeddingResult, ImageInput, JsonRequest, LLMClient, Usage
from hokan.core.llm.factory import PROFILES, PROVIDERS, ProviderConfig, get_client, provider_config, resolve_provider
from hokan.core.llm.gemini import GeminiClient
from hokan.core.llm.offline import OfflineClient
from hokan.core.llm.openai_compat import OpenAICompatClient
from hokan.core.llm.parse import ParsedJson, extract_json_object
from hokan.core.llm.prices import DEFAULT_PRICES, Price, price_table
from hokan.core.llm.retry import Deadline, RetryPolicy
from hokan.core.web.http import parse_retry_after

__all__ = [
    "DEFAULT_PRICES",
    "PROFILES",
    "PROVIDERS",
    "REASK_INSTRUCTION",
    "Completion",
    "Deadline",
    "EmbeddingResult",
    "GeminiClient",
    "ImageInput",
    "JsonRequest",
    "LLMClient",
    "OfflineClient",
    "OpenAICompatClient",
    "ParsedJson",
    "Price",
    "ProviderConfig",
    "RetryPolicy",
    "Usage",
    "complete_json_budgeted",
    "extract_json_object",
    "get_client",
    "parse_retry_after",
    "price_table",
    "provider_config",
    "resolve_provider",
]
