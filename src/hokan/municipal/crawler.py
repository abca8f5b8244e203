"""The Playwright crawler (document 003 §12; issue 10 §3): when variables are still missing
after the search results, open the official page in Chromium, score its links for relevance,
follow the best ones, stay on the official site.

    result = crawl("https://www.vill.otoineppu.hokkaido.jp/kurashi/",
                   descriptions=["国民健康保険の担当課の電話番号", "受付時間"],
                   options=CrawlerOptions.from_settings())
    result.pages      # [CrawledPage(url, html, text, score, via)] in visit order (the start page first)
    result.documents  # PDF links seen on the official site (for core.documents), not opened
    result.refused    # [(url, reason)] navigations and sub-requests the guard refused

§12.2 flow: (1) called by the flow when variables are missing; (2) open the page; (3) score
its links — an LLM scorer when one is given (``llm_link_scorer``), else offline keyword
scoring against the variable descriptions (``keyword_scores``); (4) follow the best; (5) the
flow runs the extractor on each page returned; (6) at most ``max_pages`` pages in all (the
start page included). §12.3 options: ``max_pages`` 3, ``max_links_per_page`` 5 (links
evaluated per page: the keyword pre-ranking picks them, the LLM rescores only those),
``timeout_s`` 30 (page load), ``headed`` (debugging), ``official_url`` (the official domain).

Security — every request Chromium would make passes the SSRF guard:

- ``context.route("**/*")`` intercepts every navigation and sub-request (scripts, XHR/fetch,
  images, frames). The handler does not let Chromium connect: it fetches the request itself
  and fulfils it, or aborts it and records why — a page (top-level navigation) through the
  core.web fetcher (``LiveFetcher``: robots.txt, politeness delay per host, charset, each
  redirect hop checked), a sub-request through ``hokan.core.web.http.guarded_client`` (the
  address check at connect time, so DNS rebinding cannot pass; size cap; timeouts).
  A navigation off the official site is aborted before any lookup; a sub-request to another
  public host is allowed (CDNs) when the guard admits it.
- Defence in depth: Chromium starts with ``--host-resolver-rules=MAP * ~NOTFOUND`` and a
  dead proxy, so anything the route could miss (WebSockets, prefetch, a service worker —
  also blocked with ``service_workers="block"``) cannot reach a network by itself; WebSockets
  are refused by ``route_web_socket``.
- ``allow_hosts`` (default ``HOKAN_FETCH_ALLOW_HOSTS``) as everywhere in core.web: the tests
  put 127.0.0.1 there; nothing else private is reachable.
- Offline: with a ``hokan.core.web.snapshot.SnapshotFetcher`` as ``fetcher`` (the demo, offline
  runs) nothing goes to a network: pages and sub-requests are answered from the snapshot, a
  request it does not hold is refused (recorded), and no address is looked up.

Chromium: Debian's ``/usr/bin/chromium`` (``CRAWLER_CHROMIUM_PATH``; ``playwright install``
is not used). Errors: ``CrawlError`` (municipal.crawler) when Chromium cannot start or the
start page cannot be opened; a link that fails to load is skipped and recorded.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from hokan.core.errors import FetchBlocked, FetchError, FetchTooLarge, HokanError, RobotsDisallowed
from hokan.core.search.snapshot import tokenize
from hokan.core.web.fetch import Fetcher, LiveFetcher, Page, fetcher_from_settings
from hokan.core.web.http import MAX_REDIRECTS, guarded_client
from hokan.core.web.ssrf import check_url

__all__ = ["CrawlError", "CrawlResult", "CrawledPage", "CrawlerOptions", "Link", "crawl", "keyword_scores",
           "llm_link_scorer", "official_site"]

log = logging.getLogger(__name__)

_DOCUMENT_SUFFIXES = (".pdf", ".xlsx", ".xls", ".docx", ".doc", ".png", ".jpg", ".jpeg", ".gif", ".webp")
_SKIP_SUFFIXES = (".zip", ".mp4", ".mp3", ".csv", ".ics", ".css", ".js")
# Headers Chromium must not get from our fetch as they were sent: httpx decodes the body.
_DROP_RESPONSE_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}
_DROP_REQUEST_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


class CrawlError(HokanError):
    """The crawl could not start: Chromium missing or failing, or the start page refused or
    unreachable. url: the start URL; the message (Japanese) says why."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass(frozen=True)
