"""Fetching a URL: the ``Page`` record, the ``Fetcher`` protocol and the live fetcher.

Every web page hokan reads comes through a ``Fetcher``: ``LiveFetcher`` on the internet or
``SnapshotFetcher`` offline (API clients use ``http.guarded_client``, built on the same transport). ``LiveFetcher``
enforces, in this order, for the URL asked and for every redirect hop:

1. the SSRF guard (``ssrf.check_url``) before anything is sent;
2. robots.txt (RFC 9309), fetched through the same guarded client and cached per origin;
3. per-host politeness: at least ``delay_s`` seconds between the starts of two requests to
   the same host, across threads;
4. the request itself, through a network backend that resolves and checks the host again
   and connects only to an address that passed the check (no DNS rebinding);
5. timeouts, a cap on the body size, and 4xx/5xx as errors.

The transport is ``hokan.core.web.http.GuardedTransport``, the same one every guarded
client uses (see http.py for how the connection-time check is plugged into httpcore). It is
called directly (no ``httpx.Client``), see ``LiveFetcher.__init__``.
Rewriting URLs to IP literals with an ``sni_hostname`` extension was rejected: it breaks
connection-pool keying, relative redirects and the Host header in subtle ways.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from protego import Protego

from hokan.core.errors import (
    FetchError,
    FetchStatusError,
    FetchTimeout,
    RobotsDisallowed,
)
from hokan.core.web.charset import decode_html
from hokan.core.web.http import DEFAULT_USER_AGENT, GuardedTransport, current_url, too_large
from hokan.core.web.ssrf import Resolver, check_url

__all__ = ["Fetcher", "LiveFetcher", "Page", "fetcher_from_settings", "page_text"]


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# RFC 9309 §2.5: crawlers MUST parse at least 500 KiB of a robots.txt; we read that much and
# ignore the rest instead of failing.
ROBOTS_MAX_BYTES = 500 * 1024
# RFC 9309 §2.3.1.2: follow at least five consecutive redirects for robots.txt.
ROBOTS_MAX_REDIRECTS = 5
# RFC 9309 §2.4: a cached robots.txt SHOULD NOT be used for more than 24 hours.
ROBOTS_CACHE_S = 24 * 3600.0

_TEXT_TYPES = ("application/xhtml+xml", "application/xml", "application/json", "application/ld+json")


@dataclass(frozen=True)
class Page:
    """A fetched (or snapshot) page.

    url: the URL asked for; final_url: the URL after redirects (for snapshots: the URL as
    listed in snapshot.csv). content: the body as received (decompressed), at most
    ``max_bytes``. text/encoding: the decoded body and the Python codec used (see
    ``decode_html``); both "" for non-text types (PDF, images). fetched_at: aware UTC.
    """

    url: str
    final_url: str
    status_code: int
    content_type: str
    content: bytes
    text: str
    encoding: str
    fetched_at: datetime
    from_snapshot: bool


class Fetcher(Protocol):
    """Anything that turns a URL into a ``Page`` (``LiveFetcher``, ``SnapshotFetcher``, fakes).

    Raises ``FetchError`` subclasses only (see hokan.core.errors).
    """

    def fetch(self, url: str) -> Page: ...


def page_text(content: bytes, content_type: str) -> tuple[str, str]:
    """(text, encoding) of a body: decoded for text-like types (or no type), ("", "") otherwise."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if not mime or mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+xml", "+json")):
        return decode_html(content, content_type)
    return "", ""


# --- the live fetcher ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Response:
    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes


_UNREACHABLE = object()  # robots.txt answered 5xx/429: disallow everything (RFC 9309 §2.3.1.4)


