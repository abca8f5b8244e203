"""find_profile_links: the 会社概要 page among a home page's links."""

from __future__ import annotations

from pathlib import Path

from hokan.core.extract import find_profile_links


def test_it_finds_the_profile_page_of_real_home_pages(company_pages: Path):
    cases = {
        "kitakyushu_buppan_index.html": ("https://www.kitakyusyubuppan.com/", "https://www.kitakyusyubuppan.com/gaiyou"),
        "kizashiya_index.html": ("https://kizashi-ya.com/", "https://kizashi-ya.com/company.html"),
        "kouga_kensetsu_index.html": ("https://koga-kensetsu.co/", "https://koga-kensetsu.co/company.html"),
    }
    for file, (base, expected) in cases.items():
        html = (company_pages / "jsonld_pages" / file).read_text(encoding="utf-8")
        links = find_profile_links(html, base)
        assert links and links[0] == expected, (file, links)
        assert len(links) == len(set(links))


def test_it_ranks_labels_and_paths():
    html = """<nav>
      <a href="/recruit/">採用情報</a>
      <a href="/company/">企業情報</a>
      <a href="/company/outline.html#top">会社概要</a>
      <a href="/company/outline.html">会社概要</a>
      <a href="https://other.example.com/about">About</a>
      <a href="/about-us/"><img src="a.png" alt="ABOUT US"></a>
      <a href="/profile" title="プロフィール">→</a>
      <a href="mailto:info@example.co.jp">会社案内</a>
      <a href="/news/company-news">会社からのお知らせ</a>
      <a href="/pdf/company.pdf">会社案内（PDF）</a>
    </nav>"""
    links = find_profile_links(html, "https://www.example.co.jp/")
    assert links[0] == "https://www.example.co.jp/company/outline.html"
    assert links[1] == "https://www.example.co.jp/company/"
    assert "https://www.example.co.jp/about-us/" in links
    assert "https://www.example.co.jp/profile" in links
    assert not any("recruit" in u or "news" in u or "other.example" in u or u.endswith(".pdf") for u in links)
    assert not any("#" in u for u in links)


def test_it_accepts_the_bare_and_www_host_and_skips_the_page_itself():
    html = '<a href="https://example.co.jp/corporate/">Corporate</a><a href="index.html">会社概要</a>'
    assert find_profile_links(html, "https://www.example.co.jp/index.html") == ["https://example.co.jp/corporate/"]


def test_it_returns_nothing_without_profile_links():
    assert find_profile_links("<a href='/shop'>ショップ</a>", "https://example.co.jp/") == []
    assert find_profile_links("", "https://example.co.jp/") == []


def test_it_follows_the_profile_link_through_the_snapshot(company_pages: Path):
    from hokan.core.extract import extract_profile
    from hokan.core.web.snapshot import SnapshotFetcher

    fetcher = SnapshotFetcher(company_pages)
    home = fetcher.fetch("https://www.kitakyusyubuppan.com/")
    profile_url = find_profile_links(home.text, home.final_url)[0]
    profile = fetcher.fetch(profile_url)
    found = extract_profile(profile.text, url=profile.final_url)
    assert found["corporate_number"].value == "3290805009155"
    assert found["representative_name"].value == "大保 俊博"
    assert found["phone"].source_url == "https://www.kitakyusyubuppan.com/gaiyou"
