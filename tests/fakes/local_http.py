"""The shared part of the local fake servers in tests/fakes: lifecycle, recording, JSON replies.

A fake is a ``LocalHTTPServer`` subclass naming its request handler (a ``JSONHandler``
subclass)::

    class FakeThing(LocalHTTPServer):
        thread_name = "fake-thing"

        @property
        def base_url(self) -> str:
            return self.root_url                          # http://127.0.0.1:<free port>

    class _Handler(JSONHandler):
        fake: FakeThing                                   # the server this request came to

        def do_POST(self) -> None:
            body = self.read_json()                       # decoded body, None if not JSON
            self.fake.record((self.path, self.header_dict()))
            self.send_json(200, {"ok": True}, {"X-Extra": "1"})

    FakeThing.handler_class = _Handler                    # set once both classes exist

    with FakeThing() as server:                           # or FakeThing().start() ... .stop()
        url = server.base_url

The server listens on 127.0.0.1 only, on a free port the OS picks, and serves each request in
its own daemon thread (so a scripted slow answer does not block others). ``stop()`` shuts the
server down, closes the socket and joins the serving thread; it may be called twice.
``JSONHandler.hang()`` keeps a request unanswered (the connection open) until ``stop()``: the
"accepts the connection and never answers" provider of the hang tests.
``serving(**kwargs)`` is the body of a pytest fixture: a started server, stopped afterwards.

``ServerLifecycle`` is the ``with`` / fixture part alone, for servers that are not HTTP
(tests/fakes/smtp_server.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

HOST = "127.0.0.1"


def fake_embedding(text: str, dims: int) -> list[float]:
    """A deterministic stand-in embedding of ``text`` for the LLM fakes: ``dims`` floats in
    [-1, 1) taken from its SHA-256 (same text, same vector; different texts differ)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round(digest[i % len(digest)] / 128 - 1, 6) for i in range(dims)]


@dataclass(frozen=True)
class RecordedHTTPRequest:
    """A request a fake received: method, path (no query), parsed query string, headers.
    Fakes that record more (the JSON body, ...) subclass it with further fields."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ServerLifecycle:
    """``with`` and pytest-fixture support for a server with ``start() -> self`` and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def serving(cls, *args: Any, **kwargs: Any) -> Iterator[Self]:
        """Generator for pytest fixtures: ``cls(*args, **kwargs)`` started, stopped afterwards."""
        with cls(*args, **kwargs) as server:
            yield server


class LocalHTTPServer(ServerLifecycle):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) run in a daemon thread.

    Subclasses set ``handler_class`` (a ``JSONHandler`` subclass; each server gets its own
    subclass of it with ``fake`` = this server) and may set ``thread_name``; a subclass
    ``__init__`` must call ``super().__init__()``. ``requests`` is the list ``record`` appends
    to (thread-safe, under ``_lock``), in arrival order.
    """

    handler_class: type[JSONHandler]
    thread_name = "fake-http"

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.stopping = threading.Event()  # set by stop(): releases handlers in ``hang()``

    def bind(self) -> None:
        """Bind the socket (a free port) without serving yet; ``start`` does it when needed."""
        if self._httpd is None:
            handler = type("Handler", (self.handler_class,), {"fake": self})
            self._httpd = ThreadingHTTPServer((HOST, 0), handler)
            self._httpd.daemon_threads = True
            self._port = int(self._httpd.server_address[1])

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 (if not yet bound) and serve in a daemon thread."""
        self.bind()
        self.stopping.clear()
        assert self._httpd is not None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (requests still sleeping are abandoned)."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The TCP port (kept after ``stop``); AssertionError before the server is bound."""
        assert self._port is not None, "server not started"
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://{HOST}:{self.port}"

    def record(self, request: Any) -> None:
        """Append ``request`` to ``requests`` (thread-safe)."""
        with self._lock:
            self.requests.append(request)


class JSONHandler(BaseHTTPRequestHandler):
    """Request handler base: quiet, HTTP/1.1, with body reading and JSON answers.

    ``fake`` is the ``LocalHTTPServer`` that owns the handler. ``content_type`` is the
    Content-Type of ``send_json`` answers (each fake copies its real service's spelling).
    """

    fake: Any
    protocol_version = "HTTP/1.1"
    content_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def read_body(self) -> bytes:
        """The request body (``Content-Length`` bytes; b"" when there is none)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> Any:
        """The request body decoded as JSON; None when it is empty or not (UTF-8) JSON.
        The raw bytes stay in ``self.raw_body``."""
        self.raw_body = self.read_body()
        try:
            return json.loads(self.raw_body) if self.raw_body else None
        except ValueError:  # includes UnicodeDecodeError
            return None

    def hang(self) -> None:
        """Never answer: keep the connection open until the server stops, then drop it."""
        self.fake.stopping.wait()
        self.close_connection = True

    def header_dict(self, *, lower: bool = True) -> dict[str, str]:
        """The request headers as a dict, names lower-cased unless ``lower=False``."""
        return {(k.lower() if lower else k): v for k, v in self.headers.items()}

    def send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` with ``data``; a client that already gave up (timeout tests) is ignored."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up; nothing to deliver

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``payload`` as UTF-8 JSON (non-ASCII unescaped) and extra ``headers``."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_bytes(status, data, self.content_type, headers)
