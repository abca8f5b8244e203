"""A real HTTP server on 127.0.0.1 speaking the OpenAI Batch API (files + batches) besides the
chat completions of ``FakeOpenAIServer`` (so failed lines can be asked again online at the same
fake).

::

    from tests.fakes.openai_batch_server import FakeOpenAIBatchServer

    with FakeOpenAIBatchServer(polls_to_finish=2) as server:
        server.line_responder = lambda body: Reply.json({"scores": ...})   # per request line
        server.fail_line("row-7", Reply.error(500))                        # that line fails
        client = OpenAICompatClient("openai", "gpt-4.1-mini", "test-key", server.v1_url)
        ...
        assert server.creates == 1

Endpoints (Bearer key required, OpenAI error bodies):

- ``POST /v1/files`` multipart (``file``, ``purpose=batch``) → a ``file`` object; the JSONL is
  checked line by line (custom_id, method POST, url, body) like OpenAI's validation.
- ``POST /v1/batches`` ``{"input_file_id", "endpoint", "completion_window": "24h", "metadata"}``
  → a ``batch`` object (status "validating"); an unknown file or a bad window → 400.
- ``GET /v1/batches/{id}``: every poll moves the batch on (validating → in_progress → …); after
  ``polls_to_finish`` polls it is "completed" (or "expired" when ``expire`` is set, "failed"
  when ``fail_batch`` is set: input refused, errors.data). Output and error files are written
  at that moment, lines in REVERSE order (OpenAI does not keep the input order).
- ``GET /v1/batches?limit=&after=`` → ``{"object": "list", "data": [...], "has_more"}``, newest
  first, at most ``list_page_size`` a page (cursor ``after`` = the last id of the previous page).
- ``GET /v1/files/{id}/content`` → the file's bytes.

Line answers come from ``line_responder(body) -> Reply`` (default: ``default_reply``); online
chat completions from the queue, else ``online_responder(body)``, else ``default_reply``. Or
``fail_line(custom_id, reply)`` / ``line_fault(index, custom_id) -> Reply | None`` for one line (non-200 → the error file, ``response.status_code``
and an ``error`` body). With ``expire`` set, only the first ``expire_completed`` lines are
answered; the rest go to the error file with ``error.code = "batch_expired"``.
``fail_control(*replies)`` answers the next batch/file API calls with errors (429 with
Retry-After, 500 ...), ``Reply.slow(s)`` (done normally, answered s seconds late) or
``Reply.hang()``. Every request is recorded (``requests``; ``creates`` / ``polls`` /
``uploads`` count them).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.openai_server import FakeOpenAIServer, RecordedRequest, Reply
from tests.fakes.openai_server import _Handler as _ChatHandler


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, Any]
    lines: list[dict[str, Any]]
    created_at: int
    status: str = "validating"
    polls: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


class FakeOpenAIBatchServer(FakeOpenAIServer):
    """The fake (see the module docstring). polls_to_finish: polls before the batch ends."""

    thread_name = "fake-openai-batch"

    def __init__(self, *, polls_to_finish: int = 2, model: str = "gpt-4.1-mini", **kwargs: Any) -> None:
        kwargs.setdefault("report_cost", False)  # OpenAI reports tokens only
        super().__init__(model=model, **kwargs)
        self.polls_to_finish = polls_to_finish
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, _Batch] = {}
        self.line_responder: Callable[[dict[str, Any]], Reply] | None = None
        self.line_failures: dict[str, Reply] = {}
        self.expire = False
        self.expire_completed = 0
        self.fail_batch = False
        self.list_page_size = 100  # batches per page of GET /v1/batches (OpenAI's largest limit)
        self.online_responder: Callable[[dict[str, Any]], Reply] | None = None
        self.line_fault: Callable[[int, str], Reply | None] | None = None  # (line index, custom_id) → a failure
        self._control: queue.Queue[Reply] = queue.Queue()
        self._local = threading.local()  # the body of the chat request this handler thread serves

    def _next_reply(self) -> Reply:
        """A queued reply, else ``online_responder(body)`` for chat completions, else the default."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            body = getattr(self._local, "body", None)
            if self.online_responder is not None and isinstance(body, dict):
                return self.online_responder(body)
            return self.default_reply

    # --- scripting ----------------------------------------------------------------------------
    def fail_line(self, custom_id: str, reply: Reply) -> None:
        self.line_failures[custom_id] = reply

    def fail_control(self, *replies: Reply) -> None:
        for reply in replies:
            self._control.put(reply)

    def _control_fault(self) -> Reply | None:
        try:
            return self._control.get_nowait()
        except queue.Empty:
            return None

    # --- counts ---------------------------------------------------------------------------------
    def _count(self, method: str, path_prefix: str, exact: bool = False) -> int:
        return sum(1 for r in self.requests if r.method == method
                   and (r.path == path_prefix if exact else r.path.startswith(path_prefix)))

    @property
    def creates(self) -> int:
        return self._count("POST", "/v1/batches", exact=True)

    @property
    def uploads(self) -> int:
        return self._count("POST", "/v1/files", exact=True)

    @property
    def polls(self) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and r.path.startswith("/v1/batches/"))

    @property
    def chat_requests(self) -> int:
        return self._count("POST", "/v1/chat/completions", exact=True)

    # --- wire format --------------------------------------------------------------------------------
    def batch_object(self, batch: _Batch) -> dict[str, Any]:
        now = int(time.time())
        return {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": batch.status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": batch.created_at, "in_progress_at": batch.created_at if batch.polls else None,
            "expires_at": batch.created_at + 86400, "finalizing_at": None,
            "completed_at": now if batch.status == "completed" else None,
            "failed_at": now if batch.status == "failed" else None,
            "expired_at": now if batch.status == "expired" else None,
            "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": len(batch.lines), "completed": batch.completed, "failed": batch.failed},
            "metadata": batch.metadata,
        }

    def _advance(self, batch: _Batch) -> None:
        if batch.status not in ("validating", "in_progress", "finalizing"):
            return
        batch.polls += 1
        if batch.polls < self.polls_to_finish:
            batch.status = "in_progress"
            return
        if self.fail_batch:
            batch.status = "failed"
            batch.errors = [{"code": "invalid_request", "line": 1, "message": "The model is not available for batch.",
                             "param": "body.model"}]
            return
        outputs, errors = [], []
        for index, line in enumerate(batch.lines):
            custom_id = line["custom_id"]
            request_id = f"req_{uuid.uuid4().hex[:12]}"
            if self.expire and index >= self.expire_completed:
                errors.append({"id": f"batch_req_{uuid.uuid4().hex[:12]}", "custom_id": custom_id, "response": None,
                               "error": {"code": "batch_expired", "message":
                                         "This request could not be executed before the completion window expired."}})
                continue
            reply = self.line_failures.get(custom_id) or (self.line_fault(index, custom_id) if self.line_fault else None) \
                or (self.line_responder(line["body"]) if self.line_responder else self.default_reply)
            if reply.status != 200:
                errors.append({"id": f"batch_req_{uuid.uuid4().hex[:12]}", "custom_id": custom_id,
                               "response": {"status_code": reply.status, "request_id": request_id,
                                            "body": reply.body or {"error": {"message": "error", "code": None}}},
                               "error": None})
                continue
            outputs.append({"id": f"batch_req_{uuid.uuid4().hex[:12]}", "custom_id": custom_id,
                            "response": {"status_code": 200, "request_id": request_id,
                                         "body": self.completion_body(reply, line["body"])},
                            "error": None})
        outputs.reverse()  # any order: callers must match by custom_id
        batch.completed, batch.failed = len(outputs), len(errors)
        if outputs:
            batch.output_file_id = self._store_file("batch_output.jsonl", _jsonl(outputs), "batch_output")
        if errors:
            batch.error_file_id = self._store_file("batch_errors.jsonl", _jsonl(errors), "batch_output")
        batch.status = "expired" if self.expire else "completed"

    def _store_file(self, filename: str, data: bytes, purpose: str) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed", "data": data}
        return file_id


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name → (filename, bytes) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = (part.get_filename(), payload)
    return parts