class LiveFetcher:
    """Fetches pages from the internet, safely and politely. Thread-safe; reuse one instance.

    timeout_s: connect, read, write and pool timeout in seconds (each, not a total).
    max_bytes: cap on the (decompressed) body in bytes.
    max_redirects: redirects followed per fetch (each hop is checked like the first URL).
    delay_s: minimum seconds between the starts of two requests to the same host
        (robots.txt requests count).
    user_agent: sent as User-Agent and matched against robots.txt groups.
    respect_robots: check robots.txt before each request.
    allow_hosts: hosts (as written in URLs) exempt from the address check, e.g. "127.0.0.1"
        for tests. Scheme and userinfo rules still apply.
    resolver: ``(host, port) -> [address strings]``, default ``socket.getaddrinfo``.
    clock/sleep: monotonic seconds and a sleep function (injected by tests, never wall time).

    ``fetch`` raises FetchBlocked, RobotsDisallowed, FetchTimeout, FetchTooLarge,
    FetchStatusError (4xx/5xx), or FetchError (connection failed, too many redirects).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        max_bytes: int = 5 * 1024 * 1024,
        max_redirects: int = 5,
        delay_s: float = 1.0,
        user_agent: str = DEFAULT_USER_AGENT,
        respect_robots: bool = True,
        allow_hosts: Sequence[str] = (),
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.delay_s = delay_s
        self.user_agent = user_agent
        self.respect_robots = respect_robots
        self.allow_hosts = tuple(allow_hosts)
        self._resolver = resolver
        self._clock = clock
        self._sleep = sleep
        # The transport is used directly, without httpx.Client: the client parses every
        # Location header itself (and raises on spellings like http://0177.0.0.1/) before we
        # could check it, and we neither want its redirect, cookie nor proxy handling.
        self._transport = GuardedTransport(allow_hosts=self.allow_hosts, resolver=resolver)
        self._timeout = httpx.Timeout(timeout_s)
        self._headers = httpx.Headers(
            {
                "User-Agent": user_agent,
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "Accept-Language": "ja,en;q=0.5",
                "Accept-Encoding": "gzip, deflate",
            }
        )
        self._lock = threading.Lock()
        self._next_start: dict[str, float] = {}
        self._robots: dict[str, tuple[float, object]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> LiveFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str) -> Page:
        """Fetch ``url`` following redirects; see the class docstring for the errors raised."""
        current = url
        for _ in range(self.max_redirects + 1):
            self._check(current)
            if self.respect_robots:
                self._check_robots(current)
            response = self._request(current, limit=self.max_bytes)
            if response.status_code in REDIRECT_STATUSES:
                current = self._redirect_target(response)
                continue
            if response.status_code >= 400:
                raise FetchStatusError(
                    f"URL {current} は HTTP {response.status_code} を返しました",
                    url=current,
                    status_code=response.status_code,
                )
            content_type = response.headers.get("content-type", "")
            text, encoding = page_text(response.content, content_type)
            return Page(
                url=url,
                final_url=current,
                status_code=response.status_code,
                content_type=content_type,
                content=response.content,
                text=text,
                encoding=encoding,
                fetched_at=datetime.now(UTC),
                from_snapshot=False,
            )
        raise FetchError(f"URL {url} のリダイレクトが上限 ({self.max_redirects} 回) を超えました", url=url)

    # --- steps --------------------------------------------------------------------------
    def _check(self, url: str) -> None:
        check_url(url, allow_hosts=self.allow_hosts, resolver=self._resolver)

    def _redirect_target(self, response: _Response) -> str:
        location = response.headers.get("location", "").strip()
        if not location:
            raise FetchStatusError(
                f"URL {response.url} は HTTP {response.status_code} を返しましたが"
                "リダイレクト先 (Location) がありません",
                url=response.url,
                status_code=response.status_code,
            )
        # urljoin, not httpx.URL.join: the target is checked as a string by check_url next,
        # and httpx would reject some spellings (0177.0.0.1) before the guard could name them.
        return urldefrag(urljoin(response.url, location)).url

    def _wait_turn(self, host: str) -> None:
        """Reserve the next start slot for ``host`` and sleep until it (thread-safe)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self.delay_s
        if start > now:
            self._sleep(start - now)

    @contextmanager
    def _naming(self, url: str) -> Iterator[None]:
        token = current_url.set(url)
        try:
            yield
        finally:
            current_url.reset(token)

    def _request(self, url: str, *, limit: int, truncate: bool = False) -> _Response:
        """GET ``url`` once (no redirects), reading at most ``limit`` body bytes.

        Over the limit: FetchTooLarge, or (truncate=True) the first ``limit`` bytes.
        """
        self._wait_turn((urlsplit(url).hostname or "").lower())
        try:
            request = httpx.Request("GET", url, headers=self._headers, extensions={"timeout": self._timeout.as_dict()})
            with self._naming(url), self._send(request) as response:
                if response.status_code in REDIRECT_STATUSES:
                    return _Response(url, response.status_code, response.headers, b"")
                declared = response.headers.get("content-length", "")
                if not truncate and declared.isdigit() and int(declared) > limit:
                    raise too_large(url, limit)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        if truncate:
                            del body[limit:]
                            break
                        raise too_large(url, limit)
                return _Response(url, response.status_code, response.headers, bytes(body))
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"URL {url} の取得がタイムアウトしました ({self.timeout_s:g} 秒)", url=url) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(f"URL {url} を取得できません: {type(exc).__name__}: {exc}", url=url) from exc

    @contextmanager
    def _send(self, request: httpx.Request) -> Iterator[httpx.Response]:
        response = self._transport.handle_request(request)
        response.request = request
        try:
            yield response
        finally:
            response.close()

    # --- robots.txt (RFC 9309) ------------------------------------------------------------
    def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        robots_url = f"{origin}/robots.txt"
        if parts.path == "/robots.txt":
            return
        rules = self._robots_for(origin, robots_url)
        if rules is _UNREACHABLE:
            raise RobotsDisallowed(
                f"URL {url} は取得しません: robots.txt ({robots_url}) がサーバーエラーを返したため、"
                "すべて禁止として扱います (RFC 9309 §2.3.1.4)",
                url=url,
            )
        if isinstance(rules, Protego) and not rules.can_fetch(url, self.user_agent):
            raise RobotsDisallowed(f"URL {url} は robots.txt ({robots_url}) で禁止されています", url=url)

    def _robots_for(self, origin: str, robots_url: str) -> object:
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:  # one robots.txt request per origin even when threads race
            cached = self._robots.get(origin)
            if cached is not None and self._clock() - cached[0] < ROBOTS_CACHE_S:
                return cached[1]
            rules = self._load_robots(robots_url)
            self._robots[origin] = (self._clock(), rules)
            return rules

    def _load_robots(self, robots_url: str) -> object:
        """Protego rules, None (allow all) or _UNREACHABLE (disallow all).

        RFC 9309 §2.3.1: 2xx -> parse (UTF-8); redirects followed up to five, then "unavailable"
        (§2.3.1.2); 4xx "unavailable" -> allow all (§2.3.1.3); 5xx "unreachable" -> disallow
        all (§2.3.1.4). 429 is treated as unreachable too: the server asks us to back off, as
        Google does. Timeouts and connection errors propagate (FetchTimeout / FetchError, not
        cached) so that the page is not fetched and the caller may retry later.
        """
        current = robots_url
        for _ in range(ROBOTS_MAX_REDIRECTS + 1):
            self._check(current)
            response = self._request(current, limit=ROBOTS_MAX_BYTES, truncate=True)
            status = response.status_code
            if status in REDIRECT_STATUSES:
                if not response.headers.get("location", "").strip():
                    return None
                current = self._redirect_target(response)
                continue
            if 200 <= status < 300:
                return Protego.parse(response.content.decode("utf-8", errors="replace"))
            if status >= 500 or status == 429:
                return _UNREACHABLE
            return None
        return None


