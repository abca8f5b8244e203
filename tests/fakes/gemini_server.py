"""A real HTTP server on 127.0.0.1 that speaks Gemini's REST ``generateContent`` wire format.

::

    from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply

    with FakeGeminiServer(api_key="test-key") as server:
        server.enqueue(GeminiReply.rate_limited(retry_after="1"), GeminiReply.json({"a": 1}))
        client = GeminiClient("test-key", "gemini-2.5-flash", server.base_url)
        ...
        assert server.requests[0].json["generationConfig"]["temperature"] == 0.5

Endpoints: ``POST /v1beta/models/{model}:generateContent`` and
``POST /v1beta/models/{model}:batchEmbedContents`` (``{"requests": [{"model": "models/...",
"content": {"parts": [{"text"}]}}]}`` → ``{"embeddings": [{"values": [floats]}]}``, vectors
from the SHA-256 of each text, ``embedding_dims`` long) with the key in the
``x-goog-api-key`` header (or ``?key=``), else 403 PERMISSION_DENIED like Google (an
invalid key is 400 API_KEY_INVALID there; both are refusals). Answers are the real
response shape: ``candidates[0].content.parts[0].text``, ``finishReason``,
``usageMetadata`` (promptTokenCount, candidatesTokenCount, thoughtsTokenCount,
totalTokenCount), ``modelVersion``, ``responseId``. Errors use Google's
``{"error": {"code", "message", "status", "details"}}``.

Replies are queued (``enqueue``); when the queue is empty ``default_reply`` (or, if set,
``responder(request_json) -> GeminiReply``) answers:

- ``GeminiReply.json(data)``               a normal answer, text = ``json.dumps(data)``
- ``GeminiReply.text(text)``               exactly this text (invalid JSON, prose, ...)
- ``GeminiReply.rate_limited(retry_after=None, retry_delay=None)``  429 RESOURCE_EXHAUSTED,
                                           with a Retry-After header and/or a RetryInfo detail
- ``GeminiReply.error(status, message)``   any error (500 INTERNAL, 503 UNAVAILABLE, 400 ...)
- ``GeminiReply.slow(delay_s, then)``      waits before answering (a timeout when the client
                                           gives up first)
- ``GeminiReply.hang()``                   accepts the request and never answers (until the
                                           server stops): the hung provider of issue 9 §1

Every request is recorded in ``server.requests`` (method, path, model, headers, json).
"""

from __future__ import annotations

import json
import queue
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import JSONHandler, LocalHTTPServer, fake_embedding

