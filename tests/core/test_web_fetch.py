"""LiveFetcher against a real HTTP server on 127.0.0.1 (started here, on a free port).

Only 127.0.0.1 is ever contacted: names used in the tests resolve through a fake resolver,
and ``socket.create_connection`` is wrapped to record every connection attempt and refuse any
address other than 127.0.0.1 / ::1 (a safety net; the tests also assert it was never hit).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hokan.core.errors import (
    FetchBlocked,
    FetchError,
    FetchStatusError,
    FetchTimeout,
    FetchTooLarge,
    RobotsDisallowed,
)
from hokan.core.web import LiveFetcher, Page, fetcher_from_settings
from tests.fakes.network import connections  # noqa: F401  (fixture)

JA = "株式会社サンプル商事 会社概要 所在地 東京都千代田区丸の内一丁目 資本金 1億2,000万円 ㈱ ①"
UA = "hokan-test/1.0"


# --- the local server ---------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    wait_s: float = 0.0  # wait before answering (for timeouts); cut short at teardown
    stream_bytes: int = 0  # send this many bytes without Content-Length (close-delimited)


@dataclass
class Hit:
    path: str
    host_header: str
    user_agent: str
    at: float | None  # the fake clock's time when the request arrived


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[str, Reply] = {}
        self.hits: list[Hit] = []
        self.clock: FakeClock | None = None
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.hits.append(
                    Hit(
                        self.path,
                        self.headers.get("Host", ""),
                        self.headers.get("User-Agent", ""),
                        server.clock.now if server.clock else None,
                    )
                )
                reply = server.routes.get(self.path, Reply(404, b"not found"))
                if reply.wait_s and server.stop.wait(reply.wait_s):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.stream_bytes:
                        self.end_headers()
                        chunk = b"x" * 65536
                        for _ in range(reply.stream_bytes // len(chunk)):
                            self.wfile.write(chunk)
                    else:
                        if "Content-Length" not in reply.headers:
                            self.send_header("Content-Length", str(len(reply.body)))
                        self.end_headers()
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading on purpose (size cap)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()


# --- fakes at the network edge ------------------------------------------------------------
class FakeResolver:
    """Names -> addresses; unknown names fail like getaddrinfo. Records every lookup."""

    def __init__(self, table: dict[str, list[str] | Callable[[], list[str]]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        entry = self.table[host]
        return entry() if callable(entry) else list(entry)


class FakeClock:
    """Monotonic seconds that move only when the fetcher sleeps (advance=True)."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 1000.0
        self.advance = advance
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advance:
                self.now += seconds


def make_fetcher(**overrides: object) -> LiveFetcher:
    options: dict[str, object] = {
        "timeout_s": 5.0,
        "max_bytes": 100_000,
        "max_redirects": 3,
        "delay_s": 0.0,
        "user_agent": UA,
        "respect_robots": False,
        "allow_hosts": ["127.0.0.1"],
        "resolver": FakeResolver({}),
    }
    options.update(overrides)
    return LiveFetcher(**options)  # type: ignore[arg-type]