class Link:
    """A link as rendered (after JavaScript): absolute url (no fragment) and its visible text."""

    url: str
    text: str


@dataclass(frozen=True)
class CrawledPage:
    """A visited page. html: the DOM after JavaScript (``page.content()``); text: the visible
    text (``inner_text("body")``); score: the relevance of the link followed to it (None for
    the start page); via: the page it was linked from ("" for the start page)."""

    url: str
    html: str
    text: str
    score: float | None = None
    via: str = ""

    def as_page(self) -> Page:
        """The page as ``hokan.core.web.fetch.Page`` (what the fetch flow's extraction reads:
        ``text`` = the rendered HTML, UTF-8), so crawled pages go through the same steps."""
        return Page(url=self.url, final_url=self.url, status_code=200, content_type="text/html; charset=utf-8",
                    content=self.html.encode("utf-8"), text=self.html, encoding="utf-8",
                    fetched_at=datetime.now(UTC), from_snapshot=False)


@dataclass
class CrawlResult:
    pages: list[CrawledPage] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CrawlerOptions:
    """§12.3. max_pages: pages visited in all, start included; max_links_per_page: links
    evaluated (scored) per page; timeout_s: page load and each request (s); headed: show the
    browser; official_url: the official site (default: the start URL's); chromium_path."""

    max_pages: int = 3
    max_links_per_page: int = 5
    timeout_s: float = 30.0
    headed: bool = False
    official_url: str | None = None
    chromium_path: str = "/usr/bin/chromium"
    max_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_settings(cls, **overrides: Any) -> CrawlerOptions:
        from django.conf import settings

        values: dict[str, Any] = dict(max_pages=settings.CRAWLER_MAX_PAGES,
                                      max_links_per_page=settings.CRAWLER_MAX_LINKS_PER_PAGE,
                                      timeout_s=settings.CRAWLER_TIMEOUT_S, chromium_path=settings.CRAWLER_CHROMIUM_PATH)
        values.update(overrides)
        return cls(**values)


def official_site(url: str) -> str:
    """The host that counts as the official site: the URL's host without a leading "www."
    (its subdomains count too: ``www.``, ``kosodate.``)."""
    host = (urlsplit(url).hostname or "").lower().strip(".")
    return host[4:] if host.startswith("www.") and host.count(".") >= 2 else host


def on_site(url: str, site: str) -> bool:
    host = (urlsplit(url).hostname or "").lower().strip(".")
    return host == site or host.endswith("." + site)


LinkScorer = Callable[[Sequence[Link], Sequence[str]], Sequence[float]]


def keyword_scores(links: Sequence[Link], descriptions: Sequence[str]) -> list[float]:
    """Offline relevance of each link to the variable descriptions: the share of the link
    text's tokens (``core.search.snapshot.tokenize``: bigrams of Japanese, Latin words; URL
    path words count at half weight) found in the descriptions, times a small bonus for the
    number of shared tokens. 0.0 = nothing in common. In [0, 2)."""
    wanted = set(tokenize(" ".join(descriptions)))
    scores = []
    for link in links:
        text_tokens = set(tokenize(link.text))
        path_tokens = set(tokenize(urlsplit(link.url).path.replace("/", " ").replace("_", " ").replace("-", " ")))
        shared = len(text_tokens & wanted) + 0.5 * len(path_tokens & wanted - text_tokens)
        size = max(1, len(text_tokens)) + 0.5 * len(path_tokens)
        scores.append(0.0 if shared == 0 else (shared / size) * (1 + min(shared, 10) / 10))
    return scores


_LLM_SCHEMA = {
    "type": "object",
    "properties": {"scores": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}}},
    "required": ["scores"],
}


