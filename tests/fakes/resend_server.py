"""A real HTTP server on 127.0.0.1 speaking Resend's ``POST /emails``.

Requires ``Authorization: Bearer <key>`` (else 401 ``missing_api_key`` / 403
``invalid_api_key``); validates ``from``, ``to`` and ``subject`` (else 422
``validation_error``) and answers ``{"id": "<uuid>"}`` like Resend. ``server.emails``
holds the accepted JSON bodies (attachments as sent: ``[{"filename", "content": base64}]``);
``server.fail_next(n, status=500, retry_after=None)`` scripts failures (with a ``Retry-After``
header when ``retry_after`` is given).
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.local_http import JSONHandler, LocalHTTPServer


class FakeResendServer(LocalHTTPServer):
    """The fake; ``base_url`` is ``http://127.0.0.1:<port>`` (start(), stop() and ``with``:
    tests/fakes/local_http.py)."""

    thread_name = "fake-resend"

    def __init__(self, *, api_key: str = "re_test") -> None:
        super().__init__()
        self.api_key = api_key
        self.emails: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._failures: list[tuple[int, str | None]] = []

    @property
    def base_url(self) -> str:
        return self.root_url

    def fail_next(self, n: int = 1, status: int = 500, retry_after: str | None = None) -> None:
        self._failures += [(status, retry_after)] * n


class _Handler(JSONHandler):
    fake: FakeResendServer

    def do_POST(self) -> None:
        fake = self.fake
        body = self.read_json()
        with fake._lock:
            fake.requests.append((self.path, self.header_dict()))
            failure = fake._failures.pop(0) if fake._failures else None
        if self.path != "/emails":
            return self.send_json(404, {"statusCode": 404, "name": "not_found", "message": "The requested endpoint does not exist."})
        auth = self.headers.get("Authorization", "")
        if not auth:
            return self.send_json(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key in the authorization header."})
        if auth != f"Bearer {fake.api_key}":
            return self.send_json(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        if failure is not None:
            status, retry_after = failure
            return self.send_json(status, {"statusCode": status, "name": "application_error", "message": "Something went wrong."},
                                  {"Retry-After": retry_after} if retry_after else None)
        if not isinstance(body, dict) or not body.get("from") or not body.get("to") or not body.get("subject"):
            return self.send_json(422, {"statusCode": 422, "name": "validation_error", "message": "Missing `to` field."})
        with fake._lock:
            fake.emails.append(body)
        self.send_json(200, {"id": str(uuid.uuid4())})


FakeResendServer.handler_class = _Handler
