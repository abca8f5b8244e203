"""The guarded httpx clients (hokan.core.web.http) against a real server on 127.0.0.1.

Only 127.0.0.1 is ever contacted: other names resolve through a fake resolver, and
``socket.create_connection`` is wrapped to record every connection attempt and refuse anything
but loopback (a safety net; the tests also assert it was never hit).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hokan.core.errors import FetchBlocked, FetchTooLarge
from hokan.core.web.http import (
    DEFAULT_USER_AGENT,
    guarded_async_client,
    guarded_client,
    parse_retry_after,
    socket_deadline,
)
from tests.fakes.local_http import JSONHandler, LocalHTTPServer
from tests.fakes.network import connections  # noqa: F401  (fixture)


class Route:
    def __init__(self, status: int = 200, body: bytes = b"ok", headers: dict[str, str] | None = None,
                 *, hang: bool = False, stream: bytes | None = None) -> None:
        self.status, self.body, self.headers, self.hang, self.stream = status, body, headers or {}, hang, stream


class Server(LocalHTTPServer):
    thread_name = "fake-web-http"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(JSONHandler):
    fake: Server

    def do_GET(self) -> None:  # noqa: N802
        self.fake.record(None)
        self.fake.hits.append((self.path, self.header_dict()))
        route = self.fake.routes.get(self.path, Route(404, b"not found"))
        if route.hang:
            return self.hang()
        if route.stream is not None:  # close-delimited body, no Content-Length
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(route.stream)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return None
        return self.send_bytes(route.status, route.body, "text/plain", route.headers)


Server.handler_class = _Handler


@pytest.fixture
def server() -> Iterator[Server]:
    yield from Server.serving()


def resolver(table: dict[str, list[str]]):
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.lookups = lookups  # type: ignore[attr-defined]
    return resolve


def client(**kwargs: Any) -> httpx.Client:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("allow_hosts", ["127.0.0.1"])
    return guarded_client(**kwargs)


# --- the guard ------------------------------------------------------------------------------
def test_it_gets_from_an_allowed_host_with_our_user_agent(server: Server, connections: list[str]) -> None:
    server.routes["/a"] = Route(body="こんにちは".encode())
    with client(headers={"X-Extra": "1"}) as http:
        response = http.get(server.url("/a"))
    assert response.status_code == 200 and response.text == "こんにちは"
    headers = server.hits[0][1]
    assert headers["user-agent"] == DEFAULT_USER_AGENT and headers["x-extra"] == "1"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert connections == ["127.0.0.1"]


def test_the_allow_list_defaults_to_the_setting(server: Server, settings: Any, connections: list[str]) -> None:
    server.routes["/"] = Route()
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    with guarded_client(timeout_s=5) as http, pytest.raises(FetchBlocked) as caught:
        http.get(server.url("/"))
    assert caught.value.reason == "loopback" and caught.value.url == server.url("/")
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    with guarded_client(timeout_s=5) as http:
        assert http.get(server.url("/")).status_code == 200
    assert connections == ["127.0.0.1"]


@pytest.mark.parametrize(("address", "reason"), [("10.1.2.3", "private"), ("169.254.169.254", "link_local"),
                                                 ("127.0.0.1", "loopback"), ("fd00::1", "private")])
def test_it_refuses_a_name_resolving_to_a_non_public_address_at_connect_time(
    server: Server, connections: list[str], address: str, reason: str
) -> None:
    resolve = resolver({"api.example.test": [address]})
    with client(resolver=resolve) as http, pytest.raises(FetchBlocked) as caught:
        http.get(f"http://api.example.test:{server.port}/")
    assert caught.value.reason == reason
    assert caught.value.url == f"http://api.example.test:{server.port}/"
    assert resolve.lookups == ["api.example.test"]  # type: ignore[attr-defined]
    assert connections == [] and server.hits == []


def test_it_refuses_private_literals_and_loopback_names(server: Server, connections: list[str]) -> None:
    with client(allow_hosts=[]) as http:
        for url in ("http://10.0.0.1:9/", "http://[::ffff:169.254.169.254]/", f"http://localhost:{server.port}/"):
            with pytest.raises(FetchBlocked):
                http.get(url)
    assert connections == [] and server.hits == []


def test_it_checks_every_redirect_hop_at_connect_time(server: Server, connections: list[str]) -> None:
    resolve = resolver({"internal.test": ["10.0.0.7"]})
    server.routes["/go"] = Route(302, b"", {"Location": "http://internal.test/admin"})
    server.routes["/ok"] = Route(302, b"", {"Location": "/final"})
    server.routes["/final"] = Route(body=b"final")
    with client(resolver=resolve, follow_redirects=True) as http:
        assert http.get(server.url("/ok")).text == "final"
        with pytest.raises(FetchBlocked) as caught:
            http.get(server.url("/go"))
    assert caught.value.reason == "private"
    assert connections == ["127.0.0.1"]  # one kept-alive connection; never 10.0.0.7


def test_it_does_not_follow_redirects_unless_asked(server: Server) -> None:
    server.routes["/go"] = Route(302, b"", {"Location": "/final"})
    with client() as http:
        assert http.get(server.url("/go")).status_code == 302
    assert [path for path, _ in server.hits] == ["/go"]


# --- the body cap ---------------------------------------------------------------------------
def test_it_refuses_a_declared_body_over_the_cap(server: Server) -> None:
    server.routes["/big"] = Route(body=b"x" * 1001)
    server.routes["/exact"] = Route(body=b"x" * 1000)
    with client(max_bytes=1000) as http:
        assert len(http.get(server.url("/exact")).content) == 1000
        with pytest.raises(FetchTooLarge) as caught:
            http.get(server.url("/big"))
    assert caught.value.limit_bytes == 1000 and caught.value.url == server.url("/big")


def test_it_stops_an_undeclared_body_at_the_cap(server: Server) -> None:
    server.routes["/stream"] = Route(stream=b"y" * 50_000)
    with client(max_bytes=10_000) as http, pytest.raises(FetchTooLarge):
        http.get(server.url("/stream"))


def test_it_counts_the_decompressed_size_of_a_gzip_bomb(server: Server) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    server.routes["/bomb"] = Route(body=bomb, headers={"Content-Encoding": "gzip"})
    server.routes["/small"] = Route(body=gzip.compress(b"{}" * 100), headers={"Content-Encoding": "gzip"})
    with client(max_bytes=100_000) as http:
        assert http.get(server.url("/small")).content == b"{}" * 100
        with pytest.raises(FetchTooLarge):
            http.get(server.url("/bomb"))


# --- the socket deadline --------------------------------------------------------------------------
def test_a_hung_server_is_cut_off_at_the_socket_deadline(server: Server) -> None:
    server.routes["/hang"] = Route(hang=True)
    with client(timeout_s=60) as http, socket_deadline(time.monotonic() + 0.3), pytest.raises(httpx.ReadTimeout):
        http.get(server.url("/hang"))
    assert [path for path, _ in server.hits] == ["/hang"]


def test_nothing_is_sent_once_the_deadline_has_passed(server: Server, connections: list[str]) -> None:
    with client() as http, socket_deadline(time.monotonic() - 1), pytest.raises(httpx.ConnectTimeout):
        http.get(server.url("/"))
    assert connections == [] and server.hits == []


def test_an_inner_deadline_never_extends_an_outer_one() -> None:
    from hokan.core.web import http as module

    with socket_deadline(100.0):
        with socket_deadline(200.0):
            assert module._deadline.get() == 100.0
        with socket_deadline(None):
            assert module._deadline.get() == 100.0
    assert module._deadline.get() is None


# --- the async twin -------------------------------------------------------------------------------
def test_the_async_client_is_guarded_the_same_way(server: Server) -> None:
    server.routes["/a"] = Route(body=b"async")
    server.routes["/big"] = Route(body=b"z" * 2000)
    resolve = resolver({"meta.test": ["169.254.169.254"]})

    async def run() -> tuple[str, str, int]:
        async with guarded_async_client(timeout_s=5, allow_hosts=["127.0.0.1"], resolver=resolve,
                                        max_bytes=1000) as http:
            text = (await http.get(server.url("/a"))).text
            with pytest.raises(FetchBlocked) as blocked:
                await http.get(f"http://meta.test:{server.port}/")
            with pytest.raises(FetchTooLarge) as large:
                await http.get(server.url("/big"))
            return text, blocked.value.reason, large.value.limit_bytes

    assert asyncio.run(run()) == ("async", "link_local", 1000)
    assert [path for path, _ in server.hits] == ["/a", "/big"]  # the refused host got nothing


# --- Retry-After ----------------------------------------------------------------------------------
def test_it_parses_retry_after_seconds_dates_and_headers() -> None:
    now = datetime(2026, 11, 21, 3, 0, 0, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(b"7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Sat, 21 Nov 2026 03:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sat, 21 Nov 2026 02:00:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after("") is None and parse_retry_after(None) is None
    assert parse_retry_after("inf") is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "9", "retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx.Headers({"Retry-After": "9", "retry-after-ms": "bad"})) == 9.0
    assert parse_retry_after({"retry-after": "Sat, 21 Nov 2026 03:01:00 GMT"}, now=now) == 60.0
    assert parse_retry_after({}) is None
