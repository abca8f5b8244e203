"""The fetch flow's crawl step (issue 10 §3, document 003 §12.2): variables still missing after the
search results are looked for by crawling the official site in Debian's Chromium; a disabled
crawler, a missing Chromium or a failing crawl leave them missing with the reason in the draft."""

from __future__ import annotations

import json
import shutil

import pytest

from hokan.core.search import SnapshotIndex, SnapshotSearch
from hokan.core.search.snapshot import IndexedPage
from hokan.core.web.fetch import LiveFetcher
from hokan.municipal import flow
from hokan.municipal.crawler import CrawlerOptions
from hokan.municipal.models import Draft, Municipality, Service
from hokan.municipal.seed import sync_catalogue
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from tests.fakes.site_server import FakeSite

pytestmark = pytest.mark.django_db

# The search result: the service's page, without its fee or phone; its only links are rendered
# by a script (none in the HTML as served).
START = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>粗大ごみの収集</title>
<script src="/menu.js"></script></head><body><h1>粗大ごみの収集</h1>
<p>粗大ごみは事前の申し込みが必要です。</p><ul id="menu"></ul></body></html>"""

MENU_JS = """document.addEventListener("DOMContentLoaded", () => {
  for (const [href, text] of [["/event/", "イベント情報"], ["/kurashi/sodaigomi/ryoukin/", "粗大ごみの手数料と申し込み先"]]) {
    const a = document.createElement("a"); a.href = href; a.textContent = text;
    const li = document.createElement("li"); li.appendChild(a); document.getElementById("menu").appendChild(li);
  }
});"""

DETAIL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>粗大ごみの手数料</title></head><body>
<h1>粗大ごみの手数料と申し込み</h1><p>手数料：1点につき500円</p><img src="http://10.0.0.1/logo.png" alt="">
<h2>このページに関するお問い合わせ</h2><p>環境政策課 ごみ対策係</p><p>電話：0778-53-2229</p></body></html>"""

class RoutingLLM(FakeOpenAIServer):
    """The fake OpenAI server answering by request: the service's query, a link relevance per
    link listed (0.9 for a link naming 手数料, else 0), and no value for an extraction."""

    def _next_reply(self) -> Reply:
        messages = self.requests[-1].json["messages"]
        prompt = messages[-1]["content"]
        if "【リンク】" in prompt:
            links = [line for line in prompt.split("【リンク】", 1)[1].splitlines() if line[:1].isdigit()]
            return Reply.json({"scores": [0.9 if "手数料" in line else 0.0 for line in links]})
        if "municipal_query" in json.dumps(self.requests[-1].json, ensure_ascii=False):
            return Reply.json({"query": "鯖江市 粗大ごみ 申し込み"})
        return Reply.json({})


needs_chromium = pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium not found")


@pytest.fixture
def sabae(db):
    sync_catalogue()
    return Municipality.objects.create(lgcode="182079", slug="sabae", name="鯖江市", prefecture="福井県",
                                       level="city", official_url="https://www.city.sabae.fukui.jp/")


@pytest.fixture
def site(sabae):
    with FakeSite() as fake:
        fake.put("/kurashi/sodaigomi/", START)
        fake.put("/menu.js", MENU_JS, content_type="application/javascript")
        fake.put("/kurashi/sodaigomi/ryoukin/", DETAIL)
        fake.put("/event/", "<html><body>イベント</body></html>")
        sabae.official_url = fake.url("/")  # the official site is the local fake
        sabae.save()
        yield fake


def _run(sabae, site, crawler: flow.CrawlSetup | None, llm=None) -> tuple[Draft, dict]:
    search = SnapshotSearch(index=SnapshotIndex([IndexedPage(site.url("/kurashi/sodaigomi/"), "粗大ごみの収集",
                                                             "粗大ごみの収集 粗大ごみ 申し込み")]))
    with LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0) as fetcher:
        ctx = flow.FlowContext(fetcher=fetcher, search=search, llm=llm, sleep=lambda s: None, notify=False,
                               crawler=crawler)
        run = flow.start_run(sabae, [Service.objects.get(key="sodaigomi")])
        progress = flow.execute(run, context=lambda job, chunk: ctx)
    assert progress.status == "completed", progress.message
    run.job.refresh_from_db()
    return Draft.objects.get(), run.job.totals