_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|batchEmbedContents)$")
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass(frozen=True)
class GeminiReply:
    """One scripted reply; build with the class methods."""

    status: int = 200
    text: str = "{}"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
    prompt_tokens: int = 150
    output_tokens: int = 60
    thoughts_tokens: int = 20
    finish_reason: str = "STOP"
    hangs: bool = False  # never answer (``hang()``)

    @classmethod
    def json(cls, data: Any, **kwargs: Any) -> "GeminiReply":
        return cls(text=json.dumps(data, ensure_ascii=False), **kwargs)

    @classmethod
    def raw_text(cls, text: str, **kwargs: Any) -> "GeminiReply":
        return cls(text=text, **kwargs)

    @classmethod
    def rate_limited(cls, retry_after: str | None = None, retry_delay: str | None = None) -> "GeminiReply":
        details = []
        if retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        body = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                          "status": "RESOURCE_EXHAUSTED", "details": details}}
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=429, body=body, headers=headers)

    @classmethod
    def error(cls, status: int, message: str = "An internal error has occurred.") -> "GeminiReply":
        body = {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
        return cls(status=status, body=body)

    @classmethod
    def hang(cls) -> "GeminiReply":
        """Accept the request and never answer (the connection stays open until ``stop()``)."""
        return cls(hangs=True)

    @classmethod
    def slow(cls, delay_s: float, then: "GeminiReply | None" = None) -> "GeminiReply":
        return replace(then or cls(), latency_s=delay_s)


@dataclass(frozen=True)
class GeminiRequest:
    method: str
    path: str
    model: str | None
    headers: dict[str, str]
    json: Any

    @property
    def system_text(self) -> str:
        parts = ((self.json or {}).get("systemInstruction") or {}).get("parts") or []
        return "".join(p.get("text", "") for p in parts)

    @property
    def user_text(self) -> str:
        contents = (self.json or {}).get("contents") or []
        return "".join(p.get("text", "") for c in contents for p in c.get("parts", []))

    @property
    def temperature(self) -> float | None:
        return ((self.json or {}).get("generationConfig") or {}).get("temperature")


class FakeGeminiServer(LocalHTTPServer):
    """The fake. ``base_url`` is ``http://127.0.0.1:<port>`` (the client appends ``/v1beta/...``).
    start(), stop() and ``with``: tests/fakes/local_http.py."""

    thread_name = "fake-gemini"

    def __init__(self, *, api_key: str = "test-key", default_reply: GeminiReply | None = None,
                 responder: Callable[[dict[str, Any]], GeminiReply] | None = None, embedding_dims: int = 8) -> None:
        self.api_key = api_key
        self.embedding_dims = embedding_dims
        self.default_reply = default_reply or GeminiReply.json({"ok": True})
        self.responder = responder
        super().__init__()
        self.requests: list[GeminiRequest] = []
        self._queue: queue.Queue[GeminiReply] = queue.Queue()

    @property
    def base_url(self) -> str:
        return self.root_url

    def enqueue(self, *replies: GeminiReply) -> None:
        for reply in replies:
            self._queue.put(reply)

    def pending(self) -> int:
        return self._queue.qsize()

    def _next_reply(self, body: dict[str, Any]) -> GeminiReply:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return self.responder(body) if self.responder else self.default_reply

    def vector(self, text: str) -> list[float]:
        """The fake's embedding of ``text`` (tests/fakes/local_http.py ``fake_embedding``)."""
        return fake_embedding(text, self.embedding_dims)

    def embedding_body(self, reply: GeminiReply, body: dict[str, Any]) -> dict[str, Any]:
        if reply.body is not None:
            return reply.body
        texts = ["".join(p.get("text", "") for p in (r.get("content") or {}).get("parts", []))
                 for r in body.get("requests") or []]
        return {"embeddings": [{"values": self.vector(t)} for t in texts]}

    @staticmethod
    def response_body(reply: GeminiReply, model: str) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": reply.text}]},
                            "finishReason": reply.finish_reason, "index": 0}],
            "usageMetadata": {"promptTokenCount": reply.prompt_tokens, "candidatesTokenCount": reply.output_tokens,
                              "thoughtsTokenCount": reply.thoughts_tokens,
                              "totalTokenCount": reply.prompt_tokens + reply.output_tokens + reply.thoughts_tokens},
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }


class _Handler(JSONHandler):
    fake: FakeGeminiServer
    content_type = "application/json; charset=UTF-8"

    def do_POST(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        body = self.read_json()
        match = _PATH.match(parts.path)
        fake.record(GeminiRequest("POST", parts.path, match.group(1) if match else None, self.header_dict(), body))
        if not match:
            return self.send_json(404, {"error": {"code": 404, "message": f"no route {parts.path}", "status": "NOT_FOUND"}})
        key = self.headers.get("x-goog-api-key") or (parse_qs(parts.query).get("key") or [""])[0]
        if key != fake.api_key:
            return self.send_json(403, {"error": {"code": 403, "message": "Method doesn't allow unregistered callers.",
                                              "status": "PERMISSION_DENIED"}})
        if match.group(2) == "batchEmbedContents":
            if not isinstance(body, dict) or not body.get("requests"):
                return self.send_json(400, {"error": {"code": 400, "message": "* requests is empty",
                                                      "status": "INVALID_ARGUMENT"}})
            try:  # scripted replies apply; the responder is for generateContent only
                reply = fake._queue.get_nowait()
            except queue.Empty:
                reply = GeminiReply()
            if reply.hangs:
                return self.hang()
            if reply.status != 200:
                return self.send_json(reply.status, reply.body or {}, reply.headers)
            return self.send_json(200, fake.embedding_body(reply, body), reply.headers)
        if not isinstance(body, dict) or not body.get("contents"):
            return self.send_json(400, {"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified",
                                              "status": "INVALID_ARGUMENT"}})
        config = body.get("generationConfig") or {}
        if "responseJsonSchema" in config and ("responseSchema" in config or "responseMimeType" not in config):
            return self.send_json(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                              "responseJsonSchema requires responseMimeType and excludes responseSchema"}})
        reply = fake._next_reply(body)
        if reply.hangs:
            return self.hang()
        if reply.latency_s:
            time.sleep(reply.latency_s)
        if reply.status != 200:
            return self.send_json(reply.status, reply.body or {}, reply.headers)
        self.send_json(200, fake.response_body(reply, match.group(1)), reply.headers)


FakeGeminiServer.handler_class = _Handler
