"""The SSRF guard: check_url refuses schemes, userinfo and non-public addresses in any spelling.

No test here opens a connection: names resolve through a fake resolver, and the LiveFetcher
tests at the end wrap socket.create_connection to prove no connection was attempted.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from hokan.core.errors import FetchBlocked
from hokan.core.web import LiveFetcher, check_url


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def blocked(url: str, **kwargs: object) -> FetchBlocked:
    with pytest.raises(FetchBlocked) as caught:
        check_url(url, **kwargs)  # type: ignore[arg-type]
    assert caught.value.url == url
    return caught.value


LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::1]/",  # 6to4
    "http://[64:ff9b::127.0.0.1]/",  # NAT64
    "HTTP://[::FFFF:7F00:1]/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_it_refuses_loopback_in_every_spelling(url: str) -> None:
    resolver = FakeResolver({})
    error = blocked(url, resolver=resolver)
    assert error.reason == "loopback"
    assert "ループバックアドレス" in str(error)
    assert resolver.lookups == []  # literals are never sent to the resolver


def test_it_names_url_and_address_in_the_message() -> None:
    assert (
        str(blocked("http://10.0.0.1/"))
        == "URL http://10.0.0.1/ は取得できません: プライベートアドレス (10.0.0.1) です"
    )
    assert str(blocked("http://0x7f000001/")) == (
        "URL http://0x7f000001/ は取得できません: ループバックアドレス (127.0.0.1) です"
    )
    assert str(blocked("http://[::ffff:10.1.2.3]/")) == (
        "URL http://[::ffff:10.1.2.3]/ は取得できません: プライベートアドレス (::ffff:a01:203 に埋め込まれた 10.1.2.3) です"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "shared"),
        ("http://169.254.169.254/latest/meta-data/", "link_local"),
        ("http://[fe80::1]/", "link_local"),
        ("http://[fe80::1%25eth0]/", "link_local"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "reserved"),
        ("http://192.0.2.10/", "reserved"),  # TEST-NET-1 documentation range
        ("http://[fd12:3456::1]/", "private"),  # ULA
        ("http://[fec0::1]/", "private"),  # site-local
        ("http://[2001:db8::1]/", "reserved"),  # documentation
        ("http://[::ffff:169.254.169.254]/", "link_local"),
        ("http://[2002:a00:1::]/", "private"),  # 6to4 of 10.0.0.1
        ("http://[64:ff9b::10.0.0.1]/", "private"),  # NAT64 of 10.0.0.1
        ("http://[64:ff9b:1::8.8.8.8]/", "private"),  # local-use NAT64 prefix
    ],
)
def test_it_refuses_non_public_literals(url: str, reason: str) -> None:
    assert blocked(url).reason == reason


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.7"], "private"),
        (["93.184.216.34", "192.168.0.10"], "private"),  # ANY bad address refuses the name
        (["169.254.169.254"], "link_local"),
        (["127.0.0.1"], "loopback"),
        (["::1"], "loopback"),
        (["fd00::5"], "private"),
        (["ff05::2"], "multicast"),
        (["100.100.100.200"], "shared"),
        (["::ffff:10.0.0.1"], "private"),
        (["0.0.0.0"], "unspecified"),
    ],
)
def test_it_refuses_names_that_resolve_to_non_public_addresses(addresses: list[str], reason: str) -> None:
    resolver = FakeResolver({"intranet.example": addresses})
    error = blocked("https://intranet.example/company", resolver=resolver)
    assert error.reason == reason
    assert str(error).startswith("URL https://intranet.example/company は取得できません: ホスト intranet.example が")
    assert resolver.lookups == [("intranet.example", 443)]


def test_it_returns_the_addresses_of_a_public_name() -> None:
    resolver = FakeResolver({"www.example.co.jp": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]})
    assert check_url("https://WWW.Example.co.jp:8443/a?b#c", resolver=resolver) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]
    assert resolver.lookups == [("www.example.co.jp", 8443)]


def test_it_allows_public_ipv4_behind_ipv6_translation() -> None:
    # DNS64 answers 64:ff9b::a.b.c.d for IPv4-only sites on IPv6-only networks.
    resolver = FakeResolver({"v4only.example": ["64:ff9b::5db8:d822"]})
    assert check_url("http://v4only.example/", resolver=resolver) == [ipaddress.ip_address("64:ff9b::5db8:d822")]


def test_it_resolves_internationalized_names_as_punycode() -> None:
    resolver = FakeResolver({"xn--eckwd4c7c.jp": ["93.184.216.34"]})
    assert check_url("https://ドメイン.jp/", resolver=resolver) == [ipaddress.ip_address("93.184.216.34")]
    assert check_url("https://xn--eckwd4c7c.jp/", resolver=resolver) == [ipaddress.ip_address("93.184.216.34")]


def test_it_reports_resolution_failures() -> None:
    error = blocked("http://no-such-host.example/", resolver=FakeResolver({}))
    assert error.reason == "resolve_failed"
    assert "no-such-host.example の名前解決に失敗しました" in str(error)
    assert blocked("http://empty.example/", resolver=FakeResolver({"empty.example": []})).reason == "resolve_failed"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://example.com:70/",
        "data:text/html,hi",
        "javascript:alert(1)",
        "ws://example.com/",
        "example.com/company",
        "//example.com/",
    ],
)
def test_it_refuses_other_schemes(url: str) -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34"]})
    error = blocked(url, resolver=resolver)
    assert error.reason == "scheme"
    assert "http" in str(error)
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user@example.com/",
        "http://user:pw@example.com/",
        "http://example.com@127.0.0.1/",
        "http://127.0.0.1\\@example.com/",
        "http://@example.com/",
    ],
)
def test_it_refuses_userinfo(url: str) -> None:
    assert blocked(url, resolver=FakeResolver({"example.com": ["93.184.216.34"]})).reason == "userinfo"


@pytest.mark.parametrize(
    "url",
    [
        "http:///path",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com/\n",
        "http://[::1/",
        "http://[1:2]/",
        "http://xn--/",
        "http://exa%00mple.com/",
        "http://4294967296/",  # ends in a number but is no IPv4 address (WHATWG URL)
        "http://1.2.3.4.5/",
        "http://example.123/",
        "http://08.0.0.1/",
    ],
)
def test_it_refuses_malformed_urls(url: str) -> None:
    assert blocked(url, resolver=FakeResolver({"example.com": ["93.184.216.34"]})).reason == "invalid_url"


def test_it_allows_listed_hosts_as_written() -> None:
    assert check_url("http://127.0.0.1:8000/", allow_hosts=["127.0.0.1"]) == [ipaddress.ip_address("127.0.0.1")]
    assert check_url("http://[::1]:8000/", allow_hosts=["[::1]"]) == [ipaddress.ip_address("::1")]
    resolver = FakeResolver({"intranet.example": ["10.0.0.7"]})
    assert check_url("http://Intranet.Example/", allow_hosts=["INTRANET.example"], resolver=resolver) == [
        ipaddress.ip_address("10.0.0.7")
    ]
    # Another spelling of an allowed address is not "as written": still refused.
    assert blocked("http://2130706433/", allow_hosts=["127.0.0.1"]).reason == "loopback"
    assert (
        blocked(
            "http://localhost/", allow_hosts=["127.0.0.1"], resolver=FakeResolver({"localhost": ["127.0.0.1"]})
        ).reason
        == "loopback"
    )
    # The scheme rule applies to allowed hosts too.
    assert blocked("ftp://127.0.0.1/", allow_hosts=["127.0.0.1"]).reason == "scheme"


def test_it_refuses_localhost_with_the_system_resolver() -> None:
    # localhost comes from /etc/hosts; no DNS traffic.
    error = blocked("http://localhost:8000/")
    assert error.reason == "loopback"


# --- through the fetcher: refused before any connection -----------------------------------
@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address[0])
        raise AssertionError(f"a connection to {address[0]} was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.1"], "private"),
        (["169.254.169.254"], "link_local"),
        (["fd00::1"], "private"),
        (["239.1.2.3"], "multicast"),
        (["127.0.0.1"], "loopback"),
    ],
)
def test_the_fetcher_refuses_at_resolution_without_connecting(
    connections: list[str], addresses: list[str], reason: str
) -> None:
    resolver = FakeResolver({"company.example": addresses})
    with LiveFetcher(resolver=resolver, respect_robots=False, delay_s=0) as fetcher:
        with pytest.raises(FetchBlocked) as caught:
            fetcher.fetch("http://company.example/about")
    assert caught.value.reason == reason
    assert connections == []


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + ["file:///etc/passwd", "gopher://127.0.0.1:25/"])
def test_the_fetcher_refuses_without_connecting(connections: list[str], url: str) -> None:
    with LiveFetcher(resolver=FakeResolver({}), respect_robots=True, delay_s=0) as fetcher:
        with pytest.raises(FetchBlocked):
            fetcher.fetch(url)
    assert connections == []
