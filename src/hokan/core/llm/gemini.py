"""An ``LLMClient`` for Google Gemini over the REST ``generateContent`` method (httpx).

Wire format (https://ai.google.dev/api/generate-content, checked 2026-11-21)::

    POST {base_url}/v1beta/models/{model}:generateContent
    x-goog-api-key: <key>
    {"systemInstruction": {"parts": [{"text": system}]},
     "contents": [{"role": "user", "parts": [{"text": user}]}],
     "generationConfig": {"temperature": 0.5, "maxOutputTokens": 2048,
                          "responseMimeType": "application/json",
                          "responseJsonSchema": {...}}}

    200 {"candidates": [{"content": {"role": "model", "parts": [{"text": "{...}"}]},
                         "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 80,
                           "thoughtsTokenCount": 40, "totalTokenCount": 240},
         "modelVersion": "gemini-2.5-flash", "responseId": "..."}
    4xx/5xx {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                    "retryDelay": "17s"}]}}

``responseJsonSchema`` takes standard JSON Schema (type, properties, required, items, enum,
...); with it ``responseSchema`` (the OpenAPI subset) must be omitted and
``responseMimeType`` is required (google-genai ``GenerationConfig.response_json_schema``).
The system and user prompts travel in separate fields (``systemInstruction`` / ``contents``).
Thinking tokens (``thoughtsTokenCount``) are billed as output tokens.

Images (vision): ``JsonRequest.images`` follow the user text as parts
``{"inlineData": {"mimeType": "image/png", "data": <base64>}}`` (inline data, whole request
under 20 MB; https://ai.google.dev/gemini-api/docs/image-understanding).

Files (video, large media; ``complete_json(..., files=[FileRef(uri, mime_type)])``): files
uploaded through the File API (``hokan.core.llm.gemini_files``) follow the user text as parts
``{"fileData": {"mimeType": "video/mp4", "fileUri": "https://.../v1beta/files/abc"}}``
(https://ai.google.dev/api/caching#FileData; the file must be ACTIVE).

Embeddings (https://ai.google.dev/api/embeddings)::

    POST {base_url}/v1beta/models/{model}:batchEmbedContents
    {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}, ...]}
    200 {"embeddings": [{"values": [0.01, ...]}, ...]}

The answer reports no token counts, so the usage has ``cost_source="none"`` (the budget
wrapper commits its estimate); gemini-embedding-001 is $0.15 per 1M input tokens.

Retries live in this one layer, like ``openai_compat``: 429 waits ``Retry-After`` or the
``RetryInfo.retryDelay`` of the body (else ``rate_limit_wait_s``); 408/5xx/timeouts back off
exponentially; ``max_retries=0`` turns retries off (the estimate app retries in its own
validation loop instead). Errors: 400 with INVALID_ARGUMENT / other 4xx → LLMRequestError;
401/403/404 → LLMConfigError; retryable failures left → LLMTransientError; the overall
deadline passed → LLMDeadlineExceeded.

HTTP goes through ``hokan.core.web.http.guarded_client`` (SSRF check at connect time: a base
URL on a private address → LLMConfigError, nothing sent; answer cap ``API_MAX_BYTES``;
socket deadline), one short-lived client per request.

Prices (USD per 1M tokens, https://ai.google.dev/gemini-api/docs/pricing, read 2026-11-21):
gemini-2.5-flash $0.30 input / $2.50 output (thinking included); gemini-2.5-flash-lite
$0.10 / $0.40; gemini-2.5-pro $1.25 / $10 (prompts up to 200k tokens).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from hokan.core.errors import (
    FetchBlocked,
    FetchTooLarge,
    LLMConfigError,
    LLMOutputError,
    LLMRequestError,
    LLMTransientError,
)
from hokan.core.llm.client import Completion, EmbeddingResult, JsonRequest, Usage
from hokan.core.llm.parse import extract_json_object
from hokan.core.llm.prices import Price
from hokan.core.llm.retry import Deadline, RetryPolicy, capped_timeout
from hokan.core.web.http import guarded_client, parse_retry_after

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"
GEMINI_PRICES: dict[str, Price] = {
    "gemini-2.5-flash": Price(Decimal("0.30"), Decimal("2.50")),
    "gemini-2.5-flash-lite": Price(Decimal("0.10"), Decimal("0.40")),
    "gemini-2.5-pro": Price(Decimal("1.25"), Decimal("10")),
    "gemini-embedding-001": Price(Decimal("0.15"), Decimal("0")),
}
_RETRY_DELAY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


@dataclass(frozen=True)
class FileRef:
    """A file uploaded through the Gemini File API, referenced in a prompt (a ``fileData`` part).

    uri: the File resource's ``uri`` ("https://generativelanguage.googleapis.com/v1beta/files/abc").
    mime_type: its MIME type, e.g. "video/mp4".
    """

    uri: str
    mime_type: str


class GeminiClient:
    """An ``LLMClient`` for Gemini.

    api_key: the secret (``GEMINI_API_KEY``); empty → LLMConfigError at construction.
    model: e.g. "gemini-2.5-flash".
    base_url: API root without ``/v1beta`` (tests point it at a local fake).
    max_retries: retries after the first attempt for 429/408/5xx/timeouts (0 = none).
    rate_limit_wait_s: seconds to wait after a 429 that names no delay (None = back off).
    timeout_s: default per-request timeout in seconds.
    max_wait_s: the longest server-requested delay this client sleeps through (seconds);
        longer → LLMTransientError at once with ``retry_after_s``.
    sleep: called with seconds between retries (tests inject a recorder).
    deadline_s: default overall limit of one call (seconds, retries included), None = none.
    allow_hosts: hosts exempt from the SSRF address check (None = ``HOKAN_FETCH_ALLOW_HOSTS``).
    profile: the app profile (``profile`` / ``scope`` attributes; factory.py).
    embedding_model: the default model of ``embed``.
    clock: monotonic seconds for deadlines (tests).
    """

    available = True
    provider = "gemini"

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str = "",
        *,
        max_retries: int = 3,
        rate_limit_wait_s: float | None = 60.0,
        timeout_s: float = 60.0,
        max_wait_s: float = 900.0,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        price_table: dict[str, Price] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline_s: float | None = None,
        allow_hosts: Sequence[str] | None = None,
        profile: str = "estimate",
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise LLMConfigError("Gemini のAPIキー(GEMINI_API_KEY)が設定されていません", provider="gemini")
        if max_retries < 0:
            raise LLMConfigError("max_retries は0以上で指定してください", provider="gemini")
        self.model = model or DEFAULT_MODEL
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self.rate_limit_wait_s = rate_limit_wait_s
        self.timeout_s = timeout_s
        self.max_wait_s = max_wait_s
        self.price_table = GEMINI_PRICES if price_table is None else price_table
        self.deadline_s = deadline_s
        self.allow_hosts = None if allow_hosts is None else tuple(allow_hosts)
        self.profile = profile
        self.scope = profile
        self.embedding_model = embedding_model or DEFAULT_EMBEDDING_MODEL
        self._sleep = sleep
        self._clock = clock
        self.retry_policy = RetryPolicy(
            max_retries=max_retries, rate_limit_wait_s=rate_limit_wait_s, backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s, max_wait_s=max_wait_s,
        )
        self._headers = {"x-goog-api-key": api_key, "content-type": "application/json"}

    def __repr__(self) -> str:
        return f"GeminiClient(model={self.model!r})"

    # --- the Protocol -------------------------------------------------------------------------
    def complete_json(
        self,
        request: JsonRequest,
        *,
        timeout_s: float | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
        files: Sequence[FileRef] = (),
    ) -> Completion:
        """Ask for one JSON object; see ``LLMClient.complete_json``.

        files: File API files sent after the user text (and images) as ``fileData`` parts.

        Raises:
            LLMConfigError: 401/403/404, or the base URL refused by the SSRF guard.
            LLMDeadlineExceeded: the overall deadline passed.
            LLMTransientError: 429/408/5xx/timeout/connection error after the retries.
            LLMRequestError: other 4xx (e.g. 400 INVALID_ARGUMENT).
            LLMOutputError: no candidate text, or no JSON object in it even after repair.
        """
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        url = f"{self.base_url}/v1beta/models/{self.model}:generateContent"
        body, attempts = self.retry_policy.call(
            lambda left: self._post(url, self.payload(request, files), capped_timeout(timeout, left),
                                    request.schema_name),
            provider=self.provider, sleep=self._sleep, deadline=self._deadline(deadline, deadline_s),
        )
        return self._completion(request, body, attempts)

    def embed(
        self,
        texts: list[str],
        *,
        model: str | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> EmbeddingResult:
        """Embeddings of ``texts`` (``batchEmbedContents``); see ``LLMClient.embed``.

        model: default ``embedding_model`` ("gemini-embedding-001"). Usage has no token counts
        (``cost_source="none"``).

        Raises: as ``complete_json``; LLMOutputError when the answer lacks one vector per text.
        """
        name = model or self.embedding_model
        if not texts:
            return EmbeddingResult([], Usage(calls=0), self.provider, name, attempts=0)
        url = f"{self.base_url}/v1beta/models/{name}:batchEmbedContents"
        payload = {"requests": [{"model": f"models/{name}", "content": {"parts": [{"text": text}]}} for text in texts]}
        body, attempts = self.retry_policy.call(
            lambda left: self._post(url, payload, capped_timeout(self.timeout_s, left), "embeddings"),
            provider=self.provider, sleep=self._sleep, deadline=self._deadline(deadline, deadline_s),
        )
        vectors = _vectors(body, len(texts))
        if vectors is None:
            raise LLMOutputError(f"gemini: 埋め込みの応答の形式が不正です(入力{len(texts)}件)", provider="gemini",
                                 schema_name="embeddings", raw_output=str(body)[:2000])
        return EmbeddingResult(vectors, Usage(0, 0, Decimal("0"), "none", calls=1), self.provider, name,
                               attempts=attempts)

    def _deadline(self, deadline: Deadline | float | None, deadline_s: float | None) -> Deadline | None:
        return Deadline.of(deadline=deadline, deadline_s=deadline_s, default_s=self.deadline_s, clock=self._clock)

    def payload(self, request: JsonRequest, files: Sequence[FileRef] = ()) -> dict[str, Any]:
        """The JSON body of a ``generateContent`` request for ``request`` (and File API ``files``)."""
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if request.schema:
            config["responseJsonSchema"] = request.schema
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            config["maxOutputTokens"] = request.max_output_tokens
        parts: list[dict[str, Any]] = [{"text": request.user}]
        parts += [{"inlineData": {"mimeType": image.mime, "data": image.base64()}} for image in request.images]
        parts += [{"fileData": {"mimeType": ref.mime_type, "fileUri": ref.uri}} for ref in files]
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": config,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        return body

    # --- one HTTP request -------------------------------------------------------------------------
    def _post(self, url: str, payload: dict[str, Any], timeout_s: float, schema_name: str) -> dict[str, Any]:
        """POST ``payload`` once; the decoded JSON object."""
        try:
            # One short-lived connection per request: adapters are built per API request and
            # nothing would close a long-lived pool.
            with guarded_client(timeout_s=timeout_s, headers=self._headers, allow_hosts=self.allow_hosts) as http:
                response = http.post(url, json=payload)
        except httpx.TimeoutException as exc:
            raise LLMTransientError(f"gemini: タイムアウトしました({timeout_s:g}秒)", provider="gemini") from exc
        except httpx.TransportError as exc:
            raise LLMTransientError("gemini: 接続できませんでした", provider="gemini") from exc
        except FetchBlocked as exc:
            raise LLMConfigError(f"gemini: 接続先が拒否されました: {exc}", provider="gemini") from exc
        except FetchTooLarge as exc:
            raise LLMOutputError(f"gemini: 応答が大きすぎます: {exc}", provider="gemini", schema_name=schema_name,
                                 raw_output="") from exc
        if response.status_code >= 400:
            raise self._status_error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise LLMOutputError("gemini: 応答がJSONではありません", provider="gemini",
                                 schema_name=schema_name, raw_output=response.text[:2000]) from exc
        if not isinstance(body, dict):
            raise LLMOutputError("gemini: 応答の形式が不正です", provider="gemini",
                                 schema_name=schema_name, raw_output=response.text[:2000])
        return body

    def _status_error(self, response: httpx.Response) -> Exception:
        return status_error(response)

    # --- the answer ------------------------------------------------------------------------------------
    def _completion(self, request: JsonRequest, body: dict[str, Any], attempts: int) -> Completion:
        usage = self._usage(body)
        text = _candidate_text(body)
        parsed = extract_json_object(text)
        if parsed is None:
            reason = _finish_reason(body)
            raise LLMOutputError(
                f"gemini: 応答からJSONオブジェクトを取り出せませんでした(schema={request.schema_name}, finishReason={reason})",
                provider="gemini", schema_name=request.schema_name, raw_output=text, usage=usage,
            )
        return Completion(data=parsed.data, usage=usage, provider="gemini",
                          model=str(body.get("modelVersion") or self.model), raw_text=text,
                          attempts=attempts, repaired=parsed.repaired)

    def _usage(self, body: dict[str, Any]) -> Usage:
        meta = body.get("usageMetadata") or {}
        input_tokens = _int(meta.get("promptTokenCount"))
        output_tokens = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
        price = self.price_table.get(self.model)
        if price is None:
            return Usage(input_tokens, output_tokens, Decimal("0"), "none", calls=1)
        return Usage(input_tokens, output_tokens, price.cost_usd(input_tokens, output_tokens), "price_table", calls=1)


def status_error(response: httpx.Response) -> Exception:
    """The error for a Gemini API answer with status >= 400 (also the File API's, same body):
    408/429/5xx → LLMTransientError (``retry_after_s`` from Retry-After or ``RetryInfo``),
    401/403/404 → LLMConfigError, other 4xx → LLMRequestError."""
    status = response.status_code
    error: dict[str, Any] = {}
    try:
        data = response.json()
        error = data.get("error") or {} if isinstance(data, dict) else {}
    except ValueError:
        pass
    detail = str(error.get("message") or response.text[:200])
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers)
        if retry_after is None:
            retry_after = _retry_info_delay(error)
        return LLMTransientError(f"gemini: HTTP {status}: {detail}", provider="gemini",
                                 status_code=status, retry_after_s=retry_after)
    if status in (401, 403, 404):
        return LLMConfigError(f"gemini: HTTP {status}(APIキー・権限・モデル名を確認してください): {detail}",
                              provider="gemini")
    return LLMRequestError(f"gemini: HTTP {status}: {detail}", provider="gemini", status_code=status)


def _candidate_text(body: dict[str, Any]) -> str:
    candidates = body.get("candidates") or []
    if not candidates or not isinstance(candidates[0], dict):
        return ""
    parts = (candidates[0].get("content") or {}).get("parts") or []
    # Thinking models may return thought summaries as parts flagged "thought": true.
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))


def _finish_reason(body: dict[str, Any]) -> str:
    candidates = body.get("candidates") or []
    if candidates and isinstance(candidates[0], dict):
        return str(candidates[0].get("finishReason", ""))
    feedback = body.get("promptFeedback") or {}
    return str(feedback.get("blockReason", "NO_CANDIDATES"))


def _vectors(body: dict[str, Any], count: int) -> list[list[float]] | None:
    """``embeddings[].values``; None unless exactly ``count`` non-empty number lists."""
    items = body.get("embeddings")
    if not isinstance(items, list) or len(items) != count:
        return None
    vectors = []
    for item in items:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list) or not values or not all(isinstance(x, int | float) for x in values):
            return None
        vectors.append([float(x) for x in values])
    return vectors


def _retry_info_delay(error: dict[str, Any]) -> float | None:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _RETRY_DELAY_RE.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0

