"""A real HTTP server on 127.0.0.1 that records what webhooks POST to it.

Use it for any test that sends a webhook (apprise ``json://``, a Slack-format incoming
webhook, …)::

    from tests.fakes.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        settings.HOKAN_NOTIFY_URLS = receiver.json_url("/hook")   # json://127.0.0.1:PORT/hook
        ...
        assert receiver.requests[0].json["title"] == "…"

or the pytest fixtures ``webhook_receiver`` and ``slack_webhook_receiver``
(tests/fakes/fixtures.py). Every request (any method, any path) is recorded in
``receiver.requests`` (``ReceivedRequest``: method, path, headers, body, json) BEFORE it is
answered, so once the client has its answer the request is in the list. The answer is
``status`` (default 200, body ``ok`` — Slack's answer to a good webhook); set
``receiver.status = 500`` to play a failing target.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as received: ``json`` is the decoded body, or None when it is not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a free port) recording every request; start/stop or ``with``."""

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    data = json.loads(body.decode("utf-8")) if body else None
                except (UnicodeDecodeError, ValueError):
                    data = None
                with receiver._lock:
                    receiver.requests.append(
                        ReceivedRequest(self.command, self.path, dict(self.headers.items()), body, data)
                    )
                answer = b"ok" if receiver.status < 400 else b"error"
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def json_url(self, path: str = "/hook") -> str:
        """The apprise URL that POSTs apprise's JSON payload here: ``json://127.0.0.1:PORT/path``."""
        return f"json://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(*, status: int = 200) -> Iterator[WebhookReceiver]:
    """Generator for fixtures: a started receiver, stopped afterwards."""
    with WebhookReceiver(status=status) as receiver:
        yield receiver
