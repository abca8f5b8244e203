"""The enrichment job end to end: snapshot pages → rules → fake LLM server → stored values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.core.budget import DatabaseLedger, Limits
from hokan.core.llm.offline import OfflineClient
from hokan.core.llm.openai_compat import OpenAICompatClient
from hokan.core.web import SnapshotFetcher
from hokan.leads.enrich import enrich_leads
from hokan.leads.models import EnrichmentRun, Lead, LeadFieldSource
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_lead_at_a_time(settings):
    """In-process runs share the test's open transaction: no worker threads (they would not see
    it). The concurrent path runs in subprocesses against a file database (tests below)."""
    settings.HOKAN_ENRICH_CONCURRENCY = 1


@pytest.fixture
def no_pages(tmp_path) -> SnapshotFetcher:
    """A snapshot with no pages, for leads that have no website to fetch."""
    (tmp_path / "snapshot.csv").write_text("url,path,content_type\n", encoding="utf-8")
    return SnapshotFetcher(tmp_path)


def ledger(calls: int = 100, cost: str = "10", daily: int = 100) -> DatabaseLedger:
    return DatabaseLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily))


def client_for(server, sleeps: list[float], **kwargs) -> OpenAICompatClient:
    options = {"timeout_s": 1.0, "max_retries": 3, "rate_limit_wait_s": 600.0, "backoff_initial_s": 0.01,
               "allow_hosts": ["127.0.0.1"]}
    options.update(kwargs)
    return OpenAICompatClient("perplexity", "sonar", "test-key", server.base_url, sleep=sleeps.append, **options)


def answer(**items: str | None) -> Reply:
    return Reply.json(
        {label: {"value": value, "source_url": "https://example.co.jp/company/", "quote": f"{label} {value}"}
         for label, value in items.items()},
        cost_usd=Decimal("0.006"),
    )


FULL = dict(法人番号=None, 業種="ソフトウェア", 事業概要="業務システムの受託開発", 所在地="東京都港区芝公園4-2-8",
            従業員数="120名", 売上高="非公開", 資本金="5,000万円", 設立年="平成13年", 公式サイト=None,
            電話番号="03-1234-5678", 代表者名="山田 太郎")


def test_it_fills_missing_fields_from_real_pages_with_rules_and_skips_the_llm_offline(company_pages):
    sega = Lead.objects.create(name="株式会社セガ", website_url="https://www.sega.co.jp/company/outline/")
    koga = Lead.objects.create(name="株式会社公雅建設", website_url="https://koga-kensetsu.co/")
    report = enrich_leads(fetcher=SnapshotFetcher(company_pages), client=OfflineClient(), ledger=ledger())
    sega.refresh_from_db()
    koga.refresh_from_db()
    assert int(sega.capital) == 100_000_000
    assert sega.established_year == 1960
    source = LeadFieldSource.objects.get(lead=sega, field="capital")
    assert source.method == "rule"
    assert source.source_url == "https://www.sega.co.jp/company/outline/"
    assert "1億円" in source.quote
    # The homepage links to its profile page, which holds the capital in 千円.
    assert int(koga.capital) == 5_000_000
    assert "company.html" in LeadFieldSource.objects.get(lead=koga, field="capital").source_url
    assert {o.llm for o in report.outcomes} == {"offline"}
    assert report.llm_calls == 0 and report.filled_by_method["rule"] >= 6
    # Still missing fields wait for an LLM run: the flag stays on.
    assert Lead.objects.get(pk=sega.pk).needs_ai_update


def test_it_asks_the_llm_only_for_what_rules_left_missing(company_pages, fake_openai_server):
    lead = Lead.objects.create(name="株式会社セガ", website_url="https://www.sega.co.jp/company/outline/")
    fake_openai_server.enqueue(answer(業種="ゲーム", 電話番号="03-6864-2400"))
    report = enrich_leads(fetcher=SnapshotFetcher(company_pages), client=client_for(fake_openai_server, []),
                          ledger=ledger())
    (request,) = fake_openai_server.requests
    prompt = request.json["messages"][-1]["content"]
    missing_line = next(line for line in prompt.splitlines() if line.startswith("欠損項目"))
    assert "業種" in missing_line and "電話番号" in missing_line
    assert "資本金" not in missing_line and "設立年" not in missing_line  # the page had them
    assert "株式会社セガ" in prompt
    lead.refresh_from_db()
    assert (lead.industry, lead.phone) == ("ゲーム", "03-6864-2400")
    assert LeadFieldSource.objects.get(lead=lead, field="industry").method == "ai"
    assert LeadFieldSource.objects.get(lead=lead, field="capital").method == "rule"
    assert report.llm_calls == 1 and not lead.needs_ai_update and lead.ai_last_updated is not None


def test_it_stores_llm_values_with_provenance_and_drops_vague_or_invalid_ones(fake_openai_server, no_pages):
    lead = Lead.objects.create(name="株式会社テスト")
    bad = dict(FULL, 電話番号="12-34", 資本金="詳細はお問い合わせください")
    fake_openai_server.enqueue(answer(**bad))
    book = ledger()
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    lead.refresh_from_db()
    assert (lead.prefecture, lead.city, lead.location) == ("東京都", "港区", "芝公園4-2-8")
    assert (lead.employee_count, lead.established_year, lead.representative_name) == (120, 2001, "山田 太郎")
    assert lead.capital is None and lead.phone == "" and lead.revenue is None
    source = LeadFieldSource.objects.get(lead=lead, field="employee_count")
    assert (source.method, source.source_url, source.quote) == ("ai", "https://example.co.jp/company/", "従業員数 120名")
    assert source.confidence < 0.7  # not found in any page we fetched: unverified
    assert set(report.outcomes[0].still_missing) >= {"capital", "phone", "revenue"}
    assert book.snapshot().calls == 1 and book.snapshot().cost_usd == Decimal("0.006")


def test_it_never_overwrites_or_refills_a_manual_value(fake_openai_server, no_pages):
    lead = Lead.objects.create(name="株式会社テスト")
    LeadFieldSource.objects.create(lead=lead, field="capital", method="manual")  # cleared by hand
    Lead.objects.filter(pk=lead.pk).update(industry="手入力の業種")
    LeadFieldSource.objects.create(lead=lead, field="industry", method="manual")
    fake_openai_server.enqueue(answer(**FULL))
    enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(), fetcher=no_pages)
    lead.refresh_from_db()
    assert lead.capital is None and lead.industry == "手入力の業種"
    prompt = fake_openai_server.requests[0].json["messages"][-1]["content"]
    missing_line = next(line for line in prompt.splitlines() if line.startswith("欠損項目"))
    assert "資本金" not in missing_line and "業種" not in missing_line


@pytest.mark.parametrize(
    "failures",
    [
        [Reply.rate_limited(retry_after="2")],
        [Reply.error(500, message="upstream")],
        [Reply.slow(3.0)],
        [Reply.rate_limited(), Reply.error(503, message="busy")],
    ],
    ids=["429-retry-after", "500", "timeout", "429-then-503"],
)
def test_it_retries_transient_failures_and_pays_once(fake_openai_server, failures, no_pages):
    Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(*failures, answer(**FULL))
    sleeps: list[float] = []
    book = ledger()
    report = enrich_leads(client=client_for(fake_openai_server, sleeps), ledger=book, fetcher=no_pages)
    assert report.llm_calls == 1 and report.leads_failed == 0
    assert Lead.objects.get().employee_count == 120
    assert len(sleeps) == len(failures)
    if failures[0].status == 429 and failures[0].headers.get("Retry-After") == "2":
        assert sleeps[0] == 2  # the provider's Retry-After (the shared limiter also holds every caller for it)
    if len(failures) == 2:
        assert sleeps[0] == 600  # a 429 without Retry-After waits the configured time
    snap = book.snapshot()
    assert (snap.calls, snap.cost_usd, snap.reserved_calls) == (1, Decimal("0.006"), 0)


@pytest.mark.parametrize(
    "content",
    ['回答は以下の通りです。\n```json\n{"従業員数": {"value": "120名", "source_url": null, "quote": null}}\n```\n以上です。',
     '{"従業員数": {"value": "120名", "source_url": null, "quote": "従業員数 120名"}, "資本金": {"value": "5,0'],
    ids=["prose-wrapped", "truncated"],
)
def test_it_repairs_json_wrapped_in_prose_or_truncated(fake_openai_server, content, no_pages):
    Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(Reply.text(content, cost_usd=Decimal("0.004")))
    book = ledger()
    enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    lead = Lead.objects.get()
    assert lead.employee_count == 120 and lead.capital is None
    assert (book.snapshot().calls, book.snapshot().cost_usd) == (1, Decimal("0.004"))


def test_it_asks_once_more_after_garbage_and_counts_both_calls(fake_openai_server, no_pages):
    Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(Reply.text("申し訳ありませんが、お答えできません。", cost_usd=Decimal("0.003")), answer(**FULL))
    book = ledger()
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    assert len(fake_openai_server.requests) == 2
    assert Lead.objects.get().employee_count == 120
    assert (book.snapshot().calls, book.snapshot().cost_usd) == (2, Decimal("0.009"))
    assert report.cost_usd == Decimal("0.009")


def test_it_keeps_old_values_when_the_llm_fails_for_good(fake_openai_server, no_pages):
    lead = Lead.objects.create(name="株式会社テスト", industry="製造業")
    fake_openai_server.enqueue(Reply.error(400, message="bad request"))
    book = ledger()
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    lead.refresh_from_db()
    assert lead.industry == "製造業" and lead.needs_ai_update
    assert report.leads_failed == 1 and "LLMRequestError" in report.outcomes[0].error
    assert len(fake_openai_server.requests) == 1  # a 400 is final: no retry
    assert (book.snapshot().calls, book.snapshot().reserved_calls) == (0, 0)


def test_it_stops_at_the_monthly_call_limit_and_keeps_what_was_done(fake_openai_server, no_pages):
    first = Lead.objects.create(name="株式会社一番")
    Lead.objects.create(name="株式会社二番")
    fake_openai_server.enqueue(answer(**FULL), answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(calls=1),
                          fetcher=no_pages)
    assert len(fake_openai_server.requests) == 1
    assert Lead.objects.get(pk=first.pk).employee_count == 120
    assert "上限" in report.stopped_reason
    assert EnrichmentRun.objects.get().status == EnrichmentRun.Status.LIMITED


def test_it_processes_never_enriched_leads_first_up_to_the_daily_limit(fake_openai_server, no_pages):
    from django.utils import timezone

    old = Lead.objects.create(name="株式会社古い", ai_last_enriched_at=timezone.now())
    new = Lead.objects.create(name="株式会社新しい")
    fake_openai_server.enqueue(answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(daily=1),
                          fetcher=no_pages)
    assert [o.lead_id for o in report.outcomes] == [new.pk]
    assert Lead.objects.get(pk=old.pk).employee_count is None


def test_a_dry_run_fetches_pays_and_writes_nothing(fake_openai_server, company_pages):
    Lead.objects.create(name="株式会社セガ", website_url="https://www.sega.co.jp/company/outline/")
    Lead.objects.create(name="株式会社テスト")
    report = enrich_leads(dry_run=True, client=client_for(fake_openai_server, []), ledger=ledger(),
                          fetcher=SnapshotFetcher(company_pages))
    assert fake_openai_server.requests == []
    assert not LeadFieldSource.objects.exists()
    assert report.estimated_cost_usd == Decimal("0.10")
    assert report.outcomes[0].fetched == ["https://www.sega.co.jp/company/outline/"]
    assert all(lead.capital is None for lead in Lead.objects.all())


def test_it_writes_a_daily_log_file(fake_openai_server, settings, tmp_path, no_pages):
    settings.HOKAN_LOG_DIR = tmp_path
    Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(), fetcher=no_pages)
    assert report.log_path.parent == tmp_path and report.log_path.name.startswith("ai_enrich_")
    text = report.log_path.read_text(encoding="utf-8")
    assert "株式会社テスト" in text and "employee_count" in text


def test_it_finds_the_profile_page_under_a_common_path_when_the_homepage_is_missing(company_pages, no_pages):
    lead = Lead.objects.create(name="株式会社セガ", website_url="https://www.sega.co.jp/")
    report = enrich_leads(fetcher=SnapshotFetcher(company_pages), client=OfflineClient(), ledger=ledger())
    lead.refresh_from_db()
    assert int(lead.capital) == 100_000_000
    outcome = report.outcomes[0]
    assert outcome.fetched == ["https://www.sega.co.jp/company/outline/"]
    assert any("https://www.sega.co.jp/" in error for error in outcome.fetch_errors)  # the 404 is kept
    assert len(outcome.fetch_errors) <= 1 + 6  # the homepage and at most PROBE_LIMIT probes


GBIZ_CSV = (
    "corporate_number,location,name,employee_number,company_url\n"
    "6010001135680,東京都文京区後楽２丁目６番１号,ＮＥＣネッツエスアイ株式会社,5428,http://www.nesic.co.jp\n"
    "1111111111111,東京都港区芝公園1-1-1,株式会社同名,10,\n"
)


def test_it_asks_the_registry_before_the_site_and_the_llm(tmp_path, fake_openai_server, no_pages):
    from hokan.registry.import_registry import import_registry

    (tmp_path / "gbiz.csv").write_text(GBIZ_CSV, encoding="utf-8")
    import_registry(tmp_path / "gbiz.csv")
    lead = Lead.objects.create(name="NECネッツエスアイ（株）")
    fake_openai_server.enqueue(answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(), fetcher=no_pages)
    lead.refresh_from_db()
    assert (lead.corporate_number, lead.employee_count, lead.prefecture, lead.city) == (
        "6010001135680", 5428, "東京都", "文京区")
    source = LeadFieldSource.objects.get(lead=lead, field="employee_count")
    assert source.method == "registry" and "6010001135680" in source.source_url
    assert report.outcomes[0].registry == "name"
    # The registry's values are not asked again; the site it named was tried.
    prompt = fake_openai_server.requests[0].json["messages"][-1]["content"]
    missing_line = next(line for line in prompt.splitlines() if line.startswith("欠損項目"))
    assert "従業員数" not in missing_line and "所在地" not in missing_line and "法人番号" not in missing_line
    assert report.outcomes[0].fetch_errors and "nesic.co.jp" in report.outcomes[0].fetch_errors[0]


def test_it_asks_gbizinfo_online_when_the_local_registry_does_not_know_the_company(settings, no_pages):
    from tests.fakes.gbizinfo_server import FakeGbizinfoServer

    with FakeGbizinfoServer(token="test-token") as server:
        server.add({"corporate_number": "6010001135680", "name": "ＮＥＣネッツエスアイ株式会社",
                    "location": "東京都文京区後楽２丁目６番１号", "employee_number": 5428})
        server.add({"corporate_number": "1010001000006", "name": "ＮＥＣネッツエスアイサービス株式会社",
                    "location": "東京都文京区後楽２丁目６番１号", "employee_number": 10})
        settings.GBIZINFO_API_TOKEN = "test-token"
        settings.GBIZINFO_API_BASE_URL = server.base_url
        settings.GBIZINFO_API_MIN_INTERVAL_S = 0
        settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
        lead = Lead.objects.create(name="NECネッツエスアイ株式会社")
        report = enrich_leads(client=OfflineClient(), ledger=ledger(), fetcher=no_pages)
    lead.refresh_from_db()
    assert (lead.corporate_number, lead.employee_count, lead.city) == ("6010001135680", 5428, "文京区")
    assert report.outcomes[0].registry == "name"
    assert [r.query.get("name") for r in server.requests] == [["NECネッツエスアイ株式会社"]]


def test_it_goes_on_without_the_registry_when_gbizinfo_refuses_the_token(settings, no_pages):
    from tests.fakes.gbizinfo_server import FakeGbizinfoServer

    with FakeGbizinfoServer(token="right") as server:
        settings.GBIZINFO_API_TOKEN = "wrong"
        settings.GBIZINFO_API_BASE_URL = server.base_url
        settings.HOKAN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
        Lead.objects.create(name="株式会社どこにもない")
        report = enrich_leads(client=OfflineClient(), ledger=ledger(), fetcher=no_pages)
    assert report.leads_failed == 0 and report.outcomes[0].registry == "not_found"


def test_the_cli_prints_the_first_rows_and_keeps_info_lines_off_the_console(tmp_path):
    """``hokan leads enrich`` as a user runs it: the table stops after TABLE_LEADS companies
    (the rest with --all), INFO lines go to the daily log file only (console level WARNING)."""
    import os
    import subprocess
    import sys

    from hokan.leads.command import TABLE_LEADS

    rows = TABLE_LEADS + 2
    (tmp_path / "leads.csv").write_text("企業名\n" + "".join(f"株式会社表示{i}\n" for i in range(1, rows + 1)),
                                         encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL",
                                                              "HOKAN_LOG_LEVEL", "GBIZINFO_API_TOKEN")}
    env.update(HOKAN_DATA_DIR=str(tmp_path), HOKAN_LLM_PROVIDER="offline", COLUMNS="160",
               POWERPLEXY_DAILY_RECORD_LIMIT="1000")

    def hokan(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hokan", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    assert hokan("leads", "import", str(tmp_path / "leads.csv")).returncode == 0
    first = hokan("leads", "enrich")
    assert first.returncode == 0, first.stderr
    assert f"株式会社表示{TABLE_LEADS}" in first.stdout and f"株式会社表示{TABLE_LEADS + 1}" not in first.stdout
    assert "ほか 2 社" in first.stdout and "--all" in first.stdout
    assert " INFO " not in first.stderr, first.stderr
    log = next((tmp_path / "logs").glob("ai_enrich_*.log")).read_text(encoding="utf-8")
    assert " INFO " in log and "LLM skipped (offline)" in log
    again = hokan("leads", "enrich", "--all", "--id", "1", "--id", str(rows))
    assert again.returncode == 0, again.stderr
    assert f"株式会社表示{rows}" in again.stdout and "ほか" not in again.stdout


def test_a_quote_found_on_the_page_the_model_cited_grounds_the_value(fake_openai_server, settings):
    """§10: quotes not on our pages are checked on the cited pages (fetched over HTTP through the
    guarded fetcher, bounded in count, unpaid); the page that proved a value is its source."""
    from hokan.core.web import LiveFetcher
    from tests.fakes.site_server import FakeSite

    settings.HOKAN_GROUNDING_MAX_PAGES = 2
    with FakeSite() as site:
        proof = site.put("/company/", "<table><tr><th>資本金</th><td>5,000万円</td></tr>"
                                      "<tr><th>従業員数</th><td>120名（2026年4月）</td></tr></table>")
        other = site.put("/news/", "<p>新製品のお知らせ</p>")
        item = lambda value, url, quote: {"value": value, "source_url": url, "quote": quote}  # noqa: E731
        fake_openai_server.enqueue(Reply.json({
            "資本金": item("5,000万円", proof + "#capital", "資本金 5,000万円"),
            "従業員数": item("120名", None, "従業員数 120名"),  # no source: the provider's first citation
            "設立年": item("2001年", other, "設立 2001年"),  # the cited page does not say so
            "電話番号": item("03-1234-5678", site.url("/missing/"), "TEL 03-1234-5678"),  # a third URL: not fetched
        }, citations=[proof], cost_usd=Decimal("0.006")))
        lead = Lead.objects.create(name="株式会社出典")
        book = ledger()
        with LiveFetcher(allow_hosts=["127.0.0.1"], delay_s=0) as fetcher:
            report = enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=fetcher)
    sources = {s.field: s for s in LeadFieldSource.objects.filter(lead=lead)}
    assert (sources["capital"].extractor, sources["capital"].confidence) == ("llm:grounded:cited", 0.7)
    assert sources["capital"].source_url == proof  # the page that proved it (no #fragment)
    assert sources["employee_count"].extractor == "llm:grounded:cited"
    assert (sources["established_year"].extractor, sources["established_year"].confidence) == ("llm:unverified", 0.5)
    assert sources["established_year"].source_url == other
    assert sources["phone"].extractor == "llm:unverified"
    # Two distinct pages at most, each once; robots.txt checked by the guarded fetcher.
    assert [p for p in site.paths() if p != "/robots.txt"] == ["/company/", "/news/"]
    assert report.outcomes[0].fetched == [proof, other]
    assert (report.ai_values, report.ai_grounded) == (4, 2)
    assert (book.snapshot().calls, len(fake_openai_server.requests)) == (1, 1)  # fetching cost no call


def test_cited_pages_are_not_fetched_when_the_setting_is_zero(fake_openai_server, settings, no_pages):
    settings.HOKAN_GROUNDING_MAX_PAGES = 0
    Lead.objects.create(name="株式会社テスト")
    fake_openai_server.enqueue(answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(), fetcher=no_pages)
    assert report.outcomes[0].fetch_errors == [] and report.ai_grounded == 0 and report.ai_values > 0


# --- under faults, concurrently: real `hokan leads enrich` processes on a file database ------------
class CliSite:
    """A data folder (file SQLite) with N leads, and ``hokan`` run as a user runs it against a
    fake provider on 127.0.0.1 (tests/fakes/faulty_provider.py)."""

    def __init__(self, tmp_path, provider, *, leads: int, **env: str) -> None:
        import os
        import sys

        self.tmp, self.python = tmp_path, sys.executable
        self.env = {k: v for k, v in os.environ.items() if k not in (
            "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL", "HOKAN_LOG_LEVEL", "GBIZINFO_API_TOKEN",
            "HOKAN_SNAPSHOT_DIR")}
        self.env.update(
            HOKAN_DATA_DIR=str(tmp_path), COLUMNS="200", HOKAN_LLM_PROVIDER="perplexity", PERPLEXITY_API_KEY="test-key",
            HOKAN_LLM_BASE_URL=provider.base_url, HOKAN_LLM_MODEL="sonar", HOKAN_LLM_TIMEOUT_S="20",
            HOKAN_FETCH_ALLOW_HOSTS="127.0.0.1", HOKAN_GROUNDING_MAX_PAGES="0", POWERPLEXY_DAILY_RECORD_LIMIT="1000",
            HOKAN_LLM_RATE_LIMIT_PER_MIN="600", HOKAN_LLM_RATE_LIMIT_WAIT_S="1", HOKAN_ENRICH_CONCURRENCY="4",
            HOKAN_ENRICH_CHUNK_LEADS="6",
        )
        self.env.update(env)
        self.names = [f"株式会社障害{i}" for i in range(1, leads + 1)]
        (tmp_path / "leads.csv").write_text("企業名\n" + "\n".join(self.names) + "\n", encoding="utf-8")
        assert self.hokan("leads", "import", str(tmp_path / "leads.csv")).returncode == 0

    def hokan(self, *args: str, **options):
        import subprocess

        return subprocess.run([self.python, "-m", "hokan", *args], env=self.env, capture_output=True, text=True,
                              timeout=300, **options)

    def start(self, *args: str):
        import subprocess

        return subprocess.Popen([self.python, "-m", "hokan", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def state(self) -> dict:
        import json
        import subprocess

        done = subprocess.run([self.python, "-m", "tests.leads.task_helper", "state"], env=self.env, text=True,
                              capture_output=True, timeout=60, cwd=str(REPO_ROOT))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def faulty_answer(request_json) -> Reply:
    return answer(業種="ソフトウェア", 従業員数="120名", 資本金="5,000万円")


@pytest.mark.slow
def test_a_cli_run_finishes_through_500s_and_a_429_storm_and_pays_each_lead_once(tmp_path):
    from tests.fakes.faulty_provider import FaultyProvider

    with FaultyProvider(error_rate=0.1, seed=3, answer=faulty_answer) as provider:
        site = CliSite(tmp_path, provider, leads=18)
        provider.storm(1.5, retry_after_s=1, from_next_request=True)  # the first 1.5 s: 429, Retry-After 1
        done = site.hokan("leads", "enrich", "--no-table")
        state = site.state()
    assert done.returncode == 0, done.stdout + done.stderr
    assert provider.errors > 0 and provider.rate_limited > 0  # the faults happened
    assert all(lead["employee_count"] == 120 and not lead["needs_ai_update"] for lead in state["leads"])
    assert provider.answered_companies() == {name: 1 for name in site.names}  # paid once each
    usage = state["usage"]
    assert (usage["calls"], usage["reserved_calls"]) == (provider.answered, 0)
    (run,) = state["runs"]
    assert (run["status"], run["leads_done"], run["leads_failed"], run["llm_calls"]) == ("succeeded", 18, 0, 18)
    assert run["cost_micro_usd"] == usage["cost_micro_usd"]


@pytest.mark.slow
def test_a_bad_key_stops_a_cli_run_at_once_and_exits_non_zero(tmp_path):
    from tests.fakes.faulty_provider import FaultyProvider

    with FaultyProvider(answer=faulty_answer) as provider:
        site = CliSite(tmp_path, provider, leads=12, PERPLEXITY_API_KEY="wrong-key")
        done = site.hokan("leads", "enrich")
        state = site.state()
    assert done.returncode == 1
    assert "API キー" in done.stdout and "PERPLEXITY_API_KEY" in done.stdout and "Traceback" not in done.stderr
    assert len(provider.requests) <= 4  # at most the requests already in flight (4 threads), not one per lead
    assert state["usage"]["calls"] == 0 and state["usage"]["reserved_calls"] == 0
    assert not any(lead["ai_last_enriched_at"] for lead in state["leads"])  # no lead counts as done
    assert state["runs"][0]["status"] == "failed"


@pytest.mark.slow
def test_two_cli_processes_started_together_share_the_list_and_pay_each_lead_once(tmp_path):
    from tests.fakes.faulty_provider import FaultyProvider

    import threading

    both_at_work = threading.Event()

    def held_answer(request_json):
        # Answers wait until a third request is in flight: each process sends at most 2 at once,
        # so the third comes from the other process. Without the hold, a process started a few
        # seconds late on a loaded machine found the run finished (CI, 2026-12-01).
        if len(provider.requests) >= 3:
            both_at_work.set()
        both_at_work.wait(120)
        return faulty_answer(request_json)

    with FaultyProvider(latency_s=0.3, answer=held_answer) as provider:
        site = CliSite(tmp_path, provider, leads=24, HOKAN_ENRICH_CONCURRENCY="2")
        first, second = site.start("leads", "enrich", "--no-table"), site.start("leads", "enrich", "--no-table")
        outputs = [process.communicate(timeout=300) for process in (first, second)]
        state = site.state()
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert provider.answered_companies() == {name: 1 for name in site.names}
    assert all(lead["employee_count"] == 120 for lead in state["leads"])
    (run,) = state["runs"]  # one run, worked by both
    assert (run["status"], run["leads_done"], run["llm_calls"]) == ("succeeded", 24, 24)
    assert both_at_work.is_set()  # the hold ended because both worked, not by its timeout
    assert any("分担" in out for out, _ in outputs)


def test_an_answer_that_arrived_before_its_worker_died_is_used_and_settled_at_the_providers_cost(
        fake_openai_server, no_pages):
    """The state a worker killed between the answer and the ledger commit leaves behind: the
    answer stored on the lead's row, its reservation open. The run's next worker pays nothing
    again: it commits the reservation with the provider's reported cost and stores the values."""
    from django.utils import timezone

    from hokan.core.llm.client import Completion, Usage
    from hokan.leads.enrich import start_run
    from hokan.leads.models import LeadRunResult
    from hokan.leads.steps import stored_answer

    lead = Lead.objects.create(name="株式会社途中")
    book = ledger()
    day = timezone.localdate()
    run = start_run(EnrichmentRun.objects.create(trigger="schedule"), ledger=book, day=day)
    key = f"lead:{lead.pk}:{day.isoformat()}"
    book.reserve(cost_usd=Decimal("0.05"), key=f"{key}:1")  # reserved, the call made ...
    data = {"従業員数": {"value": "120名", "source_url": None, "quote": None}}
    answered = Completion(data=data, usage=Usage(cost_usd=Decimal("0.0071"), cost_source="provider", calls=1),
                          provider="perplexity", model="sonar")
    LeadRunResult.objects.create(run=run, lead=lead, status=LeadRunResult.Status.ANSWERED, work_key=key,
                                 answer=stored_answer(answered, reservation_key=f"{key}:1",
                                                      estimate_usd=Decimal("0.05")))  # ... and answered
    assert (book.snapshot().calls, book.snapshot().reserved_calls) == (0, 1)

    report = enrich_leads(run=run, client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    assert fake_openai_server.requests == []  # not asked again
    lead.refresh_from_db()
    assert lead.employee_count == 120 and not lead.needs_ai_update
    snap = book.snapshot()
    assert (snap.calls, snap.reserved_calls, snap.cost_usd) == (1, 0, Decimal("0.0071"))  # the provider's cost
    run.refresh_from_db()
    assert (run.status, run.leads_done, run.llm_calls, run.cost_micro_usd) == ("succeeded", 1, 1, 7100)
    assert report.llm_calls == 1


def test_a_lead_skipped_as_already_paid_is_not_counted_as_done(fake_openai_server, no_pages):
    from django.utils import timezone

    lead = Lead.objects.create(name="株式会社支払済")
    book = ledger()
    book.reserve(cost_usd=Decimal("0.05"), key=f"lead:{lead.pk}:{timezone.localdate().isoformat()}:1")  # in flight elsewhere
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=book, fetcher=no_pages)
    assert fake_openai_server.requests == []
    assert (report.leads_done, report.leads_skipped) == (0, 1)
    run = EnrichmentRun.objects.get()
    assert (run.leads_done, run.leads_skipped) == (0, 1)
    lead.refresh_from_db()
    assert lead.needs_ai_update and lead.ai_last_enriched_at is None  # still first in tomorrow's queue


def test_a_failed_lead_keeps_its_place_at_the_front_of_the_queue(fake_openai_server, no_pages):
    lead = Lead.objects.create(name="株式会社失敗")
    fake_openai_server.enqueue(Reply.error(400, message="bad request"))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(), fetcher=no_pages)
    lead.refresh_from_db()
    assert report.leads_failed == 1 and report.failed  # every lead failed: the CLI exits non-zero
    assert lead.ai_last_enriched_at is None and lead.needs_ai_update


def test_the_daily_limit_cutting_the_selection_is_said_with_how_many_are_left(fake_openai_server, no_pages):
    for i in range(3):
        Lead.objects.create(name=f"株式会社日次{i}")
    fake_openai_server.enqueue(answer(**FULL))
    report = enrich_leads(client=client_for(fake_openai_server, []), ledger=ledger(daily=1), fetcher=no_pages)
    assert report.leads_done == 1 and report.left == 2
    assert "本日の処理上限（1 件）" in report.stopped_reason and "残り 2 件は明日以降" in report.stopped_reason
    assert not report.failed
