"""A real HTTP server on 127.0.0.1 speaking the Notion API's ``POST /v1/pages``.

Checks what Notion checks first: ``Authorization: Bearer <key>`` (else 401 unauthorized)
and the ``Notion-Version`` header (else 400 missing_version). Answers a page object
(``{"object": "page", "id", "created_time", "parent", "properties", "url"}``). Script
``server.rate_limit_next(n, retry_after="1")`` to answer the next n requests with Notion's
429 ``{"object": "error", "status": 429, "code": "rate_limited", ...}`` and a Retry-After
header; ``server.fail_next(n, status=500)`` for other errors. ``server.requests`` records
(path, headers, json) of every request.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class NotionRequest:
    path: str
    headers: dict[str, str]
    json: Any


class FakeNotionServer:
    def __init__(self, *, api_key: str = "secret_test") -> None:
        self.api_key = api_key
        self.requests: list[NotionRequest] = []
        self._script: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> "FakeNotionServer":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def rate_limit_next(self, n: int = 1, retry_after: str = "1") -> None:
        self._script += [(429, {"Retry-After": retry_after})] * n

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._script += [(status, {})] * n


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNotionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with fake._lock:
            fake.requests.append(NotionRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            scripted = fake._script.pop(0) if fake._script else None
        if self.path != "/v1/pages":
            return self._error(404, "object_not_found", "Invalid request URL.")
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return self._error(401, "unauthorized", "API token is invalid.")
        if not self.headers.get("Notion-Version"):
            return self._error(400, "missing_version", "Notion-Version header failed validation.")
        if scripted is not None:
            status, headers = scripted
            code = "rate_limited" if status == 429 else "internal_server_error"
            return self._error(status, code, "You have been rate limited." if status == 429 else "Unexpected error.",
                               headers)
        if not isinstance(body, dict) or "database_id" not in (body.get("parent") or {}):
            return self._error(400, "validation_error", "body failed validation: body.parent should be defined.")
        page_id = str(uuid.uuid4())
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self._send(200, {"object": "page", "id": page_id, "created_time": now, "last_edited_time": now,
                         "parent": {"type": "database_id", **body["parent"]}, "archived": False,
                         "properties": body.get("properties", {}),
                         "url": f"https://www.notion.so/{page_id.replace('-', '')}"})

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"object": "error", "status": status, "code": code, "message": message}, headers)

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
