"""One client for every provider that speaks OpenAI chat completions.

Providers: "perplexity" (Sonar), "openai", "azure" (Azure OpenAI, ``model`` = deployment),
"openai_compatible" (Ollama, vLLM, any server with ``POST {base_url}/chat/completions``).

What the real APIs look like (checked 2026-11-21):

- Perplexity Sonar is served as OpenAI-compatible chat completions at
  ``https://api.perplexity.ai/chat/completions`` with models ``sonar``, ``sonar-pro``, ...
  (https://docs.perplexity.ai/docs/sonar/openai-compatibility: ``OpenAI(base_url=
  "https://api.perplexity.ai")``). Design document 000 §6 names ``/query`` and
  ``sonar-medium``; both are gone. The response adds ``citations`` (list of URLs) and
  ``search_results`` (``[{title, url, date, ...}]``), and ``usage`` carries ``cost``:
  ``{input_tokens_cost, output_tokens_cost, request_cost, total_cost, ...}`` in USD
  (Perplexity OpenAPI schemas ``UsageInfo`` / ``Cost``, mirrored at
  github.com/api-evangelist/perplexity json-schema/perplexity-cost-schema.json), plus
  ``search_context_size``, ``citation_tokens``, ``num_search_queries``.
  Structured output: ``response_format: {"type": "json_schema", "json_schema": {"name",
  "schema"}}`` (https://docs.perplexity.ai/docs/grounded-llm/output-control/structured-outputs);
  the first request with a new schema may take 10-30 s to prepare, so keep timeouts generous.
  CAUTION: Perplexity now lists Sonar chat completions as *legacy*, superseded by the Agent
  API (``POST /v1/agent``, OpenAI Responses format, usage.cost ``{input_cost, output_cost,
  tool_calls_cost, total_cost, currency}``) — https://docs.perplexity.ai/docs/legacy/sonar/models/sonar,
  https://docs.perplexity.ai/docs/agent-api/migrate-from-sonar/overview. Third-party notices
  (truefoundry.com change announcement, vercel/ai @ai-sdk/perplexity 2.1.0 / 5.0.0 release
  notes, docs.stigg.io) say Sonar chat completions ended on 2026-09-27, while Perplexity's own
  migration skill (github.com/perplexityai/api-platform-developers,
  skills/migrate-sonar-to-agent-api) still calls both "live". ``api_style="responses"`` is the
  switch: ``POST {base}/responses`` (base ``https://api.perplexity.ai/v1``, model
  ``perplexity/sonar``), ``input`` items with roles system/user, ``max_output_tokens``,
  ``tools: [{"type": "web_search"}]`` (search is NOT automatic on the Agent API), and
  ``response_format`` TOP-LEVEL in the chat-completions shape (the Responses-style
  ``text.format`` is rejected with 400 there; the Agent API rejects unknown fields). The
  answer is the ``output_text`` parts of ``output[type=message]``; sources are
  ``output[type=search_results].results[].url``; usage is ``input_tokens`` /
  ``output_tokens`` / ``cost.total_cost``; a run can fail with HTTP 200 and
  ``status: "failed" | "cancelled"`` (→ LLMTransientError), and ``status: "incomplete"``
  is a truncated answer (repaired like ``finish_reason: "length"``).
  For provider "openai" the same style sends OpenAI's ``text: {"format": {"type":
  "json_schema", "name", "schema", "strict"}}`` instead.
- OpenAI structured outputs: ``response_format: {"type": "json_schema", "json_schema":
  {"name": <a-zA-Z0-9_- max 64>, "schema": {...}, "strict": bool}}``; with ``strict`` true
  only a JSON Schema subset is accepted (every property required, additionalProperties
  false), so ``strict_schema`` is off by default. OpenAI reports tokens, not cost; the cost
  comes from ``prices.py``. ``max_completion_tokens`` replaces ``max_tokens`` for newer models.
- Azure OpenAI through the same SDK: ``AzureOpenAI(azure_endpoint=..., api_version=...,
  api_key=...)``; ``model`` is the deployment name and requests go to
  ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with an
  ``api-key`` header (openai-python ``lib/azure.py``; docs mirror
  https://www.mintlify.com/openai/openai-python/guides/azure-openai).

Retries live in exactly one layer, this one (the SDK gets ``max_retries=0``; langextract
refuses stacked retries for the same reason). ``max_retries=0`` turns them off so a Celery
task can retry instead. What is retried:

- 429: wait ``Retry-After`` (seconds or an HTTP date; ``retry-after-ms`` too) when given,
  else ``rate_limit_wait_s`` (document 000 §12: "API429時は 10分スリープ再試行";
  setting HOKAN_LLM_RATE_LIMIT_WAIT_S). A 429 whose error code is ``insufficient_quota``
  is an exhausted account, not a rate limit: LLMConfigError, never retried.
- 408, 5xx, timeouts, connection errors: exponential backoff with jitter.
- Retry-After longer than ``max_wait_s``: not slept through; LLMTransientError is raised at
  once with ``retry_after_s`` so the caller (a Celery task) can schedule the retry.

Error mapping (``raise ... from exc``): 401 / 403 / 404 → LLMConfigError (bad key, no access,
unknown model or deployment: wrong for every record, so the batch should stop rather than
mark each record failed); other 4xx → LLMRequestError (final for this record); retryable
failures left after the last retry → LLMTransientError(status_code, retry_after_s); the
overall deadline passed → LLMDeadlineExceeded (``retry.RetryPolicy``).

HTTP: the SDK sends through ``hokan.core.web.http.guarded_client`` (its ``http_client``
argument): the SSRF guard at connect time (a base URL on a private address → LLMConfigError,
nothing sent; ``allow_hosts`` default = ``HOKAN_FETCH_ALLOW_HOSTS``), a cap on the answer
(``API_MAX_BYTES`` → LLMOutputError), and the socket deadline.

Vision: ``JsonRequest.images`` go as content parts after the user text — chat completions
``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``, Responses
``{"type": "input_image", "image_url": "data:..."}`` (https://platform.openai.com/docs/guides/images-vision).

Embeddings (OpenAI, Azure, OpenAI-compatible servers; not Perplexity): ``POST
{base}/embeddings`` ``{"model": "text-embedding-3-small", "input": [texts]}`` →
``{"data": [{"index", "embedding": [floats]}], "usage": {"prompt_tokens", "total_tokens"}}``
(https://platform.openai.com/docs/api-reference/embeddings/create). For Azure the model is
the embedding deployment's name.
"""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import openai

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
from hokan.core.llm.prices import DEFAULT_PRICES, Price
from hokan.core.llm.retry import Deadline, RetryPolicy, capped_timeout
from hokan.core.web.http import guarded_client, parse_retry_after

