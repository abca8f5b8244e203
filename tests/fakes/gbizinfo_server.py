"""A real HTTP server on 127.0.0.1 that speaks the gBizINFO REST API v2 (JSON).

    from tests.fakes.gbizinfo_server import FakeGbizinfoServer

    with FakeGbizinfoServer(token="test-token") as server:
        server.add({"corporate_number": "6010001135680", "name": "ＮＥＣネッツエスアイ株式会社", ...})
        server.rate_limit_next(1, retry_after="7")
        client = GbizinfoClient(token="test-token", base_url=server.base_url, allow_hosts=["127.0.0.1"])

Endpoints (GET, as in the v2 OpenAPI document; base URL ``http://127.0.0.1:<port>/hojin``):

- ``/hojin/v2/hojin/{corporate_number}``: ``{"hojin-infos": [info], "id", "message"}``; 404 with
  an ``errors`` body for an unknown number.
- ``/hojin/v2/hojin?name=&prefecture=&page=&limit=``: partial match on ``name`` (after NFKC, as
  gBizINFO matches full-width and half-width alike), ``prefecture`` = 2-digit code compared with
  the prefecture that opens ``location``; ``limit`` results of page ``page``.
- a trailing slash → 404 (the spec: 末尾にスラッシュがあるとエラー).

The ``X-hojinInfo-api-token`` header must equal ``token``, else 401. ``rate_limit_next(n)``
answers the next n requests with 429 (and Retry-After when given). Every request is recorded in
``requests`` (method, path, query, headers) in arrival order, refused ones included.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from hokan.core.ja import PREFECTURES
from tests.fakes.local_http import JSONHandler, LocalHTTPServer, RecordedHTTPRequest

TOKEN_HEADER = "X-hojinInfo-api-token"


# What ``requests`` holds: method, path, query, headers (names as sent).
RecordedRequest = RecordedHTTPRequest


class FakeGbizinfoServer(LocalHTTPServer):
    """The fake. ``base_url`` is ``http://127.0.0.1:<port>/hojin`` (what GBIZINFO_API_BASE_URL takes).
    start(), stop() and ``with``: tests/fakes/local_http.py."""

    thread_name = "fake-gbizinfo"

    def __init__(self, *, token: str = "test-token") -> None:
        super().__init__()
        self.token = token
        self.companies: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self._rate_limited = 0
        self._retry_after: str | None = None

    def add(self, *infos: dict[str, Any]) -> None:
        """Serve these HojinInfo objects (keyed by corporate_number)."""
        for info in infos:
            self.companies[info["corporate_number"]] = info

    def rate_limit_next(self, count: int, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with 429 (Retry-After: ``retry_after`` when given)."""
        with self._lock:
            self._rate_limited = count
            self._retry_after = retry_after

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/hojin"

    # --- behaviour ---------------------------------------------------------------------------
    def _take_rate_limit(self) -> str | None | bool:
        with self._lock:
            if self._rate_limited > 0:
                self._rate_limited -= 1
                return self._retry_after if self._retry_after is not None else True
        return False

    def search(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        name = unicodedata.normalize("NFKC", query.get("name", [""])[0])
        code = query.get("prefecture", [""])[0]
        prefecture = PREFECTURES[int(code) - 1] if code.isdigit() and 1 <= int(code) <= 47 else None
        limit = int(query.get("limit", ["1000"])[0])
        page = int(query.get("page", ["1"])[0])
        found = [
            info
            for info in self.companies.values()
            if name in unicodedata.normalize("NFKC", info.get("name", ""))
            and (prefecture is None or (info.get("location") or "").startswith(prefecture))
        ]
        return found[(page - 1) * limit : page * limit]


def _envelope(infos: list[dict[str, Any]], message: str = "200 - OK.") -> dict[str, Any]:
    return {"hojin-infos": infos, "id": str(uuid.uuid4()), "message": message}


class _Handler(JSONHandler):
    fake: FakeGbizinfoServer
    content_type = "application/json;charset=UTF-8"

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"errors": [{"item": "", "message": message}], "id": str(uuid.uuid4()),
                                "message": f"{status} - {message}"}, headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.fake.record(RecordedRequest("GET", parts.path, query, self.header_dict(lower=False)))
        if self.headers.get(TOKEN_HEADER) != self.fake.token:
            return self._error(401, "Unauthorized")
        limited = self.fake._take_rate_limit()
        if limited is not False:
            headers = {"Retry-After": limited} if isinstance(limited, str) else {}
            return self._error(429, "Too Many Requests", headers)
        path = unquote(parts.path)
        if path == "/hojin/v2/hojin":
            return self.send_json(200, _envelope(self.fake.search(query)))
        prefix = "/hojin/v2/hojin/"
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            info = self.fake.companies.get(path[len(prefix):])
            if info is None:
                return self._error(404, "Not Found")
            return self.send_json(200, _envelope([info]))
        return self._error(404, "Not Found")


FakeGbizinfoServer.handler_class = _Handler
