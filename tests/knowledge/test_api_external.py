"""The external API (issue 12 §5): every route authenticates, bad uploads are refused with JSON
4xx before anything is stored, analyses and sales screenshots / exports are stored, stats are
computed from the database, retrieval and liver history answer."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.cache import cache

from hokan.core.api_keys import ApiKey
from hokan.knowledge.models import SalesData, VideoAnalysis
from hokan.knowledge.service import record_sales_value, store_analysis
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db
BASE = "/api/v1/external"
ROUTES = [("post", "/analysis/store"), ("post", "/sales/screenshot"), ("get", "/retrieve?q=限定価格"),
          ("get", "/stats"), ("get", "/livers/さくら/history"), ("post", "/feedback")]


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.HOKAN_DATA_DIR = tmp_path / "data"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def key(db) -> str:
    return ApiKey.generate("外部連携テスト")[1]


def _png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height (the pixels are never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", b"\x00" * (20 * 1024 * 1024))
    return buffer.getvalue()


def _file(name: str, data: bytes, mime: str = "image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=mime)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_valid_key_and_answers_json(client, key, method, path):
    call = getattr(client, method)
    missing = call(BASE + path)
    assert missing.status_code == 401 and missing["Content-Type"].startswith("application/json")
    assert "APIキー" in missing.json()["detail"]
    wrong = call(BASE + path, headers={"X-API-Key": "hk_wrong.key"})
    assert wrong.status_code == 403 and "detail" in wrong.json()
    ApiKey.objects.update(active=False)
    inactive = call(BASE + path, headers={"X-API-Key": key})
    assert inactive.status_code == 403


def test_bad_uploads_are_refused_with_json_and_nothing_is_stored(client, key, settings):
    headers = {"X-API-Key": key}
    analysis = json.dumps(analysis_payload(), ensure_ascii=False)
    cases = [
        (_file("sales.png", _zip_bomb(), "image/png"), 415, "画像ではありません"),  # a zip, whatever its name says
        (_file("huge.png", _png(30_000, 30_000)), 413, "大きすぎます"),  # an image bomb: refused from its header
        (_file("notes.png", "売上 ¥1,000".encode()), 415, "画像ではありません"),
        (_file("empty.png", b""), 415, "空です"),
    ]
    for upload, status, words in cases:
        response = client.post(BASE + "/analysis/store", {"analysis": analysis, "screenshots": [upload]}, headers=headers)
        assert response.status_code == status, response.content
        assert response["Content-Type"].startswith("application/json") and words in response.json()["detail"]
    settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES = 1000
    big = client.post(BASE + "/analysis/store", {"analysis": analysis, "screenshots": [_file("big.png", _png(10, 10) + b"\x00" * 2000)]},
                      headers=headers)
    assert big.status_code == 413 and "大きすぎます" in big.json()["detail"]
    settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
    settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES = 2
    many = client.post(BASE + "/analysis/store", {"analysis": analysis, "screenshots": [_file(f"{i}.png", _png(9, 9)) for i in range(3)]},
                       headers=headers)
    assert many.status_code == 413 and "多すぎます" in many.json()["detail"]
    zipped_export = client.post(BASE + "/analysis/store", {"analysis": analysis, "exports": [_file("x.csv", _zip_bomb(), "text/csv")]},
                                headers=headers)
    assert zipped_export.status_code == 415
    broken = client.post(BASE + "/analysis/store", {"analysis": "{not json"}, headers=headers)
    assert broken.status_code == 400 and "分析JSON" in broken.json()["detail"]
    invalid = client.post(BASE + "/analysis/store", {"analysis": json.dumps({"video_id": "x", "phases": []})}, headers=headers)
    assert invalid.status_code == 422 and {e["field"] for e in invalid.json()["errors"]} >= {"phases"}
    assert "Traceback" not in invalid.content.decode()
    assert VideoAnalysis.objects.count() == 0


def test_a_request_larger_than_every_limit_is_refused_before_its_body_is_read(client, key, settings):
    settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_FILES = 1
    settings.HOKAN_KNOWLEDGE_UPLOAD_MAX_BYTES = 1000
    settings.HOKAN_KNOWLEDGE_ANALYSIS_MAX_BYTES = 1000
    body = b"x" * 200_000
    response = client.generic("POST", BASE + "/analysis/store", body, content_type="multipart/form-data; boundary=zz",
                              headers={"X-API-Key": key})
    assert response.status_code == 413 and "リクエストが大きすぎます" in response.json()["detail"]


@pytest.mark.slow  # Chromium renders the dashboard, PP-OCR reads it
def test_store_with_a_screenshot_and_an_export_keeps_the_better_source(client, key, knowledge_index, tmp_path):
    from playwright.sync_api import sync_playwright

    from hokan.knowledge.demo_recording import chromium_path, page_html

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 960, "height": 540})
        page.route("**/*", lambda route: route.abort())
        page.set_content(page_html({"viewers": 15_320, "likes": 48_210, "orders": 321}, 0))
        shot = page.screenshot()
        browser.close()
    export = "総売上,注文数\n\"¥1,234,567\",333\n".encode("utf-8")
    payload = analysis_payload("tt-api-1")
    del payload["sales"]
    response = client.post(BASE + "/analysis/store", {
        "analysis": json.dumps(payload, ensure_ascii=False),
        "screenshots": [_file("dashboard.png", shot)], "exports": [_file("export.csv", export, "text/csv")],
    }, headers={"X-API-Key": key})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] and body["index_error"] is None
    by_name = {f["name"]: f for f in body["files"]}
    assert {m["metric"]: m["value"] for m in by_name["dashboard.png"]["metrics"] if m["metric"]} == {
        "viewers": 15320, "likes": 48210, "orders": 321}
    rows = {r.metric: r for r in SalesData.objects.filter(analysis__video_id="tt-api-1")}
    assert (rows["gmv"].value, rows["gmv"].source, rows["gmv"].unit) == (1234567, "csv", "JPY")
    assert (rows["orders"].value, rows["orders"].source) == (333, "csv")  # the export beats OCR
    assert (rows["viewers"].value, rows["viewers"].source, rows["viewers"].quote) == (15320, "screenshot", "15,320")
    again = client.post(BASE + "/sales/screenshot", {"video_id": "tt-api-1", "screenshots": [_file("d.png", shot)]},
                        headers={"X-API-Key": key})
    assert again.status_code == 200 and SalesData.objects.get(analysis__video_id="tt-api-1", metric="orders").value == 333
    unknown = client.post(BASE + "/sales/screenshot", {"video_id": "nope", "screenshots": [_file("d.png", shot)]},
                          headers={"X-API-Key": key})
    assert unknown.status_code == 404 and unknown.json()["detail"]


def test_stats_history_and_retrieval_come_from_what_is_stored(client, key, knowledge_index):
    store_analysis(analysis_payload("tt-1", liver="さくら", stream_date="2026-11-01"), index_obj=knowledge_index)
    second = analysis_payload("tt-2", liver="さくら", stream_date="2026-11-20")
    second["sales"] = {"gmv": 1000001}
    store_analysis(second, index_obj=knowledge_index)
    third = analysis_payload("tt-3", liver="ひまわり", stream_date="2026-11-10")
    del third["sales"]  # no GMV: not counted as a stream with 0
    store_analysis(third, index_obj=knowledge_index)
    sku = VideoAnalysis.objects.get(video_id="tt-1")
    record_sales_value(sku, metric="sku_orders", value=5, unit="count", source="api", sku="MC-50")
    headers = {"X-API-Key": key}
    stats = client.get(BASE + "/stats", headers=headers).json()
    assert stats == {"streams": 3, "streams_with_gmv": 2, "total_livers": 2, "total_gmv": 1234567 + 1000001,
                     "avg_gmv_per_stream": 1117284}  # (1234567 + 1000001) / 2 = 1117284 exactly
    history = client.get(BASE + "/livers/さくら/history", headers=headers).json()
    assert [h["video_id"] for h in history] == ["tt-2", "tt-1"] and history[0]["gmv_jpy"] == 1000001
    found = client.get(BASE + "/retrieve", {"q": "限定価格の告知", "limit": 2, "top": 1}, headers=headers).json()
    assert found["similar_phases"] and found["similar_phases"][0]["phase_index"] == 1
    assert found["top_performers"][0]["video_id"] == "tt-1"
    bad = client.get(BASE + "/retrieve", {"q": "", "limit": 999}, headers=headers)
    assert bad.status_code == 422 and bad["Content-Type"].startswith("application/json")


def test_feedback_counts_every_rating_and_refuses_a_bad_one(client, key, knowledge_index):
    store_analysis(analysis_payload("tt-fb"), index_obj=knowledge_index)
    headers = {"X-API-Key": key}
    for rating in (5, 4):
        ok = client.post(BASE + "/feedback", {"video_id": "tt-fb", "rating": rating, "comment": "参考になった"},
                         content_type="application/json", headers=headers)
        assert ok.status_code == 200, ok.content
    assert ok.json() == {"video_id": "tt-fb", "rating_count": 2, "quality_score": 4.5}
    bad = client.post(BASE + "/feedback", {"video_id": "tt-fb", "rating": 9}, content_type="application/json",
                      headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rating"
    unknown = client.post(BASE + "/feedback", {"video_id": "nope", "rating": 3}, content_type="application/json",
                          headers=headers)
    assert unknown.status_code == 404 and unknown.json()["detail"]


def test_the_openapi_document_lists_every_route_and_its_errors(client):
    response = client.get(BASE + "/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {p.removeprefix(BASE) for p in paths} == {"/analysis/store", "/sales/screenshot", "/retrieve", "/stats",
                                                     "/livers/{liver}/history", "/feedback"}
    store = paths[BASE + "/analysis/store"]["post"]
    assert "multipart/form-data" in store["requestBody"]["content"]
    assert {"401", "403", "413", "415", "422"} <= set(store["responses"])
