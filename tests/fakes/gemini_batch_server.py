"""A real HTTP server on 127.0.0.1 speaking the Gemini Batch API (inline requests) besides the
``generateContent`` of ``FakeGeminiServer`` (failed lines can be asked again online here).

::

    with FakeGeminiBatchServer(polls_to_finish=2) as server:
        server.line_responder = lambda request: GeminiReply.json({...})
        server.fail_line("row-3", 500, "Internal error")
        client = GeminiClient("test-key", "gemini-2.5-flash", server.base_url)

Endpoints (``x-goog-api-key``; Google error bodies):

- ``POST /v1beta/models/{model}:batchGenerateContent`` ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request", "metadata": {"key"}}]}}}}`` → an
  operation ``{"name": "batches/<id>", "metadata": {"@type": "...GenerateContentBatch",
  "model", "displayName", "state": "BATCH_STATE_PENDING", ...}}``; a request without
  ``contents`` → 400 INVALID_ARGUMENT.
- ``GET /v1beta/batches/{id}``: each poll moves the batch on; after ``polls_to_finish`` polls
  the state is BATCH_STATE_SUCCEEDED with ``done: true`` and ``response.inlinedResponses.
  inlinedResponses[]`` (``{"response": GenerateContentResponse, "metadata": {"key"}}`` or
  ``{"error": {"code", "message"}, "metadata"}``), in input order — or BATCH_STATE_EXPIRED
  (``expire``; no response) or BATCH_STATE_FAILED (``fail_batch``; ``error``).
- ``GET /v1beta/batches`` → ``{"operations": [...]}`` (newest first).

``fail_control(*replies)`` answers the next batch calls with ``GeminiReply`` errors (429 ...).
Counts: ``creates``, ``polls``; every request is recorded in ``requests``.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply, GeminiRequest
from tests.fakes.gemini_server import _Handler as _GenerateHandler

_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"


@dataclass
class _Batch:
    name: str
    model: str
    display_name: str
    requests: list[dict[str, Any]]
    state: str = "BATCH_STATE_PENDING"
    polls: int = 0


class FakeGeminiBatchServer(FakeGeminiServer):
    """The fake (module docstring)."""

    thread_name = "fake-gemini-batch"

    def __init__(self, *, polls_to_finish: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.polls_to_finish = polls_to_finish
        self.batches: dict[str, _Batch] = {}
        self.line_responder: Callable[[dict[str, Any]], GeminiReply] | None = None
        self.line_failures: dict[str, tuple[int, str]] = {}
        self.expire = False
        self.fail_batch = False
        self._control: queue.Queue[GeminiReply] = queue.Queue()

    def fail_line(self, key: str, code: int, message: str = "Internal error") -> None:
        self.line_failures[key] = (code, message)

    def fail_control(self, *replies: GeminiReply) -> None:
        for reply in replies:
            self._control.put(reply)

    @property
    def creates(self) -> int:
        return sum(1 for r in self.requests if r.method == "POST" and r.path.endswith(":batchGenerateContent"))

    @property
    def polls(self) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and r.path.startswith("/v1beta/batches/"))

    @property
    def generate_requests(self) -> int:
        return sum(1 for r in self.requests if r.method == "POST" and r.path.endswith(":generateContent"))

    def operation(self, batch: _Batch) -> dict[str, Any]:
        done = batch.state in ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_EXPIRED",
                               "BATCH_STATE_CANCELLED")
        failures = sum(1 for r in batch.requests if (r.get("metadata") or {}).get("key") in self.line_failures)
        metadata = {"@type": _TYPE, "model": f"models/{batch.model}", "displayName": batch.display_name,
                    "name": batch.name, "state": batch.state, "createTime": "2026-12-01T00:00:00Z",
                    "batchStats": {"requestCount": str(len(batch.requests)),
                                   "successfulRequestCount": str(len(batch.requests) - failures if done else 0),
                                   "failedRequestCount": str(failures if done else 0)}}
        operation: dict[str, Any] = {"name": batch.name, "metadata": metadata, "done": done}
        if batch.state == "BATCH_STATE_SUCCEEDED":
            responses = []
            for item in batch.requests:
                key = (item.get("metadata") or {}).get("key")
                if key in self.line_failures:
                    code, message = self.line_failures[key]
                    responses.append({"error": {"code": code, "message": message}, "metadata": {"key": key}})
                    continue
                reply = self.line_responder(item["request"]) if self.line_responder else self.default_reply
                responses.append({"response": self.response_body(reply, batch.model), "metadata": {"key": key}})
            operation["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput",
                                     "inlinedResponses": {"inlinedResponses": responses}}
        if batch.state == "BATCH_STATE_FAILED":
            operation["error"] = {"code": 3, "message": "Batch input is invalid."}
        return operation


class _Handler(_GenerateHandler):
    fake: FakeGeminiBatchServer

    def _google_error(self, status: int, message: str, name: str) -> None:
        self.send_json(status, {"error": {"code": status, "message": message, "status": name}})

    def _checked(self) -> bool:
        if self.headers.get("x-goog-api-key") != self.fake.api_key:
            self._google_error(403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED")
            return False
        try:
            reply = self.fake._control.get_nowait()
        except queue.Empty:
            return True
        self.send_json(reply.status, reply.body or {}, reply.headers)
        return False

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not path.endswith(":batchGenerateContent"):
            return super().do_POST()
        fake = self.fake
        body = self.read_json()
        model = path.removeprefix("/v1beta/models/").removesuffix(":batchGenerateContent")
        fake.record(GeminiRequest("POST", path, model, self.header_dict(), body))
        if not self._checked():
            return
        batch_spec = (body or {}).get("batch") or {}
        requests = (((batch_spec.get("inputConfig") or {}).get("requests") or {}).get("requests")) or []
        if not batch_spec.get("displayName") or not requests or any(not (r.get("request") or {}).get("contents")
                                                                      for r in requests):
            return self._google_error(400, "* BatchGenerateContentRequest.batch: displayName and requests with contents "
                                           "are required", "INVALID_ARGUMENT")
        batch = _Batch(f"batches/{uuid.uuid4().hex[:20]}", model, str(batch_spec["displayName"]), list(requests))
        fake.batches[batch.name] = batch
        self.send_json(200, fake.operation(batch))

    def do_GET(self) -> None:
        fake = self.fake
        path = urlsplit(self.path).path
        fake.record(GeminiRequest("GET", path, None, self.header_dict(), None))
        if not self._checked():
            return
        if path == "/v1beta/batches":
            return self.send_json(200, {"operations": [fake.operation(b) for b in reversed(list(fake.batches.values()))]})
        name = path.removeprefix("/v1beta/")
        batch = fake.batches.get(name)
        if batch is None:
            return self._google_error(404, f"Batch {name} not found", "NOT_FOUND")
        if batch.state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
            batch.polls += 1
            if batch.polls >= fake.polls_to_finish:
                batch.state = ("BATCH_STATE_FAILED" if fake.fail_batch else
                               "BATCH_STATE_EXPIRED" if fake.expire else "BATCH_STATE_SUCCEEDED")
            else:
                batch.state = "BATCH_STATE_RUNNING"
        self.send_json(200, fake.operation(batch))


FakeGeminiBatchServer.handler_class = _Handler
