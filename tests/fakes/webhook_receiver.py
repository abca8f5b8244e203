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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.fakes.local_http import JSONHandler, LocalHTTPServer


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as received: ``json`` is the decoded body, or None when it is not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any


class WebhookReceiver(LocalHTTPServer):
    """An HTTP server on 127.0.0.1 (a free port) recording every request; start/stop or ``with``
    (tests/fakes/local_http.py). The port is bound at construction, so ``port`` and ``url`` are
    known before ``start()``."""

    thread_name = "webhook-receiver"

    def __init__(self, *, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.requests: list[ReceivedRequest] = []
        self.bind()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.root_url

    def json_url(self, path: str = "/hook") -> str:
        """The apprise URL that POSTs apprise's JSON payload here: ``json://127.0.0.1:PORT/path``."""
        return f"json://127.0.0.1:{self.port}{path}"


class _Handler(JSONHandler):
    fake: WebhookReceiver

    def _handle(self) -> None:
        receiver = self.fake
        data = self.read_json()
        receiver.record(ReceivedRequest(self.command, self.path, self.header_dict(lower=False), self.raw_body, data))
        answer = b"ok" if receiver.status < 400 else b"error"
        self.send_bytes(receiver.status, answer, "text/plain; charset=utf-8")

    do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _handle


WebhookReceiver.handler_class = _Handler


def serve(*, status: int = 200) -> Iterator[WebhookReceiver]:
    """Generator for fixtures: a started receiver, stopped afterwards."""
    yield from WebhookReceiver.serving(status=status)
