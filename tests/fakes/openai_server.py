"""A real HTTP server on 127.0.0.1 that speaks the OpenAI / Perplexity chat-completions wire format.

Use it for any test of code that calls an LLM through ``hokan.core.llm``::

    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    with FakeOpenAIServer(api_key="test-key") as server:
        server.enqueue(Reply.rate_limited(retry_after="7"), Reply.json({"設立年": "2001"}))
        client = OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, sleep=sleeps.append)
        ...
        assert len(server.requests) == 2
        assert server.requests[0].json["response_format"]["type"] == "json_schema"

or the pytest fixture ``fake_openai_server`` (tests/conftest.py), which starts one server
per test and stops it afterwards.

Endpoints (all POST, JSON body):

- ``/chat/completions`` and ``/v1/chat/completions`` (Perplexity, OpenAI, Ollama, vLLM):
  ``Authorization: Bearer <api_key>`` is required, else 401.
- ``/openai/deployments/{deployment}/chat/completions?api-version=...`` (Azure OpenAI):
  the ``api-key`` header (or Bearer) is required, else 401; a missing ``api-version`` → 400.
- ``/responses``, ``/v1/responses``, ``/v1/agent`` (OpenAI Responses / Perplexity Agent API):
  Bearer key; the answer is a ``response`` object (``output[]`` with a ``search_results`` item
  when citations are scripted and a ``message`` item with ``output_text``; ``usage`` with
  ``input_tokens`` / ``output_tokens`` / ``cost.total_cost``; ``status``).
- ``/embeddings``, ``/v1/embeddings``, ``/openai/deployments/{deployment}/embeddings`` (OpenAI
  embeddings): ``{"model", "input": [texts]}`` → ``{"object": "list", "data": [{"object":
  "embedding", "index", "embedding": [floats]}], "model", "usage": {"prompt_tokens",
  "total_tokens"}}``; the vectors are deterministic (SHA-256 of the text, ``embedding_dims``
  long), tokens are counted as characters. Scripted error / slow / hang replies apply too;
  ``Reply.json({"data": [...]})`` replaces the body (a malformed answer).

Replies are scripted per request with a queue of ``Reply`` objects (``enqueue``); when the
queue is empty, ``default_reply`` is used (a JSON answer ``{"ok": true}``). Each reply:

- ``Reply.json(data)``            a normal answer whose content is ``json.dumps(data)``
- ``Reply.text(content)``         an answer with exactly this content (prose-wrapped JSON,
                                  truncated JSON, garbage ...)
- ``Reply.rate_limited(retry_after=None)``  429 (with a Retry-After header when given)
- ``Reply.error(status, message=..., code=None, headers=None)``  any 4xx/5xx with an
                                  OpenAI-style ``{"error": {...}}`` body
- ``Reply.slow(delay_s, then)``   waits ``delay_s`` seconds before sending ``then``; with a
                                  client timeout shorter than ``delay_s`` this is a timeout
- every answer takes ``latency_s=`` (a delay before answering), ``prompt_tokens=``,
  ``completion_tokens=``, ``cost_usd=`` (Perplexity-style ``usage.cost``; None = not
  reported, the server default comes from ``report_cost``), ``citations=``,
  ``search_results=``, ``finish_reason=`` ("length" → Responses status "incomplete").
- ``Reply.failed_run()``          Responses only: HTTP 200 with ``status: "failed"``
- ``Reply.hang()``                accepts the request and never answers (until the server stops):
                                  the hung provider of the deadline tests

Every request received is recorded in ``server.requests`` (``RecordedRequest``: method,
path, query, headers, json, deployment) in arrival order, including refused ones.
"""

from __future__ import annotations

import json
import queue
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import JSONHandler, LocalHTTPServer, RecordedHTTPRequest, fake_embedding

_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)$")
_EMBEDDING_PATHS = ("/embeddings", "/v1/embeddings")
_CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
_RESPONSES_PATHS = ("/responses", "/v1/responses", "/v1/agent")

# Perplexity Sonar prices used for the fake cost report: $1 / 1M tokens each way + $0.005 a request.
_FAKE_PRICE_PER_TOKEN = Decimal("0.000001")
_FAKE_REQUEST_FEE = Decimal("0.005")


