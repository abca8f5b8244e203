"""A fake Google Custom Search JSON API on 127.0.0.1 (``GET /customsearch/v1``), real wire format.

Auth: query parameter ``key`` must equal ``api_key`` (else 400 with reason ``keyInvalid``,
"API key not valid. Please pass a valid API key.") and ``cx`` must equal ``engine_id`` (else
400 reason ``invalid``). Parameters ``q``, ``num`` (≤ 10), ``lr``, ``gl``, ``siteSearch`` /
``siteSearchFilter`` are recorded (``siteSearch`` limits the results). Answer:
``{"kind": "customsearch#search", "searchInformation": {"totalResults"}, "items": [{"kind":
"customsearch#result", "title", "link", "displayLink", "snippet"}]}``; 0 results → no
``items`` key, as Google answers. Scripted 429 / 403 faults carry Google's error body
(``{"error": {"code", "message", "errors": [{"reason"}], "status"}}``), e.g.
``fail_next(1, status=403, body=google_error(403, "dailyLimitExceeded"))``.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.search_common import FakeSearchServer, SearchHandler


def google_error(code: int, reason: str, message: str = "fake") -> dict[str, Any]:
    status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}.get(code, "INTERNAL")
    return {"error": {"code": code, "message": message, "errors": [{"message": message, "domain": "global",
                                                                    "reason": reason}], "status": status}}


class FakeGoogleCSEServer(FakeSearchServer):
    thread_name = "fake-google-cse"

    def __init__(self, *, api_key: str = "test-key", engine_id: str = "test-cx") -> None:
        super().__init__(api_key=api_key)
        self.engine_id = engine_id


class _Handler(SearchHandler):
    fake: FakeGoogleCSEServer

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.handle_search(None)

    def auth_ok(self, query: dict[str, list[str]]) -> bool:
        self._bad_cx = (query.get("cx") or [""])[0] != self.fake.engine_id
        return (query.get("key") or [""])[0] == self.fake.api_key and not self._bad_cx

    def auth_error(self) -> tuple[int, Any]:
        if getattr(self, "_bad_cx", False):
            return 400, google_error(400, "invalid", "Request contains an invalid argument.")
        return 400, google_error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")

    def error_body(self, status: int) -> Any:
        return google_error(status, "rateLimitExceeded" if status == 429 else "backendError")

    def answer(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path != "/customsearch/v1":
            return 404, google_error(404, "notFound")
        q = (query.get("q") or [""])[0]
        site = (query.get("siteSearch") or [None])[0]
        count = min(10, int((query.get("num") or ["10"])[0]))
        found = self.fake.matching(q, site.lower() if site else None, count)
        payload: dict[str, Any] = {"kind": "customsearch#search",
                                   "searchInformation": {"totalResults": str(len(found))}}
        if found:
            payload["items"] = [{"kind": "customsearch#result", "title": title, "link": url, "snippet": snippet,
                                 "displayLink": url.split("/")[2]} for url, title, snippet in found]
        return 200, payload


FakeGoogleCSEServer.handler_class = _Handler
