"""The one outbound HTTP path of hokan: guarded httpx clients, the socket deadline, Retry-After.

Every request hokan sends to another host (web pages, LLM providers, gBizINFO, Resend, Notion)
goes through a transport built here::

    from hokan.core.web.http import guarded_client, parse_retry_after

    with guarded_client(timeout_s=20, base_url="https://api.notion.com", headers={...}) as http:
        response = http.post("/v1/pages", json=payload)       # FetchBlocked / FetchTooLarge / httpx errors

    openai.OpenAI(..., http_client=guarded_client(timeout_s=60))   # SDKs through their http_client

What the transport guarantees, for every request and every redirect hop:

1. SSRF check at connect time: the network backend resolves the host itself, refuses it when
   any address is not public (``ssrf.check_host``: loopback, RFC 1918, link-local incl.
   169.254.169.254, ULA, ... in any spelling) and connects only to an address that passed, so
   DNS rebinding (public for a pre-flight check, 127.0.0.1 for the connection) cannot pass.
   Hosts in ``allow_hosts`` (default: the ``HOKAN_FETCH_ALLOW_HOSTS`` setting; compared as
   written in the URL) skip the address check; unix sockets and proxies are never used.
2. Timeouts: ``timeout_s`` for each of connect, read, write and pool (not a total), and the
   optional *socket deadline* (``socket_deadline(at)``): inside that block every connect,
   read and write waits at most until ``at`` (``time.monotonic()`` seconds) and times out
   once it has passed, so a hung or slowly dripping server cannot hold a request path past
   its deadline. DNS resolution (getaddrinfo) is not bounded by it.
3. A cap on the body: ``max_bytes`` (decompressed, for gzip and deflate; a declared
   Content-Length over the cap is refused before reading) → ``FetchTooLarge``.
4. A User-Agent (``DEFAULT_USER_AGENT`` unless given; an SDK may set its own per request),
   ``Accept-Encoding: gzip, deflate``, no environment proxies (``trust_env=False``), redirects
   only when ``follow_redirects=True`` (at most ``MAX_REDIRECTS``, each hop guarded).

How the connect-time check is plugged in: httpcore documents network backends as public API
(``httpcore.NetworkBackend``, https://www.encode.io/httpcore/network-backends/) and
``httpcore.ConnectionPool(network_backend=...)`` accepts one. httpx 0.28's ``HTTPTransport``
does not expose that argument yet (encode/httpx PR #3749 proposes it), so ``GuardedTransport``
subclasses ``HTTPTransport`` and swaps the pool it built (the ``_pool`` attribute, unchanged
since httpx 0.18) for one with our backend. The subclass keeps httpx's own request/response
and exception mapping; it fails loudly at construction if httpx changes that attribute.
The async pair (``AsyncGuardedTransport``, ``guarded_async_client``) does the same over
``httpcore.AnyIOBackend`` and resolves names in a worker thread.

Errors a request through these clients raises besides httpx's own (``httpx.TimeoutException``,
``httpx.TransportError``...): ``FetchBlocked`` (address refused at connect time; ``url`` =
the request URL) and ``FetchTooLarge`` (body over ``max_bytes``). Both are ``HokanError``s,
not httpx errors: callers translate them at their boundary (e.g. the LLM clients raise
``LLMConfigError`` for a refused base URL).

``parse_retry_after`` is the one reader of ``Retry-After`` (RFC 9110 §10.2.3) for every retry
path (LLM clients, gBizINFO, Notion).
"""

from __future__ import annotations

import contextvars
import email.utils
import functools
import math
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import httpcore
import httpx

from hokan.core.errors import FetchTooLarge
from hokan.core.web.ssrf import Resolver, check_host

__all__ = [
    "API_MAX_BYTES",
    "AsyncGuardedTransport",
    "DEFAULT_USER_AGENT",
    "GuardedTransport",
    "MAX_REDIRECTS",
    "default_allow_hosts",
    "guarded_async_client",
    "guarded_client",
    "parse_retry_after",
    "socket_deadline",
]

