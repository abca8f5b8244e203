"""The one interface every LLM provider implements: "give me a JSON object for this schema".

Shapes (the contract between providers and the use-case modules):

    client.complete_json(JsonRequest(...)) -> Completion
        Completion.data       dict parsed from the answer (repaired if needed), not yet validated
        Completion.usage      Usage(input_tokens, output_tokens, cost_usd: Decimal, cost_source)
        Completion.citations  list[str] of URLs the provider cited (Perplexity), else []
        Completion.raw_text   the answer text as received
        Completion.attempts   HTTP requests sent for this completion (retries included)
        Completion.repaired   True when the JSON had to be repaired (e.g. a truncated answer)
        Completion.cached     True when the answer came from the LLM cache (core.cache): no call
                              was made, usage is zero (cost 0, calls 0) and attempts is 0

Budget, cache and rate limits wrap the client in the use-case module; they are not part of
it. Implementations: ``openai_compat.OpenAICompatClient`` (Perplexity, OpenAI, Azure OpenAI,
Ollama, vLLM), ``offline.OfflineClient`` (makes no call; ``available`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class JsonRequest:
    """A structured-output request.

    system / user: prompt texts (Japanese for user-facing apps), sent as separate roles.
    schema: a JSON Schema (draft 2020-12 subset: object with properties) the answer must match.
    schema_name: a short identifier used in logs, errors and the provider's response_format.
    temperature: sampling temperature; None leaves the provider default.
    max_output_tokens: cap on the answer length, or None.
    idempotency_key: a stable key for this piece of paid work (e.g. "lead:42:2026-11-21").
    """

    system: str
    user: str
    schema: dict[str, Any]
    schema_name: str
    temperature: float | None = 0.0
    max_output_tokens: int | None = 1024
    idempotency_key: str = ""


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one or more calls. cost_usd is exact (Decimal, USD)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal("0")
    cost_source: Literal["provider", "price_table", "none"] = "none"
    calls: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        source = self.cost_source if self.cost_source == other.cost_source else "price_table"
        if self.calls == 0:
            source = other.cost_source
        elif other.calls == 0:
            source = self.cost_source
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            cost_source=source,
            calls=self.calls + other.calls,
        )


@dataclass(frozen=True)
class Completion:
    data: dict[str, Any]
    usage: Usage
    provider: str
    model: str
    raw_text: str = ""
    citations: list[str] = field(default_factory=list)
    attempts: int = 1
    repaired: bool = False
    cached: bool = False


class LLMClient(Protocol):
    """A provider client. ``available`` is False for the offline client (no call is made)."""

    provider: str
    model: str
    available: bool

    def complete_json(self, request: JsonRequest, *, timeout_s: float | None = None) -> Completion:
        """Ask for one JSON object.

        Raises:
            LLMConfigError: no key / unknown model; never retried.
            LLMTransientError: 429/5xx/timeout still failing after this client's retries
                (``max_retries=0`` turns them off, so a Celery task can retry instead).
            LLMRequestError: other 4xx; final for this record.
            LLMOutputError: the answer is not a JSON object even after repair; its ``usage``
                is the cost of the paid answer. The one re-ask with a stricter instruction is
                ``budgeted.complete_json_budgeted``'s loop, not the client's.
        """
        ...
