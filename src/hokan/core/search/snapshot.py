"""The local snapshot index: BM25 over a folder of saved pages — the embedded default search
provider (no key, no network) and what the demo uses (document 003 §5.1; issue 10 §2 step 2).

Sources (``SnapshotSource``):

- a folder with ``snapshot.csv`` (``url,path,content_type``, the format of
  ``hokan.core.web.snapshot.SnapshotFetcher``, e.g. ../shared/data/municipal/service_pages):
  every listed HTML/text page is indexed under its listed URL, read through the fetcher;
- a folder of Markdown/text/HTML files without snapshot.csv plus a ``base_url`` (e.g. the
  saved 音威子府村 pages ../shared/data/municipal/otoineppu_pages_md with
  https://www.vill.otoineppu.hokkaido.jp/): each file is indexed under ``base_url`` + its
  relative path, ``index.md`` as its folder and ``.md`` dropped (``kakuka/syoubou/index.md`` →
  ``…/kakuka/syoubou/``; ``kurashi/gomi.md`` → ``…/kurashi/gomi/``). ``markdown_urls`` lists
  that mapping, so a fetcher can serve the same URLs.

Tokens: the text is NFKC-folded (``hokan.core.ja.fold``) and lower-cased; runs of Japanese
characters (kanji, kana, 々, ー) become character bigrams (a lone character its unigram),
runs of Latin letters/digits whole words. Bigrams need no dictionary and match compounds
(国民健康保険 ⊃ 健康, 保険) that a word tokenizer splits differently in query and page. Scoring:
Okapi BM25 (``rank_bm25.BM25Okapi``, k1 1.5, b 0.75); only pages sharing at least one token
with the query are returned. The snippet is the page's line with the most query tokens.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from rank_bm25 import BM25Okapi

from hokan.core.errors import HokanError, SearchConfigError
from hokan.core.ja import fold
from hokan.core.search.base import SearchProvider, SearchResult, host_matches, split_site_operator

__all__ = ["IndexedPage", "SnapshotIndex", "SnapshotSearch", "SnapshotSource", "markdown_urls", "pages_of", "tokenize"]

_JA_RUN = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3005\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+")
_TOKEN_RUN = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3005\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
SNIPPET_CHARS = 160


def tokenize(text: str) -> list[str]:
    """BM25 tokens of ``text`` (module docstring): bigrams of Japanese runs, Latin words."""
    tokens: list[str] = []
    for run in _TOKEN_RUN.findall(fold(text).lower()):
        if _WORD.fullmatch(run):
            tokens.append(run)
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


@dataclass(frozen=True)
class IndexedPage:
    """A page of the index: url (as it is fetched), title, text (visible text, one block per line)."""

    url: str
    title: str
    text: str


@dataclass(frozen=True)
class SnapshotSource:
    """A folder to index; base_url for folders without snapshot.csv (module docstring).

    ``parse("path")`` / ``parse("path|https://base/")`` reads the setting's form.
    """

    folder: Path
    base_url: str | None = None

    @classmethod
    def parse(cls, spec: str) -> SnapshotSource:
        path, _, base = spec.partition("|")
        return cls(Path(path.strip()).expanduser(), base.strip() or None)


def markdown_urls(folder: Path, base_url: str) -> list[tuple[str, Path]]:
    """(url, file) of each text file under ``folder`` (sorted), by the rule of the module
    docstring. Hidden files and folders are skipped."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    rows: list[tuple[str, Path]] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or path.suffix.lower() not in _TEXT_SUFFIXES or any(p.startswith(".") for p in rel.parts):
            continue
        parts = list(rel.parts)
        stem = Path(parts[-1]).stem
        parts[-1] = "" if stem.lower() == "index" else stem + "/"
        url = urljoin(base, "/".join(p for p in parts[:-1]) + ("/" if len(parts) > 1 else "") + parts[-1])
        rows.append((url, path))
    return rows


def _title_and_text(raw: str, *, is_html: bool) -> tuple[str, str]:
    if is_html:
        from hokan.core.extract.html import parse_html, visible_text

        root = parse_html(raw)
        title = (root.findtext(".//title") or "").strip()
        return title, visible_text(root)
    lines = [line.strip() for line in raw.splitlines()]
    title = next((line.lstrip("#").strip() for line in lines if line), "")
    return title, "\n".join(line for line in lines if line)