def html(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>会社概要</title></head><body><p>{body}</p></body></html>"


# --- fetching -----------------------------------------------------------------------------
def test_it_fetches_a_page(server: LocalServer, connections: list[str]) -> None:
    page_html = html(JA)
    server.routes["/company"] = Reply(body=page_html.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
    with make_fetcher() as fetcher:
        page = fetcher.fetch(server.url("/company"))
    assert isinstance(page, Page)
    assert page.url == page.final_url == server.url("/company")
    assert (page.status_code, page.content_type, page.encoding) == (200, "text/html; charset=utf-8", "utf-8")
    assert page.text == page_html
    assert page.content == page_html.encode()
    assert page.from_snapshot is False
    assert page.fetched_at.utcoffset() is not None and page.fetched_at.utcoffset().total_seconds() == 0
    assert server.hits[0].user_agent == UA
    assert set(connections) == {"127.0.0.1"}


def test_it_decodes_shift_jis_without_a_header_charset(server: LocalServer) -> None:
    page_html = html(JA)
    server.routes["/sjis"] = Reply(body=page_html.encode("cp932"), headers={"Content-Type": "text/html"})
    with make_fetcher() as fetcher:
        page = fetcher.fetch(server.url("/sjis"))
    assert (page.encoding, page.text) == ("cp932", page_html)


def test_it_decodes_the_real_shift_jis_page(server: LocalServer, company_pages: Path) -> None:
    server.routes["/gaiyou.html"] = Reply(
        body=(company_pages / "shinsei_sjis.html").read_bytes(), headers={"Content-Type": "text/html"}
    )
    with make_fetcher() as fetcher:
        page = fetcher.fetch(server.url("/gaiyou.html"))
    assert page.encoding == "cp932"
    assert "株式会社　新清" in page.text


def test_it_leaves_text_empty_for_binary_content(server: LocalServer) -> None:
    server.routes["/doc.pdf"] = Reply(body=b"%PDF-1.4 \x00\x01", headers={"Content-Type": "application/pdf"})
    with make_fetcher() as fetcher:
        page = fetcher.fetch(server.url("/doc.pdf"))
    assert (page.content, page.text, page.encoding) == (b"%PDF-1.4 \x00\x01", "", "")


def test_it_connects_to_the_checked_address_of_an_allowed_name(server: LocalServer, connections: list[str]) -> None:
    server.routes["/"] = Reply(body=b"<html>ok</html>", headers={"Content-Type": "text/html"})
    resolver = FakeResolver({"intranet.test": ["127.0.0.1"]})
    with make_fetcher(allow_hosts=["INTRANET.test"], resolver=resolver) as fetcher:
        page = fetcher.fetch(server.url("/", host="intranet.test"))
    assert page.text == "<html>ok</html>"
    assert server.hits[0].host_header == f"intranet.test:{server.port}"
    assert connections == ["127.0.0.1"]


def test_it_raises_status_errors(server: LocalServer) -> None:
    server.routes["/gone"] = Reply(410, b"gone")
    server.routes["/boom"] = Reply(503, b"busy")
    with make_fetcher() as fetcher:
        with pytest.raises(FetchStatusError) as missing:
            fetcher.fetch(server.url("/missing"))
        with pytest.raises(FetchStatusError) as boom:
            fetcher.fetch(server.url("/boom"))
    assert missing.value.status_code == 404
    assert missing.value.url == server.url("/missing")
    assert str(missing.value) == f"URL {server.url('/missing')} は HTTP 404 を返しました"
    assert boom.value.status_code == 503


def test_it_times_out_on_a_slow_server(server: LocalServer) -> None:
    server.routes["/slow"] = Reply(body=b"late", wait_s=30)
    with make_fetcher(timeout_s=0.3) as fetcher:
        with pytest.raises(FetchTimeout) as caught:
            fetcher.fetch(server.url("/slow"))
    assert caught.value.url == server.url("/slow")
    assert "タイムアウト" in str(caught.value)


def test_it_refuses_a_declared_body_over_the_cap(server: LocalServer) -> None:
    server.routes["/huge"] = Reply(body=b"x" * 50_000, headers={"Content-Length": "50000"})
    with make_fetcher(max_bytes=10_000) as fetcher:
        with pytest.raises(FetchTooLarge) as caught:
            fetcher.fetch(server.url("/huge"))
    assert caught.value.limit_bytes == 10_000
    assert "10,000" in str(caught.value)


def test_it_stops_reading_an_undeclared_body_at_the_cap(server: LocalServer) -> None:
    server.routes["/stream"] = Reply(stream_bytes=4 * 1024 * 1024)  # no Content-Length
    with make_fetcher(max_bytes=100_000) as fetcher:
        with pytest.raises(FetchTooLarge):
            fetcher.fetch(server.url("/stream"))


def test_it_accepts_a_body_exactly_at_the_cap(server: LocalServer) -> None:
    server.routes["/exact"] = Reply(body=b"a" * 1000, headers={"Content-Type": "text/plain"})
    with make_fetcher(max_bytes=1000) as fetcher:
        assert len(fetcher.fetch(server.url("/exact")).content) == 1000


def test_it_fetches_from_ipv6_loopback(connections: list[str]) -> None:
    class V6Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"v6")

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        httpd = V6Server(("::1", 0), Handler)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        with make_fetcher(allow_hosts=["::1"]) as fetcher:
            page = fetcher.fetch(f"http://[::1]:{httpd.server_address[1]}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert page.content == b"v6"
    assert connections == ["::1"]


# --- redirects ----------------------------------------------------------------------------
def test_it_follows_redirects(server: LocalServer) -> None:
    server.routes["/old"] = Reply(301, headers={"Location": "/mid#frag"})
    server.routes["/mid"] = Reply(302, headers={"Location": server.url("/new")})
    server.routes["/new"] = Reply(body=b"<html>new</html>", headers={"Content-Type": "text/html"})
    with make_fetcher() as fetcher:
        page = fetcher.fetch(server.url("/old"))
    assert page.url == server.url("/old")
    assert page.final_url == server.url("/new")
    assert server.paths() == ["/old", "/mid", "/new"]


def test_it_stops_after_max_redirects(server: LocalServer) -> None:
    server.routes["/loop"] = Reply(302, headers={"Location": "/loop"})
    with make_fetcher(max_redirects=3) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(server.url("/loop"))
    assert "リダイレクトが上限 (3 回)" in str(caught.value)
    assert server.paths() == ["/loop"] * 4


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://intranet.test/", "private"),  # a name that resolves to 10.0.0.5
        ("http://0177.0.0.1/", "loopback"),  # loopback, but not as written in allow_hosts
        ("http://localhost.test/", "loopback"),
        ("ftp://127.0.0.1/file", "scheme"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_it_checks_every_redirect_hop_before_connecting(
    server: LocalServer, connections: list[str], location: str, reason: str
) -> None:
    server.routes["/go"] = Reply(302, headers={"Location": location})
    resolver = FakeResolver({"intranet.test": ["10.0.0.5"], "localhost.test": ["127.0.0.1"]})
    with make_fetcher(resolver=resolver) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            fetcher.fetch(server.url("/go"))
    assert caught.value.reason == reason
    assert caught.value.url == location
    assert str(caught.value).startswith(f"URL {location} は取得できません: ")
    assert connections == ["127.0.0.1"]  # only the allow-listed server itself


def test_it_refuses_dns_rebinding_at_connection_time(server: LocalServer, connections: list[str]) -> None:
    # The name resolves to a public address for the pre-flight check and to 127.0.0.1 when
    # the connection is opened: the second resolution must be checked too.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    resolver = FakeResolver({"rebind.test": lambda: next(answers)})
    with make_fetcher(resolver=resolver) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            fetcher.fetch(server.url("/", host="rebind.test"))
    assert caught.value.reason == "loopback"
    assert caught.value.url == server.url("/", host="rebind.test")
    assert "ループバックアドレス (127.0.0.1)" in str(caught.value)
    assert resolver.lookups == ["rebind.test", "rebind.test"]
    assert connections == []


def test_it_refuses_loopback_when_not_allow_listed(server: LocalServer, connections: list[str]) -> None:
    with make_fetcher(allow_hosts=[]) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            fetcher.fetch(server.url("/"))
    assert caught.value.reason == "loopback"
    assert connections == []
    assert server.hits == []


# --- robots.txt ---------------------------------------------------------------------------
def test_it_obeys_robots_txt_and_caches_it(server: LocalServer) -> None:
    server.routes["/robots.txt"] = Reply(
        body=b"User-agent: *\nDisallow: /private\n", headers={"Content-Type": "text/plain"}
    )
    server.routes["/public"] = Reply(body=b"ok", headers={"Content-Type": "text/plain"})
    server.routes["/private/page"] = Reply(body=b"secret")
    with make_fetcher(respect_robots=True) as fetcher:
        fetcher.fetch(server.url("/public"))
        fetcher.fetch(server.url("/public"))
        with pytest.raises(RobotsDisallowed) as caught:
            fetcher.fetch(server.url("/private/page"))
    assert server.paths() == ["/robots.txt", "/public", "/public"]
    assert caught.value.url == server.url("/private/page")
    assert str(caught.value) == (
        f"URL {server.url('/private/page')} は robots.txt ({server.url('/robots.txt')}) で禁止されています"
    )


def test_it_matches_robots_groups_against_our_user_agent(server: LocalServer) -> None:
    server.routes["/robots.txt"] = Reply(
        body=b"User-agent: hokan-test\nDisallow: /\n\nUser-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"}
    )
    server.routes["/page"] = Reply(body=b"ok")
    with make_fetcher(respect_robots=True) as fetcher:
        with pytest.raises(RobotsDisallowed):
            fetcher.fetch(server.url("/page"))
    with make_fetcher(respect_robots=True, user_agent="someone-else/2.0") as fetcher:
        assert fetcher.fetch(server.url("/page")).content == b"ok"


def test_it_treats_a_missing_robots_txt_as_allow_all(server: LocalServer) -> None:
    server.routes["/page"] = Reply(body=b"ok")
    with make_fetcher(respect_robots=True) as fetcher:
        assert fetcher.fetch(server.url("/page")).content == b"ok"
    assert server.paths() == ["/robots.txt", "/page"]


def test_it_treats_a_robots_server_error_as_disallow_all(server: LocalServer) -> None:
    server.routes["/robots.txt"] = Reply(503, b"down")
    server.routes["/page"] = Reply(body=b"ok")
    with make_fetcher(respect_robots=True) as fetcher:
        with pytest.raises(RobotsDisallowed) as caught:
            fetcher.fetch(server.url("/page"))
    assert "RFC 9309" in str(caught.value)
    assert server.paths() == ["/robots.txt"]


def test_it_follows_robots_redirects(server: LocalServer) -> None:
    server.routes["/robots.txt"] = Reply(301, headers={"Location": "/real-robots.txt"})
    server.routes["/real-robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /page\n")
    server.routes["/page"] = Reply(body=b"ok")
    with make_fetcher(respect_robots=True) as fetcher:
        with pytest.raises(RobotsDisallowed):
            fetcher.fetch(server.url("/page"))


def test_it_checks_robots_for_redirect_targets(server: LocalServer) -> None:
    server.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private\n")
    server.routes["/open"] = Reply(302, headers={"Location": "/private/x"})
    with make_fetcher(respect_robots=True) as fetcher:
        with pytest.raises(RobotsDisallowed) as caught:
            fetcher.fetch(server.url("/open"))
    assert caught.value.url == server.url("/private/x")
    assert "/private/x" not in server.paths()


def test_it_guards_the_robots_request_too(server: LocalServer, connections: list[str]) -> None:
    server.routes["/robots.txt"] = Reply(302, headers={"Location": "http://10.0.0.1/robots.txt"})
    with make_fetcher(respect_robots=True) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            fetcher.fetch(server.url("/page"))
    assert caught.value.reason == "private"
    assert connections == ["127.0.0.1"]


# --- politeness ---------------------------------------------------------------------------
def test_it_waits_between_requests_to_the_same_host(server: LocalServer) -> None:
    clock = FakeClock()
    server.clock = clock
    server.routes["/a"] = Reply(body=b"a")
    server.routes["/b"] = Reply(body=b"b")
    resolver = FakeResolver({"other.test": ["127.0.0.1"]})
    with make_fetcher(
        delay_s=5.0,
        respect_robots=True,
        clock=clock,
        sleep=clock.sleep,
        allow_hosts=["127.0.0.1", "other.test"],
        resolver=resolver,
    ) as fetcher:
        fetcher.fetch(server.url("/a"))
        fetcher.fetch(server.url("/b"))
        fetcher.fetch(server.url("/a", host="other.test"))  # another host: no wait for it
        fetcher.fetch(server.url("/a"))
    seen = [(hit.host_header.split(":")[0], hit.path, hit.at) for hit in server.hits]
    assert seen == [
        ("127.0.0.1", "/robots.txt", 1000.0),
        ("127.0.0.1", "/a", 1005.0),
        ("127.0.0.1", "/b", 1010.0),
        ("other.test", "/robots.txt", 1010.0),
        ("other.test", "/a", 1015.0),
        ("127.0.0.1", "/a", 1015.0),
    ]


def test_it_does_not_wait_when_enough_time_has_passed(server: LocalServer) -> None:
    clock = FakeClock()
    server.routes["/a"] = Reply(body=b"a")
    with make_fetcher(delay_s=5.0, clock=clock, sleep=clock.sleep) as fetcher:
        fetcher.fetch(server.url("/a"))
        clock.now += 7.0
        fetcher.fetch(server.url("/a"))
        clock.now += 2.0
        fetcher.fetch(server.url("/a"))
    assert clock.sleeps == [pytest.approx(3.0)]


def test_it_spaces_concurrent_requests_to_one_host(server: LocalServer) -> None:
    # The clock stands still: four threads asking at the same instant must get start slots
    # 0, 5, 10 and 15 seconds later, whatever order the threads run in.
    clock = FakeClock(advance=False)
    server.routes["/a"] = Reply(body=b"a")
    with make_fetcher(delay_s=5.0, clock=clock, sleep=clock.sleep) as fetcher:
        threads = [threading.Thread(target=fetcher.fetch, args=(server.url("/a"),)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(server.hits) == 4
    assert sorted(clock.sleeps) == [5.0, 10.0, 15.0]


# --- settings -----------------------------------------------------------------------------
def test_it_builds_a_live_fetcher_from_settings(settings: object) -> None:
    settings.HOKAN_SNAPSHOT_DIR = ""  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_TIMEOUT_S = 7.5  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_MAX_BYTES = 1234  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_MAX_REDIRECTS = 2  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_DELAY_S = 0.5  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_USER_AGENT = "ua/1"  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_RESPECT_ROBOTS = False  # type: ignore[attr-defined]
    settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]  # type: ignore[attr-defined]
    fetcher = fetcher_from_settings()
    assert isinstance(fetcher, LiveFetcher)
    try:
        assert (fetcher.timeout_s, fetcher.max_bytes, fetcher.max_redirects, fetcher.delay_s) == (7.5, 1234, 2, 0.5)
        assert (fetcher.user_agent, fetcher.respect_robots, fetcher.allow_hosts) == ("ua/1", False, ("127.0.0.1",))
    finally:
        fetcher.close()
