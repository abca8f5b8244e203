"""A real HTTP server on 127.0.0.1 speaking Resend's ``POST /emails``.

Requires ``Authorization: Bearer <key>`` (else 401 ``missing_api_key`` / 403
``invalid_api_key``); validates ``from``, ``to`` and ``subject`` (else 422
``validation_error``) and answers ``{"id": "<uuid>"}`` like Resend. ``server.emails``
holds the accepted JSON bodies (attachments as sent: ``[{"filename", "content": base64}]``);
``server.fail_next(n, status=500)`` scripts failures.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeResendServer:
    def __init__(self, *, api_key: str = "re_test") -> None:
        self.api_key = api_key
        self.emails: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> "FakeResendServer":
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

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._failures += [status] * n


class _Handler(BaseHTTPRequestHandler):
    fake: FakeResendServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with fake._lock:
            fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            failure = fake._failures.pop(0) if fake._failures else None
        if self.path != "/emails":
            return self._send(404, {"statusCode": 404, "name": "not_found", "message": "The requested endpoint does not exist."})
        auth = self.headers.get("Authorization", "")
        if not auth:
            return self._send(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key in the authorization header."})
        if auth != f"Bearer {fake.api_key}":
            return self._send(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"})
        if failure is not None:
            return self._send(failure, {"statusCode": failure, "name": "application_error", "message": "Something went wrong."})
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("from") or not body.get("to") or not body.get("subject"):
            return self._send(422, {"statusCode": 422, "name": "validation_error", "message": "Missing `to` field."})
        with fake._lock:
            fake.emails.append(body)
        self._send(200, {"id": str(uuid.uuid4())})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
