"""sales_data_ingester (issue 12 §2): labels from the layout of OCR lines, exact values, missing
never 0, exports (JSON / CSV), one value per sales metric by source, the vision LLM's figures
checked against the OCR text (a local fake OpenAI server), and storing with provenance."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from hokan.core.documents import OcrLine, OcrResult
from hokan.core.errors import InputError
from hokan.core.llm import OpenAICompatClient
from hokan.knowledge.sales_data_ingester import (
    Metric,
    SalesReading,
    label_with_llm,
    metric_for_label,
    metrics_from_export,
    metrics_from_ocr,
    sales_fields,
    store_sales,
)
from tests.fakes.openai_server import Reply

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def ocr(*lines: tuple[str, tuple[int, int, int, int]], confidence: float = 0.98) -> OcrResult:
    return OcrResult(tuple(OcrLine(text, confidence, box) for text, box in lines), "test", "1", 1280, 720)


def by_metric(metrics) -> dict:
    return {m.metric: (m.value, m.unit, m.shown) for m in metrics if m.metric}


@pytest.mark.parametrize(("label", "metric"), [
    ("GMV（総売上）", "gmv"), ("総売上", "gmv"), ("売上", "gmv"), ("売上個数", "items_sold"), ("注文数", "orders"), ("Orders", "orders"),
    ("最高同時視聴者数", "peak_viewers"), ("視聴者数", "viewers"), ("Viewers", "viewers"), ("いいね", "likes"),
    ("コメント", "comments"), ("客単価", "average_order_value"), ("CTR", "ctr"), ("クリック率", "ctr"),
    ("平均視聴時間", "average_watch_time"), ("Avg. watch time", "average_watch_time"), ("配信時間", "stream_duration"),
    ("お支払い合計", "payment_total"), ("合計", "total"), ("前回比", "change"), ("金额", "price"), ("天気", None),
])
def test_labels_name_metrics_japanese_and_english(label, metric):
    assert metric_for_label(label) == metric


def test_a_card_dashboard_reads_every_figure_with_the_label_above_or_in_its_line():
    result = ocr(
        ("ライブ配信ダッシュボード 2026/11/30 20:00〜", (20, 10, 600, 40)),
        ("総売上", (40, 80, 120, 100)), ("注文数", (360, 80, 440, 100)), ("視聴者数", (680, 80, 780, 100)),
        ("¥1,234,567", (40, 110, 300, 160)), ("4,567件", (360, 110, 560, 160)), ("1.2万", (680, 110, 800, 160)),
        ("前回比 +12.3%", (40, 170, 200, 190)), ("前回比 -1.3%", (360, 170, 520, 190)),
        ("平均視聴時間", (40, 230, 200, 250)), ("CTR", (360, 230, 420, 250)),
        ("12:34", (40, 260, 160, 300)), ("3.5%", (360, 260, 460, 300)),
    )
    metrics = metrics_from_ocr(result)
    assert [(m.shown, m.value, m.unit) for m in metrics] == [
        ("2026/11/30", "2026-11-30", "date"), ("20:00", 72000, "time_of_day"),
        ("¥1,234,567", 1234567, "JPY"), ("4,567件", 4567, "count"), ("1.2万", 12000, "count"),
        ("+12.3%", 12.3, "percent"), ("-1.3%", -1.3, "percent"), ("12:34", 754, "seconds"), ("3.5%", 3.5, "percent")]
    assert [m.label for m in metrics][2:5] == ["総売上", "注文数", "視聴者数"]
    assert all(m.quote for m in metrics) and metrics[2].confidence == 0.98  # a row of labels: a header
    assert metrics[7].label == "平均視聴時間" and metrics[7].confidence == pytest.approx(0.98 * 0.9)  # the label above
    fields = sales_fields(metrics)
    assert {k: v.value for k, v in fields.items()} == {
        "gmv": 1234567, "orders": 4567, "viewers": 12000, "average_watch_time": 754, "ctr": 3.5}


def test_english_multipliers_a_table_header_and_a_separate_yen_box():
    result = ocr(
        ("Viewers", (40, 80, 140, 100)), ("Likes", (400, 80, 480, 100)),
        ("12.5K", (40, 110, 200, 160)), ("1.25M", (400, 110, 560, 160)),
        ("商品名", (40, 300, 120, 320)), ("価格", (400, 300, 460, 320)), ("販売数", (600, 300, 680, 320)),
        ("国産はちみつ", (40, 340, 200, 360)), ("¥", (400, 340, 412, 360)), ("1,980", (416, 340, 480, 360)),
        ("120", (600, 340, 640, 360)),
    )
    metrics = metrics_from_ocr(result)
    assert by_metric(metrics) == {"viewers": (12500, "count", "12.5K"), "likes": (1250000, "count", "1.25M"),
                                  "price": (1980, "JPY", "¥1,980"), "items_sold": (120, "count", "120")}
    row = [m for m in metrics if m.metric == "items_sold"][0]
    assert row.row == "国産はちみつ" and row.label == "販売数"
    assert "items_sold" not in sales_fields(metrics)  # a table cell is a product's figure, not the stream's


def test_an_unreadable_value_is_missing_never_zero():
    result = ocr(("総売上", (40, 80, 120, 100)), ("¥23.184.400", (40, 110, 300, 160)),
                 ("いいね", (400, 80, 480, 100)), ("-", (400, 110, 420, 160)))
    metrics = metrics_from_ocr(result)
    assert metrics == [] and sales_fields(metrics) == {}


def test_json_and_csv_exports_are_read_exactly():
    reading = metrics_from_export(b'{"stats": {"GMV": 1234567, "orders": "4,567", "CTR": "3.2%", "avg_watch_time": "01:02:03"},'
                                  b' "comments": "n/a"}', name="export.json")
    assert by_metric(reading.metrics) == {"gmv": (1234567, "count", "1234567"), "orders": (4567, "count", "4,567"),
                                          "ctr": (3.2, "percent", "3.2%"), "average_watch_time": (3723, "seconds", "01:02:03")}
    assert reading.problems and "comments" in reading.problems[0]
    csv_sjis = "配信日,総売上(円),注文数,視聴者数\n2026/11/30,\"1,234,567\",321,1.2万\n".encode("cp932")
    rows = metrics_from_export(csv_sjis, name="export.csv")
    assert by_metric(rows.metrics)["gmv"] == (1234567, "JPY", "1,234,567")
    assert by_metric(rows.metrics)["viewers"] == (12000, "count", "1.2万")
    assert all(m.source == "csv" for m in rows.metrics)
    with pytest.raises(InputError, match="JSON として読めません"):
        metrics_from_export(b'{"GMV": ', name="broken.json")


def test_a_platform_export_beats_ocr_and_unverified_or_negative_values_are_never_used():
    ocr_gmv = Metric("総売上", "gmv", 1000, "JPY", "¥1,000", "¥1,000", 0.99)
    export_gmv = Metric("GMV", "gmv", 1200, "JPY", "1200", "GMV: 1200", 1.0, source="csv")
    llm_orders = Metric("注文数", "orders", 77, "count", "77", "", 0.0, source="llm", verified=False)
    negative = Metric("いいね", "likes", -5, "count", "-5", "-5", 0.9)
    fields = sales_fields([ocr_gmv, export_gmv, llm_orders, negative])
    assert fields == {"gmv": export_gmv}


@pytest.fixture
def knowledge_llm(settings, fake_openai_server):
    settings.HOKAN_KNOWLEDGE_LLM_PROVIDER = "openai"
    return OpenAICompatClient("openai", "gpt-4o", "test-key", fake_openai_server.v1_url, sleep=lambda s: None)


@pytest.mark.django_db
def test_the_vision_llm_labels_what_rules_cannot_and_its_numbers_must_be_in_the_ocr_text(knowledge_llm, fake_openai_server):
    result = ocr(("¥98,000", (40, 110, 300, 160)), ("321", (600, 110, 700, 160)))
    reading = SalesReading("shot.png", result.text, tuple(metrics_from_ocr(result)))
    assert [m.metric for m in reading.metrics] == [None, None]
    fake_openai_server.enqueue(Reply.json({"figures": [
        {"shown": "¥98,000", "label": "総売上", "metric": "gmv"},
        {"shown": "321", "label": "注文数", "metric": "orders"},
        {"shown": "¥5,000,000", "label": "総売上", "metric": "gmv"},  # not on the screen
    ]}))
    labelled = label_with_llm(reading, PNG, client=knowledge_llm)
    sent = fake_openai_server.requests[0].json
    assert sent["messages"][1]["content"][1]["type"] == "image_url" and "¥98,000" in sent["messages"][1]["content"][0]["text"]
    verified = [m for m in labelled.metrics if m.verified]
    assert by_metric(verified) == {"gmv": (98000, "JPY", "¥98,000"), "orders": (321, "count", "321")}
    assert [m.source for m in verified] == ["screenshot", "screenshot"]  # the OCR figures, now labelled
    invented = [m for m in labelled.metrics if not m.verified]
    assert len(invented) == 1 and invented[0].value == 5_000_000 and invented[0].source == "llm"
    assert sales_fields(labelled.metrics)["gmv"].value == 98000
    from hokan.core.budget import get_ledger

    assert get_ledger("knowledge").snapshot().calls == 1


@pytest.mark.django_db
def test_stored_sales_keep_their_provenance_and_a_manual_value(knowledge_index):
    from hokan.knowledge.service import record_sales_value, store_analysis
    from tests.knowledge.conftest import analysis_payload

    payload = analysis_payload("tt-sales")
    del payload["sales"]
    analysis = store_analysis(payload, index_obj=knowledge_index)
    record_sales_value(analysis, metric="orders", value=300, unit="count", source="manual")
    result = ocr(("総売上", (40, 80, 120, 100)), ("注文数", (360, 80, 440, 100)),
                 ("¥1,234,567", (40, 110, 300, 160)), ("4,567件", (360, 110, 560, 160)))
    rows = store_sales(analysis, SalesReading("shot.png", result.text, tuple(metrics_from_ocr(result))))
    assert [r.metric for r in rows] == ["gmv"]
    gmv = analysis.sales.get(metric="gmv")
    assert (gmv.value, gmv.unit, gmv.source, gmv.shown, gmv.quote, gmv.source_ref, gmv.method) == (
        Decimal(1234567), "JPY", "screenshot", "¥1,234,567", "¥1,234,567", "shot.png", "ocr_rules")
    assert analysis.sales.get(metric="orders").value == 300  # the manual edit stays


@pytest.mark.django_db
def test_read_screenshot_asks_the_llm_only_when_enabled_and_keeps_the_rules_reading_when_it_fails(
        settings, fake_openai_server, tmp_path):
    from hokan.core.documents import get_engine
    from hokan.knowledge.sales_data_ingester import read_screenshot

    settings.HOKAN_DATA_DIR = tmp_path / "data"
    settings.HOKAN_LLM_PROVIDER = settings.HOKAN_KNOWLEDGE_LLM_PROVIDER = "openai"
    settings.HOKAN_LLM_API_KEY = settings.OPENAI_API_KEY = "test-key"
    settings.HOKAN_LLM_BASE_URL = fake_openai_server.v1_url
    settings.HOKAN_LLM_MAX_RETRIES = 0
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (480, 120), "white")
    font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 40)
    ImageDraw.Draw(image).text((20, 30), "¥98,000", fill="black", font=font)
    path = tmp_path / "bare.png"
    image.save(path)
    engines = [get_engine("ppocrv6")]
    plain = read_screenshot(path, engines=engines, vision=False)
    assert [(m.value, m.unit, m.metric) for m in plain.metrics] == [(98000, "JPY", None)]
    assert fake_openai_server.requests == []
    fake_openai_server.enqueue(Reply.error(400, message="bad request"))
    failed = read_screenshot(path, engines=engines, vision=True)
    assert [(m.value, m.metric) for m in failed.metrics] == [(98000, None)] and "画像 LLM" in failed.problems[0]
    assert len(fake_openai_server.requests) == 1  # the provider was asked once, refused: the rules' reading stays
    fake_openai_server.enqueue(Reply.json({"figures": [{"shown": "¥98,000", "label": "総売上", "metric": "gmv"}]}))
    labelled = read_screenshot(path, engines=engines, vision=True)
    assert [(m.value, m.metric, m.label) for m in labelled.metrics] == [(98000, "gmv", "総売上")]
