"""Find the company-profile page (会社概要) among the links of a company's page.

Links are scored by what they say (link text, ``title``/``aria-label``, ``alt`` of an image
inside) and by their path; only links to the same site (same host, "www." ignored) count.
The word lists come from the navigation of real Japanese company sites: 会社概要 is the
usual name of the page, 会社情報/企業情報 its parent section, and cooperatives or
associations say 組合概要/法人概要/団体概要/協会概要.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urljoin, urlsplit

from hokan.core.extract.html import element_flat, parse_html
from hokan.core.ja import fold

# (pattern over the folded, space-free, lower-cased link words, score)
_TEXT_SCORES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^(?:会社|企業|法人|組合|団体|協会|事業所|事務所|会)概要"), 10),
    (re.compile(r"^(?:company|corporate)(?:profile|outline|overview|data|info)"), 9),
    (re.compile(r"^(?:会社情報|企業情報|会社案内|企業案内|会社紹介|企業紹介|法人情報|組合情報|団体情報|当社について|私たちについて)"), 8),
    (re.compile(r"^(?:outline|profile|overview)$"), 8),
    (re.compile(r"^(?:company|corporate|about|aboutus|企業|会社)$"), 6),
    (re.compile(r"^概要$"), 4),
)
# Scores of the path's last segment ("index.html" and extensions dropped).
_SEGMENT_SCORES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^(?:outline|profile|overview|gaiyou?|kaisyagaiyou?|kaishagaiyou?|company[-_]?(?:profile|outline|info|data))$"),
     7),
    (re.compile(r"^(?:company|corporate|about|about[-_]?us|kaisya|kaisha|corp|corporation)$"), 5),
)
# Sections that mention 会社 but are not the profile (採用 = recruiting, IR, news…).
_NOT_PROFILE = re.compile(
    r"recruit|saiyo|career|job|news|topics|blog|contact|inquiry|privacy|policy|sitemap|ir/|investor|csr|sdgs|faq|"
    r"採用|求人|ニュース|お知らせ|お問い?合わ?せ|プライバシー|個人情報|サイトマップ|投資家|ir情報|よくある"
)
_SKIP_SCHEMES = ("mailto:", "tel:", "javascript:", "data:", "fax:", "sms:")
_FILES = re.compile(r"\.(?:pdf|jpe?g|png|gif|webp|svg|zip|docx?|xlsx?|pptx?|mp4)$", re.IGNORECASE)


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _words(a) -> str:
    parts = [element_flat(a), a.get("title") or "", a.get("aria-label") or ""]
    parts += [img.get("alt") or "" for img in a.iter("img")]
    return re.sub(r"\s+", "", fold(" ".join(parts))).lower()


def _same_page_key(url: str) -> str:
    """``…/outline/`` and ``…/outline/index.html`` name the same page."""
    return re.sub(r"/(?:index|default)\.(?:html?|php|aspx?)$", "/", url)


def _last_segment(path: str) -> str:
    segments = [seg for seg in path.lower().split("/") if seg]
    if segments and re.fullmatch(r"(?:index|default)\.\w+", segments[-1]):
        segments.pop()
    return segments[-1].rsplit(".", 1)[0] if segments else ""


def _score(words: str, path: str) -> int:
    text_score = max((score for pattern, score in _TEXT_SCORES if pattern.search(words)), default=0)
    segment = _last_segment(path)
    path_score = max((score for pattern, score in _SEGMENT_SCORES if pattern.fullmatch(segment)), default=0)
    if not text_score and not path_score:
        return 0
    if _NOT_PROFILE.search(words) or _NOT_PROFILE.search(path):
        return 0
    # The words decide; the path breaks ties and rescues image links without alt text.
    return text_score * 10 + path_score


def find_profile_links(html: str, base_url: str) -> list[str]:
    """Absolute URLs of the links that look like the company-profile page, best first.

    html: the page (usually the home page); base_url: its URL (``<base href>`` is honoured).
    Only http(s) links to the same site, without fragment, deduplicated, the page itself
    excluded. Returns [] when nothing matches.
    """
    root = parse_html(html)
    base = base_url
    for el in root.iter("base"):
        if el.get("href"):
            base = urljoin(base_url, el.get("href"))
            break
    site = _host(base_url)
    here = _same_page_key(urldefrag(base_url)[0])
    best: dict[str, tuple[int, int]] = {}
    for position, a in enumerate(root.iter("a")):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith(_SKIP_SCHEMES):
            continue
        url = urldefrag(urljoin(base, href))[0]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or _host(url) != site or _FILES.search(parts.path):
            continue
        if _same_page_key(url) == here:
            continue
        score = _score(_words(a), parts.path.lower())
        if score <= 0:
            continue
        if url not in best or best[url][0] < score:
            best[url] = (score, best.get(url, (0, position))[1])
    return [url for url, _ in sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))]
