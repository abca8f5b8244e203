"""The search interface (``SearchProvider``, ``SearchResult``) and the HTTP machinery the API
providers share: one guarded client, the shared rate limiter, Retry-After, the quota claim.

Document 003 §5.1 (検索API, デュアルプロバイダー対応); issue 10 §2 step 2.

Every HTTP provider (Brave, Perplexity Search, Google CSE) sends each request like this:

0. The answer cache (``hokan.core.cache``, scope "search_<name>", SEARCH_CACHE_TTL_S): the same
   query, site and count asked again within the TTL is answered from it — nothing claimed,
   nothing sent, nothing paid (a resumed or repeated run pays each search once).
1. ``quota.begin(provider, key)``: a claim on the provider's ledger scope (``search_<name>``,
   ``hokan.core.budget``), atomic, before anything is sent. ``BudgetExceeded`` when the month's
   (or, in free-tier mode, the day's) quota is used up — nothing is sent.
2. ``Limiter("search:<name>")`` (``hokan.core.ratelimit``, shared by every process): waits
   for a rate slot and for a Retry-After block another caller reported, at most
   ``max_wait_s``; longer → ``SearchUnavailable`` with ``retry_after_s``, nothing sent.
3. The request through ``hokan.core.web.http.guarded_client`` (SSRF guard, size cap, timeouts).
4. 429 → the Retry-After (``parse_retry_after``) blocks the key for every caller, the claim is
   released (unbilled), and the request is tried again once the block ends when that is
   within ``max_wait_s`` (at most ``max_retries`` more times); 5xx likewise (no block);
   401/403 → ``SearchRequestError``; a timeout, a connection error or a body that is not the
   expected JSON → ``SearchUnavailable``. A 200 commits the claim at the provider's price.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from hokan.core.errors import FetchBlocked, FetchTooLarge, RateLimited, SearchRequestError, SearchUnavailable
from hokan.core.ratelimit import Limiter, Outcome, Rate
from hokan.core.web.http import guarded_client, parse_retry_after

__all__ = ["HttpSearchProvider", "SearchProvider", "SearchResult", "clean_snippet", "split_site_operator"]

_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")
_SITE_OPERATOR = re.compile(r"(?:^|\s)site:(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    """What a search asks (the cache key of its answer): query without ``site:``, site host or
    "", count after the provider's cap."""

    query: str
    site: str
    count: int


@dataclass(frozen=True)
class SearchResult:
    """One search hit. url: absolute http(s) URL; title / snippet: plain text (HTML tags and
    entities removed); provider: the provider's name ("brave", "perplexity", "google",
    "snapshot"); rank: 1-based position in that provider's answer."""

    url: str
    title: str
    snippet: str
    provider: str
    rank: int


def clean_snippet(text: Any) -> str:
    """Plain text of a title/snippet as providers send it (``<strong>`` highlights, entities)."""
    if not isinstance(text, str):
        return ""
    return _WS.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def split_site_operator(query: str, site: str | None) -> tuple[str, str | None]:
    """(query without ``site:`` operators, the site): an explicit ``site`` wins over the
    operator in the query. ``site`` is a host name ("www.city.example.lg.jp"), scheme and path
    removed when given as a URL."""
    found = _SITE_OPERATOR.search(query)
    stripped = _WS.sub(" ", _SITE_OPERATOR.sub(" ", query)).strip()
    chosen = site or (found.group(1) if found else None)
    return stripped, normalize_site(chosen)


def normalize_site(site: str | None) -> str | None:
    """A host name from "https://www.x.lg.jp/path" / "www.x.lg.jp" / "x.lg.jp/" (lower case)."""
    if not site:
        return None
    text = site.strip()
    host = urlsplit(text).hostname if "://" in text else text.split("/", 1)[0]
    return (host or "").strip(".").lower() or None


def host_matches(url: str, site: str) -> bool:
    """True when ``url``'s host is ``site`` or a subdomain of it."""
    host = (urlsplit(url).hostname or "").lower()
    return host == site or host.endswith("." + site)


