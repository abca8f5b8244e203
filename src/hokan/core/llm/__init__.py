"""hokan.core.llm: "give me a JSON object matching this JSON schema", for every provider.

Public names::

    from hokan.core.llm import get_client, JsonRequest, complete_json_budgeted

    client = get_client(max_retries=0)          # from Django settings; OfflineClient if no key
    if client.available:
        completion = complete_json_budgeted(client, JsonRequest(...), ledger=ledger,
                                            estimate_usd=Decimal("0.05"), key="lead:42:2026-11-21")

See client.py for the shapes, openai_compat.py for the provider wire formats and the
retry policy, budgeted.py for the ledger rules and the re-ask.
"""

from hokan.core.llm.budgeted import REASK_INSTRUCTION, complete_json_budgeted
from hokan.core.llm.client import Completion, JsonRequest, LLMClient, Usage
from hokan.core.llm.factory import PROVIDERS, get_client, resolve_provider
from hokan.core.llm.offline import OfflineClient
from hokan.core.llm.openai_compat import OpenAICompatClient, parse_retry_after
from hokan.core.llm.parse import ParsedJson, extract_json_object
from hokan.core.llm.prices import DEFAULT_PRICES, Price, price_table

__all__ = [
    "DEFAULT_PRICES",
    "PROVIDERS",
    "REASK_INSTRUCTION",
    "Completion",
    "JsonRequest",
    "LLMClient",
    "OfflineClient",
    "OpenAICompatClient",
    "ParsedJson",
    "Price",
    "Usage",
    "complete_json_budgeted",
    "extract_json_object",
    "get_client",
    "parse_retry_after",
    "price_table",
    "resolve_provider",
]
