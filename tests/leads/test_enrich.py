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


@pytest.fixture
def no_pages(tmp_path) -> SnapshotFetcher:
    """A snapshot with no pages, for leads that have no website to fetch."""
    (tmp_path / "snapshot.csv").write_text("url,path,content_type\n", encoding="utf-8")
    return SnapshotFetcher(tmp_path)


def ledger(calls: int = 100, cost: str = "10", daily: int = 100) -> DatabaseLedger:
    return DatabaseLedger(Limits(cost_usd=Decimal(cost), calls=calls, daily_records_setting=daily))


def client_for(server, sleeps: list[float], **kwargs) -> OpenAICompatClient:
    options = {"timeout_s": 1.0, "max_retries": 3, "rate_limit_wait_s": 600.0, "backoff_initial_s": 0.01}
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
        [Reply.rate_limited(retry_after="7")],
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
    if failures[0].status == 429 and failures[0].headers.get("Retry-After") == "7":
        assert sleeps[0] == 7
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
