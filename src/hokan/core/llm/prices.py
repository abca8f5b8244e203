"""Price table for providers that do not report the cost of a call themselves.

Prices are USD, exact ``Decimal``: per 1,000,000 input / output tokens, plus a fixed fee per
request where the provider charges one. Used only when the response has no cost of its own
(Perplexity reports ``usage.cost.total_cost``; OpenAI, Azure and local servers do not).

Sources (read 2026-11-21):

- Perplexity Sonar: https://docs.perplexity.ai/docs/legacy/sonar/models/sonar and
  https://docs.perplexity.ai/guides/pricing — "Total cost per query = Token costs + Request
  fee (varies by search context size)". sonar $1 / $1 per 1M tokens, request fee per 1K
  requests $5 / $8 / $12 (search context low / medium / high); sonar-pro $3 / $15, fee $6 /
  $10 / $14. The default ``search_context_size`` is "low"
  (https://docs.perplexity.ai/guides/search-context-size-guide), so the table carries the low
  fee. Sonar chat completions are a legacy API there (superseded by the Agent API).
- OpenAI: https://developers.openai.com/api/docs/pricing (as summarised on 2026-11-06 by
  api-evangelist, and the Vercel AI gateway model page): gpt-4.1-mini $0.40 / $1.60,
  gpt-4.1 $2 / $8, gpt-4.1-nano $0.10 / $0.40, gpt-4o-mini $0.15 / $0.60 per 1M tokens. Azure OpenAI deployments are
  billed by Azure's own price list; configure them with the env overrides below.
  Embeddings (input tokens only): text-embedding-3-small $0.02, text-embedding-3-large $0.13
  per 1M tokens (same pricing page, "Embeddings").

Batch APIs: ``BATCH_PRICE_FACTOR`` (0.5) — the OpenAI Batch API and the Gemini Batch API
both charge 50 % of the interactive price for the same tokens
(https://platform.openai.com/docs/guides/batch "50% cost discount";
https://ai.google.dev/gemini-api/docs/batch-api "50% of the standard cost"; read 2026-12-01).

Overrides: ``HOKAN_LLM_PRICE_INPUT_PER_MTOK_USD`` / ``HOKAN_LLM_PRICE_OUTPUT_PER_MTOK_USD``
replace the token prices of the configured model (see ``factory.get_client``).
A model missing from the table yields cost 0 with ``cost_source="none"``; the budget wrapper
then commits its estimate instead, so spending is never under-counted silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MTOK = Decimal(1_000_000)
BATCH_PRICE_FACTOR = Decimal("0.5")  # batch requests cost half (module docstring)


@dataclass(frozen=True)
class Price:
    """USD per 1M input tokens, per 1M output tokens, and per request (0 if none)."""

    input_per_mtok_usd: Decimal
    output_per_mtok_usd: Decimal
    request_fee_usd: Decimal = Decimal("0")

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Exact cost of one request with these token counts."""
        return (
            Decimal(input_tokens) * self.input_per_mtok_usd / MTOK
            + Decimal(output_tokens) * self.output_per_mtok_usd / MTOK
            + self.request_fee_usd
        )


# Keyed by model name as sent in the request ("sonar", "gpt-4.1-mini").
DEFAULT_PRICES: dict[str, Price] = {
    # Perplexity Sonar, request fee for search_context_size "low" ($5 / $6 per 1K requests).
    "sonar": Price(Decimal("1"), Decimal("1"), Decimal("0.005")),
    "sonar-pro": Price(Decimal("3"), Decimal("15"), Decimal("0.006")),
    "sonar-reasoning-pro": Price(Decimal("2"), Decimal("8"), Decimal("0.006")),
    # OpenAI
    "gpt-4.1-mini": Price(Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1": Price(Decimal("2"), Decimal("8")),
    "gpt-4.1-nano": Price(Decimal("0.10"), Decimal("0.40")),  # OpenAI pricing page, 2025
    "gpt-4o-mini": Price(Decimal("0.15"), Decimal("0.60")),
    # OpenAI embeddings: input tokens only
    "text-embedding-3-small": Price(Decimal("0.02"), Decimal("0")),
    "text-embedding-3-large": Price(Decimal("0.13"), Decimal("0")),
}


def price_table(
    model: str,
    *,
    input_per_mtok_usd: Decimal | None = None,
    output_per_mtok_usd: Decimal | None = None,
    base: dict[str, Price] | None = None,
) -> dict[str, Price]:
    """The default table with ``model``'s token prices replaced by the given overrides.

    Overriding only one side keeps the other from the table (0 if the model is unknown).
    """
    table = dict(DEFAULT_PRICES if base is None else base)
    if input_per_mtok_usd is None and output_per_mtok_usd is None:
        return table
    current = table.get(model, Price(Decimal("0"), Decimal("0")))
    table[model] = Price(
        input_per_mtok_usd if input_per_mtok_usd is not None else current.input_per_mtok_usd,
        output_per_mtok_usd if output_per_mtok_usd is not None else current.output_per_mtok_usd,
        current.request_fee_usd,
    )
    return table
