"""Turn the bytes of an HTML page into text, the way a browser would, tuned for Japanese sites.

Pure: no Django, no network. The order follows the WHATWG "encoding sniffing algorithm"
(https://html.spec.whatwg.org/multipage/parsing.html#encoding-sniffing-algorithm):
byte order mark, then the transport layer (``Content-Type: ...; charset=``), then a
``<meta>`` prescan of the first bytes, then a guess. The guess is limited to the three
encodings Japanese company sites actually use (UTF-8, Shift_JIS/CP932, EUC-JP).
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

__all__ = ["decode_html", "normalize_charset"]

# WHATWG prescans the first 1024 bytes; real pages put a lot of <link>/<script> before the
# <meta>, so we look a little further (the task asks for ~4 KB).
META_PRESCAN_BYTES = 4096

# Shift_JIS and all its spellings decode as CP932 (Microsoft's Windows-31J). CP932 is a strict
# superset of JIS X 0208 Shift_JIS: it adds the NEC/IBM extensions (①, ㈱, Ⅳ, 髙, ...) that
# Windows authoring tools emit on pages labelled "Shift_JIS". Decoding with plain shift_jis
# would turn those characters into errors. WHATWG does the same: the label "shift_jis" maps to
# the Shift_JIS decoder defined as windows-31j (https://encoding.spec.whatwg.org/#names-and-labels).
_CP932_LABELS = frozenset(
    {
        "shift_jis",
        "shift-jis",
        "shiftjis",
        "s_jis",
        "s-jis",
        "sjis",
        "x-sjis",
        "csshiftjis",
        "ms_kanji",
        "ms-kanji",
        "mskanji",
        "windows-31j",
        "cswindows31j",
        "ms932",
        "x-ms-cp932",
        "cp932",
    }
)
# Labels Python does not know but pages use.
_EXTRA_LABELS = {
    "x-euc-jp": "euc_jp",
    "x-euc": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
    # WHATWG: these labels all mean windows-1252 on the web, never strict Latin-1 or ASCII.
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    # WHATWG: a <meta> cannot really declare UTF-16 (the prescan read it as ASCII), use UTF-8.
    "utf-16": "utf-8",
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
}
_NOT_CHARSETS = frozenset({"utf-7", "idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"})
_SNIFF_ENCODINGS = ("utf_8", "cp932", "euc_jp")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_COMMENT = re.compile(rb"<!--.*?(?:-->|$)", re.S)
_META_TAG = re.compile(rb"<meta[\s/][^>]*>", re.I)
_ATTR = re.compile(rb"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)""", re.I)


def normalize_charset(label: str | None) -> str | None:
    """Map a charset label ("Shift_JIS", "x-sjis", "EUC-JP", "utf8") to a Python codec name.

    Returns the canonical codec name ("cp932", "euc_jp", "utf-8", ...) or None when the label
    is empty or unknown to Python. All Shift_JIS labels map to "cp932" (see _CP932_LABELS).
    """
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _CP932_LABELS:
        return "cp932"
    key = _EXTRA_LABELS.get(key, key)
    try:
        name = codecs.lookup(key).name
        b"a".decode(name, errors="replace")  # LookupError for bytes-to-bytes codecs (base64, rot13, ...)
    except (LookupError, ValueError):
        return None
    # Python codecs that are not web charsets: a page "declaring" them gets the guess instead.
    return None if name in _NOT_CHARSETS else name


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type)
    return normalize_charset(match.group(1)) if match else None


def _meta_charset(content: bytes) -> str | None:
    head = _COMMENT.sub(b"", content[:META_PRESCAN_BYTES])
    for tag in _META_TAG.finditer(head):
        attrs: dict[bytes, bytes] = {}
        for name, value in _ATTR.findall(tag.group(0)[5:]):
            attrs.setdefault(name.lower(), value.strip(b"\"'"))
        if b"charset" in attrs:
            found = normalize_charset(attrs[b"charset"].decode("ascii", "replace"))
        elif attrs.get(b"http-equiv", b"").lower() == b"content-type" and b"content" in attrs:
            found = _header_charset(attrs[b"content"].decode("ascii", "replace"))
        else:
            continue
        if found:
            return found
    return None


def _decodes_cleanly(content: bytes, encoding: str) -> bool:
    try:
        content.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _sniff(content: bytes) -> str:
    # Multi-byte UTF-8 practically never occurs by chance in CP932/EUC-JP text, and UTF-8 is
    # what most pages use, so a clean UTF-8 decode ends the guess (also covers pure ASCII).
    if _decodes_cleanly(content, "utf-8"):
        return "utf-8"
    best = from_bytes(content, cp_isolation=list(_SNIFF_ENCODINGS)).best()
    if best is not None:
        found = normalize_charset(best.encoding)
        if found:
            return found
    # Nothing fits: prefer a candidate that at least decodes cleanly, else UTF-8 with U+FFFD.
    for encoding in ("cp932", "euc_jp"):
        if _decodes_cleanly(content, encoding):
            return encoding
    return "utf-8"


def decode_html(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode an HTML body; returns ``(text, encoding)`` with a Python codec name as encoding.

    Order: BOM -> ``charset`` of the Content-Type header -> ``<meta charset>`` or
    ``<meta http-equiv="Content-Type" content="...; charset=...">`` in the first 4 KB
    (comments skipped) -> guess among UTF-8, CP932, EUC-JP (charset-normalizer).
    Shift_JIS labels decode as CP932 (superset, see ``_CP932_LABELS``).

    A declared charset that does not decode the body strictly is not trusted blindly: the
    other declared charset, then the guess, is used when it decodes cleanly (servers often
    send a default ``charset=iso-8859-1`` or ``UTF-8`` for Shift_JIS files). If nothing decodes
    cleanly the first declared charset wins. Undecodable bytes become U+FFFD; never raises.
    """
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, errors="replace"), encoding

    declared = [c for c in (_header_charset(content_type), _meta_charset(content)) if c]
    declared = list(dict.fromkeys(declared))
    for encoding in declared:
        if encoding == "cp1252" and not content.isascii():
            # "charset=iso-8859-1" is the default of many servers and old tools, not a choice
            # of the author; on a Japanese site a clean Japanese decode is the better bet.
            sniffed = _sniff(content)
            if _decodes_cleanly(content, sniffed):
                return content.decode(sniffed), sniffed
        if _decodes_cleanly(content, encoding):
            return content.decode(encoding), encoding
    if declared:
        sniffed = _sniff(content)
        encoding = sniffed if _decodes_cleanly(content, sniffed) else declared[0]
    else:
        encoding = _sniff(content)
    return content.decode(encoding, errors="replace"), encoding
