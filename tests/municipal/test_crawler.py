"""The Playwright crawler (document 003 §12) on a local site whose links are rendered by
JavaScript, in Debian's Chromium: relevance-ordered link following within max_pages, the
official site kept, and every navigation and sub-request through the SSRF guard."""

from __future__ import annotations

import shutil

import pytest

from hokan.core.web.fetch import LiveFetcher
from hokan.municipal.crawler import CrawlError, CrawlerOptions, Link, crawl, keyword_scores, official_site
from tests.fakes.site_server import FakeSite, _Handler as SiteHandler

DESCRIPTIONS = ["国民健康保険の担当課", "国民健康保険の加入・脱退の手続きに必要な書類", "担当課の電話番号"]

START = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>くらしの情報</title>
<script src="/app.js"></script></head><body><h1>くらしの情報</h1><ul id="menu"></ul>
<img src="http://10.0.0.1/logo.png" alt="">
<script>fetch("http://169.254.169.254/latest/meta-data/").catch(() => {});</script>
</body></html>"""

# The links exist only after this script ran (no <a> in the HTML as served).
APP_JS = """document.addEventListener("DOMContentLoaded", () => {
  const links = [
    ["/event/", "イベント情報"],
    ["/kurashi/gomi/", "ごみの出し方"],
    ["/kurashi/kokuho/", "国民健康保険"],
    ["/files/kokuho-zei.pdf", "国民健康保険税のご案内（PDF）"],
    ["http://www.example.com/kokuho/", "国民健康保険 まとめサイト"],
    ["/out/", "国民健康保険の窓口案内"],
    ["/kurashi/kokuho/old/", "国民健康保険（旧ページ）"],
  ];
  const menu = document.getElementById("menu");
  for (const [href, text] of links) {
    const a = document.createElement("a"); a.href = href; a.textContent = text;
    const li = document.createElement("li"); li.appendChild(a); menu.appendChild(li);
  }
});"""

KOKUHO = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>国民健康保険</title></head><body>
<h1>国民健康保険</h1><p>担当：住民課 保険係 電話 01656-5-3311</p><div id="more"></div>
<script>document.getElementById("more").innerHTML =
  '<a href="/kurashi/kokuho/tetsuzuki/">国民健康保険の加入・脱退の手続き</a>';</script></body></html>"""

TETSUZUKI = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>加入・脱退</title></head><body>
<h1>国民健康保険の加入・脱退の手続き</h1><p>必要な書類：本人確認書類、マイナンバーがわかるもの</p></body></html>"""


class _RedirectingHandler(SiteHandler):
    """The fake site, plus /out/ answering 302 to a private address (a redirect must be refused)."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/out/"):
            self.fake.record(type("R", (), {"path": "/out/"})())
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/admin/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


class JsSite(FakeSite):
    thread_name = "fake-js-site"
    handler_class = _RedirectingHandler


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium not found")]


def test_keyword_scores_rank_the_relevant_link_first() -> None:
    links = [Link("https://x.lg.jp/event/", "イベント情報"), Link("https://x.lg.jp/kokuho/", "国民健康保険"),
             Link("https://x.lg.jp/gomi/", "ごみの出し方")]
    scores = keyword_scores(links, DESCRIPTIONS)
    assert scores[1] > scores[2] >= 0 and scores[0] == 0
    assert official_site("https://www.vill.otoineppu.hokkaido.jp/kurashi/") == "vill.otoineppu.hokkaido.jp"


