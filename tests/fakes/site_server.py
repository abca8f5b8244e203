"""A fake website on 127.0.0.1: pages a test puts at paths, served over real HTTP.

For code that fetches third-party pages through ``hokan.core.web.LiveFetcher`` (pages an LLM
cited, company sites)::

    with FakeSite() as site:
        site.put("/company/", "<html>…資本金 5,000万円…</html>")
        fetcher = LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0)
        page = fetcher.fetch(site.url("/company/"))

GET of a path put there answers 200 with the page (``text/html; charset=utf-8``); every other
path (``/robots.txt`` included, so everything is allowed) answers 404. ``requests`` records
each request (method, path, query, headers) in arrival order.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import JSONHandler, LocalHTTPServer, RecordedHTTPRequest


class FakeSite(LocalHTTPServer):
    thread_name = "fake-site"

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, tuple[bytes, str]] = {}

    def put(self, path: str, html: str, *, content_type: str = "text/html; charset=utf-8") -> str:
        """Serve ``html`` at ``path``; returns its full URL."""
        self.pages[path] = (html.encode("utf-8"), content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.root_url}{path}"

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [r.path for r in self.requests]


class _Handler(JSONHandler):
    fake: FakeSite

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        self.fake.record(RecordedHTTPRequest(method="GET", path=parts.path, query=parse_qs(parts.query),
                                             headers=self.header_dict()))
        page = self.fake.pages.get(parts.path)
        if page is None:
            return self.send_bytes(404, b"not found", "text/plain")
        self.send_bytes(200, page[0], page[1])


FakeSite.handler_class = _Handler