def llm_link_scorer(client: Any, *, idempotency_prefix: str = "") -> LinkScorer:
    """A ``LinkScorer`` asking an LLM (a ``hokan.core.llm`` client, e.g. a ``BudgetedClient`` on
    the municipal scope) for a relevance 0–1 per link (§12.2 step 3). Only link texts, URLs and
    the variable descriptions are sent (public page content, nothing personal). A malformed
    answer (wrong length, not numbers) falls back to the keyword scores."""
    from hokan.core.llm.client import JsonRequest

    def score(links: Sequence[Link], descriptions: Sequence[str]) -> list[float]:
        listing = "\n".join(f"{i + 1}. {link.text or '(テキストなし)'} — {link.url}" for i, link in enumerate(links))
        wanted = "\n".join(f"- {d}" for d in descriptions)
        request = JsonRequest(
            system="あなたは日本の自治体公式サイトを案内するアシスタントです。",
            user=(f"次の情報が載っていそうなリンクを評価してください。\n【探している情報】\n{wanted}\n\n"
                  f"【リンク】\n{listing}\n\n各リンクの関連度を 0〜1 の数値で、リンクの順に scores に入れてください。"),
            schema=_LLM_SCHEMA, schema_name="crawler_link_scores", max_output_tokens=256,
            idempotency_key=f"{idempotency_prefix}:{json.dumps([link.url for link in links])}" if idempotency_prefix else "",
        )
        data = client.complete_json(request).data
        values = data.get("scores") if isinstance(data, dict) else None
        if (isinstance(values, list) and len(values) == len(links)
                and all(isinstance(v, int | float) and 0 <= v <= 1 for v in values)):
            return [float(v) for v in values]
        log.warning("LLM link scores unusable (%r); keyword scores used", values)
        return keyword_scores(links, descriptions)

    return score


class _Guard:
    """The route handler: fetch every request through the guarded client, or refuse it."""

    def __init__(self, site: str, options: CrawlerOptions, allow_hosts: Sequence[str] | None,
                 result: CrawlResult, fetcher: Fetcher | None) -> None:
        from django.conf import settings

        self.site = site
        self.allow_hosts = tuple(settings.HOKAN_FETCH_ALLOW_HOSTS if allow_hosts is None else allow_hosts)
        self.result = result
        self.http = guarded_client(timeout_s=options.timeout_s, max_bytes=options.max_bytes,
                                   allow_hosts=self.allow_hosts, follow_redirects=False)
        self.own_fetcher = fetcher is None
        if fetcher is None:
            fetcher = fetcher_from_settings() if allow_hosts is None else LiveFetcher(
                timeout_s=options.timeout_s, max_bytes=options.max_bytes,
                max_redirects=settings.HOKAN_FETCH_MAX_REDIRECTS, delay_s=settings.HOKAN_FETCH_DELAY_S,
                user_agent=settings.HOKAN_FETCH_USER_AGENT, respect_robots=settings.HOKAN_FETCH_RESPECT_ROBOTS,
                allow_hosts=self.allow_hosts)
        self.fetcher = fetcher
        from hokan.core.web.snapshot import SnapshotFetcher

        self.offline = isinstance(fetcher, SnapshotFetcher)

    def offline_request(self, route: Any, url: str) -> None:
        """A sub-request of an offline crawl: answered from the snapshot, or refused."""
        try:
            page = self.fetcher.fetch(url)
        except FetchError:
            self.refuse(route, url, "オフライン（スナップショット）にないため取得しません")
            return
        route.fulfill(status=200, content_type=page.content_type or "application/octet-stream", body=page.content)

    def navigate(self, route: Any, url: str) -> None:
        """A top-level page: fetched by the core.web fetcher (robots.txt, politeness, charset,
        every redirect hop checked); a redirect that leaves the official site is refused."""
        try:
            page = self.fetcher.fetch(url)
        except (FetchBlocked, RobotsDisallowed) as exc:
            self.refuse(route, exc.url or url, str(exc))
            return
        except FetchError as exc:
            self.result.failed.append((url, str(exc)))
            route.abort("failed")
            return
        if not on_site(page.final_url, self.site):
            self.refuse(route, page.final_url, f"公式サイト（{self.site}）の外へのリダイレクトです（{url} から）")
            return
        route.fulfill(status=200, content_type=page.content_type or "text/html", body=page.content)

    def refuse(self, route: Any, url: str, reason: str) -> None:
        self.result.refused.append((url, reason))
        route.abort("blockedbyclient")

    def __call__(self, route: Any) -> None:
        try:
            self._handle(route)
        except Exception as exc:  # a route left unanswered would hold the page until its timeout
            log.warning("crawler: request %s failed in the route handler: %r", route.request.url, exc)
            self.result.failed.append((route.request.url, f"{exc.__class__.__name__}: {exc}"))
            try:
                route.abort("failed")
            except Exception:  # already answered, or the page is gone
                pass

    def _handle(self, route: Any) -> None:
        request = route.request
        url = request.url
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("data", "blob", "about"):
            route.continue_()
            return
        navigation = request.is_navigation_request() and request.frame.parent_frame is None
        if navigation and not on_site(url, self.site):
            self.refuse(route, url, f"公式サイト（{self.site}）の外への移動です")
            return
        if navigation and request.method == "GET":
            self.navigate(route, url)
            return
        if self.offline:
            self.offline_request(route, url)
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST_HEADERS}
        method, content, target = request.method, request.post_data_buffer, url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                check_url(target, allow_hosts=self.allow_hosts)
                response = self.http.request(method, target, headers=headers, content=content)
                location = response.headers.get("location")
                if not (response.is_redirect and location):
                    break
                # Redirects are followed here, each hop checked (Chromium does not follow a
                # fulfilled redirect through the route); the page keeps the URL it asked for.
                target = urljoin(target, location)
                if navigation and not on_site(target, self.site):
                    self.refuse(route, target, f"公式サイト（{self.site}）の外へのリダイレクトです（{url} から）")
                    return
                if response.status_code in (301, 302, 303):
                    method, content = "GET", None
        except FetchBlocked as exc:
            self.refuse(route, target, str(exc))
            return
        except (FetchTooLarge, httpx.HTTPError) as exc:
            self.result.failed.append((url, f"{exc.__class__.__name__}: {exc}"))
            route.abort("failed")
            return
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROP_RESPONSE_HEADERS}
        route.fulfill(status=response.status_code, headers=headers, body=response.content)

    def close(self) -> None:
        self.http.close()
        if self.own_fetcher:
            self.fetcher.close()


