"""The shared part of the fake search APIs (brave_server, perplexity_search_server,
google_cse_server): an index of pages, scripted faults, request recording.

    with FakeBraveServer(api_key="k") as server:
        server.add("https://www.town.example.lg.jp/kurashi/gomi.html", "粗大ごみ", "粗大ごみの出し方 … 300円")
        server.fail_next(1, status=429, retry_after="7")    # then 5xx, hang, broken JSON …
        provider = BraveSearch(api_key="k", base_url=server.base_url, ...)

Every request is recorded (``requests``: method, path, query, headers, json body) in arrival
order, refused ones included. A query matches a page when every whitespace-separated word of
it (``site:`` operators aside) occurs in the page's title or snippet; with no words at all every
page matches. ``empty()`` makes every answer have 0 results. Faults, in the order scripted,
each for the next n requests: ``fail_next(n, status, retry_after, body)``, ``hang_next(n)``
(accept and never answer until the server stops), ``broken_next(n)`` (200 with a body that is
not JSON). Authentication is checked first (each fake's own way): a wrong key answers the
provider's auth error whatever is scripted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.local_http import JSONHandler, LocalHTTPServer


@dataclass(frozen=True)
class RecordedSearch:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Fault:
    kind: str  # "status" | "hang" | "broken"
    status: int = 500
    retry_after: str | None = None
    body: Any = None


class FakeSearchServer(LocalHTTPServer):
    """Base of the three fakes; subclasses answer in their provider's wire format."""

    def __init__(self, *, api_key: str = "test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.pages: list[tuple[str, str, str]] = []
        self._faults: list[_Fault] = []
        self._empty = False
        self._fault_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.root_url

    def add(self, url: str, title: str, snippet: str) -> None:
        self.pages.append((url, title, snippet))

    def empty(self, on: bool = True) -> None:
        self._empty = on

    def fail_next(self, count: int = 1, *, status: int = 500, retry_after: str | None = None, body: Any = None) -> None:
        with self._fault_lock:
            self._faults += [_Fault("status", status, retry_after, body)] * count

    def hang_next(self, count: int = 1) -> None:
        with self._fault_lock:
            self._faults += [_Fault("hang")] * count

    def broken_next(self, count: int = 1) -> None:
        with self._fault_lock:
            self._faults += [_Fault("broken")] * count

    def next_fault(self) -> _Fault | None:
        with self._fault_lock:
            return self._faults.pop(0) if self._faults else None

    def matching(self, query: str, site: str | None, count: int) -> list[tuple[str, str, str]]:
        if self._empty:
            return []
        words = [w for w in query.split() if not w.lower().startswith("site:")]
        found = []
        for url, title, snippet in self.pages:
            host = (urlsplit(url).hostname or "").lower()
            if site and not (host == site or host.endswith("." + site)):
                continue
            if all(w in title or w in snippet for w in words):
                found.append((url, title, snippet))
        return found[:count]


class SearchHandler(JSONHandler):
    """Runs the scripted fault (if any) or calls ``answer()``; subclasses implement ``auth_ok``,
    ``auth_error`` and ``answer`` (returning (status, payload))."""

    fake: FakeSearchServer

    def handle_search(self, body: Any) -> None:
        from urllib.parse import parse_qs

        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.fake.record(RecordedSearch(self.command, parts.path, query, self.header_dict(), body))
        if not self.auth_ok(query):
            status, payload = self.auth_error()
            return self.send_json(status, payload)
        fault = self.fake.next_fault()
        if fault is not None:
            if fault.kind == "hang":
                return self.hang()
            if fault.kind == "broken":
                return self.send_bytes(200, b'{"web": {"results": [', "application/json")
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return self.send_json(fault.status, fault.body if fault.body is not None else self.error_body(fault.status),
                                  headers)
        status, payload = self.answer(parts.path, query, body)
        self.send_json(status, payload)

    def auth_ok(self, query: dict[str, list[str]]) -> bool:
        raise NotImplementedError

    def auth_error(self) -> tuple[int, Any]:
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        return {"error": {"status": status}}

    def answer(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        raise NotImplementedError
