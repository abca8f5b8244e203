"""A fake Gemini File API + generateContent (with ``fileData`` parts) on 127.0.0.1, counting leaks.

::

    from tests.fakes.gemini_files_server import FakeGeminiFilesServer
    from tests.fakes.gemini_server import GeminiReply

    with FakeGeminiFilesServer(processing_polls=2) as server:
        server.enqueue(GeminiReply.json({"scores": ...}))        # generateContent answers
        server.fault("get", GeminiReply.rate_limited(retry_after="0"))
        ...
        assert server.uploads == 1 and server.deletes == 1 and server.leaks() == []

Endpoints (the real wire format; core/llm/gemini_files.py's docstring):

- ``POST /upload/v1beta/files`` with ``X-Goog-Upload-Protocol: resumable`` and
  ``X-Goog-Upload-Command: start`` (+ ``X-Goog-Upload-Header-Content-Length`` / ``-Content-Type``,
  JSON ``{"file": {"name"?, "displayName"}}``) → 200 with ``X-Goog-Upload-URL`` (a session URL on
  this server) and ``X-Goog-Upload-Status: active``. A chosen name that exists → 409 ALREADY_EXISTS.
- ``POST <session URL>`` with ``X-Goog-Upload-Command: upload`` / ``upload, finalize`` / ``query``
  and ``X-Goog-Upload-Offset`` (must equal the bytes received so far, else 400) → ``active``, or
  for finalize 200 ``{"file": File}`` (``final``; the File is PROCESSING, or ACTIVE at once when
  ``processing_polls`` is 0); query answers ``X-Goog-Upload-Size-Received``. Finalizing with
  fewer bytes than declared → 400.
- ``GET /v1beta/files/{id}`` → the File; every GET of a PROCESSING file counts a poll: after
  ``processing_polls`` polls it becomes ``final_state`` ("ACTIVE", or "FAILED" with an error);
  ``final_state=None`` stays PROCESSING forever. ``GET /v1beta/files`` lists the stored files.
- ``DELETE /v1beta/files/{id}`` → 200 ``{}``; unknown → 404 NOT_FOUND.
- ``POST /v1beta/models/{model}:generateContent`` (tests/fakes/gemini_server.py's answers and
  scripted replies): every ``fileData.fileUri`` must name a stored ACTIVE file, else 400
  FAILED_PRECONDITION like Google ("… is not in an ACTIVE state …").

Faults: ``fault(endpoint, *GeminiReply)`` queues replies for one endpoint ("start", "chunk",
"get", "delete", "generate" — generate is the same as ``enqueue``): an error status (429 with
Retry-After, 500, …) or ``GeminiReply.hang()`` (never answers). A "chunk" fault answers before
the bytes are counted.

Counting: ``uploads`` (files created), ``deletes`` (files deleted), ``leaks()`` (names of files
still stored), ``polls`` (GETs of PROCESSING files), ``sessions`` (upload sessions started),
``generate_calls``; ``wait_polls(n)`` blocks until ``n`` polls have arrived (cancellation tests);
``files[name]["sha256"]`` is the digest of the bytes received.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.gemini_server import FakeGeminiServer, GeminiReply, GeminiRequest
from tests.fakes.gemini_server import _Handler as _GeminiHandler

_FILE_PATH = re.compile(r"^/v1beta/(files/[a-z0-9-]{1,40})$")
_NAME = re.compile(r"^files/[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
ENDPOINTS = ("start", "chunk", "get", "delete", "generate")


class FakeGeminiFilesServer(FakeGeminiServer):
    """The fake (module docstring). ``base_url``: ``http://127.0.0.1:<port>``.

    processing_polls: GETs answered PROCESSING before the file reaches ``final_state``.
    final_state: "ACTIVE" | "FAILED" | None (stays PROCESSING).
    """

    thread_name = "fake-gemini-files"

    def __init__(self, *, api_key: str = "test-key", processing_polls: int = 1, final_state: str | None = "ACTIVE",
                 **kwargs: Any) -> None:
        super().__init__(api_key=api_key, **kwargs)
        self.processing_polls = processing_polls
        self.final_state = final_state
        self.files: dict[str, dict[str, Any]] = {}
        self.sessions_open: dict[str, dict[str, Any]] = {}
        self.uploads = 0
        self.deletes = 0
        self.polls = 0
        self.sessions = 0
        self.generate_calls = 0
        self.generate_file_uris: list[str] = []
        self._faults: dict[str, queue.Queue[GeminiReply]] = {name: queue.Queue() for name in ENDPOINTS}
        self._state_lock = threading.Lock()
        self._polled = threading.Condition(self._state_lock)

    # --- test controls --------------------------------------------------------------------------------
    def fault(self, endpoint: str, *replies: GeminiReply) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r} (one of {ENDPOINTS})")
        if endpoint == "generate":
            return self.enqueue(*replies)
        for reply in replies:
            self._faults[endpoint].put(reply)

    def leaks(self) -> list[str]:
        """Names of the files stored and never deleted."""
        with self._state_lock:
            return sorted(self.files)

    def wait_polls(self, count: int, timeout_s: float = 10.0) -> bool:
        """Block until ``count`` polls of PROCESSING files have arrived (False on timeout)."""
        with self._polled:
            return self._polled.wait_for(lambda: self.polls >= count, timeout=timeout_s)

    def add_file(self, name: str, state: str = "ACTIVE") -> None:
        """Store a file directly (as if a crashed run had uploaded it)."""
        with self._state_lock:
            self.files[name] = self._new_file(name, "video/mp4", 0, "", state)

    def _next_fault(self, endpoint: str) -> GeminiReply | None:
        try:
            return self._faults[endpoint].get_nowait()
        except queue.Empty:
            return None

    def _new_file(self, name: str, mime: str, size: int, digest: str, state: str) -> dict[str, Any]:
        return {"name": name, "displayName": name, "mimeType": mime, "sizeBytes": str(size), "sha256": digest,
                "uri": f"{self.root_url}/v1beta/{name}", "state": state, "polls": 0,
                "createTime": "2026-12-01T00:00:00Z", "updateTime": "2026-12-01T00:00:00Z", "source": "UPLOADED"}

    def resource(self, record: dict[str, Any]) -> dict[str, Any]:
        """The File JSON of a stored record (what the API answers)."""
        body = {k: v for k, v in record.items() if k not in ("polls", "sha256")}
        body["sha256Hash"] = record["sha256"]
        if record["state"] == "FAILED":
            body["error"] = {"code": 3, "message": "Video processing failed: unsupported codec."}
        if record["state"] == "ACTIVE" and record["mimeType"].startswith("video/"):
            body["videoMetadata"] = {"videoDuration": "12s"}
        return body


def _error(status: int, message: str, code_name: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": code_name}}


class _Handler(_GeminiHandler):
    fake: FakeGeminiFilesServer

    def _key_ok(self) -> bool:
        parts = urlsplit(self.path)
        key = self.headers.get("x-goog-api-key") or (parse_qs(parts.query).get("key") or [""])[0]
        if key != self.fake.api_key:
            self.send_json(403, _error(403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED"))
            return False
        return True

    def _faulted(self, endpoint: str) -> bool:
        reply = self.fake._next_fault(endpoint)
        if reply is None:
            return False
        if reply.hangs:
            self.hang()
            return True
        self.send_json(reply.status, reply.body or {}, reply.headers)
        return True

    def _record(self, method: str, body: Any) -> None:
        path = urlsplit(self.path).path
        self.fake.record(GeminiRequest(method, path, None, self.header_dict(), body))

    # --- POST: upload start / chunks, generateContent -------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        if parts.path == "/upload/v1beta/files":
            query = parse_qs(parts.query)
            if "upload_id" in query:
                return self._chunk(query["upload_id"][0])
            return self._start()
        if parts.path.endswith(":generateContent"):
            return self._generate()
        return super().do_POST()

    def _start(self) -> None:
        fake = self.fake
        body = self.read_json()
        self._record("POST", body)
        if not self._key_ok():
            return
        if self._faulted("start"):
            return
        if self.headers.get("X-Goog-Upload-Protocol") != "resumable" or self.headers.get("X-Goog-Upload-Command") != "start":
            return self.send_json(400, _error(400, "resumable start expected", "INVALID_ARGUMENT"))
        declared = self.headers.get("X-Goog-Upload-Header-Content-Length", "")
        mime = self.headers.get("X-Goog-Upload-Header-Content-Type", "")
        if not declared.isdigit() or not mime:
            return self.send_json(400, _error(400, "X-Goog-Upload-Header-Content-Length/-Type missing",
                                              "INVALID_ARGUMENT"))
        meta = (body or {}).get("file") or {}
        name = meta.get("name") or f"files/{uuid.uuid4().hex[:12]}"
        if not _NAME.match(name):
            return self.send_json(400, _error(400, f"Invalid file name {name!r}", "INVALID_ARGUMENT"))
        with fake._state_lock:
            if name in fake.files:
                return self.send_json(409, _error(409, f"File {name} already exists.", "ALREADY_EXISTS"))
            upload_id = uuid.uuid4().hex
            fake.sessions_open[upload_id] = {"name": name, "mime": mime, "declared": int(declared),
                                             "data": bytearray(), "display": meta.get("displayName", "")}
            fake.sessions += 1
        url = f"{fake.root_url}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
        self.send_bytes(200, b"", "text/plain", {"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active",
                                                 "X-Goog-Upload-Chunk-Granularity": "262144"})

    def _chunk(self, upload_id: str) -> None:
        fake = self.fake
        data = self.read_body()
        self._record("POST", None)
        command = [c.strip() for c in (self.headers.get("X-Goog-Upload-Command") or "").split(",")]
        with fake._state_lock:
            session = fake.sessions_open.get(upload_id)
        if session is None:
            return self.send_json(404, _error(404, "upload session not found", "NOT_FOUND"))
        if command == ["query"]:
            return self.send_bytes(200, b"", "text/plain", {"X-Goog-Upload-Status": "active",
                                                            "X-Goog-Upload-Size-Received": str(len(session["data"]))})
        if self._faulted("chunk"):
            return
        offset = self.headers.get("X-Goog-Upload-Offset", "")
        if "upload" not in command or not offset.isdigit() or int(offset) != len(session["data"]):
            return self.send_json(400, _error(400, f"bad offset {offset} (have {len(session['data'])})",
                                              "INVALID_ARGUMENT"))
        session["data"] += data
        if "finalize" not in command:
            return self.send_bytes(200, b"", "text/plain", {"X-Goog-Upload-Status": "active"})
        if len(session["data"]) != session["declared"]:
            return self.send_json(400, _error(400, "size does not match X-Goog-Upload-Header-Content-Length",
                                              "INVALID_ARGUMENT"))
        state = "PROCESSING" if fake.processing_polls > 0 or fake.final_state is None else fake.final_state
        digest = hashlib.sha256(bytes(session["data"])).hexdigest()
        with fake._state_lock:
            del fake.sessions_open[upload_id]
            record = fake._new_file(session["name"], session["mime"], len(session["data"]), digest, state)
            record["displayName"] = session["display"] or session["name"]
            fake.files[session["name"]] = record
            fake.uploads += 1
            resource = fake.resource(record)
        self.send_json(200, {"file": resource}, {"X-Goog-Upload-Status": "final"})

    def _generate(self) -> None:
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        uris = [p["fileData"].get("fileUri", "") for c in ((body or {}).get("contents") or [])
                for p in c.get("parts", []) if isinstance(p, dict) and isinstance(p.get("fileData"), dict)]
        with fake._state_lock:
            fake.generate_calls += 1
            fake.generate_file_uris += uris
            by_uri = {record["uri"]: record for record in fake.files.values()}
            bad = [u for u in uris if u not in by_uri or by_uri[u]["state"] != "ACTIVE"]
        if bad:
            fake.record(GeminiRequest("POST", urlsplit(self.path).path, None, self.header_dict(), body))
            return self.send_json(400, _error(400, f"The File {bad[0]} is not in an ACTIVE state and usage is not allowed.",
                                              "FAILED_PRECONDITION"))
        # hand the body to the plain Gemini fake's handler (scripted replies, usage, errors)
        original, self.rfile = self.rfile, _Replay(raw)  # type: ignore[assignment]
        try:
            super().do_POST()
        finally:
            self.rfile = original

    # --- GET / DELETE -------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        fake = self.fake
        self._record("GET", None)
        if not self._key_ok():
            return
        path = urlsplit(self.path).path
        if path == "/v1beta/files":
            with fake._state_lock:
                listing = [fake.resource(r) for r in fake.files.values()]
            return self.send_json(200, {"files": listing} if listing else {})
        match = _FILE_PATH.match(path)
        if not match:
            return self.send_json(404, _error(404, f"no route {path}", "NOT_FOUND"))
        if self._faulted("get"):
            return
        with fake._polled:
            record = fake.files.get(match.group(1))
            if record is None:
                return self.send_json(404, _error(404, f"File {match.group(1)} not found.", "NOT_FOUND"))
            if record["state"] == "PROCESSING":
                fake.polls += 1
                record["polls"] += 1
                fake._polled.notify_all()
                if fake.final_state is not None and record["polls"] > fake.processing_polls:
                    record["state"] = fake.final_state
            resource = fake.resource(record)
        self.send_json(200, resource)

    def do_DELETE(self) -> None:  # noqa: N802
        fake = self.fake
        self._record("DELETE", None)
        if not self._key_ok():
            return
        match = _FILE_PATH.match(urlsplit(self.path).path)
        if not match:
            return self.send_json(404, _error(404, "no route", "NOT_FOUND"))
        if self._faulted("delete"):
            return
        with fake._state_lock:
            record = fake.files.pop(match.group(1), None)
            if record is not None:
                fake.deletes += 1
        if record is None:
            return self.send_json(404, _error(404, f"File {match.group(1)} not found.", "NOT_FOUND"))
        self.send_json(200, {})


class _Replay:
    """A read-once body for the parent handler after this one has read the request."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        data, self._data = self._data, b""
        return data


FakeGeminiFilesServer.handler_class = _Handler
