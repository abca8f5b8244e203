"""Batch mode (``--mode batch``): the same scoring requests as the online mode, sent as one
provider batch at half price, polled, and resumed after a restart (issue 11 §4; design
document 002 has no batch mode — the providers' batch APIs are the real-world way to pay half).

::

    backend = batch_backend(client)                      # OpenAIBatchBackend | GeminiBatchBackend
    runner = BatchRunner(backend, store=FileBatchStore(settings.HOKAN_SCORING_BATCH_DIR),
                         ledger=get_ledger("scoring"), estimate_usd=Decimal("0.002"))
    run = runner.run("scoring:job-7:chunk-3", [BatchItem(key, json_request), ...], online=ask_online)
    run.results[key].completion                          # Completion (usage at the batch price) or None + error

Wire formats (checked 2026-12-01):

- **OpenAI Batch API** (https://platform.openai.com/docs/guides/batch, API reference "Batch",
  openai-python ``types/batch.py``): upload a JSONL file ``POST /v1/files`` (multipart,
  ``purpose=batch``), one line per request ``{"custom_id", "method": "POST", "url":
  "/v1/chat/completions", "body": <the chat completion request>}``; ``POST /v1/batches``
  ``{"input_file_id", "endpoint": "/v1/chat/completions", "completion_window": "24h",
  "metadata"}``; poll ``GET /v1/batches/{id}`` (status validating / in_progress / finalizing /
  completed / failed / expired / cancelling / cancelled, ``request_counts``, ``errors``);
  download ``GET /v1/files/{output_file_id}/content`` (lines ``{"id", "custom_id",
  "response": {"status_code", "request_id", "body"}, "error"}``) and ``error_file_id`` (failed
  lines; an expired batch writes its unfinished lines there with code ``batch_expired``).
  Lines come in any order: matched by ``custom_id``. Sent through the openai SDK of the
  configured client (``hokan.core.llm.openai_compat``: the guarded HTTP client).
- **Gemini Batch API** (https://ai.google.dev/gemini-api/docs/batch-api, https://ai.google.dev/api/batch-api):
  ``POST /v1beta/models/{model}:batchGenerateContent`` ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": <GenerateContentRequest>, "metadata":
  {"key"}}]}}}}`` → a long-running operation ``{"name": "batches/…", "metadata": {...}}``;
  poll ``GET /v1beta/batches/{id}`` → ``{"metadata": {"state": "BATCH_STATE_PENDING" |
  RUNNING | SUCCEEDED | FAILED | CANCELLED | EXPIRED}, "done", "response": {"inlinedResponses":
  {"inlinedResponses": [{"response" | "error", "metadata": {"key"}}]}}}`` (the SDK spells the
  states JOB_STATE_*; both are read). Inline requests only (whole request under 20 MB, the
  documented limit; a scoring chunk of 500 rows is far below it); the JSONL-file input of the
  File API is not used. HTTP through ``guarded_client``.

Both cost 50 % of the interactive price (OpenAI pricing page "Batch API"; Gemini "Batch API:
50% of the standard cost"): ``hokan.core.llm.prices.BATCH_PRICE_FACTOR``.

Exactly once (issue 11 §3):

- The batch is one ledger reservation (scope "scoring"), key ``{batch_key}:batch``, ``calls`` =
  its requests, estimate = ``estimate_usd`` × requests × 0.5; committed with the sum of the
  answers' batch-price costs when the results are in (released when the batch failed before
  running). Every request's ``custom_id`` / ``metadata.key`` is its row/category block's own
  idempotency key (``BatchItem.key``).
- Before anything is sent the store records "submitting", right before the create request
  "creating", after it the batch id (``FileBatchStore``: one JSON file per batch, written
  atomically). A restarted run finds the record and polls that batch instead of submitting
  again; stopped before the create request it submits (nothing existed). Killed during the
  create request, the run finds the batch at the provider by our key (OpenAI
  ``metadata.hokan_key``, Gemini ``displayName``); if it cannot, it stops with
  ``BatchUnknown`` rather than pay twice.
- Results can be downloaded any number of times for free: a run after the batch was committed
  downloads them again and commits nothing.

Failed lines (a 5xx / 429 line, an expired or cancelled batch's unfinished lines) are asked
again online through ``online(item)`` when given (the online path with its own reservation),
else reported with their reason; a line refused for good (4xx) is reported.
Note: ``settle_stale`` of the scoring ledger commits open reservations older than its cut-off
at their estimate; a batch polled after that commits nothing more (the estimate, an upper
bound, stands).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx

from hokan.core.errors import (
    FetchBlocked,
    FetchTooLarge,
    HokanError,
    LLMConfigError,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMTransientError,
)
from hokan.core.llm.client import Completion, JsonRequest, Usage
from hokan.core.llm.prices import BATCH_PRICE_FACTOR
from hokan.core.web.http import guarded_client

log = logging.getLogger(__name__)

_MICRO = Decimal("0.000001")
GEMINI_INLINE_MAX_BYTES = 20 * 1024 * 1024  # "total request size under 20MB" (Gemini batch guide)


# --- errors ---------------------------------------------------------------------------------------
class BatchError(HokanError):
    """A provider batch could not be used. ``batch_key``: our key of the batch; ``batch_id``:
    the provider's id ("" when none yet). The message is Japanese."""

    def __init__(self, message: str, *, batch_key: str, batch_id: str = "") -> None:
        super().__init__(message)
        self.batch_key = batch_key
        self.batch_id = batch_id