class _Handler(_ChatHandler):
    fake: FakeOpenAIBatchServer

    def _openai_error(self, status: int, message: str, code: str | None = None) -> None:
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                          "code": code}})

    def _authorized(self) -> bool:
        if self.headers.get("Authorization", "") != f"Bearer {self.fake.api_key}":
            self._openai_error(401, "Incorrect API key provided", "invalid_api_key")
            return False
        return True

    def _record(self, method: str, body: Any = None) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.fake.record(RecordedRequest(method=method, path=parts.path, query=query, headers=self.header_dict(),
                                         json=body, received_at=time.monotonic()))
        return parts.path, query

    def _fault(self) -> bool:
        reply = self.fake._control_fault()
        if reply is None:
            return False
        if reply.hangs:
            self.hang()
            return True
        if reply.status == 200:  # Reply.slow(s): answer normally, s seconds late (a lost answer
            time.sleep(reply.latency_s)  # when the client's timeout is shorter; the work is done)
            return False
        self.send_json(reply.status, reply.body or {}, reply.headers)
        return True

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/v1/files", "/v1/batches"):
            body = self.read_json()
            self.fake._local.body = body
            self.read_json = lambda: body  # type: ignore[method-assign]  # the chat handler reads it again
            return super().do_POST()
        fake = self.fake
        if path == "/v1/files":
            raw = self.read_body()
            self._record("POST", None)
            if not self._authorized() or self._fault():
                return
            parts = _multipart(self.headers.get("Content-Type", ""), raw)
            purpose = parts.get("purpose", (None, b""))[1].decode()
            filename, data = parts.get("file", (None, b""))
            if purpose != "batch" or not data:
                return self._openai_error(400, "purpose must be 'batch' and a file is required")
            for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
                try:
                    entry = json.loads(line)
                    assert entry["method"] == "POST" and entry["url"] and isinstance(entry["body"], dict)
                    assert entry["custom_id"]
                except (ValueError, KeyError, AssertionError):
                    return self._openai_error(400, f"Invalid JSONL at line {number}")
            file_id = fake._store_file(filename or "input.jsonl", data, "batch")
            info = {k: v for k, v in fake.files[file_id].items() if k != "data"}
            return self.send_json(200, info)
        body = self.read_json()
        self._record("POST", body)
        if not self._authorized() or self._fault():
            return
        if not isinstance(body, dict) or body.get("completion_window") != "24h":
            return self._openai_error(400, "completion_window must be '24h'")
        stored = fake.files.get(str(body.get("input_file_id")))
        if stored is None:
            return self._openai_error(400, f"File {body.get('input_file_id')} not found")
        lines = [json.loads(line) for line in stored["data"].decode("utf-8").splitlines() if line.strip()]
        if any(line["url"] != body.get("endpoint") for line in lines):
            return self._openai_error(400, "The url of every line must match the batch endpoint")
        batch = _Batch(f"batch_{uuid.uuid4().hex[:24]}", stored["id"], str(body["endpoint"]),
                       dict(body.get("metadata") or {}), lines, int(time.time()))
        fake.batches[batch.id] = batch
        self.send_json(200, fake.batch_object(batch))

    def do_GET(self) -> None:
        fake = self.fake
        path, query = self._record("GET")
        if not self._authorized() or self._fault():
            return
        if path == "/v1/batches":
            limit = min(int((query.get("limit") or ["20"])[0]), fake.list_page_size)
            newest_first = [fake.batch_object(b) for b in reversed(list(fake.batches.values()))]
            after = (query.get("after") or [""])[0]
            start = next((i + 1 for i, b in enumerate(newest_first) if b["id"] == after), 0) if after else 0
            data = newest_first[start:start + limit]
            return self.send_json(200, {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                                        "last_id": data[-1]["id"] if data else None,
                                        "has_more": start + limit < len(newest_first)})
        if path.startswith("/v1/batches/"):
            batch = fake.batches.get(path.rsplit("/", 1)[1])
            if batch is None:
                return self._openai_error(404, "No batch found", "not_found")
            fake._advance(batch)
            return self.send_json(200, fake.batch_object(batch))
        if path.startswith("/v1/files/") and path.endswith("/content"):
            stored = fake.files.get(path.split("/")[3])
            if stored is None:
                return self._openai_error(404, "No such File object", "not_found")
            return self.send_bytes(200, stored["data"], "application/octet-stream")
        self._openai_error(404, f"no route {path}")


FakeOpenAIBatchServer.handler_class = _Handler
