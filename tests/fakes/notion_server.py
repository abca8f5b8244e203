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

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tests.fakes.local_http import JSONHandler, LocalHTTPServer


@dataclass(frozen=True)
class NotionRequest:
    path: str
    headers: dict[str, str]
    json: Any


class FakeNotionServer(LocalHTTPServer):
    """The fake; ``base_url`` is ``http://127.0.0.1:<port>`` (start(), stop() and ``with``:
    tests/fakes/local_http.py)."""

    thread_name = "fake-notion"

    def __init__(self, *, api_key: str = "secret_test") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[NotionRequest] = []
        self._script: list[tuple[int, dict[str, str]]] = []

    @property
    def base_url(self) -> str:
        return self.root_url

    def rate_limit_next(self, n: int = 1, retry_after: str = "1") -> None:
        self._script += [(429, {"Retry-After": retry_after})] * n

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._script += [(status, {})] * n


class _Handler(JSONHandler):
    fake: FakeNotionServer
    content_type = "application/json; charset=utf-8"

    def do_POST(self) -> None:
        fake = self.fake
        body = self.read_json()
        with fake._lock:
            fake.requests.append(NotionRequest(self.path, self.header_dict(), body))
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
        self.send_json(200, {"object": "page", "id": page_id, "created_time": now, "last_edited_time": now,
                             "parent": {"type": "database_id", **body["parent"]}, "archived": False,
                             "properties": body.get("properties", {}),
                             "url": f"https://www.notion.so/{page_id.replace('-', '')}"})

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"object": "error", "status": status, "code": code, "message": message}, headers)


FakeNotionServer.handler_class = _Handler
