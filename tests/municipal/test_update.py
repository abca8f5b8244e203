"""The periodic update (§4.2): an unchanged page costs no LLM call and makes no version; a changed
value makes a new version with the change and a notice; the fetch flow's skips are recorded."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from hokan.core.search import SnapshotIndex, SnapshotSearch, SnapshotSource
from hokan.core.web.snapshot import SnapshotFetcher
from hokan.municipal import flow, update
from hokan.municipal.models import Draft, DraftVersion, Municipality, Service
from hokan.municipal.seed import sync_catalogue

pytestmark = pytest.mark.django_db

URL = "https://www.vill.otoineppu.hokkaido.jp/kurashi/juminhyo.html"
PAGE = """<html><head><title>住民票の写しの交付</title></head><body>
<h1>住民票の写しの交付</h1><p>住民票の写しは窓口で交付します。</p>
<h2>このページに関するお問い合わせ</h2><p>音威子府村役場 住民課住民生活室</p><p>電話：{phone}</p>
</body></html>"""


@pytest.fixture
def llm(settings, fake_openai_server):
    settings.REDIS_URL = ""
    settings.HOKAN_LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "test-key"
    settings.HOKAN_LLM_BASE_URL = fake_openai_server.base_url
    settings.HOKAN_LLM_MODEL = "gpt-4o-mini"
    settings.HOKAN_LLM_MAX_RETRIES = 0
    settings.HOKAN_LLM_CACHE_ENABLED = True
    settings.HOKAN_MUNICIPAL_MONTHLY_CALL_LIMIT = 100
    return fake_openai_server


def _site(tmp_path, phone: str, extra: str = ""):
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / "juminhyo.html").write_text(PAGE.format(phone=phone), encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (folder / "snapshot.csv").write_text(
        "url,path,content_type\n"
        f"{URL},juminhyo.html,text/html; charset=utf-8\n"
        "https://www.vill.otoineppu.hokkaido.jp/files/juminhyo.pdf,broken.pdf,application/pdf\n", encoding="utf-8")
    return folder


def _context(folder):
    from hokan.core.search.snapshot import IndexedPage

    index = SnapshotIndex.from_sources([SnapshotSource(folder)])
    # the broken PDF ranks first (its title names the service): read, refused, the next URL is tried
    pages = [IndexedPage("https://www.vill.otoineppu.hokkaido.jp/files/juminhyo.pdf", "住民票の写しの交付 申請書",
                         "住民票の写しの交付 住民票の写しの交付"),
             IndexedPage("https://www.vill.otoineppu.hokkaido.jp/missing.html", "住民票の写しの交付",
                         "住民票の写しの交付 住民票"), *index.pages]
    search = SnapshotSearch(index=SnapshotIndex(pages))
    fetcher = SnapshotFetcher(folder)
    sleeps: list[float] = []

    def factory(job, chunk):
        return flow.FlowContext(fetcher=fetcher, search=search, llm=flow.llm_client(), sleep=sleeps.append)

    return factory, sleeps


def test_unchanged_pages_cost_nothing_and_a_changed_value_makes_a_version_and_a_notice(llm, tmp_path, caplog):
    sync_catalogue()
    otoi = Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                       level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")
    juminhyo = Service.objects.get(key="juminhyo")
    folder = _site(tmp_path, "01656-5-3312")
    factory, sleeps = _context(folder)
    caplog.set_level(logging.INFO, logger="hokan.notify")

    first = flow.execute(flow.start_run(otoi, [juminhyo]), context=factory)
    assert first.status == "completed"
    paid = len(llm.requests)
    assert paid == 2  # the query, then one extraction of the page (rules found phone and department)
    draft = Draft.objects.get()
    assert draft.variables["juminhyo_phone"]["value"] == "01656-5-3312"
    assert draft.variables["juminhyo_phone"]["quote"] and draft.variables["juminhyo_phone"]["source_url"] == URL
    steps = [(e["step"], e["url"].rsplit("/", 1)[-1]) for e in draft.errors]
    assert ("documents", "juminhyo.pdf") in steps and ("fetch", "missing.html") in steps
    assert "【新しい下書き】音威子府村 住民票の写しの交付" in caplog.text
    Municipality.objects.filter(pk=otoi.pk).update(last_fetched_at=timezone.now() - dt.timedelta(days=40))
    assert list(update.due(days=30)) == [otoi] and list(update.due(days=60)) == []

    # the same pages again: the cache answers the query, the page's text hash its extraction
    flow.execute(update.start_update(otoi), context=factory)
    assert len(llm.requests) == paid
    assert DraftVersion.objects.count() == 1

    # the page changes its phone number: a new version listing the change, and a notice
    _site(tmp_path, "01656-5-3399")
    caplog.clear()
    flow.execute(update.start_update(otoi), context=factory)
    draft.refresh_from_db()
    assert draft.version == 2 and draft.variables["juminhyo_phone"]["value"] == "01656-5-3399"
    latest = DraftVersion.objects.get(number=2)
    assert latest.reason == "update"
    assert {"variable": "juminhyo_phone", "kind": "changed", "before": "01656-5-3312",
            "after": "01656-5-3399"} in latest.changes
    assert "【下書き更新】音威子府村 住民票の写しの交付" in caplog.text and "01656-5-3312 → 01656-5-3399" in caplog.text
    assert update.due(days=30).count() == 0
    assert sleeps == []  # one service per run: no pause between services


def test_a_rules_only_extraction_is_not_reused_once_an_llm_is_configured(llm, tmp_path):
    sync_catalogue()
    otoi = Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                       level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")
    juminhyo = Service.objects.get(key="juminhyo")
    folder = _site(tmp_path, "01656-5-3312")
    factory, _ = _context(folder)

    def offline(job, chunk):
        ctx = factory(job, chunk)
        ctx.llm = None
        return ctx

    flow.execute(flow.start_run(otoi, [juminhyo]), context=offline)
    assert llm.requests == []
    flow.execute(flow.start_run(otoi, [juminhyo]), context=factory)
    # the query and the page's extraction are asked now: the stored rules-only result does not stand in
    assert len(llm.requests) == 2
    assert any("juminhyo_fee" in str(r.json) for r in llm.requests)
