"""The leads admin: list and filters, hand edits marked manual, actions, import/export, usage page."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from hokan.core.budget import get_ledger
from hokan.leads.models import EnrichmentRun, Lead, LeadFieldSource

LIST = "/admin/leads/lead/"


@pytest.fixture
def sega(db) -> Lead:
    lead = Lead.objects.create(name="株式会社セガ", industry="ゲーム", prefecture="東京都", phone="03-6871-7000",
                               ai_last_enriched_at=timezone.now())
    LeadFieldSource.objects.create(lead=lead, field="phone", method="rule",
                                   source_url="https://www.sega.co.jp/company/",
                                   quote="TEL：03-6871-7000（代表）", raw="03-6871-7000", confidence=0.95)
    return lead


@pytest.fixture
def novarise(db) -> Lead:
    return Lead.objects.create(name="株式会社Novarise", industry="人材", prefecture="大阪府")


def _names(response) -> list[str]:
    return sorted(lead.name for lead in response.context["cl"].result_list)


def _change_data(lead: Lead, **changes) -> dict[str, str]:
    """The POST of the change form as the browser sends it (blank fields as "")."""
    data = {}
    for field in ("name", "corporate_number", "industry", "contact_person_name", "contact_person_position",
                  "facebook_url", "tob_toc_type", "business_description", "prefecture", "city", "location",
                  "postal_code", "employee_count", "revenue", "capital", "established_year", "website_url",
                  "contact_email", "phone", "representative_name", "representative_title", "notes"):
        value = getattr(lead, field)
        data[field] = "" if value is None else str(int(value) if isinstance(value, Decimal) else value)
    if lead.needs_ai_update:
        data["needs_ai_update"] = "on"
    data.update(changes)
    return data


@pytest.mark.django_db
def test_it_lists_searches_and_filters_leads(admin_client, sega, novarise):
    assert _names(admin_client.get(LIST)) == ["株式会社Novarise", "株式会社セガ"]
    assert _names(admin_client.get(LIST, {"q": "03-6871"})) == ["株式会社セガ"]
    assert _names(admin_client.get(LIST, {"q": "０３６８７１７０００"})) == ["株式会社セガ"]
    assert _names(admin_client.get(LIST, {"industry": "人材"})) == ["株式会社Novarise"]
    assert _names(admin_client.get(LIST, {"prefecture": "東京都"})) == ["株式会社セガ"]
    assert _names(admin_client.get(LIST, {"missing": "phone"})) == ["株式会社Novarise"]
    assert _names(admin_client.get(LIST, {"enriched": "never"})) == ["株式会社Novarise"]
    assert _names(admin_client.get(LIST, {"enriched": "today"})) == ["株式会社セガ"]
    assert _names(admin_client.get(LIST, {"enriched": "older"})) == []
    assert _names(admin_client.get(LIST, {"method": "rule"})) == ["株式会社セガ"]
    assert _names(admin_client.get(LIST, {"method": "ai"})) == []
    page = admin_client.get(LIST).content.decode()
    for words in ("欠損項目", "最終補完", "取得方法", "補完対象にする", "今すぐ再取得"):
        assert words in page


@pytest.mark.django_db
def test_it_shows_each_value_with_its_provenance(admin_client, sega):
    page = admin_client.get(f"{LIST}{sega.pk}/change/").content.decode()
    assert "取得根拠" in page
    assert 'href="https://www.sega.co.jp/company/"' in page
    assert "TEL：03-6871-7000（代表）" in page
    assert "ルール" in page and "95%" in page


@pytest.mark.django_db
def test_it_marks_a_hand_edit_manual(admin_client, sega):
    response = admin_client.post(f"{LIST}{sega.pk}/change/",
                                 _change_data(sega, phone="0312345678", employee_count="3,499名", capital="1億円"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    sega.refresh_from_db()
    assert (sega.phone, sega.employee_count, int(sega.capital)) == ("03-1234-5678", 3499, 100_000_000)
    sources = {s.field: s for s in sega.sources.all()}
    assert {name: s.method for name, s in sources.items()} == {
        "phone": "manual", "employee_count": "manual", "capital": "manual"}
    assert sources["phone"].confidence == 1.0
    assert sega.ai_source == "manual"


@pytest.mark.django_db
def test_it_keeps_the_provenance_of_fields_not_edited(admin_client, sega):
    admin_client.post(f"{LIST}{sega.pk}/change/", _change_data(sega, industry="エンタメ"))
    assert sega.sources.get(field="phone").method == "rule"
    assert sega.sources.get(field="industry").method == "manual"


@pytest.mark.django_db
def test_it_protects_a_value_cleared_by_hand(admin_client, sega):
    admin_client.post(f"{LIST}{sega.pk}/change/", _change_data(sega, phone=""))
    sega.refresh_from_db()
    assert sega.phone == ""
    source = sega.sources.get(field="phone")
    assert (source.method, source.quote) == ("manual", "")
    from hokan.leads.store import missing_fields

    assert missing_fields(sega, ["phone"]) == []


@pytest.mark.django_db
def test_it_rejects_an_invalid_hand_edit(admin_client, sega):
    response = admin_client.post(f"{LIST}{sega.pk}/change/", _change_data(sega, corporate_number="1234567890123"))
    assert response.status_code == 200
    assert "法人番号" in str(response.context["adminform"].form.errors["corporate_number"])
    assert not sega.sources.filter(method="manual").exists()


@pytest.mark.django_db
def test_it_marks_leads_for_enrichment(admin_client, sega):
    Lead.objects.update(needs_ai_update=False)
    admin_client.post(LIST, {"action": "mark_for_enrichment", "_selected_action": [sega.pk]})
    assert Lead.objects.get().needs_ai_update is True


@pytest.mark.django_db
def test_it_queues_a_refresh_from_the_admin(admin_client, sega, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(LIST, {"action": "refresh_now", "_selected_action": [sega.pk]})
        admin_client.post(LIST, {"action": "refresh_now", "_selected_action": [sega.pk]})  # already queued
    run = EnrichmentRun.objects.get()
    assert (run.lead_id, run.status, run.trigger) == (sega.pk, "queued", "admin")
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_it_shows_runs_read_only(admin_client, sega):
    run = EnrichmentRun.objects.create(lead=sega, trigger="api", status="failed", message="接続できませんでした")
    assert admin_client.get("/admin/leads/enrichmentrun/").status_code == 200
    page = admin_client.get(f"/admin/leads/enrichmentrun/{run.pk}/change/").content.decode()
    assert "接続できませんでした" in page
    assert 'name="_save"' not in page


def _import(admin_client, data: bytes, name: str, fmt: str = "0"):
    upload = SimpleUploadedFile(name, data)
    response = admin_client.post(f"{LIST}import/", {"format": fmt, "import_file": upload, "resource": "0"})
    assert response.status_code == 200
    return response


def _confirm(admin_client, response):
    form = response.context["confirm_form"]
    return admin_client.post(f"{LIST}process_import/", form.initial)


def _csv(rows: list[list[str]], encoding: str) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.mark.django_db
def test_it_imports_a_cp932_csv_through_the_admin_like_the_cli(admin_client, sega):
    data = _csv([["会社名", "法人番号", "所在地", "資本金", "電話", "メモ欄"],
                 ["（株）ノバライズ", "6120001271738", "大阪府大阪市西区北堀江1-14-24", "100万円", "0644008401", "x"],
                 ["株式会社セガ", "", "", "", "03-6871-7000", ""]], "cp932")
    preview = _import(admin_client, data, "リスト.csv")
    assert Lead.objects.count() == 1  # the preview is a dry run
    assert not preview.context["result"].has_validation_errors()
    response = _confirm(admin_client, preview)
    assert response.status_code == 302
    novarise = Lead.objects.get(corporate_number="6120001271738")
    assert novarise.name == "株式会社ノバライズ"
    assert (novarise.prefecture, novarise.city, novarise.location) == ("大阪府", "大阪市西区", "北堀江1-14-24")
    assert (int(novarise.capital), novarise.phone) == (1_000_000, "06-4400-8401")
    assert set(novarise.sources.values_list("method", flat=True)) == {"manual"}
    # The same phone as stored: unchanged, its rule provenance kept.
    assert Lead.objects.count() == 2
    assert sega.sources.get(field="phone").method == "rule"


@pytest.mark.django_db
def test_it_reports_bad_rows_of_an_admin_import_and_writes_nothing(admin_client):
    data = _csv([["企業名", "法人番号", "電話番号"], ["A社", "1234567890123", ""], ["B社", "", "03-1234-5678"]], "utf-8-sig")
    response = _import(admin_client, data, "bad.csv")
    result = response.context["result"]
    assert result.has_validation_errors()
    [invalid] = result.invalid_rows
    assert "法人番号" in str(invalid.error_dict) and "2行目" in str(invalid.error_dict)
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_it_imports_xlsx_through_the_admin(admin_client):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["企業名", "従業員数", "設立年"])
    sheet.append(["株式会社セガ", 3499, "昭和35年"])
    buffer = io.BytesIO()
    book.save(buffer)
    preview = _import(admin_client, buffer.getvalue(), "leads.xlsx", fmt="1")
    _confirm(admin_client, preview)
    lead = Lead.objects.get()
    assert (lead.employee_count, lead.established_year) == (3499, 1960)


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "encoding"), [("0", "utf-8-sig"), ("1", "cp932")])
def test_it_exports_csv_that_imports_back(admin_client, sega, fmt, encoding):
    Lead.objects.filter(pk=sega.pk).update(capital=Decimal(100_000_000))
    response = admin_client.post(f"{LIST}export/", {"format": fmt, "resource": "0", **{
        f"leadresource_{name}": "on" for name in ("name", "phone", "capital", "industry")}})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode(encoding))))
    assert rows[0][:1] == ["企業名"]
    assert "電話番号" in rows[0] and "資本金" in rows[0]
    record = dict(zip(rows[0], rows[1]))
    assert (record["企業名"], record["電話番号"], record["資本金"]) == ("株式会社セガ", "03-6871-7000", "100000000")


@pytest.mark.django_db
def test_it_shows_usage_against_the_limits(admin_client, settings, sega):
    settings.POWERPLEXY_MONTHLY_CALL_LIMIT = 3000
    settings.POWERPLEXY_MONTHLY_COST_LIMIT_USD = Decimal("150")
    settings.POWERPLEXY_DAILY_RECORD_LIMIT = 100
    ledger = get_ledger()
    for number in range(3):
        ledger.commit(ledger.reserve(cost_usd=Decimal("0.05"), key=f"t:{number}"), cost_usd=Decimal("0.04"))
        ledger.claim_record(f"lead:{number}")
    EnrichmentRun.objects.create(lead=sega, trigger="schedule", status="limited", leads_done=96,
                                 message="月間上限に達したため停止しました")
    response = admin_client.get("/admin/core/usagemonth/")
    assert response.status_code == 200
    page = response.content.decode()
    for words in ("3 件", "3,000 件", "$0.12", "$150.00", "2,997 件", "100 件／日", "97 件",
                  "上限到達で停止", "月間上限に達したため停止しました", "定期実行"):
        assert words in page, words
    assert "月間使用量" in admin_client.get("/admin/").content.decode()  # linked from the index


@pytest.mark.django_db
def test_it_marks_the_values_of_a_lead_added_by_hand(admin_client):
    data = _change_data(Lead(name="（株）ノバライズ"), phone="06-4400-8401", established_year="令和6年")
    response = admin_client.post(f"{LIST}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    lead = Lead.objects.get()
    assert (lead.name, lead.established_year) == ("株式会社ノバライズ", 2024)
    assert dict(lead.sources.values_list("field", "method")) == {
        "name": "manual", "phone": "manual", "established_year": "manual"}


@pytest.mark.django_db
def test_it_exports_xlsx(admin_client, sega):
    response = admin_client.post(f"{LIST}export/", {"format": "2", "resource": "0", **{
        f"leadresource_{name}": "on" for name in ("name", "phone")}})
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["企業名", "電話番号"], ["株式会社セガ", "03-6871-7000"]]