def _crawl_notes(draft: Draft) -> list[dict]:
    return [error for error in draft.errors if error["step"] == "crawl"]


@pytest.fixture
def llm(settings):
    with RoutingLLM(api_key="test-key") as server:
        settings.REDIS_URL = ""
        settings.HOKAN_LLM_PROVIDER = "openai"
        settings.OPENAI_API_KEY = "test-key"
        settings.HOKAN_LLM_BASE_URL = server.base_url
        settings.HOKAN_LLM_MODEL = "gpt-4o-mini"
        settings.HOKAN_LLM_MAX_RETRIES = 0
        settings.HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT = 100
        yield server


@pytest.mark.slow
@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_missing_values_are_found_on_a_js_linked_page_of_the_official_site(sabae, site, llm):
    from hokan.core.budget import get_ledger

    draft, totals = _run(sabae, site, flow.CrawlSetup(options=CrawlerOptions(timeout_s=15), allow_hosts=("127.0.0.1",)),
                         llm=flow.llm_client())
    detail = site.url("/kurashi/sodaigomi/ryoukin/")
    phone, fee = draft.variables["sodaigomi_phone"], draft.variables["sodaigomi_fee"]
    assert phone["value"] == "0778-53-2229" and phone["source_url"] == detail and phone["method"] == "rule"
    assert fee["value"] == "500円" and fee["source_url"] == detail
    for item in (phone, fee):  # a verbatim quote of the linked page
        assert item["quote"] and item["quote"] in DETAIL and item["raw"] in item["quote"]
    assert "sodaigomi_phone" not in draft.missing_variables and "sodaigomi_fee" not in draft.missing_variables
    # the search result read by the fetcher, then as Chromium rendered it (its script added text:
    # read again, not counted twice), then the linked page (counted)
    start = site.url("/kurashi/sodaigomi/")
    assert [(s["url"], s.get("via", "")) for s in draft.sources] == [(start, ""), (start, "crawler"),
                                                                    (detail, "crawler")]
    assert totals["pages"] == 2 and totals["crawled_pages"] == 2
    # the links were scored by the LLM (once, for the start page's two JS links), through the ledger
    scored = [r for r in llm.requests if "【リンク】" in r.json["messages"][-1]["content"]]
    assert len(scored) == 1 and "粗大ごみの手数料と申し込み先" in scored[0].json["messages"][-1]["content"]
    assert totals["llm_calls"] == len(llm.requests) == get_ledger("municipal").snapshot().calls
    assert draft.search_attempts == 2  # the search and the crawl
    notes = _crawl_notes(draft)
    assert "から 2 ページ" in notes[0]["message"] and "sodaigomi_fee" in notes[0]["message"] and notes[0]["info"]
    assert totals["errors"] == len([e for e in draft.errors if not e.get("info")])  # records are not errors
    assert notes[0]["url"] == start
    refused = [n for n in notes if n["url"] == "http://10.0.0.1/logo.png"]
    assert refused and "プライベートアドレス" in refused[0]["message"]  # the editor sees the refused request
    requested = site.paths()
    assert "/menu.js" in requested and "/event/" not in requested  # the irrelevant link is not followed


def test_a_disabled_crawler_or_a_missing_chromium_leaves_the_values_missing_with_the_reason(sabae, site, tmp_path):
    draft, totals = _run(sabae, site, flow.CrawlSetup(enabled=False, allow_hosts=("127.0.0.1",)))
    assert "sodaigomi_phone" in draft.missing_variables and "sodaigomi_fee" in draft.missing_variables
    assert "sodaigomi_phone" not in draft.variables
    (note,) = _crawl_notes(draft)
    assert "MUNICIPAL_CRAWLER_ENABLED=false" in note["message"] and totals["crawled_pages"] == 0
    assert draft.search_attempts == 1

    Draft.objects.all().delete()
    missing = str(tmp_path / "no-chromium")
    draft, _ = _run(sabae, site, flow.CrawlSetup(options=CrawlerOptions(chromium_path=missing)))
    assert "sodaigomi_phone" in draft.missing_variables
    (note,) = _crawl_notes(draft)
    assert missing in note["message"] and "インストールされていない" in note["message"]
    assert site.paths().count("/kurashi/sodaigomi/ryoukin/") == 0