def fetcher_from_settings() -> Fetcher:
    """The fetcher configured in Django settings (read now, not at import).

    HOKAN_SNAPSHOT_DIR set -> SnapshotFetcher over that folder; otherwise a LiveFetcher with
    HOKAN_FETCH_TIMEOUT_S, _MAX_BYTES, _MAX_REDIRECTS, _DELAY_S, _USER_AGENT, _RESPECT_ROBOTS,
    _ALLOW_HOSTS.
    """
    from django.conf import settings

    snapshot_dir = getattr(settings, "HOKAN_SNAPSHOT_DIR", "")
    if snapshot_dir:
        from hokan.core.web.snapshot import SnapshotFetcher

        return SnapshotFetcher(Path(snapshot_dir))
    return LiveFetcher(
        timeout_s=settings.HOKAN_FETCH_TIMEOUT_S,
        max_bytes=settings.HOKAN_FETCH_MAX_BYTES,
        max_redirects=settings.HOKAN_FETCH_MAX_REDIRECTS,
        delay_s=settings.HOKAN_FETCH_DELAY_S,
        user_agent=settings.HOKAN_FETCH_USER_AGENT,
        respect_robots=settings.HOKAN_FETCH_RESPECT_ROBOTS,
        allow_hosts=settings.HOKAN_FETCH_ALLOW_HOSTS,
    )