def valid_result_url(url: Any) -> str | None:
    """``url`` when it is an absolute http(s) URL with a host, else None (dropped)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url.strip()


class SearchProvider(ABC):
    """A web search: ``search(query, site=None, count=10) -> list[SearchResult]``.

    query: the words to look for (a ``site:host`` operator in it is honoured like ``site``);
    site: restrict to this host and its subdomains (the municipality's official domain);
    count: at most this many results (each provider caps it: Brave 20, Perplexity 20, Google 10).
    Returns results best first (possibly empty: "0件" makes the chain try the next provider).

    Raises:
        SearchConfigError: the provider cannot be used (key missing, Google past 2027-01-01).
        SearchUnavailable: 429 / 5xx / timeout / unreadable answer (a TransientError).
        SearchRequestError: the provider refused the request (401/403/4xx).
        BudgetExceeded: the provider's quota (ledger) is used up; nothing was sent.
    """

    name: str = ""

    @abstractmethod
    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]: ...

    def close(self) -> None:
        """Release connections (HTTP providers); nothing for the others."""

    def __enter__(self) -> SearchProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpSearchProvider(SearchProvider):
    """Shared machinery of the API providers (module docstring). Subclasses set ``name``,
    ``label`` (Japanese name for messages), ``max_count`` and implement ``_request`` (send one
    request with the client, return the response) and ``_parse`` (JSON → results).

    base_url: the API's origin (tests: a fake on 127.0.0.1); timeout_s: per connect/read;
    max_wait_s: the longest wait for the shared limiter (a Retry-After block) before giving
    up with SearchUnavailable; max_retries: extra tries after a 429 / 5xx; rate_per_min: the
    shared pace for all processes (0 = none); cache: a ``hokan.core.cache`` backend (``get_cache``)
    or None: an identical search (query, site, count) within its TTL is answered from it, sending
    and paying nothing — a resumed job does not pay its searches twice; quota: ``hokan.core.search.quota.SearchQuota``
    or None (no ledger: only for tests of parsing); cost_usd_per_call: committed per answered
    request (USD, Decimal); limiter / allow_hosts / sleep: injectable for tests.
    """

    label = ""
    max_count = 10

    def __init__(
        self,
        *,
        base_url: str,
        cache: Any = None,
        timeout_s: float = 15.0,
        max_wait_s: float = 30.0,
        max_retries: int = 2,
        rate_per_min: int = 60,
        quota: Any = None,
        limiter: Limiter | None = None,
        allow_hosts: Sequence[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_wait_s = max_wait_s
        self.max_retries = max_retries
        self.quota = quota
        self.cache = cache
        self.limiter = limiter or Limiter(
            f"search:{self.name}", rate=Rate.per_minute(rate_per_min) if rate_per_min > 0 else None
        )
        self._http = guarded_client(
            timeout_s=timeout_s, base_url=self.base_url, allow_hosts=allow_hosts,
            headers={"Accept": "application/json", **(headers or {})},
        )

    def close(self) -> None:
        self._http.close()

    # --- subclass hooks -----------------------------------------------------------------
    @abstractmethod
    def _request(self, http: httpx.Client, query: str, site: str | None, count: int) -> httpx.Response: ...

    @abstractmethod
    def _parse(self, data: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
        """(url, title, snippet) triples in the provider's order, unvalidated."""

    def _auth_refused(self, response: httpx.Response) -> bool:
        """Whether a non-200 answer means "the key was refused" (401/403; providers add theirs)."""
        return response.status_code in (401, 403)

    def _transient_status(self, response: httpx.Response) -> bool:
        """Whether a non-200 answer means "busy, try later" (429, 5xx; Google adds 403 quota)."""
        return response.status_code == 429 or response.status_code >= 500

    # --- the request loop ----------------------------------------------------------------
    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]:
        """See ``SearchProvider.search`` (and the module docstring for retries and the ledger)."""
        query, site = split_site_operator(query, site)
        if not query:
            raise ValueError("empty search query")
        count = max(1, min(int(count), self.max_count))
        key = self._cache_key(query, site, count)
        if key is not None:
            stored = self.cache.lookup(self.cache_scope, key)
            if stored is not None:  # (the lookup counted the hit)
                return [SearchResult(**row) for row in stored.data.get("results", [])]
        attempt = 0
        while True:
            response = self._send_once(query, site, count, attempt)
            if response is not None:
                results = self._results(response, site, count)
                if key is not None:
                    self._store(key, results)
                return results
            attempt += 1

    # --- the answer cache (hokan.core.cache: one cache for every paid answer) --------------------
    @property
    def cache_scope(self) -> str:
        """The cache scope of this provider's answers: "search_<name>" (its ledger scope's name)."""
        return f"search_{self.name}"

    def _cache_key(self, query: str, site: str | None, count: int) -> str | None:
        if self.cache is None:
            return None
        from hokan.core.cache import cache_key

        return cache_key(self.name, "web-search", SearchQuery(query=query, site=site or "", count=count))

    def _store(self, key: str, results: list[SearchResult]) -> None:
        from hokan.core.llm.client import Completion, Usage

        answer = Completion(data={"results": [dataclasses.asdict(r) for r in results]}, usage=Usage(calls=1),
                            provider=self.name, model="web-search")
        self.cache.put(self.cache_scope, key, answer)

    def _send_once(self, query: str, site: str | None, count: int, attempt: int) -> httpx.Response | None:
        """One request: the response of a 200, None when it should be tried again."""
        claim = self.quota.begin(self.name, f"search:{self.name}:{uuid.uuid4().hex}") if self.quota else None
        charged = False
        try:
            try:
                permit = self.limiter.acquire(max_wait_s=self.max_wait_s)
            except RateLimited as exc:
                raise SearchUnavailable(
                    f"{self.label} の利用制限中です（{exc.retry_after_s:.0f} 秒待ちが必要で、待てる上限 "
                    f"{self.max_wait_s:.0f} 秒を超えます）",
                    provider=self.name, retry_after_s=exc.retry_after_s,
                ) from exc
            try:
                response = self._request(self._http, query, site, count)
            except httpx.TimeoutException as exc:
                permit.report(Outcome.TIMEOUT)
                raise SearchUnavailable(f"{self.label} がタイムアウトしました（{self.timeout_s:.0f} 秒）",
                                        provider=self.name) from exc
            except FetchBlocked as exc:
                # Not the guard's message: it names the URL, and Google's carries the API key.
                permit.report(Outcome.ERROR)
                raise SearchUnavailable(f"{self.label} への接続を SSRF ガードが拒否しました（{exc.reason}）",
                                        provider=self.name) from exc
            except FetchTooLarge as exc:
                permit.report(Outcome.ERROR)
                raise SearchUnavailable(f"{self.label} の応答が大きすぎます（上限 {exc.limit_bytes:,} バイト）",
                                        provider=self.name) from exc
            except httpx.TransportError as exc:
                permit.report(Outcome.ERROR)
                raise SearchUnavailable(f"{self.label} に接続できません ({exc.__class__.__name__})",
                                        provider=self.name) from exc
            status = response.status_code
            if status == 200:
                permit.report(Outcome.SUCCESS)
                charged = True
                return response
            if self._transient_status(response):
                retry_after = parse_retry_after(response.headers)
                limited = status != 503 and status < 500
                permit.report(Outcome.RATE_LIMITED if limited else Outcome.ERROR, retry_after_s=retry_after)
                what = "利用制限に達しました" if limited else "サーバーエラーです"
                if attempt < self.max_retries and (retry_after or 0.0) <= self.max_wait_s:
                    if not limited and retry_after:
                        time.sleep(retry_after)  # a 503's Retry-After: no shared block for it
                    return None
                raise SearchUnavailable(
                    f"{self.label} が{what}（HTTP {status}）"
                    + (f"。{retry_after:.0f} 秒後に再試行できます" if retry_after is not None else ""),
                    provider=self.name, retry_after_s=retry_after, status_code=status,
                )
            permit.report(Outcome.ERROR)
            if self._auth_refused(response):
                raise SearchRequestError(
                    f"{self.label} が API キーを拒否しました（HTTP {status}）。キーの設定を確認してください",
                    provider=self.name, status_code=status,
                )
            raise SearchRequestError(f"{self.label} がリクエストを拒否しました（HTTP {status}）",
                                     provider=self.name, status_code=status)
        finally:
            if claim is not None:
                claim.commit() if charged else claim.release()

    def _results(self, response: httpx.Response, site: str | None, count: int) -> list[SearchResult]:
        try:
            data = response.json()
        except ValueError as exc:
            raise SearchUnavailable(f"{self.label} の応答が JSON ではありません", provider=self.name,
                                    status_code=response.status_code) from exc
        if not isinstance(data, dict):
            raise SearchUnavailable(f"{self.label} の応答の形式が想定外です", provider=self.name,
                                    status_code=response.status_code)
        try:
            triples = self._parse(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise SearchUnavailable(f"{self.label} の応答の形式が想定外です ({exc.__class__.__name__})",
                                    provider=self.name, status_code=response.status_code) from exc
        results: list[SearchResult] = []
        seen: set[str] = set()
        for raw_url, title, snippet in triples:
            url = valid_result_url(raw_url)
            if url is None or url in seen or (site and not host_matches(url, site)):
                continue
            seen.add(url)
            results.append(SearchResult(url=url, title=clean_snippet(title), snippet=clean_snippet(snippet),
                                        provider=self.name, rank=len(results) + 1))
            if len(results) >= count:
                break
        return results


