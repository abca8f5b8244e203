"""SnapshotFetcher: saved pages served as if fetched, with tolerant URL matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from hokan.core.errors import FetchBlocked, FetchStatusError, InputError
from hokan.core.web import SnapshotFetcher, fetcher_from_settings

SHINSEI = "https://shinsei8oku.github.io/gh-shinsei8oku-page/gaiyou.html"


def test_it_serves_the_real_snapshot(company_pages: Path) -> None:
    fetcher = SnapshotFetcher(company_pages)
    page = fetcher.fetch(SHINSEI)
    assert page.from_snapshot is True
    assert (page.url, page.final_url, page.status_code) == (SHINSEI, SHINSEI, 200)
    assert page.content_type == "text/html"
    assert page.content == (company_pages / "shinsei_sjis.html").read_bytes()
    assert page.encoding == "cp932"
    assert "株式会社　新清" in page.text
    assert page.fetched_at.utcoffset() is not None and page.fetched_at.utcoffset().total_seconds() == 0


def test_it_lists_its_urls_in_file_order(company_pages: Path) -> None:
    urls = SnapshotFetcher(company_pages).urls()
    assert urls[0] == "https://www.be-dash.co.jp/company/"
    assert SHINSEI in urls
    assert len(urls) == len(set(urls)) == 20


def test_it_serves_every_listed_url(company_pages: Path) -> None:
    fetcher = SnapshotFetcher(company_pages)
    for url in fetcher.urls():
        page = fetcher.fetch(url)
        assert page.final_url == url
        assert page.text and "\ufffd" not in page.text


@pytest.mark.parametrize(
    "asked",
    [
        "http://shinsei8oku.github.io/gh-shinsei8oku-page/gaiyou.html",  # http vs https
        "https://SHINSEI8OKU.GitHub.io/gh-shinsei8oku-page/gaiyou.html",  # host case
        "https://shinsei8oku.github.io:443/gh-shinsei8oku-page/gaiyou.html",  # default port
        "https://shinsei8oku.github.io/gh-shinsei8oku-page/gaiyou.html#top",  # fragment
        "https://shinsei8oku.github.io/gh-shinsei8oku-page/gaiyou.html/",  # trailing slash
    ],
)
def test_it_matches_urls_tolerantly(company_pages: Path, asked: str) -> None:
    page = SnapshotFetcher(company_pages).fetch(asked)
    assert (page.url, page.final_url) == (asked, SHINSEI)


@pytest.mark.parametrize(
    ("asked", "listed"),
    [
        ("https://www.sega.co.jp/company/outline", "https://www.sega.co.jp/company/outline/"),
        ("https://www.sega.co.jp/company/outline/index.html", "https://www.sega.co.jp/company/outline/"),
        ("http://www.bfts.co.jp/company/", "https://www.bfts.co.jp/company"),
        ("https://kizashi-ya.com", "https://kizashi-ya.com/"),
        ("https://kizashi-ya.com/index.html", "https://kizashi-ya.com/"),
    ],
)
def test_it_ignores_trailing_slash_and_index_html(company_pages: Path, asked: str, listed: str) -> None:
    assert SnapshotFetcher(company_pages).fetch(asked).final_url == listed


def test_it_answers_404_for_unknown_urls(company_pages: Path) -> None:
    fetcher = SnapshotFetcher(company_pages)
    with pytest.raises(FetchStatusError) as caught:
        fetcher.fetch("https://www.sega.co.jp/recruit/")
    assert caught.value.status_code == 404
    assert caught.value.url == "https://www.sega.co.jp/recruit/"
    assert str(caught.value).startswith(
        f"URL https://www.sega.co.jp/recruit/ はスナップショット {company_pages.resolve()} にありません"
    )
    # Another port is another site.
    with pytest.raises(FetchStatusError):
        fetcher.fetch("https://www.sega.co.jp:8443/company/outline/")


def test_it_refuses_other_schemes_like_the_live_fetcher(company_pages: Path) -> None:
    with pytest.raises(FetchBlocked) as caught:
        SnapshotFetcher(company_pages).fetch("file:///etc/passwd")
    assert caught.value.reason == "scheme"


def write_snapshot(folder: Path, rows: str, files: dict[str, bytes] | None = None) -> Path:
    for name, content in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    (folder / "snapshot.csv").write_text("url,path,content_type\n" + rows, encoding="utf-8")
    return folder


def test_it_reads_a_snapshot_with_subfolders_and_types(tmp_path: Path) -> None:
    folder = write_snapshot(
        tmp_path,
        "https://a.example/,pages/a.html,text/html; charset=euc-jp\nhttps://a.example/doc.pdf,doc.pdf,application/pdf\n"
        "https://a.example/plain,plain.html,\n",
        {"pages/a.html": "<p>会社概要</p>".encode("euc_jp"), "doc.pdf": b"%PDF-1.4", "plain.html": b"<p>ok</p>"},
    )
    fetcher = SnapshotFetcher(folder)
    page = fetcher.fetch("http://A.example")
    assert (page.text, page.encoding) == ("<p>会社概要</p>", "euc_jp")
    pdf = fetcher.fetch("https://a.example/doc.pdf")
    assert (pdf.content, pdf.text, pdf.content_type) == (b"%PDF-1.4", "", "application/pdf")
    assert fetcher.fetch("https://a.example/plain").content_type == "text/html"


@pytest.mark.parametrize(
    ("rows", "row", "field", "needle"),
    [
        (
            "https://a.example/,a.html,text/html\nhttps://b.example/,missing.html,text/html\n",
            3,
            "path",
            "missing.html がありません",
        ),
        ("not a url,a.html,text/html\n", 2, "url", "URL が正しくありません"),
        ("ftp://a.example/,a.html,text/html\n", 2, "url", "URL が正しくありません"),
        ("https://a.example/,../outside.html,text/html\n", 2, "path", "フォルダの外"),
        ("https://a.example/,,text/html\n", 2, "path", "パスが空"),
        ("https://a.example/,a.html,text/html\nhttp://A.example,a.html,text/html\n", 3, "url", "重複"),
    ],
)
def test_it_names_the_bad_row(tmp_path: Path, rows: str, row: int, field: str, needle: str) -> None:
    (tmp_path / "outside.html").write_bytes(b"x")
    folder = tmp_path / "snap"
    folder.mkdir()
    write_snapshot(folder, rows, {"a.html": b"<p>a</p>"})
    with pytest.raises(InputError) as caught:
        SnapshotFetcher(folder)
    assert (caught.value.row, caught.value.field) == (row, field)
    assert f"{row}行目" in str(caught.value)
    assert needle in str(caught.value)
    assert "snapshot.csv" in str(caught.value)


def test_it_reports_a_missing_csv_or_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="snapshot.csv"):
        SnapshotFetcher(tmp_path)
    (tmp_path / "snapshot.csv").write_text("address,file\nhttps://a.example/,a.html\n", encoding="utf-8")
    with pytest.raises(InputError, match="列 path, url がありません"):
        SnapshotFetcher(tmp_path)


def test_it_is_chosen_by_settings(settings: object, company_pages: Path) -> None:
    settings.HOKAN_SNAPSHOT_DIR = str(company_pages)  # type: ignore[attr-defined]
    fetcher = fetcher_from_settings()
    assert isinstance(fetcher, SnapshotFetcher)
    assert fetcher.fetch(SHINSEI).from_snapshot is True