@needs_chromium
def test_a_failing_crawl_is_recorded_and_the_draft_keeps_what_was_found(sabae, site):
    # the guard refuses the start page (127.0.0.1 not allowed to the crawler) before Chromium starts
    draft, totals = _run(sabae, site, flow.CrawlSetup(allow_hosts=()))
    assert draft.missing_variables and "sodaigomi_phone" not in draft.variables
    (note,) = _crawl_notes(draft)
    assert "巡回に失敗しました" in note["message"] and "ループバックアドレス" in note["message"]
    assert note["url"] == site.url("/kurashi/sodaigomi/") and totals["crawled_pages"] == 0


def test_the_settings_switch_the_crawler(settings):
    settings.MUNICIPAL_CRAWLER_ENABLED = False
    settings.CRAWLER_MAX_PAGES = 2
    setup = flow.context_from_settings().crawler
    assert setup is not None and setup.enabled is False and setup.options.max_pages == 2


@pytest.mark.slow
@needs_chromium
def test_with_the_snapshot_fetcher_the_crawl_stays_offline(sabae, tmp_path, settings):
    """The demo's and offline runs' case: the official site's pages from a snapshot folder at
    their real addresses; the crawler asks no network (no address lookup: the start page of
    www.city.sabae.fukui.jp would not resolve here) and refuses what the snapshot lacks."""
    from hokan.core.web.snapshot import SnapshotFetcher

    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    base = "https://www.city.sabae.fukui.jp"
    rows = [("kurashi/sodaigomi/", "start.html", START, "text/html; charset=utf-8"),
            ("menu.js", "menu.js", MENU_JS, "application/javascript"),
            ("kurashi/sodaigomi/ryoukin/", "detail.html", DETAIL, "text/html; charset=utf-8")]
    lines = ["url,path,content_type"]
    for path, name, body, content_type in rows:
        (tmp_path / name).write_text(body, encoding="utf-8")
        lines.append(f'{base}/{path},{name},"{content_type}"')
    (tmp_path / "snapshot.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    search = SnapshotSearch(index=SnapshotIndex([IndexedPage(f"{base}/kurashi/sodaigomi/", "粗大ごみの収集",
                                                             "粗大ごみの収集 粗大ごみ 申し込み")]))
    ctx = flow.FlowContext(fetcher=SnapshotFetcher(tmp_path), search=search, llm=None, sleep=lambda s: None,
                           notify=False, crawler=flow.CrawlSetup(options=CrawlerOptions(timeout_s=15)))
    run = flow.start_run(sabae, [Service.objects.get(key="sodaigomi")])
    assert flow.execute(run, context=lambda job, chunk: ctx).status == "completed"
    draft = Draft.objects.get()
    assert draft.variables["sodaigomi_phone"]["source_url"] == f"{base}/kurashi/sodaigomi/ryoukin/"
    notes = _crawl_notes(draft)
    assert "から 2 ページ" in notes[0]["message"], notes
    (refused,) = [n for n in notes if n["url"] == "http://10.0.0.1/logo.png"]
    assert "スナップショット" in refused["message"]


def test_the_dry_run_bounds_the_llm_calls_a_crawl_adds(sabae, settings):
    from typer.testing import CliRunner

    from hokan.municipal.command import app

    def dry() -> str:
        result = CliRunner().invoke(app, ["run", "--id", "sabae", "--services", "sodaigomi", "--free-tier",
                                          "conservative", "--dry-run"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    settings.CRAWLER_CHROMIUM_PATH = shutil.which("sh")  # any executable: the dry run starts nothing
    # 1 query + 2 pages; a crawl adds one link scoring (one page left to follow) and the re-rendered start page
    assert "ページ 2 件、LLM 呼び出し最大 3 回（公式サイトの巡回時は +2 回）" in dry()
    settings.MUNICIPAL_CRAWLER_ENABLED = False
    assert "LLM 呼び出し最大 3 回\n" in dry()