_LINKS_JS = """els => els.map(e => [e.href, (e.innerText || e.getAttribute('title') || e.getAttribute('aria-label') || '').trim()])"""


def _links_of(page: Any) -> list[Link]:
    raw = page.eval_on_selector_all("a[href]", _LINKS_JS)
    links, seen = [], set()
    for href, text in raw:
        url, _ = urldefrag(str(href))
        if urlsplit(url).scheme.lower() in ("http", "https") and url not in seen:
            seen.add(url)
            links.append(Link(url=url, text=" ".join(str(text).split())[:200]))
    return links


def crawl(
    start_url: str,
    *,
    descriptions: Sequence[str],
    options: CrawlerOptions | None = None,
    scorer: LinkScorer | None = None,
    allow_hosts: Sequence[str] | None = None,
    fetcher: Fetcher | None = None,
) -> CrawlResult:
    """Open ``start_url`` in headless Chromium and follow its most relevant links (module
    docstring). descriptions: the Japanese descriptions (and names) of the variables still
    missing; scorer: a ``LinkScorer`` (e.g. ``llm_link_scorer``), default ``keyword_scores``;
    allow_hosts: hosts exempt from the address check (default HOKAN_FETCH_ALLOW_HOSTS); fetcher:
    what fetches the pages themselves (default ``fetcher_from_settings()``: the LiveFetcher, or
    the snapshot with HOKAN_SNAPSHOT_DIR; with ``allow_hosts`` a LiveFetcher using them).

    Returns the visited pages (start first), PDF/document links seen on the site, refused
    and failed requests. Links scoring 0 are never followed.

    Raises:
        CrawlError: Chromium cannot start, the start URL is off its own official site or
            refused by the guard, or the start page does not load.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    options = options or CrawlerOptions()
    site = official_site(options.official_url or start_url)
    if not on_site(start_url, site):
        raise CrawlError(f"開始ページ {start_url} は公式サイト（{site}）ではありません", url=start_url)
    result = CrawlResult()
    guard = _Guard(site, options, allow_hosts, result, fetcher)
    try:
        if not guard.offline:  # offline (a snapshot): no address is looked up, nothing leaves
            check_url(start_url, allow_hosts=guard.allow_hosts)
    except FetchBlocked as exc:
        guard.close()
        raise CrawlError(f"開始ページを開けません: {exc}", url=start_url) from exc
    score_links = scorer or keyword_scores
    timeout_ms = options.timeout_s * 1000
    try:
        with sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(
                    executable_path=options.chromium_path, headless=not options.headed,
                    args=["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                          "--proxy-bypass-list=<-loopback>", "--disable-background-networking",
                          "--no-pings", "--dns-prefetch-disable"],
                )
            except PlaywrightError as exc:
                raise CrawlError(f"Chromium を起動できません（{options.chromium_path}）: {exc.message}",
                                 url=start_url) from exc
            try:
                context = browser.new_context(service_workers="block", java_script_enabled=True,
                                              accept_downloads=False, locale="ja-JP")
                context.route("**/*", guard)
                context.route_web_socket("**/*", lambda ws: result.refused.append((ws.url, "WebSocket は使いません")))
                context.set_default_timeout(timeout_ms)
                _walk(context, start_url, descriptions, options, site, score_links, result)
            finally:
                browser.close()
    finally:
        guard.close()
    return result


def _walk(context: Any, start_url: str, descriptions: Sequence[str], options: CrawlerOptions, site: str,
          score_links: LinkScorer, result: CrawlResult) -> None:
    from playwright.sync_api import Error as PlaywrightError

    frontier: list[tuple[float, int, str, str]] = []  # (-score, order, url, via)
    queued = {urldefrag(start_url)[0]}
    order = 0
    page = context.new_page()
    current: tuple[str, float | None, str] | None = (start_url, None, "")
    while current is not None and len(result.pages) < options.max_pages:
        url, score, via = current
        try:
            response = page.goto(url, wait_until="load", timeout=options.timeout_s * 1000)
            if response is None or response.status >= 400:
                raise PlaywrightError(f"HTTP {response.status if response else '—'}")
            try:
                page.wait_for_load_state("networkidle", timeout=min(5000, options.timeout_s * 1000))
            except PlaywrightError:
                pass  # a page that keeps polling: take it as it is
            html = page.content()
            text = page.inner_text("body")
        except PlaywrightError as exc:
            reason = next((r for u, r in result.refused if u == url), "") or str(exc).splitlines()[0]
            if via == "":
                raise CrawlError(f"開始ページ {url} を開けません: {reason}", url=url) from exc
            result.failed.append((url, reason))
            current = _next(frontier)
            continue
        result.pages.append(CrawledPage(url=url, html=html, text=text, score=score, via=via))
        candidates = []
        for link in _links_of(page):
            if not on_site(link.url, site) or link.url in queued:
                continue
            path = urlsplit(link.url).path.lower()
            if path.endswith(_DOCUMENT_SUFFIXES):
                if link.url not in result.documents:
                    result.documents.append(link.url)
                continue
            if path.endswith(_SKIP_SUFFIXES):
                continue
            candidates.append(link)
        if candidates and len(result.pages) < options.max_pages:
            pre = keyword_scores(candidates, descriptions)
            best = sorted(range(len(candidates)), key=lambda i: -pre[i])[: options.max_links_per_page]
            chosen = [candidates[i] for i in best if pre[i] > 0] if score_links is keyword_scores else \
                [candidates[i] for i in best]
            scores = score_links(chosen, descriptions) if chosen else []
            for link, value in zip(chosen, scores):
                if value > 0:
                    order += 1
                    queued.add(link.url)
                    heapq.heappush(frontier, (-float(value), order, link.url, url))
        current = _next(frontier)
    # No page.close(): it can wait forever for a route handler Playwright still counts as
    # pending (seen after a refused navigation); browser.close() in crawl() ends everything.


def _next(frontier: list[tuple[float, int, str, str]]) -> tuple[str, float | None, str] | None:
    if not frontier:
        return None
    negative, _, url, via = heapq.heappop(frontier)
    return url, -negative, via