log = logging.getLogger(__name__)

API_STYLES = ("chat_completions", "responses")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
# The environment variable holding each provider's key (named in configuration errors).
KEY_SETTING_NAMES = {"perplexity": "PERPLEXITY_API_KEY", "openai": "OPENAI_API_KEY",
                     "azure": "AZURE_OPENAI_API_KEY", "openai_compatible": "OPENAI_API_KEY"}

# Per provider: default base URL, default model, response_format mode, name of the
# output-length parameter. Perplexity and local servers take ``max_tokens``; OpenAI's newer
# models (and Azure's) require ``max_completion_tokens``.
PROVIDER_DEFAULTS: dict[str, dict[str, str | None]] = {
    "perplexity": {
        "base_url": "https://api.perplexity.ai",
        "model": "sonar",
        "response_format": "json_schema",
        "max_tokens_param": "max_tokens",
    },
    "openai": {
        "base_url": None,  # the SDK default, https://api.openai.com/v1
        "model": "gpt-4.1-mini",
        "response_format": "json_schema",
        "max_tokens_param": "max_completion_tokens",
    },
    "azure": {"base_url": None, "model": "", "response_format": "json_schema", "max_tokens_param": "max_completion_tokens"},
    "openai_compatible": {"base_url": None, "model": "", "response_format": "json_schema", "max_tokens_param": "max_tokens"},
}

DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_PROVIDERS = ("openai", "azure", "openai_compatible")  # Perplexity has no embeddings endpoint

# Perplexity Agent API (api_style="responses"): the SDK appends /responses to this base.
PERPLEXITY_AGENT_DEFAULTS: dict[str, str | None] = {
    "base_url": "https://api.perplexity.ai/v1",
    "model": "perplexity/sonar",
}

_RETRYABLE_STATUS = {408, 429}


class OpenAICompatClient:
    """An ``LLMClient`` over the ``openai`` SDK.

    provider: "perplexity" | "openai" | "azure" | "openai_compatible".
    model: model name sent to the provider ("" = the provider default); for Azure the
        deployment name.
    api_key: the secret; missing → LLMConfigError at construction.
    base_url: API root without ``/chat/completions`` ("" = provider default; required for
        "openai_compatible").
    api_style: "chat_completions" | "responses" (OpenAI Responses / Perplexity Agent API;
        not for Azure).
    max_retries: retries after the first attempt for 429/5xx/timeouts (0 = none).
    rate_limit_wait_s: seconds to wait after a 429 without Retry-After (None = back off).
    timeout_s: default per-request timeout in seconds.
    price_table: model → Price, used when the response carries no cost.
    sleep: called with seconds between retries (tests inject a recorder).
    azure_endpoint / azure_api_version: for provider "azure".
    response_format: "json_schema" | "json_object" | "none" (None = provider default).
    strict_schema: sets ``json_schema.strict`` (OpenAI's strict subset of JSON Schema).
    backoff_initial_s / backoff_max_s: exponential backoff for 5xx and timeouts (seconds).
    max_wait_s: the longest Retry-After this client sleeps through (seconds).
    deadline_s: default overall limit of one call in seconds (retries and waits included),
        None = none; a call's own ``deadline`` / ``deadline_s`` wins when earlier.
    allow_hosts: hosts exempt from the SSRF address check (None = ``HOKAN_FETCH_ALLOW_HOSTS``).
    profile: the app profile (``profile`` / ``scope`` attributes; factory.py).
    embedding_model: the default model of ``embed`` (Azure: the embedding deployment).
    clock: monotonic seconds for deadlines (tests inject one that moves with ``sleep``).

    Raises:
        LLMConfigError: unknown provider or api_style, missing key, base URL or Azure endpoint.
    """

    available = True

    def __init__(
        self,
        provider: str,
        model: str,
        api_key: str,
        base_url: str = "",
        *,
        api_style: str = "chat_completions",
        max_retries: int = 3,
        rate_limit_wait_s: float | None = 600.0,
        timeout_s: float = 60.0,
        price_table: dict[str, Price] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        azure_endpoint: str | None = None,
        azure_api_version: str | None = None,
        response_format: str | None = None,
        strict_schema: bool = False,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 60.0,
        max_wait_s: float = 900.0,
        deadline_s: float | None = None,
        allow_hosts: Sequence[str] | None = None,
        profile: str = "leads",
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if provider not in PROVIDER_DEFAULTS:
            raise LLMConfigError(f"未対応のLLMプロバイダです: {provider!r}", provider=provider)
        if api_style not in API_STYLES:
            raise LLMConfigError(
                f"未対応のAPI形式です: {api_style!r}(対応: {', '.join(API_STYLES)})", provider=provider
            )
        if api_style == "responses" and provider == "azure":
            raise LLMConfigError("Azure では api_style=responses に未対応です", provider=provider)
        defaults = PROVIDER_DEFAULTS[provider]
        if api_style == "responses" and provider == "perplexity":
            defaults = {**defaults, **PERPLEXITY_AGENT_DEFAULTS}
        mode = response_format or str(defaults["response_format"])
        if mode not in RESPONSE_FORMATS:
            raise LLMConfigError(f"未対応のresponse_formatです: {mode!r}", provider=provider)
        if not api_key and provider == "openai_compatible":
            api_key = "not-needed"  # Ollama / vLLM take no key; the SDK insists on one
        if not api_key:
            setting = KEY_SETTING_NAMES.get(provider, "APIキー")
            raise LLMConfigError(f"{provider} のAPIキーが設定されていません({setting} を設定してください)",
                                 provider=provider)
        if max_retries < 0:
            raise LLMConfigError("max_retries は0以上で指定してください", provider=provider)

        self.provider = provider
        self.model = model or str(defaults["model"] or "")
        if not self.model:
            raise LLMConfigError(
                f"{provider} のモデル(Azureではデプロイ名)が設定されていません"
                f"(HOKAN_LLM_MODEL、見積もりでは OPENAI_MODEL を設定してください)", provider=provider)
        self.api_style = api_style
        self.max_retries = max_retries
        self.rate_limit_wait_s = rate_limit_wait_s
        self.timeout_s = timeout_s
        self.price_table = DEFAULT_PRICES if price_table is None else price_table
        self.response_format = mode
        self.strict_schema = strict_schema
        self.max_wait_s = max_wait_s
        self.deadline_s = deadline_s
        self.profile = profile
        self.scope = profile
        self.embedding_model = embedding_model or DEFAULT_EMBEDDING_MODEL
        self._sleep = sleep
        self._clock = clock
        self._max_tokens_param = str(defaults["max_tokens_param"])
        self.retry_policy = RetryPolicy(
            max_retries=max_retries, rate_limit_wait_s=rate_limit_wait_s, backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s, max_wait_s=max_wait_s,
        )

        # One guarded connection pool for the SDK's life (the SDK closes it with itself). openai
        # 1.x is built on httpx; 3.x on httpx2 but still takes an httpx.Client ("legacy httpx
        # client", openai/_httpx2.py), which is what our guarded transport plugs into.
        http = guarded_client(timeout_s=timeout_s, allow_hosts=allow_hosts)
        self._close_http = weakref.finalize(self, http.close)  # like the SDK's own client, closed with us
        if provider == "azure":
            if not azure_endpoint:
                raise LLMConfigError("AZURE_OPENAI_ENDPOINT が設定されていません", provider=provider)
            if not azure_api_version:
                raise LLMConfigError("AZURE_OPENAI_API_VERSION が設定されていません", provider=provider)
            self._sdk: openai.OpenAI = openai.AzureOpenAI(  # type: ignore[call-overload]
                azure_endpoint=azure_endpoint,
                api_version=azure_api_version,
                api_key=api_key,
                max_retries=0,  # retries are ours (module docstring)
                timeout=timeout_s,
                http_client=http,
            )
        else:
            url = base_url or defaults["base_url"]
            if provider == "openai_compatible" and not url:
                raise LLMConfigError("openai_compatible には HOKAN_LLM_BASE_URL が必要です", provider=provider)
            self._sdk = openai.OpenAI(
                api_key=api_key, base_url=url or None, max_retries=0, timeout=timeout_s,
                http_client=http,  # type: ignore[arg-type]
            )

    def __repr__(self) -> str:
        return f"OpenAICompatClient(provider={self.provider!r}, model={self.model!r})"

    def close(self) -> None:
        """Close the connection pool now (else it is closed when the client is collected)."""
        self._close_http()

    # --- the Protocol -------------------------------------------------------------------
    def complete_json(
        self,
        request: JsonRequest,
        *,
        timeout_s: float | None = None,
        deadline: Deadline | float | None = None,
        deadline_s: float | None = None,
    ) -> Completion:
        """Ask for one JSON object; see ``LLMClient.complete_json``.

        ``Completion.attempts`` counts HTTP requests sent (retries included).

        Raises:
            LLMConfigError: 401/403/404, an exhausted quota, or the base URL refused by the
                SSRF guard (nothing sent).
            LLMDeadlineExceeded: the overall deadline passed (no answer in time).
            LLMTransientError: 429/408/5xx/timeout/connection error after the retries.
            LLMRequestError: other 4xx.
            LLMOutputError: the answer holds no JSON object even after repair; ``usage``
                on the error is the cost of that (paid) answer. No re-ask here: that loop
                is ``budgeted.complete_json_budgeted``'s.
        """
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        send = self._send_responses if self.api_style == "responses" else self._send_chat
        body, attempts = self.retry_policy.call(
            lambda left: self._post(lambda t: send(request, t), capped_timeout(timeout, left), request.schema_name),
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
        """Embeddings of ``texts`` (``POST /embeddings``); see ``LLMClient.embed``.

        model: default ``embedding_model`` ("text-embedding-3-small"). Cost from the price
        table (``text-embedding-3-small`` $0.02 / 1M input tokens) when the model is listed.

        Raises:
            LLMConfigError: provider "perplexity" (no embeddings), 401/403/404, refused URL.
            LLMDeadlineExceeded / LLMTransientError / LLMRequestError: as ``complete_json``.
            LLMOutputError: the answer does not hold one vector per text.
        """
        if self.provider not in EMBEDDING_PROVIDERS:
            raise LLMConfigError(f"{self.provider}: 埋め込み(embeddings)には対応していません", provider=self.provider)
        name = model or self.embedding_model
        if not texts:
            return EmbeddingResult([], Usage(calls=0), self.provider, name, attempts=0)

        def send(timeout: float) -> Any:
            return self._sdk.embeddings.with_raw_response.create(
                model=name, input=list(texts), encoding_format="float", timeout=timeout
            )

        body, attempts = self.retry_policy.call(
            lambda left: self._post(send, capped_timeout(self.timeout_s, left), "embeddings", exact=False),
            provider=self.provider, sleep=self._sleep, deadline=self._deadline(deadline, deadline_s),
        )
        vectors = _vectors(body, len(texts))
        if vectors is None:
            raise LLMOutputError(f"{self.provider}: 埋め込みの応答の形式が不正です(入力{len(texts)}件)",
                                 provider=self.provider, schema_name="embeddings", raw_output=json.dumps(body)[:2000])
        tokens = _int((body.get("usage") or {}).get("prompt_tokens"))
        price = self.price_table.get(name)
        usage = (Usage(tokens, 0, price.cost_usd(tokens, 0), "price_table", calls=1) if price is not None
                 else Usage(tokens, 0, Decimal("0"), "none", calls=1))
        return EmbeddingResult(vectors, usage, self.provider, str(body.get("model") or name), attempts=attempts)

    def _deadline(self, deadline: Deadline | float | None, deadline_s: float | None) -> Deadline | None:
        return Deadline.of(deadline=deadline, deadline_s=deadline_s, default_s=self.deadline_s, clock=self._clock)

    # --- one HTTP request -----------------------------------------------------------------
    def _params(self, request: JsonRequest) -> dict[str, Any]:
        user: Any = request.user
        if request.images:
            user = [{"type": "text", "text": request.user}] + [
                {"type": "image_url", "image_url": {"url": image.data_url()}} for image in request.images
            ]
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": user},
            ],
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            params[self._max_tokens_param] = request.max_output_tokens
        if self.response_format == "json_schema":
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(request.schema_name),
                    "schema": request.schema,
                    "strict": self.strict_schema,
                },
            }
        elif self.response_format == "json_object":
            params["response_format"] = {"type": "json_object"}
        return params

    def _responses_params(self, request: JsonRequest) -> dict[str, Any]:
        user: Any = request.user
        if request.images:
            user = [{"type": "input_text", "text": request.user}] + [
                {"type": "input_image", "image_url": image.data_url()} for image in request.images
            ]
        params: dict[str, Any] = {
            "model": self.model,
            "input": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": user},
            ],
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            params["max_output_tokens"] = max(16, request.max_output_tokens)  # Agent API floor
        extra: dict[str, Any] = {}
        if self.provider == "perplexity":
            params["tools"] = [{"type": "web_search"}]
            if self.response_format == "json_schema":
                extra["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": _schema_name(request.schema_name), "schema": request.schema},
                }
            elif self.response_format == "json_object":
                extra["response_format"] = {"type": "json_object"}
        elif self.response_format == "json_schema":
            params["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": _schema_name(request.schema_name),
                    "schema": request.schema,
                    "strict": self.strict_schema,
                }
            }
        elif self.response_format == "json_object":
            params["text"] = {"format": {"type": "json_object"}}
        if extra:
            params["extra_body"] = extra
        return params

    def _send_chat(self, request: JsonRequest, timeout_s: float) -> Any:
        return self._sdk.chat.completions.with_raw_response.create(**self._params(request), timeout=timeout_s)

    def _send_responses(self, request: JsonRequest, timeout_s: float) -> Any:
        return self._sdk.responses.with_raw_response.create(**self._responses_params(request), timeout=timeout_s)

    def _post(
        self, send: Callable[[float], Any], timeout_s: float, schema_name: str, *, exact: bool = True
    ) -> dict[str, Any]:
        """One HTTP request through the SDK (``send(timeout)`` → raw response); returns the
        decoded body, floats as exact Decimals (``exact=False``: floats, for embeddings)."""
        try:
            text = send(timeout_s).text
        except openai.APITimeoutError as exc:
            raise LLMTransientError(f"{self.provider}: タイムアウトしました({timeout_s:g}秒)", provider=self.provider) from exc
        except openai.APIConnectionError as exc:
            raise LLMTransientError(f"{self.provider}: 接続できませんでした", provider=self.provider) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except FetchBlocked as exc:
            raise LLMConfigError(f"{self.provider}: 接続先が拒否されました: {exc}", provider=self.provider) from exc
        except FetchTooLarge as exc:
            raise LLMOutputError(f"{self.provider}: 応答が大きすぎます: {exc}", provider=self.provider,
                                 schema_name=schema_name, raw_output="") from exc
        try:
            body = json.loads(text, parse_float=Decimal if exact else float)
        except ValueError as exc:
            raise LLMOutputError(
                f"{self.provider}: 応答がJSONではありません", provider=self.provider,
                schema_name=schema_name, raw_output=text[:2000],
            ) from exc
        if not isinstance(body, dict):
            raise LLMOutputError(
                f"{self.provider}: 応答の形式が不正です", provider=self.provider,
                schema_name=schema_name, raw_output=text[:2000],
            )
        if body.get("object") == "response" and body.get("status") in ("failed", "cancelled"):
            # The Agent API reports failed runs with HTTP 200 (migration guide, "Error handling").
            raise LLMTransientError(
                f"{self.provider}: 実行が失敗しました(status={body.get('status')}): "
                f"{_error_message({'error': body.get('error')})}",
                provider=self.provider,
            )
        return body

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        status = exc.status_code
        code = _error_code(exc.body)
        detail = _error_message(exc.body) or exc.message
        if status == 429 and code == "insufficient_quota":
            return LLMConfigError(f"{self.provider}: 利用枠を使い切りました: {detail}", provider=self.provider)
        if status in _RETRYABLE_STATUS or status >= 500:
            return LLMTransientError(
                f"{self.provider}: HTTP {status}: {detail}",
                provider=self.provider,
                status_code=status,
                retry_after_s=parse_retry_after(exc.response.headers),
            )
        if status in (401, 403, 404):
            return LLMConfigError(
                f"{self.provider}: HTTP {status}(APIキー・権限・モデル名を確認してください): {detail}",
                provider=self.provider,
            )
        return LLMRequestError(f"{self.provider}: HTTP {status}: {detail}", provider=self.provider, status_code=status)

    # --- the answer --------------------------------------------------------------------------
    def _completion(self, request: JsonRequest, body: dict[str, Any], attempts: int) -> Completion:
        usage = self._usage(body)
        text = _content(body)
        model = str(body.get("model") or self.model)
        parsed = extract_json_object(text)
        if parsed is None:
            raise LLMOutputError(
                f"{self.provider}: 応答からJSONオブジェクトを取り出せませんでした(schema={request.schema_name})",
                provider=self.provider,
                schema_name=request.schema_name,
                raw_output=text,
                usage=usage,
            )
        return Completion(
            data=parsed.data,
            usage=usage,
            provider=self.provider,
            model=model,
            raw_text=text,
            citations=_citations(body),
            attempts=attempts,
            repaired=parsed.repaired,
        )

    def _usage(self, body: dict[str, Any]) -> Usage:
        raw = body.get("usage") or {}
        input_tokens = _int(raw.get("prompt_tokens", raw.get("input_tokens")))
        output_tokens = _int(raw.get("completion_tokens", raw.get("output_tokens")))
        reported = _reported_cost(raw.get("cost"))
        if reported is not None:
            return Usage(input_tokens, output_tokens, reported, "provider", calls=1)
        price = self.price_table.get(self.model)
        if price is not None:
            return Usage(input_tokens, output_tokens, price.cost_usd(input_tokens, output_tokens), "price_table", calls=1)
        return Usage(input_tokens, output_tokens, Decimal("0"), "none", calls=1)