class BatchFailed(BatchError):
    """The provider failed the whole batch before running it (e.g. the input file was refused):
    ``status`` is the provider's ("failed"); nothing was charged, the reservation is released."""

    def __init__(self, message: str, *, batch_key: str, batch_id: str = "", status: str = "failed") -> None:
        super().__init__(message, batch_key=batch_key, batch_id=batch_id)
        self.status = status


class BatchUnknown(BatchError):
    """A previous run started submitting this batch and its batch cannot be found: it is not
    submitted again (it may have been paid); the message says what to check."""


class BatchTimeout(BatchError):
    """The batch has not finished within ``max_wait_s``; it keeps running at the provider and
    the next run polls it (nothing is lost or paid again)."""


# --- what is submitted and what comes back ----------------------------------------------------------
@dataclass(frozen=True)
class BatchItem:
    """One request of a batch: ``key`` is the idempotency key of its row/category block (the
    line's OpenAI ``custom_id`` / Gemini ``metadata.key``), ``request`` the same ``JsonRequest``
    the online mode sends."""

    key: str
    request: JsonRequest


@dataclass
class ItemResult:
    """What became of one item. completion: the parsed answer (usage at the batch price, or
    the online price when ``source`` is "online"); error: the Japanese reason when there is no
    completion; retryable: worth asking again (429/5xx line, expired or cancelled batch);
    status_code: the line's HTTP status when it had one."""

    key: str
    completion: Completion | None = None
    error: str = ""
    retryable: bool = False
    status_code: int | None = None
    source: str = "batch"

    @property
    def ok(self) -> bool:
        return self.completion is not None


@dataclass(frozen=True)
class BatchStatus:
    """A poll: ``state`` one of pending / running / succeeded / failed / expired / cancelled;
    ``raw``: the provider's own status name; counts: requests total / completed / failed."""

    state: str
    raw: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in ("succeeded", "failed", "expired", "cancelled")


@dataclass
class BatchRun:
    """The outcome of ``BatchRunner.run``: results by item key, the provider's batch id,
    whether an existing batch was resumed (not submitted by this run), polls made, the cost
    committed by this run (USD), and how many failed lines were asked again online."""

    results: dict[str, ItemResult]
    batch_id: str
    resumed: bool
    polls: int = 0
    committed_usd: Decimal = Decimal("0")
    retried_online: int = 0

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results.values() if not r.ok]


# --- the store of submitted batches -----------------------------------------------------------------
@dataclass
class BatchRecord:
    """What is remembered of a batch (JSON). state: submitting (nothing created yet: the input
    is being uploaded) / creating (the create request may have been sent: look it up before
    sending again) / submitted (``batch_id`` known) / finished / failed."""

    key: str
    provider: str
    model: str
    state: str = "submitting"
    batch_id: str = ""
    input_file_id: str = ""
    item_keys: list[str] = field(default_factory=list)
    created_at: float = 0.0


class BatchStore(Protocol):
    def get(self, key: str) -> BatchRecord | None: ...

    def put(self, record: BatchRecord) -> None: ...


class FileBatchStore:
    """One JSON file per batch key under ``directory`` (``HOKAN_SCORING_BATCH_DIR``), written
    atomically (a temporary file renamed over the old one)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        import hashlib

        return self.directory / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.json"

    def get(self, key: str) -> BatchRecord | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("batch record %s unreadable; ignored", path)
            return None
        return BatchRecord(**data) if data.get("key") == key else None

    def put(self, record: BatchRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".batch-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(record), handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


# --- backends -------------------------------------------------------------------------------------------
class BatchBackend(Protocol):
    """One provider's batch API (module docstring)."""

    provider: str
    model: str

    def submit(self, batch_key: str, items: Sequence[BatchItem],
               before_create: Callable[[str], None] = lambda file_id: None) -> tuple[str, str]:
        """Send the batch; (batch id, input file id or ""). ``before_create(input file id)``
        is called right before the create request (which may create the batch even when its
        answer never arrives)."""
        ...

    def find(self, batch_key: str) -> str | None:
        """The id of a batch this key submitted, looked up at the provider, or None."""
        ...

    def poll(self, batch_id: str) -> BatchStatus: ...

    def results(self, batch_id: str, items: Sequence[BatchItem]) -> dict[str, ItemResult]:
        """Every item's result (items the provider did not answer: a retryable error)."""
        ...


