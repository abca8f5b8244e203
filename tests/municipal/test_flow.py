"""The fetch flow's unhappy paths: a 503 page retried 3 times then skipped and recorded, a bad LLM key
or a used-up free tier stopping the run with a clear reason, a search finding nothing, and a run
started, watched and refused through the API."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from hokan.core.api_keys import ApiKey
from hokan.core.search import SnapshotIndex, SnapshotSearch
from hokan.core.search.snapshot import IndexedPage
from hokan.core.web.fetch import LiveFetcher
from hokan.municipal import flow
from hokan.municipal.models import Draft, Municipality, Service
from hokan.municipal.seed import sync_catalogue
from tests.fakes.local_http import RecordedHTTPRequest
from tests.fakes.site_server import FakeSite, _Handler

pytestmark = pytest.mark.django_db

PAGE = """<html><body><h1>住民票の写しの交付</h1>
<h2>このページに関するお問い合わせ</h2><p>音威子府村役場 住民課住民生活室</p><p>電話：01656-5-3312</p></body></html>"""


class FlakySite(FakeSite):
    """FakeSite answering 503 for the paths in ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()


class _FlakyHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802
        if urlsplit(self.path).path in self.fake.failing:
            self.fake.record(RecordedHTTPRequest(method="GET", path=urlsplit(self.path).path, query={},
                                                 headers=self.header_dict()))
            return self.send_bytes(503, b"busy", "text/plain")
        return super().do_GET()


FlakySite.handler_class = _FlakyHandler


@pytest.fixture
def otoineppu(db):
    sync_catalogue()
    return Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                       level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")


def _on(municipality, site) -> None:
    """The municipality's official site is the local fake (the search keeps to its host)."""
    municipality.official_url = site.url("/")
    municipality.save()


def _search(*urls: str) -> SnapshotSearch:
    return SnapshotSearch(index=SnapshotIndex([IndexedPage(u, "住民票の写しの交付", "住民票の写しの交付 住民票")
                                               for u in urls]))


def test_a_503_page_is_retried_three_times_then_skipped_and_the_next_url_read(otoineppu):
    with FlakySite() as site:
        site.failing.add("/busy.html")
        _on(otoineppu, site)
        good = site.put("/juminhyo.html", PAGE)
        sleeps: list[float] = []
        fetcher = LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0)
        ctx = flow.FlowContext(fetcher=fetcher, search=_search(site.url("/busy.html"), good), llm=None,
                               sleep=sleeps.append, notify=False)
        run = flow.start_run(otoineppu, [Service.objects.get(key="juminhyo")])
        progress = flow.execute(run, context=lambda job, chunk: ctx)
    assert progress.status == "completed"
    assert sleeps == [1.0, 2.0, 4.0]  # 3 retries, waits injected (the test never sleeps)
    assert site.paths().count("/busy.html") == 4
    draft = Draft.objects.get()
    (error,) = [e for e in draft.errors if e["step"] == "fetch"]
    assert error["url"].endswith("/busy.html") and "4回試行" in error["message"]
    assert draft.variables["juminhyo_phone"]["value"] == "01656-5-3312"
    assert draft.variables["juminhyo_phone"]["source_url"] == good
    assert run.job.totals["llm_calls"] == 0 and run.job.totals["pages"] == 1


def test_a_search_finding_nothing_leaves_a_draft_with_the_reason(otoineppu):
    ctx = flow.FlowContext(fetcher=LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0),
                           search=SnapshotSearch(index=SnapshotIndex([])), llm=None, sleep=lambda s: None,
                           notify=False)
    run = flow.start_run(otoineppu, [Service.objects.get(key="kokuho")])
    assert flow.execute(run, context=lambda job, chunk: ctx).status == "completed"
    draft = Draft.objects.get()
    assert draft.variables == {} and len(draft.missing_variables) == Service.objects.get(key="kokuho").variables.count()
    assert draft.errors[0]["step"] == "search" and "0件" in draft.errors[0]["message"]
    assert draft.search_attempts == 1


@pytest.fixture
def llm(settings, fake_openai_server):
    settings.REDIS_URL = ""
    settings.HOKAN_LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "wrong-key"
    settings.HOKAN_LLM_BASE_URL = fake_openai_server.base_url
    settings.HOKAN_LLM_MODEL = "gpt-4o-mini"
    settings.HOKAN_LLM_MAX_RETRIES = 0
    settings.HOKAN_MUNICIPAL_SERVICE_DELAY_S = 0
    return fake_openai_server


def test_a_bad_llm_key_interrupts_the_run_with_its_reason_and_saves_nothing(otoineppu, llm):
    with FakeSite() as site:
        _on(otoineppu, site)
        page = site.put("/juminhyo.html", PAGE)
        ctx = flow.FlowContext(fetcher=LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0), search=_search(page),
                               llm=flow.llm_client(), sleep=lambda s: None, notify=False)
        run = flow.start_run(otoineppu, [Service.objects.get(key="juminhyo"), Service.objects.get(key="kokuho")])
        progress = flow.execute(run, context=lambda job, chunk: ctx)
    assert progress.status == "interrupted" and "LLMConfigError" in progress.message
    assert len(llm.requests) == 1  # one refused request, not one per service
    assert not Draft.objects.exists()