# --- helpers (wire format) ----------------------------------------------------------------------
def _vectors(body: dict[str, Any], count: int) -> list[list[float]] | None:
    """``data[].embedding`` ordered by ``index``; None unless exactly ``count`` float lists."""
    data = body.get("data")
    if not isinstance(data, list) or len(data) != count:
        return None
    ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = []
    for item in ordered:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector or not all(isinstance(x, int | float) for x in vector):
            return None
        vectors.append([float(x) for x in vector])
    return vectors


def _schema_name(name: str) -> str:
    # OpenAI: a-z, A-Z, 0-9, _ and -, at most 64; Perplexity: 1-64 characters.
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"


def _content(body: dict[str, Any]) -> str:
    if isinstance(body.get("output"), list):  # Responses: output[type=message].content[type=output_text]
        return "".join(
            part.get("text", "")
            for item in body["output"]
            if isinstance(item, dict) and item.get("type") == "message"
            for part in item.get("content") or []
            if isinstance(part, dict) and part.get("type") == "output_text"
        )
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # some servers send content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _citations(body: dict[str, Any]) -> list[str]:
    urls: list[str] = []
    for url in body.get("citations") or []:
        if isinstance(url, str) and url not in urls:
            urls.append(url)
    results = list(body.get("search_results") or [])
    for item in body.get("output") or []:  # Responses: output[type=search_results].results[]
        if isinstance(item, dict) and item.get("type") == "search_results":
            results += item.get("results") or []
    for result in results:
        url = result.get("url") if isinstance(result, dict) else None
        if isinstance(url, str) and url not in urls:
            urls.append(url)
    return urls


def _reported_cost(cost: Any) -> Decimal | None:
    """Perplexity: ``usage.cost.total_cost``; OpenRouter-style servers: ``usage.cost`` number."""
    if isinstance(cost, dict):
        cost = cost.get("total_cost")
    if isinstance(cost, bool) or cost is None:
        return None
    try:
        value = Decimal(str(cost))
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner["code"])
        if body.get("code") is not None:
            return str(body["code"])
    return ""


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:500]
    return ""