def batch_price(usage: Usage, estimate_usd: Decimal) -> Usage:
    """``usage`` at the batch price: a table price × ``BATCH_PRICE_FACTOR``; a cost the
    provider reported is kept; an unpriced call (cost_source "none") costs the estimate ×
    the factor. Whole micro-dollars (the ledger's unit)."""
    if usage.cost_source == "provider":
        cost = usage.cost_usd
    elif usage.cost_source == "price_table":
        cost = usage.cost_usd * BATCH_PRICE_FACTOR
    else:
        cost = estimate_usd * BATCH_PRICE_FACTOR
    return dataclasses.replace(usage, cost_usd=cost.quantize(_MICRO, rounding=ROUND_HALF_UP))


def _create_unanswered(batch_key: str, provider: str) -> BatchError:
    return BatchError(f"{provider}: バッチ作成の要求に応答がありません（タイムアウト）。作成されたかもしれないため再送信せず、"
                      "次の実行で提供元に問い合わせます", batch_key=batch_key)


def _missing(key: str, reason: str) -> ItemResult:
    return ItemResult(key, error=reason, retryable=True)


class OpenAIBatchBackend:
    """The OpenAI Batch API through ``client``'s SDK (an ``OpenAICompatClient`` for provider
    "openai" or "openai_compatible"); the request body of each line is exactly what
    ``client.complete_json`` would send (``client._params``), the answer is parsed as it would
    be (``client._completion``).

    Raises (every method): LLMConfigError (401/403/404, refused URL), LLMTransientError
    (429/5xx/timeouts after the client's retries), LLMRequestError (other 4xx).
    """

    endpoint = "/v1/chat/completions"

    def __init__(self, client: Any, *, sleep: Callable[[float], None] | None = None) -> None:
        if getattr(client, "provider", "") not in ("openai", "openai_compatible"):
            raise LLMConfigError(
                f"バッチモードは OpenAI（Batch API）と Gemini（Batch）だけに対応しています（{getattr(client, 'provider', '?')}）",
                provider=str(getattr(client, "provider", "")))
        if getattr(client, "api_style", "chat_completions") != "chat_completions":
            raise LLMConfigError("OpenAI のバッチモードは HOKAN_LLM_API_STYLE=chat_completions だけに対応しています",
                                 provider=client.provider)
        self.client = client
        self.provider = client.provider
        self.model = client.model
        self._sleep = sleep or getattr(client, "_sleep", time.sleep)  # the client's own (tests inject one)

    def _call(self, send: Callable[[float], Any], *, creates: str = "") -> Any:
        """One SDK call (``send(timeout)``) with the client's retry policy and error mapping.

        creates: the batch key when the call creates a batch: a timeout is then NOT retried
        (the batch may exist; ``BatchError``, the next run looks it up) — answered 429/5xx are.
        """
        import openai

        def attempt(left: float | None) -> Any:
            timeout = self.client.timeout_s if left is None else max(1.0, min(self.client.timeout_s, left))
            try:
                return send(timeout)
            except openai.APITimeoutError as exc:
                if creates:
                    raise _create_unanswered(creates, self.provider) from exc
                raise LLMTransientError(f"{self.provider}: タイムアウトしました", provider=self.provider) from exc
            except openai.APIConnectionError as exc:
                if isinstance(exc.__cause__, FetchBlocked):
                    raise LLMConfigError(f"{self.provider}: 接続先が拒否されました: {exc.__cause__}",
                                         provider=self.provider) from exc
                raise LLMTransientError(f"{self.provider}: 接続できませんでした", provider=self.provider) from exc
            except openai.APIStatusError as exc:
                raise self.client._status_error(exc) from exc
            except FetchBlocked as exc:
                raise LLMConfigError(f"{self.provider}: 接続先が拒否されました: {exc}", provider=self.provider) from exc

        result, _ = self.client.retry_policy.call(attempt, provider=self.provider, sleep=self._sleep)
        return result

    def lines(self, items: Sequence[BatchItem]) -> bytes:
        """The JSONL input file (one request per line)."""
        out = io.StringIO()
        for item in items:
            out.write(json.dumps({"custom_id": item.key, "method": "POST", "url": self.endpoint,
                                  "body": self.client._params(item.request)}, ensure_ascii=False))
            out.write("\n")
        return out.getvalue().encode("utf-8")

    def submit(self, batch_key: str, items: Sequence[BatchItem],
               before_create: Callable[[str], None] = lambda file_id: None) -> tuple[str, str]:
        sdk = self.client._sdk
        data = self.lines(items)
        uploaded = self._call(lambda t: sdk.files.create(file=("hokan-batch.jsonl", data, "application/jsonl"),
                                                         purpose="batch", timeout=t))
        before_create(str(uploaded.id))
        created = self._call(lambda t: sdk.batches.create(
            input_file_id=uploaded.id, endpoint=self.endpoint, completion_window="24h",
            metadata={"hokan_key": batch_key[:512]}, timeout=t), creates=batch_key)
        return str(created.id), str(uploaded.id)

    def find(self, batch_key: str, *, max_pages: int = 10) -> str | None:
        """The newest batch whose ``metadata.hokan_key`` is ``batch_key`` among the account's
        last ``max_pages`` × 100 batches (newest first), or None."""
        sdk = self.client._sdk
        after: str | None = None
        for _ in range(max_pages):
            cursor = after
            page = self._call(lambda t: sdk.batches.list(limit=100, timeout=t, **({"after": cursor} if cursor else {})))
            for batch in page.data:
                if (batch.metadata or {}).get("hokan_key") == batch_key[:512]:
                    return str(batch.id)
            if not page.data or not getattr(page, "has_more", False):
                return None
            after = str(page.data[-1].id)
        return None

    def poll(self, batch_id: str) -> BatchStatus:
        batch = self._call(lambda t: self.client._sdk.batches.retrieve(batch_id, timeout=t))
        state = {"validating": "pending", "in_progress": "running", "finalizing": "running",
                 "cancelling": "running", "completed": "succeeded", "failed": "failed",
                 "expired": "expired", "cancelled": "cancelled"}.get(str(batch.status), "running")
        counts = batch.request_counts
        errors = [e.message for e in ((batch.errors.data or []) if batch.errors else []) if getattr(e, "message", None)]
        return BatchStatus(state, str(batch.status), total=getattr(counts, "total", 0) or 0,
                           completed=getattr(counts, "completed", 0) or 0, failed=getattr(counts, "failed", 0) or 0,
                           message="; ".join(str(m) for m in errors)[:500])

    def _content(self, file_id: str) -> str:
        response = self._call(lambda t: self.client._sdk.files.content(file_id, timeout=t))
        return response.content.decode("utf-8", "replace")

    def results(self, batch_id: str, items: Sequence[BatchItem]) -> dict[str, ItemResult]:
        batch = self._call(lambda t: self.client._sdk.batches.retrieve(batch_id, timeout=t))
        by_key = {item.key: item for item in items}
        results: dict[str, ItemResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for number, line in enumerate(self._content(str(file_id)).splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line, parse_float=Decimal)
                except ValueError:
                    log.warning("batch %s file %s line %d is not JSON; skipped", batch_id, file_id, number)
                    continue
                key = str(entry.get("custom_id", ""))
                if key in by_key and key not in results:
                    results[key] = self._line(by_key[key], entry)
        why = {"expired": "バッチが期限（24時間）内に終わりませんでした", "cancelled": "バッチが取り消されました"}.get(
            str(batch.status), "バッチの結果に含まれていません")
        return {item.key: results.get(item.key) or _missing(item.key, why) for item in items}

    def _line(self, item: BatchItem, entry: Mapping[str, Any]) -> ItemResult:
        response = entry.get("response") or {}
        error = entry.get("error") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if status == 200 and isinstance(body, dict):
            try:
                completion = self.client._completion(item.request, body, 1)
            except LLMOutputError as exc:
                return ItemResult(item.key, error=f"回答が JSON ではありません: {exc}", retryable=True, status_code=200)
            return ItemResult(item.key, completion=completion, status_code=200)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
        code = str(error.get("code") or "")
        message = str(error.get("message") or "") or "エラー"
        retryable = code == "batch_expired" or status is None or status == 429 or (status or 0) >= 500
        return ItemResult(item.key, error=f"バッチの行が失敗しました（{status or code}）: {message}"[:500],
                          retryable=retryable, status_code=status)


class GeminiBatchBackend:
    """The Gemini Batch API (inline requests) for a ``GeminiClient``: each request is exactly
    ``client.payload(request)``, each answer is parsed by ``client._completion``.

    Raises (every method): LLMConfigError / LLMTransientError / LLMRequestError as the client's
    ``complete_json`` (its ``_status_error`` mapping; retries with its policy).
    """

    def __init__(self, client: Any, *, sleep: Callable[[float], None] | None = None) -> None:
        if getattr(client, "provider", "") != "gemini":
            raise LLMConfigError("GeminiBatchBackend には Gemini のクライアントが必要です", provider="gemini")
        self.client = client
        self.provider = "gemini"
        self.model = client.model
        self._sleep = sleep or getattr(client, "_sleep", time.sleep)  # the client's own (tests inject one)

    def _request(self, method: str, path: str, payload: Any = None, params: Mapping[str, str] | None = None,
                 *, creates: str = "") -> Any:
        """One request with the client's retries; ``creates``: as ``OpenAIBatchBackend._call``."""
        url = f"{self.client.base_url}/v1beta/{path}"

        def attempt(left: float | None) -> Any:
            timeout = self.client.timeout_s if left is None else max(1.0, min(self.client.timeout_s, left))
            try:
                with guarded_client(timeout_s=timeout, headers=self.client._headers,
                                    allow_hosts=self.client.allow_hosts) as http:
                    response = http.request(method, url, json=payload, params=params)
            except httpx.TimeoutException as exc:
                if creates:
                    raise _create_unanswered(creates, "gemini") from exc
                raise LLMTransientError("gemini: タイムアウトしました", provider="gemini") from exc
            except httpx.TransportError as exc:
                raise LLMTransientError("gemini: 接続できませんでした", provider="gemini") from exc
            except FetchBlocked as exc:
                raise LLMConfigError(f"gemini: 接続先が拒否されました: {exc}", provider="gemini") from exc
            except FetchTooLarge as exc:
                raise LLMError(f"gemini: 応答が大きすぎます: {exc}", provider="gemini") from exc
            if response.status_code >= 400:
                raise self.client._status_error(response)
            try:
                return response.json()
            except ValueError as exc:
                raise LLMTransientError("gemini: 応答が JSON ではありません", provider="gemini") from exc

        result, _ = self.client.retry_policy.call(attempt, provider="gemini", sleep=self._sleep)
        return result

    def submit(self, batch_key: str, items: Sequence[BatchItem],
               before_create: Callable[[str], None] = lambda file_id: None) -> tuple[str, str]:
        body = {"batch": {"displayName": batch_key[:512], "inputConfig": {"requests": {"requests": [
            {"request": self.client.payload(item.request), "metadata": {"key": item.key}} for item in items]}}}}
        size = len(json.dumps(body, ensure_ascii=False).encode("utf-8"))
        if size > GEMINI_INLINE_MAX_BYTES:
            raise BatchError(f"Gemini のバッチが大きすぎます（{size:,} バイト、上限 20 MB）。チャンクの行数を減らしてください",
                             batch_key=batch_key)
        before_create("")
        operation = self._request("POST", f"models/{self.model}:batchGenerateContent", body, creates=batch_key)
        return str(operation.get("name") or (operation.get("metadata") or {}).get("name") or ""), ""

    def find(self, batch_key: str, *, max_pages: int = 10) -> str | None:
        """The batch whose ``displayName`` is ``batch_key`` among the last ``max_pages`` pages
        of ``GET /v1beta/batches`` (100 each), or None."""
        token = ""
        for _ in range(max_pages):
            params = {"pageSize": "100", **({"pageToken": token} if token else {})}
            listing = self._request("GET", "batches", params=params)
            for operation in listing.get("operations", listing.get("batches", [])) or []:
                meta = operation.get("metadata") or operation
                if meta.get("displayName") == batch_key[:512]:
                    return str(operation.get("name") or meta.get("name"))
            token = str(listing.get("nextPageToken") or "")
            if not token:
                return None
        return None

    def _get(self, batch_id: str) -> dict[str, Any]:
        operation = self._request("GET", batch_id)
        return operation if isinstance(operation, dict) else {}

    def poll(self, batch_id: str) -> BatchStatus:
        operation = self._get(batch_id)
        meta = operation.get("metadata") or {}
        raw = str(meta.get("state") or operation.get("state") or "")
        name = raw.replace("BATCH_STATE_", "").replace("JOB_STATE_", "")
        state = {"PENDING": "pending", "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
                 "CANCELLED": "cancelled", "EXPIRED": "expired"}.get(name, "running")
        stats = meta.get("batchStats") or {}
        error = operation.get("error") or {}
        return BatchStatus(state, raw, total=int(stats.get("requestCount", 0) or 0),
                           completed=int(stats.get("successfulRequestCount", 0) or 0),
                           failed=int(stats.get("failedRequestCount", 0) or 0),
                           message=str(error.get("message", ""))[:500])

    def results(self, batch_id: str, items: Sequence[BatchItem]) -> dict[str, ItemResult]:
        operation = self._get(batch_id)
        response = operation.get("response") or (operation.get("metadata") or {}).get("output") or {}
        inlined = response.get("inlinedResponses") or {}
        entries = inlined.get("inlinedResponses", []) if isinstance(inlined, dict) else inlined
        results: dict[str, ItemResult] = {}
        for index, entry in enumerate(entries or []):
            key = str((entry.get("metadata") or {}).get("key") or "")
            if not key and index < len(items):
                key = items[index].key  # the documented order is the input order
            item = next((i for i in items if i.key == key), None)
            if item is None or key in results:
                continue
            if isinstance(entry.get("response"), dict):
                try:
                    results[key] = ItemResult(key, completion=self.client._completion(item.request, entry["response"], 1),
                                              status_code=200)
                except LLMOutputError as exc:
                    results[key] = ItemResult(key, error=f"回答が JSON ではありません: {exc}", retryable=True,
                                              status_code=200)
                continue
            error = entry.get("error") or {}
            code = int(error.get("code", 0) or 0)
            retryable = code in (0, 4, 8, 13, 14, 429) or code >= 500  # gRPC DEADLINE/RESOURCE/INTERNAL/UNAVAILABLE
            results[key] = ItemResult(key, error=f"バッチの行が失敗しました（{code}）: {error.get('message', '')}"[:500],
                                      retryable=retryable, status_code=code or None)
        state = (operation.get("metadata") or {}).get("state", "")
        why = "バッチが期限内に終わりませんでした" if "EXPIRED" in str(state) else "バッチの結果に含まれていません"
        return {item.key: results.get(item.key) or _missing(item.key, why) for item in items}


def batch_backend(client: Any, *, sleep: Callable[[float], None] | None = None) -> BatchBackend:
    """The backend for the configured scoring client (``get_client(profile="scoring")``; a
    wrapper with ``.inner`` is unwrapped).

    Raises:
        LLMConfigError: a provider without a batch API here (Perplexity, Azure, offline).
    """
    inner = client
    for _ in range(5):  # BudgetedClient.inner, RateLimitedClient.client
        wrapped = getattr(inner, "inner", None) or (getattr(inner, "client", None) if hasattr(inner, "limiter") else None)
        if wrapped is None:
            break
        inner = wrapped
    if getattr(inner, "provider", "") == "gemini":
        return GeminiBatchBackend(inner, sleep=sleep)
    return OpenAIBatchBackend(inner, sleep=sleep)


# --- the runner -----------------------------------------------------------------------------------------
Online = Callable[[BatchItem], Completion]


@dataclass
class Submitted:
    """A batch started by ``BatchRunner.start``: its key, items, the provider's id, whether it
    was found (submitted by an earlier run), the ledger reservation, whether that reservation
    was settled already (paid: nothing is committed again)."""

    batch_key: str
    items: list[BatchItem]
    batch_id: str
    resumed: bool
    reservation: Any
    paid: bool


class BatchRunner:
    """Submit (or resume) one batch, poll it to the end, return every item's result.

    backend: ``batch_backend(client)``; store: where submitted batches are remembered;
    ledger: the scoring ledger (``get_ledger("scoring")``; duck-typed reserve/commit/release);
    estimate_usd: the online price estimate of ONE request (USD; the reservation is this ×
    requests × ``BATCH_PRICE_FACTOR``); poll_interval_s / max_wait_s: seconds between polls
    and the longest wait (``HOKAN_SCORING_BATCH_POLL_INTERVAL_S`` / ``_MAX_WAIT_S``);
    max_requests: requests per batch (``HOKAN_SCORING_BATCH_MAX_REQUESTS``); sleep / clock:
    injected by tests (nothing waits on the wall clock there); on_poll: called with each
    ``BatchStatus`` (a progress bar).
    """

    def __init__(self, backend: BatchBackend, *, store: BatchStore, ledger: Any, estimate_usd: Decimal,
                 poll_interval_s: float = 60.0, max_wait_s: float = 26 * 3600.0, max_requests: int = 50_000,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 on_poll: Callable[[BatchStatus], None] | None = None) -> None:
        self.backend = backend
        self.store = store
        self.ledger = ledger
        self.estimate_usd = Decimal(estimate_usd)
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self._sleep = sleep
        self._clock = clock
        self.on_poll = on_poll

    def run(self, batch_key: str, items: Sequence[BatchItem], *, online: Online | None = None) -> BatchRun:
        """The results of ``items`` as one batch keyed ``batch_key`` (see the module docstring):
        ``start`` then ``collect``.

        online: asks one failed (retryable) item again through the online mode; None = failed
        items are reported (``BatchRun.failed``).

        Raises:
            ValueError: no items, duplicate keys, more than ``max_requests``.
            BudgetExceeded: the reservation does not fit (nothing sent).
            BatchFailed: the provider failed the batch (reservation released).
            BatchUnknown: a previous submission cannot be found (nothing sent again).
            BatchTimeout: not finished within ``max_wait_s`` (the next run resumes it).
            LLMConfigError / LLMTransientError / LLMRequestError: from the provider's API.
        """
        return self.collect(self.start(batch_key, items), online=online)

    def start(self, batch_key: str, items: Sequence[BatchItem]) -> "Submitted":
        """Reserve and submit the batch, or find the one a previous run submitted (nothing is
        sent twice); returns at once (several batches can be started, then collected).
        Raises as ``run`` (except BatchTimeout)."""
        keys = [item.key for item in items]
        if not items or len(set(keys)) != len(keys):
            raise ValueError("a batch needs items with distinct keys")
        if len(items) > self.max_requests:
            raise ValueError(f"{len(items)} requests > max_requests {self.max_requests}; split the batch")
        estimate = (self.estimate_usd * len(items) * BATCH_PRICE_FACTOR).quantize(_MICRO, rounding=ROUND_HALF_UP)
        reservation = self.ledger.reserve(cost_usd=estimate, calls=len(items), key=f"{batch_key}:batch")
        created = bool(getattr(reservation, "created", True))
        paid = not created and str(getattr(reservation, "status", "")) in ("committed", "expired")
        try:
            batch_id = self._batch_id(batch_key, self.store.get(batch_key), created)
            resumed = batch_id is not None
            if batch_id is None:
                batch_id = self._submit(batch_key, items)
        except BaseException:
            current = self.store.get(batch_key)
            if created and (current is None or current.state == "failed"):
                self.ledger.release(reservation)  # nothing was created at the provider
            raise
        return Submitted(batch_key, list(items), batch_id, resumed, reservation, paid)

    def collect(self, submitted: "Submitted", *, online: Online | None = None) -> BatchRun:
        """Poll ``submitted`` to its end, download its results, commit the reservation (unless
        paid before), record it finished; failed lines asked again through ``online``.
        Raises as ``run``."""
        batch_key, batch_id, items = submitted.batch_key, submitted.batch_id, submitted.items
        try:
            status, polls = self._wait(batch_key, batch_id)
        except BatchFailed:
            self.ledger.release(submitted.reservation)
            raise
        results = self.backend.results(batch_id, items)
        committed = Decimal("0")
        for result in results.values():
            if result.completion is not None:
                usage = batch_price(result.completion.usage, self.estimate_usd)
                result.completion = dataclasses.replace(result.completion, usage=usage)
                committed += usage.cost_usd
        if not submitted.paid:
            self.ledger.commit(submitted.reservation, cost_usd=committed)
        record = self.store.get(batch_key) or BatchRecord(batch_key, self.backend.provider, self.backend.model)
        record.state, record.batch_id = "finished", batch_id
        self.store.put(record)
        run = BatchRun(results, batch_id, submitted.resumed, polls, committed if not submitted.paid else Decimal("0"))
        if online is not None:
            self._retry_online(run, items, online)
        log.info("batch %s (%s %s): %d/%d answered, %d retried online, committed $%s, %s",
                 batch_key, self.backend.provider, batch_id, sum(r.ok for r in results.values()), len(items),
                 run.retried_online, run.committed_usd, status.raw)
        return run

    def _batch_id(self, batch_key: str, record: BatchRecord | None, created: bool) -> str | None:
        """The batch to poll (a record's, or found at the provider), or None to submit."""
        if record is not None and record.state == "failed" and created:
            return None  # a batch the provider failed (released): a fresh one
        if record is not None and record.batch_id:
            return record.batch_id
        if record is not None and record.state == "submitting":
            return None  # stopped before the create request was sent: nothing exists to pay for
        if record is not None and record.state == "creating":
            found = self.backend.find(batch_key)
            if found:
                return found
            raise BatchUnknown(
                f"バッチ {batch_key} は前回の実行で作成の要求中に中断され、提供元で見つかりません。二重払いを避けるため再送信しません"
                f"（提供元の管理画面でバッチを確認し、無ければ {self.store.__class__.__name__} の記録を削除して再実行してください）",
                batch_key=batch_key)
        if not created:
            found = self.backend.find(batch_key)  # another machine submitted it (no local record)
            if found:
                return found
        return None

    def _submit(self, batch_key: str, items: Sequence[BatchItem]) -> str:
        record = BatchRecord(batch_key, self.backend.provider, self.backend.model, state="submitting",
                             item_keys=[i.key for i in items], created_at=time.time())
        self.store.put(record)

        def before_create(input_file_id: str) -> None:
            record.state, record.input_file_id = "creating", input_file_id
            self.store.put(record)

        try:
            batch_id, input_file_id = self.backend.submit(batch_key, items, before_create)
        except BaseException as exc:
            # An answered error (an HTTP status, a refused key or URL) means no batch was created:
            # nothing to find or pay. A timeout of the create request may have created one:
            # "creating" stays, and the next run looks for it at the provider.
            if record.state == "submitting" or isinstance(exc, (LLMConfigError, LLMRequestError)) \
                    or getattr(exc, "status_code", None):
                record.state = "failed"
                self.store.put(record)
            raise
        record.state, record.batch_id, record.input_file_id = "submitted", batch_id, input_file_id
        self.store.put(record)
        return batch_id

    def _wait(self, batch_key: str, batch_id: str) -> tuple[BatchStatus, int]:
        started = self._clock()
        polls = 0
        while True:
            status = self.backend.poll(batch_id)
            polls += 1
            if self.on_poll is not None:
                self.on_poll(status)
            if status.state == "failed":
                record = self.store.get(batch_key)
                if record is not None:
                    record.state = "failed"
                    self.store.put(record)
                raise BatchFailed(f"バッチ {batch_id} は提供元で失敗しました（{status.raw}）: {status.message or '理由不明'}",
                                  batch_key=batch_key, batch_id=batch_id, status=status.raw)
            if status.terminal:
                return status, polls
            if self._clock() - started >= self.max_wait_s:
                raise BatchTimeout(
                    f"バッチ {batch_id} が {self.max_wait_s:,.0f} 秒以内に終わりませんでした（{status.raw}、"
                    f"{status.completed}/{status.total}件完了）。提供元では処理が続いており、次の実行で結果を受け取ります",
                    batch_key=batch_key, batch_id=batch_id)
            self._sleep(self.poll_interval_s)

    @staticmethod
    def _retry_online(run: BatchRun, items: Iterable[BatchItem], online: Online) -> None:
        for item in items:
            result = run.results[item.key]
            if result.ok or not result.retryable:
                continue
            try:
                completion = online(item)
            except HokanError as exc:
                result.error = f"{result.error}／オンラインで再試行して失敗: {exc}"[:500]
                result.retryable = isinstance(exc, LLMTransientError)
                continue
            run.results[item.key] = ItemResult(item.key, completion=completion, source="online", status_code=200)
            run.retried_online += 1


# --- the scoring job in batch mode (the CLI's ``--mode batch``) ----------------------------------------
def run_batch(sjob: Any, table: Any, *, no_cache: bool = False, on_progress: Callable[[Any], None] | None = None,
              client: Any = None, store: BatchStore | None = None, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic, sinks: Sequence[Any] | None = None) -> Any:
    """Score ``sjob`` through the provider's batch API, then finish it with the online pipeline.

    1. Plan the job's open chunks exactly as the online run does (``engine.ScoringRun.plan``:
       the same groups of rows × category blocks, the same prompts ``LLMScorer.request``, the
       same idempotency keys ``scoring:<job>:b<block>:r<first>-<end>``); rows in the LLM cache
       or with a stored answer are left out. One batch per chunk (``scoring:<job>:chunk<n>``),
       all submitted first (``BatchRunner.start``), then collected.
    2. Every batch answer is stored as a paid answer (``ScoringAnswer`` key ``<work key>:batch``,
       tokens and cost at the batch price) the moment it is downloaded.
    3. ``service.run_job`` runs the normal pipeline: it finds those stored answers (method
       "stored": no paid call), validates them like any answer (a row whose part fails is asked
       again alone, online), writes the result store, the output file and the sheet. Failed or
       expired batch lines have no stored answer, so the pipeline asks them online — the one
       retry path, with its own ledger keys and the provider's rate limit.

    A restart at any step resumes: submitted batches are polled, not sent again; downloaded
    answers are not downloaded again. Returns the pipeline's ``RunReport``.

    client / store / sleep / clock / sinks: for tests (defaults: the configured scoring client,
    ``FileBatchStore(HOKAN_SCORING_BATCH_DIR)``, the wall clock, the sheet sink of a sheet job).

    Raises:
        LLMConfigError: no provider, or one without a batch API here.
        BatchFailed / BatchUnknown / BatchTimeout: see ``BatchRunner.run`` (a timeout: run again later).
        BudgetExceeded: the batch does not fit the scoring budget.
    """
    from django.conf import settings

    from hokan.core.models import JobChunk
    from hokan.scoring import service
    from hokan.scoring.engine import ChunkRun, RunCounters, ScoringRun
    from hokan.scoring.models import ScoringAnswer

    counters = RunCounters()
    scorer = service.llm_scorer(sjob, counters, no_cache=no_cache, client=client)
    runner = BatchRunner(
        batch_backend(scorer.client), store=store or FileBatchStore(settings.HOKAN_SCORING_BATCH_DIR),
        ledger=scorer.ledger, estimate_usd=scorer.estimate_usd,
        poll_interval_s=float(settings.HOKAN_SCORING_BATCH_POLL_INTERVAL_S),
        max_wait_s=float(settings.HOKAN_SCORING_BATCH_MAX_WAIT_S),
        max_requests=int(settings.HOKAN_SCORING_BATCH_MAX_REQUESTS), sleep=sleep, clock=clock,
        on_poll=(lambda status: on_progress(counters)) if on_progress is not None else None)
    rows = service.job_rows(sjob, table)
    planner = ScoringRun(sjob, rows, scorer, [], counters=counters)
    submitted: list[tuple[Submitted, dict[str, list[int]]]] = []
    for chunk in JobChunk.objects.filter(job=sjob.job).exclude(status=JobChunk.Status.DONE).order_by("chunk_id"):
        batch_items: list[BatchItem] = []
        asked: dict[str, list[int]] = {}
        for work in planner.plan(ChunkRun(chunk, None)):  # type: ignore[arg-type]  # plan reads the rows only
            todo = [u for u in work.rows if not scorer.unscorable(u) and scorer.lookup(u, work.block) is None]
            if not todo:
                continue
            key = f"scoring:{scorer.public_id}:b{work.block}:r{work.group[0]}-{work.group[1]}"
            indexes = [u.index for u in todo]
            if scorer.stored_answer(key, indexes) is not None:
                continue
            batch_items.append(BatchItem(key, scorer.request(todo, work.block)))
            asked[key] = indexes
        if batch_items:
            submitted.append((runner.start(f"scoring:{scorer.public_id}:chunk{chunk.chunk_id}", batch_items), asked))
    for started, asked in submitted:
        run = runner.collect(started)
        for key, result in run.results.items():
            completion = result.completion
            if completion is None:
                log.info("batch line %s not answered (%s): asked online by the pipeline", key, result.error)
                continue
            usage = completion.usage
            _, made = ScoringAnswer.objects.get_or_create(key=f"{key}:batch", defaults={
                "job": sjob, "rows": asked[key], "data": completion.data, "raw_text": completion.raw_text[:100_000],
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd})
            if made:
                counters.add(calls=1, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                             cost_usd=Decimal(usage.cost_usd))
        if on_progress is not None:
            on_progress(counters)
    if sinks is None:
        sinks = []
        if sjob.source_kind == "sheet":
            from hokan.scoring.sheets import sheet_sink

            sinks = [sheet_sink(sjob, table)]
    return service.run_job(sjob, table, no_cache=no_cache, scorer=scorer, sinks=sinks, on_progress=on_progress)
