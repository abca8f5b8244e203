"""A fake Brave Web Search API on 127.0.0.1 (``GET /res/v1/web/search``), real wire format.

Auth: header ``X-Subscription-Token`` must equal ``api_key``, else 422 with Brave's error
body (code SUBSCRIPTION_TOKEN_INVALID). Query parameters ``q`` (``site:host`` operator
honoured), ``count``, ``country``, ``search_lang``, ``ui_lang`` are recorded; the answer is
``{"type": "search", "query": {"original": q}, "web": {"type": "search", "results": [{"title",
"url", "description", "type": "search_result", "language"}]}}`` with ``<strong>`` around the
first query word in descriptions, as Brave highlights. With 0 results Brave omits ``web``.
Faults and recording: tests/fakes/search_common.py.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.search_common import FakeSearchServer, SearchHandler

_SITE = re.compile(r"site:(\S+)")


class FakeBraveServer(FakeSearchServer):
    thread_name = "fake-brave"


class _Handler(SearchHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.handle_search(None)

    def auth_ok(self, query: dict[str, list[str]]) -> bool:
        return self.headers.get("X-Subscription-Token") == self.fake.api_key

    def auth_error(self) -> tuple[int, Any]:
        return 422, {"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "status": 422,
                                                        "detail": "The provided subscription token is invalid."}}

    def error_body(self, status: int) -> Any:
        code = "RATE_LIMITED" if status == 429 else "SERVER_ERROR"
        return {"type": "ErrorResponse", "error": {"code": code, "status": status, "detail": "fake"}}

    def answer(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path != "/res/v1/web/search":
            return 404, {"type": "ErrorResponse", "error": {"code": "NOT_FOUND", "status": 404}}
        q = (query.get("q") or [""])[0]
        site = _SITE.search(q)
        count = int((query.get("count") or ["20"])[0])
        found = self.fake.matching(q, site.group(1).lower() if site else None, count)
        payload: dict[str, Any] = {"type": "search", "query": {"original": q}}
        if found:
            first = next((w for w in q.split() if not w.startswith("site:")), "")
            payload["web"] = {"type": "search", "family_friendly": True, "results": [
                {"title": title, "url": url, "type": "search_result", "language": "ja",
                 "description": snippet.replace(first, f"<strong>{first}</strong>", 1) if first else snippet}
                for url, title, snippet in found
            ]}
        return 200, payload


FakeBraveServer.handler_class = _Handler
