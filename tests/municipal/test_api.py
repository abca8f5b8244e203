"""The municipal REST API: API keys, JSON errors in Japanese, drafts, the run endpoints, the OCR endpoints on a real 鯖江市 PDF."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.core.cache import cache

from hokan.core.api_keys import ApiKey
from hokan.municipal import draft as drafts
from hokan.municipal.models import DocumentText, Draft, Municipality, Service
from hokan.municipal.seed import service_variables, sync_catalogue
from tests.fakes.site_server import FakeSite

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(client):
    _, key = ApiKey.generate("自治体連携")

    class Api:
        def get(self, path, **params):
            return client.get(path, params, headers={"X-API-Key": key})

        def post(self, path, data=None):
            return client.post(path, data or {}, content_type="application/json", headers={"X-API-Key": key})

    return Api()


@pytest.fixture
def otoineppu():
    sync_catalogue()
    return Municipality.objects.create(lgcode="014702", slug="otoineppu", name="音威子府村", prefecture="北海道",
                                       level="village", official_url="https://www.vill.otoineppu.hokkaido.jp/")


def _draft(m):
    service = Service.objects.get(key="kokuho")
    value = {"value": "01656-5-3311", "raw": "01656-5-3311", "quote": "電話 01656-5-3311",
             "source_url": "https://www.vill.otoineppu.hokkaido.jp/kurashi/hoken_nenkin/kokuho/", "confidence": 0.95,
             "method": "rule", "extracted_at": "2026-12-01T00:00:00Z", "validated": True}
    draft, _ = drafts.save_draft(m, service, drafts.ServiceOutcome(values={"kokuho_phone": value}),
                                 [s.name for s in service_variables(service)])
    return draft


def test_every_endpoint_needs_a_key_and_errors_are_japanese_json(client, otoineppu):
    for method, path in (("get", "/api/municipal/drafts"), ("get", "/api/municipal/fetch/status?municipality=x"),
                         ("post", "/api/municipal/jobs"), ("get", "/api/admin/pdf/ocr?url=https://x.jp/a.pdf"),
                         ("post", "/api/admin/pdf/ocr")):
        response = getattr(client, method)(path, content_type="application/json")
        assert response.status_code == 401, path
        assert "APIキー" in response.json()["detail"]
    bad = client.get("/api/municipal/drafts", headers={"X-API-Key": "hk_wrong"})
    assert bad.status_code == 403 and bad["Content-Type"].startswith("application/json")


def test_drafts_list_detail_approve_and_not_found(api, otoineppu):
    draft = _draft(otoineppu)
    listed = api.get("/api/municipal/drafts", municipality="otoineppu").json()
    assert [(d["service"], d["filled_count"], d["status"]) for d in listed] == [("kokuho", 1, "draft")]
    assert listed[0]["missing_count"] == draft.missing_count > 0
    detail = api.get(f"/api/municipal/drafts/{draft.pk}").json()
    assert detail["municipality_id"] == "otoineppu" and detail["variables"]["kokuho_phone"]["quote"]
    approved = api.post(f"/api/municipal/drafts/{draft.pk}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert Draft.objects.get().reviewed_by.startswith("api:")
    missing = api.get("/api/municipal/drafts/99999")
    assert missing.status_code == 404 and missing.json()["detail"] == "下書き 99999 はありません"
    assert api.get("/api/municipal/drafts", status="done").status_code == 400
    assert api.get("/api/municipal/drafts", municipality="nowhere").status_code == 404


def test_job_endpoints_refuse_bad_input_and_unknown_ids(api, otoineppu):
    assert api.get("/api/municipal/fetch/status", municipality="otoineppu").status_code == 404
    unknown = api.post("/api/municipal/jobs", {"municipality": "999999"})
    assert unknown.status_code == 404 and "登録されていません" in unknown.json()["detail"]
    extra = api.post("/api/municipal/jobs", {"municipality": "otoineppu", "nonsense": 1})
    assert extra.status_code == 422 and extra.json()["errors"]
    tier = api.post("/api/municipal/jobs", {"municipality": "otoineppu", "free_tier": "cheap"})
    assert tier.status_code == 400 and tier.json()["field"] == "free_tier"
    service = api.post("/api/municipal/jobs", {"municipality": "otoineppu", "services": ["nosuch"]})
    assert service.status_code == 400 and "nosuch" in service.json()["detail"]
    job = uuid.uuid4()
    assert api.post(f"/api/municipal/jobs/{job}/resume").status_code == 404
    assert api.post(f"/api/municipal/jobs/{job}/interrupt").status_code == 404
    assert api.post("/api/municipal/jobs/not-a-uuid/resume").status_code == 422


def test_ocr_endpoint_reads_a_real_pdf_caches_it_by_url_and_force_reads_again(api, shared_data: Path):
    pdf = (shared_data / "municipal" / "sabae_pdfs" / "クリーンセンターの負担金.pdf").read_bytes()
    with FakeSite() as site:
        site.pages["/opendata/futankin.pdf"] = (pdf, "application/pdf")
        url = site.url("/opendata/futankin.pdf")
        assert api.get("/api/admin/pdf/ocr", url=url).json() == {"cached": False}
        first = api.post("/api/admin/pdf/ocr", {"url": url})
        assert first.status_code == 200, first.content
        assert first.json()["cached"] is False and "負担金" in first.json()["text"]
        assert api.get("/api/admin/pdf/ocr", url=url).json() == {"cached": True}
        second = api.post("/api/admin/pdf/ocr", {"url": url})
        assert second.json() == {"text": first.json()["text"], "cached": True}
        assert site.paths().count("/opendata/futankin.pdf") == 1
        forced = api.post("/api/admin/pdf/ocr", {"url": url, "force": True})
        assert forced.json()["cached"] is False and site.paths().count("/opendata/futankin.pdf") == 2
        missing = api.post("/api/admin/pdf/ocr", {"url": site.url("/none.pdf")})
        assert missing.status_code == 502 and "取得できませんでした" in missing.json()["detail"]
        site.pages["/broken.pdf"] = (b"%PDF-1.4 garbage", "application/pdf")
        broken = api.post("/api/admin/pdf/ocr", {"url": site.url("/broken.pdf")})
        assert broken.status_code == 422 and "文書を読めません" in broken.json()["detail"]
    refused = api.post("/api/admin/pdf/ocr", {"url": "file:///etc/passwd"})
    assert refused.status_code == 400
    internal = api.post("/api/admin/pdf/ocr", {"url": "http://10.0.0.1/a.pdf"})
    assert internal.status_code == 400 and "取得できません" in internal.json()["detail"]
    assert DocumentText.objects.count() == 1


def test_interrupt_status_and_the_openapi_document(api, client, otoineppu):
    from hokan.municipal import flow

    run = flow.start_run(otoineppu, [Service.objects.get(key="kokuho"), Service.objects.get(key="nenkin")])
    stopped = api.post(f"/api/municipal/jobs/{run.job.public_id}/interrupt")
    assert stopped.status_code == 200 and stopped.json()["status"] == "interrupted"
    status = api.get("/api/municipal/fetch/status", municipality="otoineppu").json()
    assert status["status"] == "interrupted" and "API から中断" in status["message"]
    assert [s["status"] for s in status["services"]] == ["pending", "pending"]
    schema = client.get("/api/municipal/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/admin/pdf/ocr" in paths and "/api/municipal/fetch/status" in paths
