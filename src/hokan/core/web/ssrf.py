"""The SSRF guard: which URLs hokan may fetch, decided before any connection is opened.

Policy (the same as healthchecks' ``hc/lib/curl.py``, see docs STYLE.md §2):

- only ``http`` and ``https``; no user:password@ in the URL;
- the host is parsed the way the C resolver would: besides normal IPv4/IPv6 literals, the
  inet_aton(3) spellings ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` are IPv4
  addresses, and IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-compatible ``::a.b.c.d``, 6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96``) are judged
  by the embedded IPv4 address;
- names are resolved and the URL is refused if ANY address is not a public unicast address
  (loopback, RFC 1918 private, shared 100.64/10, link-local incl. 169.254.169.254 metadata,
  multicast, reserved, unspecified, IPv6 ULA fc00::/7 and site-local fec0::/10).

A host listed in ``allow_hosts`` (compared as written in the URL, case-insensitive) skips the
address check; it is meant for tests and intranet deployments, never for user input.

``check_url`` is the pre-flight check of every URL and redirect hop. ``check_host`` is the same
check for a bare host; the fetcher's network backend calls it again right before opening each
TCP connection and connects only to the addresses it returned, so DNS rebinding (a name that
resolves to a public address for the check and to 127.0.0.1 for the connection) cannot pass.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from hokan.core.errors import FetchBlocked

__all__ = ["IPAddress", "Resolver", "check_host", "check_url", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

# (reason code, Japanese label shown to users)
_LABELS = {
    "loopback": "ループバックアドレス",
    "private": "プライベートアドレス",
    "shared": "共有アドレス空間 (100.64.0.0/10, CGNAT)",
    "link_local": "リンクローカルアドレス",
    "multicast": "マルチキャストアドレス",
    "reserved": "予約済み・非公開用途のアドレス",
    "unspecified": "未指定アドレス",
}
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # RFC 1122 §3.2.1.3; Linux routes it to the host itself
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598
_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")  # RFC 1918, 4193, 3879
)
_IPV4_COMPAT = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1 (deprecated)
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 SIIT
_NAT64_WKP = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local-use: any embedding

_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the C library (socket.getaddrinfo); returns unique address strings in order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Parse an IPv4 address the way inet_aton(3) / the WHATWG URL IPv4 parser does.

    1 to 4 dot-separated parts, each decimal, octal (leading 0) or hex (0x); the last part
    fills the remaining bytes: ``127.1`` = 127.0.0.1, ``2130706433`` = 127.0.0.1. One trailing
    dot is ignored (WHATWG). Returns None when the host is not such a number.
    """
    text = host[:-1] if host.endswith(".") else host
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif part.startswith("0") and len(part) > 1:
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ends_in_number(host: str) -> bool:
    labels = host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1] if labels else ""
    return bool(re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", last))


def parse_ip(host: str) -> IPAddress | None:
    """The IP address a host string denotes (any spelling), or None for a DNS name."""
    host = unquote(host).strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _parse_inet_aton(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64_WKP or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _classify(ip: IPAddress) -> str | None:
    """The reason code why ``ip`` must not be contacted, or None for a public unicast address."""
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip in _SHARED:
        return "shared"
    if any(ip in net for net in _PRIVATE_NETS) or ip in _NAT64_LOCAL:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _judge(ip: IPAddress) -> tuple[str, str] | None:
    """(reason, description) why ``ip`` is refused, or None. Embedded IPv4 is judged first."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = _classify(inner)
            if reason:
                return reason, f"{_LABELS[reason]} ({ip} に埋め込まれた {inner})"
            if ip.teredo is None:
                # A public IPv4 behind IPv4-mapped/6to4/NAT64: DNS64 on IPv6-only networks
                # answers 64:ff9b::a.b.c.d for every IPv4-only site, so this must pass.
                return None
    reason = _classify(ip)
    if reason:
        return reason, f"{_LABELS[reason]} ({ip})"
    return None


def _blocked(url: str, reason: str, why: str) -> FetchBlocked:
    return FetchBlocked(f"URL {url} は取得できません: {why}", url=url, reason=reason)


def _normalize_allow_hosts(allow_hosts: Sequence[str]) -> frozenset[str]:
    names = set()
    for entry in allow_hosts:
        name = entry.strip().strip("[]").lower()
        if name:
            names.add(name)
            try:
                names.add(name.encode("idna").decode("ascii"))
            except UnicodeError:
                pass
    return frozenset(names)


def check_host(
    host: str,
    port: int,
    *,
    url: str,
    allow_hosts: Sequence[str] = (),
    resolver: Resolver | None = None,
) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, refusing any non-public one.

    host: a host as written in a URL (no brackets needed for IPv6); port: TCP port;
    url: the URL named in error messages. Returns the addresses to connect to, in resolver
    order, without duplicates. An IP literal (any spelling) is not passed to the resolver.

    Raises:
        FetchBlocked: reason "loopback" | "private" | "shared" | "link_local" | "multicast" |
            "reserved" | "unspecified" when any address is refused (unless the host is in
            ``allow_hosts``), "resolve_failed" when the name does not resolve.
    """
    written = host.lower().strip("[]")
    allowed = written in _normalize_allow_hosts(allow_hosts)
    literal = parse_ip(written)
    if literal is not None:
        if not allowed and (verdict := _judge(literal)):
            raise _blocked(url, verdict[0], f"{verdict[1]} です")
        return [literal]

    resolve = resolver or system_resolver
    try:
        found = resolve(written, port)
        addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
    except (OSError, UnicodeError, ValueError) as exc:
        raise _blocked(url, "resolve_failed", f"ホスト {host} の名前解決に失敗しました ({exc})") from exc
    if not addresses:
        raise _blocked(url, "resolve_failed", f"ホスト {host} の名前解決の結果が空です")
    if not allowed:
        for address in addresses:
            if verdict := _judge(address):
                raise _blocked(url, verdict[0], f"ホスト {host} が{verdict[1]} に解決されます")
    return addresses


def _split(url: str) -> tuple[SplitResult, str, int]:
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        raise _blocked(url, "invalid_url", "URL に空白や制御文字が含まれています")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _blocked(url, "invalid_url", f"URL の形式が正しくありません ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        why = f"http/https 以外のスキーム ({scheme}) です" if scheme else "http:// または https:// で始まっていません"
        raise _blocked(url, "scheme", why)
    if "@" in parts.netloc or "\\" in parts.netloc:
        raise _blocked(url, "userinfo", "URL にユーザー名・パスワード (…@) を含めることはできません")
    host = parts.hostname or ""
    if not host:
        raise _blocked(url, "invalid_url", "ホスト名がありません")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise _blocked(url, "invalid_url", "ポート番号が正しくありません") from None
    return parts, host, port


def check_url(
    url: str,
    *,
    allow_hosts: Sequence[str] = (),
    resolver: Resolver | None = None,
) -> list[IPAddress]:
    """Check that ``url`` may be fetched; returns the addresses its host resolves to.

    resolver: ``(host, port) -> [address strings]``; default ``socket.getaddrinfo``.
    Must be called before every request, including each redirect hop.

    Raises:
        FetchBlocked: reason "scheme" (not http/https), "userinfo" (user@host), "invalid_url",
            "resolve_failed", or an address reason from ``check_host``. The message (Japanese)
            names the URL and the reason, e.g.
            「URL http://10.0.0.1/ は取得できません: プライベートアドレス (10.0.0.1) です」.
    """
    _, host, port = _split(url)
    # Judge IP literals in any spelling first: httpx rejects some (0177.0.0.1) as invalid,
    # but the user must learn that the address itself is refused.
    if parse_ip(host) is not None:
        return check_host(host, port, url=url, allow_hosts=allow_hosts, resolver=resolver)
    if ":" in host:
        raise _blocked(url, "invalid_url", f"IPv6 アドレスの形式が正しくありません ({host})")
    if _ends_in_number(host):
        # WHATWG URL: a host whose last label is a number must be a valid IPv4 address.
        raise _blocked(url, "invalid_url", f"IPv4 アドレスの形式が正しくありません ({host})")
    if "%" in host:
        raise _blocked(url, "invalid_url", f"ホスト名に % を含めることはできません ({host})")
    try:
        parsed = httpx.URL(url)
        httpx_host = parsed.host  # decodes punycode: may raise too
        ascii_host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise _blocked(url, "invalid_url", f"URL の形式が正しくありません ({exc})") from exc
    if host.lower() not in (httpx_host.lower(), ascii_host.lower()):
        # urllib and httpx disagree on the host: a parser confusion attempt; refuse.
        raise _blocked(url, "invalid_url", f"ホスト名を一意に解釈できません ({host} / {httpx_host})")
    allowed = list(allow_hosts)
    if host.lower() in _normalize_allow_hosts(allow_hosts):
        allowed.append(ascii_host)
    return check_host(ascii_host, port, url=url, allow_hosts=allowed, resolver=resolver)
