"""A fake Perplexity Search API on 127.0.0.1 (``POST /search``), real wire format.

Auth: ``Authorization: Bearer <api_key>``, else 401 with ``{"error": {"message", "type":
"invalid_api_key", "code": 401}}``. JSON body: ``query`` (required, else 400), ``max_results``
(1–20), ``search_domain_filter`` (list of hosts; results limited to them), ``country``,
``search_language_filter`` — all recorded. Answer: ``{"results": [{"title", "url", "snippet",
"date", "last_updated"}], "id": "..."}``. Faults and recording: tests/fakes/search_common.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.search_common import FakeSearchServer, SearchHandler


class FakePerplexitySearchServer(FakeSearchServer):
    thread_name = "fake-perplexity-search"


class _Handler(SearchHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.handle_search(self.read_json())

    def auth_ok(self, query: dict[str, list[str]]) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.fake.api_key}"

    def auth_error(self) -> tuple[int, Any]:
        return 401, {"error": {"message": "Invalid API key", "type": "invalid_api_key", "code": 401}}

    def error_body(self, status: int) -> Any:
        return {"error": {"message": "fake fault", "type": "rate_limit_exceeded" if status == 429 else "server_error",
                          "code": status}}

    def answer(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path != "/search":
            return 404, {"error": {"message": "Not found", "code": 404}}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str | list):
            return 400, {"error": {"message": "query is required", "type": "invalid_request", "code": 400}}
        domains = body.get("search_domain_filter") or []
        count = int(body.get("max_results") or 10)
        found = self.fake.matching(body["query"], domains[0].lower() if domains else None, count)
        return 200, {"id": str(uuid.uuid4()), "results": [
            {"title": title, "url": url, "snippet": snippet, "date": "2026-10-01", "last_updated": "2026-11-01"}
            for url, title, snippet in found
        ]}


FakePerplexitySearchServer.handler_class = _Handler