def test_crawls_js_links_by_relevance_on_the_official_site_through_the_guard() -> None:
    with JsSite() as site:
        site.put("/", START)
        site.put("/app.js", APP_JS, content_type="application/javascript")
        for path, html in (("/kurashi/kokuho/", KOKUHO), ("/kurashi/kokuho/tetsuzuki/", TETSUZUKI),
                           ("/kurashi/gomi/", "<html><body>ごみの出し方</body></html>"),
                           ("/event/", "<html><body>イベント</body></html>")):
            site.put(path, html)
        site.put("/robots.txt", "User-agent: *\nDisallow: /kurashi/kokuho/old/\n", content_type="text/plain")
        with LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0) as fetcher:
            result = crawl(site.url("/"), descriptions=DESCRIPTIONS,
                           options=CrawlerOptions(max_pages=4, max_links_per_page=5, timeout_s=10),
                           allow_hosts=["127.0.0.1"], fetcher=fetcher)
        requested = site.paths()

    urls = [page.url for page in result.pages]
    # best first: 国民健康保険, then its JS-rendered 手続き page; /out/ (next best) redirects to a
    # private address and fails; the 4th page is the best left, and no more than max_pages
    assert urls[:3] == [site.url("/"), site.url("/kurashi/kokuho/"), site.url("/kurashi/kokuho/tetsuzuki/")]
    assert len(urls) <= 4 and site.url("/out/") not in urls
    kokuho = result.pages[1]
    assert "01656-5-3311" in kokuho.text and kokuho.via == site.url("/") and kokuho.score > 0
    assert "必要な書類" in result.pages[2].text and "<h1>" in result.pages[2].html
    as_page = result.pages[2].as_page()
    assert as_page.final_url == urls[2] and "必要な書類" in as_page.text and as_page.content.startswith(b"<")
    assert result.documents == [site.url("/files/kokuho-zei.pdf")]  # listed for core.documents, not opened
    # the script that renders the links came through the guarded client; irrelevant links stay unvisited
    assert "/app.js" in requested and "/event/" not in requested and "/files/kokuho-zei.pdf" not in requested
    refused = dict(result.refused)
    assert "プライベートアドレス (10.0.0.1)" in refused["http://10.0.0.1/logo.png"]
    assert "リンクローカルアドレス" in refused["http://169.254.169.254/latest/meta-data/"]
    # the on-site link that redirects to a private address: the redirect's navigation is refused
    assert "/out/" in requested and any(url.startswith("http://10.0.0.1/admin") for url in refused), (result.refused, result.failed)
    assert not any("example.com" in url for url, _ in result.refused + result.failed)  # never even tried
    # robots.txt is read (through the core.web fetcher) and a disallowed page is never requested
    assert "/robots.txt" in requested and "/kurashi/kokuho/old/" not in requested
    assert "robots.txt" in refused[site.url("/kurashi/kokuho/old/")]


def test_the_start_page_must_pass_the_guard_before_chromium_starts() -> None:
    with JsSite() as site:
        site.put("/", START)
        with pytest.raises(CrawlError, match="ループバックアドレス"):
            crawl(site.url("/"), descriptions=DESCRIPTIONS, allow_hosts=[])
        with pytest.raises(CrawlError, match="公式サイト"):
            crawl(site.url("/"), descriptions=DESCRIPTIONS, allow_hosts=["127.0.0.1"],
                  options=CrawlerOptions(official_url="https://www.town.example.lg.jp/"))
        assert site.paths() == []


def test_the_llm_scorer_asks_once_per_page_and_falls_back_on_a_bad_answer() -> None:
    from hokan.core.llm import OpenAICompatClient
    from hokan.municipal.crawler import llm_link_scorer
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    links = [Link("https://x.lg.jp/kokuho/", "国民健康保険"), Link("https://x.lg.jp/event/", "イベント情報")]
    with FakeOpenAIServer(api_key="test-key") as server:
        server.enqueue(Reply.json({"scores": [0.9, 0.1]}), Reply.json({"scores": [0.5]}))
        client = OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, timeout_s=5,
                                    sleep=lambda s: None)
        score = llm_link_scorer(client)
        assert score(links, DESCRIPTIONS) == [0.9, 0.1]
        assert score(links, DESCRIPTIONS) == keyword_scores(links, DESCRIPTIONS)  # one score for two links
        sent = server.requests[0].json["messages"][-1]["content"]
    assert "国民健康保険" in sent and "https://x.lg.jp/event/" in sent and "担当課の電話番号" in sent
