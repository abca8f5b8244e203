"""Offline fetching: serve pages saved in a folder as if they were fetched live.

The folder holds ``snapshot.csv`` with the columns ``url,path,content_type`` (path relative
to the folder; content_type may be empty, default ``text/html``), e.g.
/work/shared/data/company_pages. Used for tests, demos and reproducible runs
(``HOKAN_SNAPSHOT_DIR``).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hokan.core.errors import FetchBlocked, FetchStatusError, InputError
from hokan.core.web.fetch import Page, page_text

__all__ = ["SnapshotFetcher", "snapshot_key"]

CSV_NAME = "snapshot.csv"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_INDEX_FILES = ("index.html", "index.htm")


def snapshot_key(url: str) -> str | None:
    """The key under which a URL is looked up; None when it is not an http(s) URL with a host.

    Equal keys for: http vs https, host case, default port, a trailing slash, a final
    ``index.html``/``index.htm``, the fragment, and percent-encoding of the path.
    ``https://Example.co.jp:443/company/index.html#top`` -> ``example.co.jp/company``.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port is not None and port not in _DEFAULT_PORTS.values():
        host = f"{host}:{port}"
    path = unquote(parts.path)
    head, _, last = path.rpartition("/")
    if last.lower() in _INDEX_FILES:
        path = head
    path = path.rstrip("/")
    return f"{host}{path}" + (f"?{parts.query}" if parts.query else "")


class SnapshotFetcher:
    """A ``Fetcher`` that answers from a snapshot folder (see the module docstring).

    The CSV is read and checked once, at construction. Pages come back with
    ``from_snapshot=True``, status 200, ``final_url`` = the URL as listed in the CSV, the text
    decoded by ``decode_html`` and ``fetched_at`` = the time of the call (UTC).

    Raises (constructor):
        InputError: snapshot.csv missing or unreadable, a column missing, or a row with a bad
            URL, a missing file, a path outside the folder, or a duplicate URL (names the row,
            1-based with the header as row 1).
    Raises (fetch):
        FetchBlocked: reason "scheme" for a non-http(s) URL, as the live fetcher would.
        FetchStatusError: status_code 404 for a URL the snapshot does not have.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        self._csv = self.folder / CSV_NAME
        self._rows: dict[str, tuple[str, Path, str]] = {}
        self._read_csv()

    def _read_csv(self) -> None:
        source = str(self._csv)
        try:
            handle = self._csv.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise InputError(f"スナップショットの一覧を開けません ({exc.strerror})", source=source) from exc
        with handle:
            reader = csv.DictReader(handle)
            missing = {"url", "path"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"列 {', '.join(sorted(missing))} がありません (必要な列: url,path,content_type)",
                    source=source,
                    row=1,
                )
            for row_number, row in enumerate(reader, start=2):
                self._add_row(row_number, row)

    def _add_row(self, row_number: int, row: dict[str, str | None]) -> None:
        source = str(self._csv)
        url = (row.get("url") or "").strip()
        rel_path = (row.get("path") or "").strip()
        content_type = (row.get("content_type") or "").strip() or "text/html"
        key = snapshot_key(url)
        if key is None:
            raise InputError(f"URL が正しくありません ({url!r})", source=source, row=row_number, field="url")
        if not rel_path:
            raise InputError("ファイルのパスが空です", source=source, row=row_number, field="path")
        path = (self.folder / rel_path).resolve()
        if not path.is_relative_to(self.folder):
            raise InputError(
                f"ファイル {rel_path} がスナップショットのフォルダの外を指しています",
                source=source,
                row=row_number,
                field="path",
            )
        if not path.is_file():
            raise InputError(f"ファイル {rel_path} がありません", source=source, row=row_number, field="path")
        if key in self._rows:
            raise InputError(
                f"URL {url} は {self._rows[key][0]} と同じページとして重複しています",
                source=source,
                row=row_number,
                field="url",
            )
        self._rows[key] = (url, path, content_type)

    def close(self) -> None:
        """Nothing to release; present so callers can treat every fetcher alike."""

    def __enter__(self) -> SnapshotFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def urls(self) -> list[str]:
        """The URLs the snapshot has, as written in snapshot.csv, in file order."""
        return [url for url, _, _ in self._rows.values()]

    def fetch(self, url: str) -> Page:
        """The saved page for ``url`` (see the class docstring for matching and errors)."""
        scheme = urlsplit(url.strip()).scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise FetchBlocked(
                f"URL {url} は取得できません: http/https 以外のスキーム ({scheme or 'なし'}) です",
                url=url,
                reason="scheme",
            )
        key = snapshot_key(url)
        entry = self._rows.get(key) if key is not None else None
        if entry is None:
            raise FetchStatusError(
                f"URL {url} はスナップショット {self.folder} にありません ({CSV_NAME} に {len(self._rows)} 件)",
                url=url,
                status_code=404,
            )
        listed_url, path, content_type = entry
        content = path.read_bytes()
        text, encoding = page_text(content, content_type)
        return Page(
            url=url,
            final_url=listed_url,
            status_code=200,
            content_type=content_type,
            content=content,
            text=text,
            encoding=encoding,
            fetched_at=datetime.now(UTC),
            from_snapshot=True,
        )