@dataclass(frozen=True)
class Reply:
    """One scripted reply. Build with the class methods, not the constructor."""

    status: int = 200
    content: str | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    prompt_tokens: int = 120
    completion_tokens: int = 30
    cost_usd: Decimal | None | bool = True  # True = computed from the fake price; None = no cost
    citations: list[str] | None = None
    search_results: list[dict[str, Any]] | None = None
    finish_reason: str = "stop"
    run_status: str | None = None  # Responses only; None = "completed" (or "incomplete" on "length")
    hangs: bool = False  # never answer (``hang()``)

    @classmethod
    def json(cls, data: Any, **kwargs: Any) -> "Reply":
        """A normal answer: the message content is ``json.dumps(data, ensure_ascii=False)``."""
        return cls(content=json.dumps(data, ensure_ascii=False), **kwargs)

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> "Reply":
        """An answer whose message content is exactly ``content``."""
        return cls(content=content, **kwargs)

    @classmethod
    def rate_limited(cls, retry_after: str | None = None, **kwargs: Any) -> "Reply":
        """429; ``retry_after`` is the raw Retry-After header value ("7" or an HTTP date)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls.error(429, message="Rate limit exceeded", code="rate_limit_exceeded", headers=headers, **kwargs)

    @classmethod
    def error(
        cls,
        status: int,
        *,
        message: str = "error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> "Reply":
        """An error status with an OpenAI-style body ``{"error": {"message", "type", "code"}}``."""
        body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error", "code": code}}
        return cls(status=status, body=body, headers=dict(headers or {}), **kwargs)

    @classmethod
    def failed_run(cls, message: str = "upstream model error") -> "Reply":
        """Responses API: HTTP 200 with ``status: "failed"`` and an ``error`` object."""
        return cls(content=None, run_status="failed", body={"code": "server_error", "message": message})

    @classmethod
    def hang(cls) -> "Reply":
        """Accept the request and never answer (the connection stays open until ``stop()``)."""
        return cls(hangs=True)

    @classmethod
    def slow(cls, delay_s: float, then: "Reply | None" = None) -> "Reply":
        """``then`` (default: a JSON answer) after ``delay_s`` seconds: a timeout for short client timeouts."""
        return replace(then or cls.json({"ok": True}), latency_s=delay_s)


@dataclass(frozen=True)
class RecordedRequest(RecordedHTTPRequest):
    """A request the fake received (method, path, query, headers lower-cased, then these).
    ``json`` is the decoded body (None if not JSON)."""

    json: Any
    deployment: str | None = None
    received_at: float = 0.0  # time.monotonic() when the request arrived (before any scripted latency)

    @property
    def roles(self) -> list[str]:
        """The ``role`` of each message in the body, e.g. ["system", "user"]."""
        return [m.get("role") for m in (self.json or {}).get("messages", [])]


class FakeOpenAIServer(LocalHTTPServer):
    """The fake provider. ``base_url`` is ``http://127.0.0.1:<port>`` (no ``/v1``).

    api_key: the key the server accepts (Bearer or ``api-key`` header).
    model: the ``model`` echoed when the request names none.
    report_cost: default for answers — True adds Perplexity-style ``usage.cost``; False
        leaves usage with token counts only (like OpenAI and Azure).
    default_reply: used when the queue is empty.
    """

    thread_name = "fake-openai"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        model: str = "sonar",
        report_cost: bool = True,
        default_reply: Reply | None = None,
        embedding_dims: int = 8,
    ) -> None:
        self.api_key = api_key
        self.embedding_dims = embedding_dims
        self.model = model
        self.report_cost = report_cost
        self.default_reply = default_reply or Reply.json({"ok": True})
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self._queue: queue.Queue[Reply] = queue.Queue()

    # --- lifecycle: start(), stop(), ``with``, port (tests/fakes/local_http.py) -----------------
    @property
    def base_url(self) -> str:
        """Root URL; the OpenAI SDK appends ``/chat/completions`` (Perplexity style)."""
        return self.root_url

    @property
    def v1_url(self) -> str:
        """Root URL with ``/v1`` (OpenAI / Ollama / vLLM style)."""
        return f"{self.base_url}/v1"

    # --- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Replies for the next requests, in order."""
        for reply in replies:
            self._queue.put(reply)

    def pending(self) -> int:
        """Replies still queued."""
        return self._queue.qsize()

    def _next_reply(self) -> Reply:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return self.default_reply

    # --- wire format -------------------------------------------------------------------------
    def completion_body(self, reply: Reply, request_json: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion object for a 200 reply."""
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        cost = self._reported_cost(reply)
        if cost is not None:
            input_cost = Decimal(reply.prompt_tokens) * _FAKE_PRICE_PER_TOKEN
            output_cost = Decimal(reply.completion_tokens) * _FAKE_PRICE_PER_TOKEN
            usage["search_context_size"] = "low"
            usage["cost"] = {
                "input_tokens_cost": float(input_cost),
                "output_tokens_cost": float(output_cost),
                "request_cost": float(_FAKE_REQUEST_FEE),
                "total_cost": float(cost),
            }
        body: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request_json.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": usage,
        }
        if reply.citations is not None:
            body["citations"] = reply.citations
        if reply.search_results is not None:
            body["search_results"] = reply.search_results
        return body

    def response_body(self, reply: Reply, request_json: dict[str, Any]) -> dict[str, Any]:
        """The Responses-API ``response`` object for a 200 reply."""
        now = int(time.time())
        status = reply.run_status or ("incomplete" if reply.finish_reason == "length" else "completed")
        output: list[dict[str, Any]] = []
        results = list(reply.search_results or []) + [{"url": url, "title": url} for url in reply.citations or []]
        if results:
            output.append(
                {
                    "type": "search_results",
                    "queries": ["fake query"],
                    "results": [{"id": i + 1, "snippet": "", "date": None, **r} for i, r in enumerate(results)],
                }
            )
        if reply.content is not None:
            output.append(
                {
                    "id": f"msg_{uuid.uuid4().hex[:12]}",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": reply.content, "annotations": []}],
                }
            )
        usage: dict[str, Any] = {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        cost = self._reported_cost(reply)
        if cost is not None:
            usage["cost"] = {
                "currency": "USD",
                "input_cost": float(Decimal(reply.prompt_tokens) * _FAKE_PRICE_PER_TOKEN),
                "output_cost": float(Decimal(reply.completion_tokens) * _FAKE_PRICE_PER_TOKEN),
                "tool_calls_cost": float(_FAKE_REQUEST_FEE),
                "total_cost": float(cost),
            }
        return {
            "id": f"resp_{uuid.uuid4().hex[:12]}",
            "object": "response",
            "created_at": now,
            "completed_at": now,
            "status": status,
            "model": request_json.get("model") or self.model,
            "output": output,
            "usage": usage,
            "error": reply.body if status == "failed" else None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        }

    def embedding_body(self, reply: Reply, request_json: dict[str, Any]) -> dict[str, Any]:
        """The embeddings ``list`` object for a 200 reply (``reply.body`` replaces it when given)."""
        if reply.body is not None:
            return reply.body
        texts = request_json.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        tokens = sum(len(str(t)) for t in texts)
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": self.vector(str(t))} for i, t in enumerate(texts)],
            "model": request_json.get("model") or "text-embedding-3-small",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def vector(self, text: str) -> list[float]:
        """The fake's embedding of ``text`` (tests/fakes/local_http.py ``fake_embedding``)."""
        return fake_embedding(text, self.embedding_dims)

    def _reported_cost(self, reply: Reply) -> Decimal | None:
        """The USD cost put in ``usage.cost``; None when the answer reports no cost."""
        if reply.cost_usd is True:
            return self._fake_cost(reply) if self.report_cost else None
        if reply.cost_usd is None or reply.cost_usd is False:
            return None
        return Decimal(reply.cost_usd)

    @staticmethod
    def _fake_cost(reply: Reply) -> Decimal:
        return (
            Decimal(reply.prompt_tokens + reply.completion_tokens) * _FAKE_PRICE_PER_TOKEN + _FAKE_REQUEST_FEE
        )

    @staticmethod
    def expected_cost(reply: Reply) -> Decimal:
        """The ``total_cost`` this server reports for ``reply`` when it computes one."""
        if isinstance(reply.cost_usd, Decimal):
            return reply.cost_usd
        return FakeOpenAIServer._fake_cost(reply)


class _Handler(JSONHandler):
    fake: FakeOpenAIServer

    def do_POST(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        body = self.read_json()
        azure = _AZURE_PATH.match(parts.path)
        fake.record(
            RecordedRequest(
                method="POST",
                path=parts.path,
                query=query,
                headers=self.header_dict(),
                json=body,
                deployment=azure.group(1) if azure else None,
                received_at=time.monotonic(),
            )
        )

        responses = parts.path in _RESPONSES_PATHS
        embeddings = parts.path in _EMBEDDING_PATHS or (azure is not None and azure.group(2) == "embeddings")
        if not azure and not responses and not embeddings and parts.path not in _CHAT_PATHS:
            return self.send_json(404, {"error": {"message": f"no route {parts.path}", "type": "not_found", "code": None}})
        bearer = self.headers.get("Authorization", "")
        key_ok = bearer == f"Bearer {fake.api_key}" or (azure is not None and self.headers.get("api-key") == fake.api_key)
        if not key_ok:
            return self.send_json(
                401, {"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}
            )
        if azure and not query.get("api-version"):
            return self.send_json(400, {"error": {"message": "api-version is required", "type": "invalid_request_error", "code": None}})
        if not isinstance(body, dict):
            return self.send_json(400, {"error": {"message": "body must be JSON", "type": "invalid_request_error", "code": None}})

        reply = fake._next_reply()
        if reply.hangs:
            return self.hang()
        if reply.latency_s:
            time.sleep(reply.latency_s)
        if reply.status != 200:
            return self.send_json(reply.status, reply.body or {}, reply.headers)
        if embeddings:
            return self.send_json(200, fake.embedding_body(reply, body), reply.headers)
        if responses:
            return self.send_json(200, fake.response_body(reply, body), reply.headers)
        if reply.run_status == "failed":
            return self.send_json(500, {"error": reply.body or {}}, reply.headers)
        self.send_json(200, fake.completion_body(reply, body), reply.headers)


FakeOpenAIServer.handler_class = _Handler


def serve(**kwargs: Any) -> Iterator[FakeOpenAIServer]:
    """Generator for pytest fixtures: a started server, stopped afterwards."""
    yield from FakeOpenAIServer.serving(**kwargs)