def pages_of(source: SnapshotSource) -> Iterable[IndexedPage]:
    """The text pages of one source (module docstring), as ``IndexedPage``s; PDFs and images of a
    snapshot.csv are left out (their text comes from core.documents: callers add it).

    Raises:
        SearchConfigError: a folder without snapshot.csv and without ``base_url``.
        InputError: a bad snapshot.csv (from ``SnapshotFetcher``).
    """
    folder = source.folder
    if (folder / "snapshot.csv").is_file():
        from hokan.core.web.snapshot import SnapshotFetcher

        fetcher = SnapshotFetcher(folder)
        for url in fetcher.urls():
            page = fetcher.fetch(url)
            if not page.text:
                continue  # PDFs and images: not indexed (their text comes from core.documents)
            is_html = "html" in page.content_type.lower() or page.text.lstrip()[:1] == "<"
            title, text = _title_and_text(page.text, is_html=is_html)
            yield IndexedPage(url=page.final_url, title=title, text=text)
        return
    if not source.base_url:
        raise SearchConfigError(
            f"スナップショットのフォルダ {folder} に snapshot.csv がありません。"
            "「フォルダ|https://公式サイト/」の形でURLの基点を指定してください",
            provider="snapshot",
        )
    for url, path in markdown_urls(folder, source.base_url):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        title, text = _title_and_text(raw, is_html=path.suffix.lower() in (".html", ".htm"))
        yield IndexedPage(url=url, title=title, text=text)


class SnapshotIndex:
    """BM25 over ``pages`` (built once, in memory; thread-safe for searching).

    ``from_sources([...])`` reads folders (``SnapshotSource``); raises SearchConfigError for a
    folder that is missing or unreadable (naming it).
    """

    def __init__(self, pages: Sequence[IndexedPage]) -> None:
        self.pages = list(pages)
        self._tokens = [tokenize(f"{p.title}\n{p.text}") for p in self.pages]
        self._bm25 = BM25Okapi(self._tokens) if self.pages else None

    @classmethod
    def from_sources(cls, sources: Sequence[SnapshotSource]) -> SnapshotIndex:
        pages: list[IndexedPage] = []
        seen: set[str] = set()
        for source in sources:
            if not source.folder.is_dir():
                raise SearchConfigError(f"スナップショットのフォルダ {source.folder} がありません", provider="snapshot")
            try:
                found = list(pages_of(source))
            except SearchConfigError:
                raise
            except (HokanError, OSError) as exc:
                raise SearchConfigError(f"スナップショットのフォルダ {source.folder} を読めません: {exc}",
                                        provider="snapshot") from exc
            for page in found:
                if page.url not in seen:
                    seen.add(page.url)
                    pages.append(page)
        return cls(pages)

    def __len__(self) -> int:
        return len(self.pages)

    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]:
        """Pages best first for ``query`` (``site:`` operator honoured), at most ``count``."""
        query, site = split_site_operator(query, site)
        terms = tokenize(query)
        if self._bm25 is None or not terms:
            return []
        scores = self._bm25.get_scores(terms)
        wanted = set(terms)
        ranked = sorted(range(len(self.pages)), key=lambda i: (-scores[i], self.pages[i].url))
        results: list[SearchResult] = []
        for i in ranked:
            page = self.pages[i]
            if not wanted.intersection(self._tokens[i]) or (site and not host_matches(page.url, site)):
                continue
            results.append(SearchResult(url=page.url, title=page.title, snippet=_snippet(page.text, wanted),
                                        provider="snapshot", rank=len(results) + 1))
            if len(results) >= max(1, count):
                break
        return results


def _snippet(text: str, terms: set[str]) -> str:
    best, best_hits = "", -1
    for line in text.splitlines():
        hits = len(terms.intersection(tokenize(line)))
        if hits > best_hits:
            best, best_hits = line, hits
    return best[:SNIPPET_CHARS]


class SnapshotSearch(SearchProvider):
    """The snapshot index as a ``SearchProvider`` (name "snapshot"). The index is built on the
    first search (and kept for the process: ``cached_index``)."""

    name = "snapshot"

    def __init__(self, sources: Sequence[SnapshotSource] | None = None, *, index: SnapshotIndex | None = None) -> None:
        if index is None and not sources:
            raise SearchConfigError("スナップショット検索のフォルダが設定されていません（SEARCH_SNAPSHOT_DIRS）",
                                    provider="snapshot")
        self.sources = tuple(sources or ())
        self._index = index

    @property
    def index(self) -> SnapshotIndex:
        if self._index is None:
            self._index = cached_index(self.sources)
        return self._index

    def search(self, query: str, *, site: str | None = None, count: int = 10) -> list[SearchResult]:
        return self.index.search(query, site=site, count=count)


_pages_of = pages_of  # the earlier name (hokan.municipal.demo uses it)

_CACHE: dict[tuple[SnapshotSource, ...], SnapshotIndex] = {}
_CACHE_LOCK = threading.Lock()


def cached_index(sources: Sequence[SnapshotSource]) -> SnapshotIndex:
    """The index of ``sources``, built once per process (the folders are read-only data)."""
    key = tuple(sources)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SnapshotIndex.from_sources(key)
        return _CACHE[key]