def test_a_used_up_free_tier_stops_the_run_and_resume_continues_the_next_day(otoineppu, llm, settings):
    from hokan.core.budget import local_today
    from hokan.municipal.quotas import MunicipalQuotas

    settings.OPENAI_API_KEY = "test-key"
    llm.api_key = "test-key"
    with FakeSite() as site:
        _on(otoineppu, site)
        page = site.put("/juminhyo.html", PAGE)
        today = local_today()  # relative to today: the suite passes on any date (a ledger day in the past expires)

        def factory(job, chunk, day=None):
            quotas = MunicipalQuotas("conservative", today=day or today)
            return flow.FlowContext(fetcher=LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0),
                                    search=_search(page), llm=flow.llm_client(quotas),
                                    pages_per_service=quotas.pages_per_service, sleep=lambda s: None, notify=False,
                                    quotas=quotas)

        quotas = MunicipalQuotas("conservative", today=today)
        for n in range(quotas.tier.llm_per_day):  # the day's 50 free LLM calls are used up already
            quotas.claim_llm_call(f"earlier:{n}")
        run = flow.start_run(otoineppu, [Service.objects.get(key="juminhyo")], free_tier="conservative")
        stopped = flow.execute(run, context=factory)
        assert stopped.status == "interrupted" and "無料枠" in stopped.message and llm.requests == []
        flow.resume_run(run)
        resumed = flow.execute(run, context=lambda job, chunk: factory(job, chunk, today + dt.timedelta(days=1)))
    assert resumed.status == "completed" and len(llm.requests) >= 1
    assert Draft.objects.get().variables["juminhyo_phone"]["value"] == "01656-5-3312"


@pytest.mark.django_db(transaction=True)
def test_a_run_through_the_api_status_interrupt_and_conflicts(otoineppu, client, settings, tmp_path):
    cache.clear()
    _, key = ApiKey.generate("自治体連携")
    headers = {"X-API-Key": key}
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = ""
    settings.HOKAN_LLM_PROVIDER = "offline"
    settings.HOKAN_MUNICIPAL_SERVICE_DELAY_S = 0
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "juminhyo.html").write_text(PAGE, encoding="utf-8")
    url = "https://www.vill.otoineppu.hokkaido.jp/kurashi/juminhyo.html"
    (folder / "snapshot.csv").write_text(f"url,path,content_type\n{url},juminhyo.html,text/html\n", encoding="utf-8")
    settings.HOKAN_SNAPSHOT_DIR = str(folder)
    settings.SEARCH_PROVIDER = "snapshot"
    settings.SEARCH_SNAPSHOT_DIRS = [str(folder)]
    started = client.post("/api/municipal/jobs", {"municipality": "otoineppu", "services": ["juminhyo"]},
                          content_type="application/json", headers=headers)
    assert started.status_code == 202, started.content
    body = started.json()
    assert body["status"] in ("pending", "running", "completed") and body["services_total"] == 1
    from hokan.municipal.api import _THREADS

    for thread in list(_THREADS):  # no broker: the run works in a thread of the web process
        thread.join(timeout=60)
    status = client.get("/api/municipal/fetch/status", {"municipality": "014702"}, headers=headers).json()
    assert status["job_id"] == body["job_id"] and status["status"] == "completed"
    assert status["services"][0]["status"] == "done" and status["services_done"] == 1
    again = client.post(f"/api/municipal/jobs/{body['job_id']}/resume", headers=headers)
    assert again.status_code == 409 and "完了" in again.json()["detail"]
    stopped = client.post(f"/api/municipal/jobs/{body['job_id']}/interrupt", headers=headers).json()
    assert stopped["status"] == "completed"  # a finished job stays finished
    assert Draft.objects.get().variables["juminhyo_phone"]["source_url"] == url


def test_an_unusable_search_provider_interrupts_the_run_instead_of_retrying_each_service(otoineppu, settings, caplog):
    from hokan.core import jobs

    settings.SEARCH_PROVIDER = "brave"
    settings.BRAVE_SEARCH_API_KEY = ""
    services = [Service.objects.get(key="juminhyo"), Service.objects.get(key="kokuho")]
    for execute in (lambda run: flow.execute(run), lambda run: jobs.run_job(run.job)):  # the CLI's, Celery's handler
        run = flow.start_run(otoineppu, services)
        progress = execute(run)
        assert progress.status == "interrupted" and "BRAVE_SEARCH_API_KEY" in progress.message
        assert progress.pending == 2 and progress.failed == 0  # nothing retried; resumable once configured
    assert not Draft.objects.exists()
    assert caplog.text.count("【取得中断】音威子府村: 0/2 サービス完了") == 2 and "--resume" in caplog.text


def test_the_run_command_takes_free_tier_with_or_without_its_mode(otoineppu):
    from typer.testing import CliRunner

    from hokan.municipal.command import app

    def dry(*extra: str):
        return CliRunner().invoke(app, ["run", "--id", "otoineppu", "--services", "juminhyo", *extra, "--dry-run"],
                                  env={"COLUMNS": "200"})

    assert "ページ 5 件" in dry("--free-tier").output
    conservative = dry("--free-tier", "conservative")
    assert conservative.exit_code == 0 and "ページ 2 件、LLM 呼び出し最大 3 回" in conservative.output
    assert "site:vill.otoineppu.hokkaido.jp" in conservative.output
    for bad in (("--free-tier", "cheap"), ("conservative",)):
        refused = dry(*bad)
        assert refused.exit_code == 1 and "default か conservative" in refused.output
    unknown = CliRunner().invoke(app, ["run", "--id", "otoineppu", "--services", "nosuch"])
    assert unknown.exit_code == 1 and "nosuch" in unknown.output