DEFAULT_USER_AGENT = "hokan/0.1 (+https://example.invalid/hokan)"
API_MAX_BYTES = 32 * 1024 * 1024  # an API answer (LLM JSON, a batch of embeddings) stays far below
MAX_REDIRECTS = 5

# The URL being requested, so that a refusal at connection time names it (set per request).
current_url: contextvars.ContextVar[str | None] = contextvars.ContextVar("hokan_http_url", default=None)
# The monotonic time after which no socket operation may wait (None = only the timeouts).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("hokan_http_deadline", default=None)


# --- Retry-After ---------------------------------------------------------------------------
def parse_retry_after(value: Any, *, now: datetime | None = None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` value or from response headers.

    value: a header value ("120" delta-seconds, or an HTTP-date such as
        "Sat, 21 Nov 2026 03:00:30 GMT"), or a headers mapping (``httpx.Headers``, dict with
        lower-case names): there ``retry-after-ms`` (OpenAI, milliseconds) wins over
        ``retry-after``. None → None.
    now: aware "now" for HTTP-dates (default: the current UTC time).

    Returns seconds ≥ 0 (a date in the past gives 0.0), or None when absent or malformed.
    Source: RFC 9110 §10.2.3.
    """
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        headers = value
        ms = headers.get("retry-after-ms")
        if ms is not None:
            try:
                millis = float(ms)
            except ValueError:
                millis = math.nan
            if math.isfinite(millis) and millis >= 0:
                return millis / 1000
        return parse_retry_after(headers.get("retry-after"), now=now)
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- the socket deadline --------------------------------------------------------------------
@contextmanager
def socket_deadline(at: float | None) -> Iterator[None]:
    """Within the block, no connect/read/write of a guarded client waits past ``at``.

    at: ``time.monotonic()`` seconds, or None (no deadline; the timeouts alone apply). An
    enclosing earlier deadline stays in force. Past it, the operation raises httpx's
    ConnectTimeout / ReadTimeout / WriteTimeout. Context-local (threads, asyncio tasks).
    """
    outer = _deadline.get()
    effective = at if outer is None else (outer if at is None else min(at, outer))
    token = _deadline.set(effective)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to the time left before the socket deadline; raises ``error`` past it."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation honours the socket deadline of the caller."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _AsyncDeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# --- the connection-time guard ------------------------------------------------------------
class _GuardedNetworkBackend(httpcore.NetworkBackend):
    """Resolves and checks the host on every TCP connect, then connects to a checked address."""

    def __init__(self, *, allow_hosts: Sequence[str], resolver: Resolver | None) -> None:
        self._allow_hosts = tuple(allow_hosts)
        self._resolver = resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        url = current_url.get() or f"{host}:{port}"
        addresses = check_host(host, port, url=url, allow_hosts=self._allow_hosts, resolver=self._resolver)
        error: httpcore.ConnectError | None = None
        for address in addresses:
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(str(address), port, bounded, local_address, socket_options)
            except httpcore.ConnectError as exc:  # try the next checked address; timeouts propagate
                error = exc
                continue
            return _DeadlineStream(stream)
        assert error is not None  # check_host never returns an empty list
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """The async twin of ``_GuardedNetworkBackend``; names are resolved in a worker thread."""

    def __init__(self, *, allow_hosts: Sequence[str], resolver: Resolver | None) -> None:
        self._allow_hosts = tuple(allow_hosts)
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        url = current_url.get() or f"{host}:{port}"
        check = functools.partial(check_host, host, port, url=url, allow_hosts=self._allow_hosts,
                                  resolver=self._resolver)
        addresses = await anyio.to_thread.run_sync(check)
        error: httpcore.ConnectError | None = None
        for address in addresses:
            bounded = _bounded(timeout, httpcore.ConnectTimeout)
            try:
                stream = await self._inner.connect_tcp(str(address), port, bounded, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _AsyncDeadlineStream(stream)
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying client context (certifi, no SSLKEYLOGFILE) shared by every transport."""
    return httpx.create_ssl_context(trust_env=False)


# --- the body cap ------------------------------------------------------------------------------
class _BodyMeter:
    """Counts the decompressed size of a body as its (possibly compressed) chunks pass by.

    gzip and deflate are decompressed on the side in bounded steps, only to count (httpx
    decodes the body itself); other encodings are counted as received. Raises FetchTooLarge.
    """

    def __init__(self, url: str, limit: int, encoding: str) -> None:
        self.url = url
        self.limit = limit
        self.received = 0
        self.decoded = 0
        encoding = encoding.strip().lower()
        self._may_be_raw_deflate = encoding == "deflate"
        if encoding in ("gzip", "x-gzip"):
            self._decoder: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        else:
            self._decoder = None

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self._decoder is None:
            self.decoded = self.received
        else:
            self._count_decoded(chunk)
        if max(self.received, self.decoded) > self.limit:
            raise too_large(self.url, self.limit)

    def _count_decoded(self, chunk: bytes) -> None:
        data = chunk
        try:
            while data:
                self.decoded += len(self._decoder.decompress(data, 64 * 1024))
                if self.decoded > self.limit:
                    return
                data = self._decoder.unconsumed_tail
        except zlib.error:
            if self.decoded == 0 and self._may_be_raw_deflate:
                # "deflate" is often sent as a raw deflate stream (no zlib header); httpx does the same.
                self._may_be_raw_deflate = False
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                self._count_decoded(chunk)
            else:
                self._decoder = None  # corrupt: httpx will raise DecodingError; count raw bytes
                self.decoded = self.received


def too_large(url: str, limit: int) -> FetchTooLarge:
    """The FetchTooLarge for ``url`` over ``limit`` bytes (message in Japanese)."""
    return FetchTooLarge(f"URL {url} の本文が上限 {limit:,} バイトを超えています", url=url, limit_bytes=limit)


def _meter_for(headers: httpx.Headers, url: str, limit: int) -> _BodyMeter:
    """A meter for a response; FetchTooLarge at once when its Content-Length is over ``limit``."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(url, limit)
    return _BodyMeter(url, limit, headers.get("content-encoding", ""))


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, meter: _BodyMeter) -> None:
        self._inner = inner
        self._meter = meter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._meter.add(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, meter: _BodyMeter) -> None:
        self._inner = inner
        self._meter = meter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._meter.add(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


# --- transports -----------------------------------------------------------------------------------
_POOL_OPTIONS: dict[str, Any] = {"max_connections": 100, "max_keepalive_connections": 20, "keepalive_expiry": 5.0,
                                 "retries": 0}


class GuardedTransport(httpx.HTTPTransport):
    """httpx's default transport with the guarded network backend and an optional body cap.

    allow_hosts: hosts (as written in URLs) exempt from the address check, e.g. "127.0.0.1"
    for tests. resolver: ``(host, port) -> [address strings]`` (default getaddrinfo).
    max_bytes: cap on each response body in bytes (None = no cap; ``LiveFetcher`` reads with
    its own cap). See the module docstring for what is checked.
    """

    def __init__(
        self, *, allow_hosts: Sequence[str] = (), resolver: Resolver | None = None, max_bytes: int | None = None
    ) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport internals changed: cannot install the SSRF network backend")
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_GuardedNetworkBackend(allow_hosts=allow_hosts, resolver=resolver),
            **_POOL_OPTIONS,
        )
        self.max_bytes = max_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = current_url.get() or str(request.url)
        token = current_url.set(url)
        try:
            response = super().handle_request(request)
        finally:
            current_url.reset(token)
        if self.max_bytes is None:
            return response
        try:
            meter = _meter_for(response.headers, url, self.max_bytes)
        except FetchTooLarge:
            response.close()
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_CappedStream(response.stream, meter), extensions=response.extensions)


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """The async twin of ``GuardedTransport`` (same arguments and checks)."""

    def __init__(
        self, *, allow_hosts: Sequence[str] = (), resolver: Resolver | None = None, max_bytes: int | None = None
    ) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport internals changed: cannot install the SSRF network backend")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_AsyncGuardedNetworkBackend(allow_hosts=allow_hosts, resolver=resolver),
            **_POOL_OPTIONS,
        )
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = current_url.get() or str(request.url)
        token = current_url.set(url)
        try:
            response = await super().handle_async_request(request)
        finally:
            current_url.reset(token)
        if self.max_bytes is None:
            return response
        try:
            meter = _meter_for(response.headers, url, self.max_bytes)
        except FetchTooLarge:
            await response.aclose()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_AsyncCappedStream(response.stream, meter), extensions=response.extensions)


# --- clients ------------------------------------------------------------------------------------------
def default_allow_hosts() -> tuple[str, ...]:
    """``HOKAN_FETCH_ALLOW_HOSTS`` when Django settings are configured, else () (nothing exempt)."""
    from django.conf import settings

    if not settings.configured:
        return ()
    return tuple(getattr(settings, "HOKAN_FETCH_ALLOW_HOSTS", ()) or ())


def _client_options(
    *,
    timeout_s: float,
    user_agent: str | None,
    follow_redirects: bool,
    base_url: str,
    headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    merged = {"User-Agent": user_agent or DEFAULT_USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    merged.update(headers or {})
    return {
        "timeout": httpx.Timeout(timeout_s),
        "follow_redirects": follow_redirects,
        "max_redirects": MAX_REDIRECTS,
        "base_url": base_url,
        "headers": merged,
        "trust_env": False,
    }


def guarded_client(
    *,
    timeout_s: float,
    max_bytes: int | None = API_MAX_BYTES,
    user_agent: str | None = None,
    follow_redirects: bool = False,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    allow_hosts: Sequence[str] | None = None,
    resolver: Resolver | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` whose every connection passes the SSRF guard (module docstring).

    timeout_s: connect, read, write and pool timeout in seconds (each). max_bytes: cap on
    each (decompressed) response body in bytes, None = none. user_agent: default
    ``DEFAULT_USER_AGENT``. follow_redirects: follow up to ``MAX_REDIRECTS`` hops (each
    guarded). base_url / headers: as for ``httpx.Client``. allow_hosts: None = the
    ``HOKAN_FETCH_ALLOW_HOSTS`` setting. resolver: for tests.

    Requests raise FetchBlocked (refused address), FetchTooLarge, or httpx's errors.
    Close the client (``with``) when done; it may be shared between threads.
    """
    hosts = default_allow_hosts() if allow_hosts is None else tuple(allow_hosts)
    transport = GuardedTransport(allow_hosts=hosts, resolver=resolver, max_bytes=max_bytes)
    return httpx.Client(
        transport=transport,
        **_client_options(timeout_s=timeout_s, user_agent=user_agent, follow_redirects=follow_redirects,
                          base_url=base_url, headers=headers),
    )


def guarded_async_client(
    *,
    timeout_s: float,
    max_bytes: int | None = API_MAX_BYTES,
    user_agent: str | None = None,
    follow_redirects: bool = False,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    allow_hosts: Sequence[str] | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` twin of ``guarded_client`` (same arguments, same errors);
    e.g. ``openai.AsyncOpenAI(http_client=guarded_async_client(timeout_s=60))``."""
    hosts = default_allow_hosts() if allow_hosts is None else tuple(allow_hosts)
    transport = AsyncGuardedTransport(allow_hosts=hosts, resolver=resolver, max_bytes=max_bytes)
    return httpx.AsyncClient(
        transport=transport,
        **_client_options(timeout_s=timeout_s, user_agent=user_agent, follow_redirects=follow_redirects,
                          base_url=base_url, headers=headers),
    )
