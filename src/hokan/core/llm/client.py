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

import base64
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from hokan.core.llm.retry import Deadline

IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")  # accepted by OpenAI and Gemini


@dataclass(frozen=True)
class ImageInput:
    """An image sent with a request (vision). data: the encoded file (PNG, JPEG, WebP, GIF);
    mime: its type, one of ``IMAGE_MIME_TYPES``. Hashable; ``sha256`` identifies it in cache keys.

    Raises:
        ValueError: empty data or an unsupported mime type.
    """

    data: bytes = field(repr=False)
    mime: str = "image/png"

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("ImageInput: data is empty")
        if self.mime not in IMAGE_MIME_TYPES:
            raise ValueError(f"ImageInput: unsupported mime type {self.mime!r} (use one of {', '.join(IMAGE_MIME_TYPES)})")

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of ``data``: what a cache key records instead of the bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def base64(self) -> str:
        """``data`` as standard base64 text (the wire form of both providers)."""
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """``data:<mime>;base64,<data>`` (OpenAI ``image_url``)."""
        return f"data:{self.mime};base64,{self.base64()}"

    def __repr__(self) -> str:
        return f"ImageInput(mime={self.mime!r}, bytes={len(self.data)}, sha256={self.sha256[:12]}…)"


@dataclass(frozen=True)
class JsonRequest:
    """A structured-output request.

    system / user: prompt texts (Japanese for user-facing apps), sent as separate roles.
    schema: a JSON Schema (draft 2020-12 subset: object with properties) the answer must match.
    schema_name: a short identifier used in logs, errors and the provider's response_format.
    temperature: sampling temperature; None leaves the provider default.
    max_output_tokens: cap on the answer length, or None.
    idempotency_key: a stable key for this piece of paid work (e.g. "lead:42:2026-11-21").
    images: images sent after the user text (vision), in order; () for text only.
    """

    system: str
    user: str
    schema: dict[str, Any]
    schema_name: str
    temperature: float | None = 0.0
    max_output_tokens: int | None = 1024
    idempotency_key: str = ""
    images: tuple[ImageInput, ...] = ()


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


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors for a list of texts. vectors[i] embeds texts[i] (floats, the model's dimension);
    usage: input tokens and cost (``cost_source="none"`` when the provider reports no tokens);
    attempts: HTTP requests sent (retries included)."""

    vectors: list[list[float]]
    usage: Usage
    provider: str
    model: str
    attempts: int = 1


class LLMClient(Protocol):
    """A provider client. ``available`` is False for the offline client (no call is made).

    profile / scope: the app profile that built it and the ledger scope of its calls.
    """

    provider: str
    model: str
    available: bool
    profile: str
    scope: str

    def complete_json(
        self,
        request: JsonRequest,
        *,
        timeout_s: float | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> Completion:
        """Ask for one JSON object.

        timeout_s: per request phase (seconds; default: the client's). deadline /
        deadline_s: the whole call's limit (module docstring; default: the client's own
        ``deadline_s``, None for none).

        Raises:
            LLMConfigError: no key / unknown model / base URL refused by the SSRF guard;
                never retried.
            LLMDeadlineExceeded: the deadline passed (a LLMTransientError).
            LLMTransientError: 429/5xx/timeout still failing after this client's retries
                (``max_retries=0`` turns them off, so a Celery task can retry instead).
            LLMRequestError: other 4xx; final for this record.
            LLMOutputError: the answer is not a JSON object even after repair; its ``usage``
                is the cost of the paid answer. The one re-ask with a stricter instruction is
                ``budgeted.complete_json_budgeted``'s loop, not the client's.
        """
        ...

    def embed(
        self,
        texts: list[str],
        *,
        model: str | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> EmbeddingResult:
        """Embed ``texts`` (one vector each) with ``model`` (default: the provider's embedding
        model, e.g. "text-embedding-3-small").

        Raises: as ``complete_json``; LLMConfigError when the provider has no embeddings
        (Perplexity, the offline client); LLMOutputError when the answer lacks a vector.
        """
        ...
