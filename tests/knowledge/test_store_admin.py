"""The knowledge admin (Japanese): lists and filters, inline phases and sales with provenance,
a hand edit of a sales value becomes 手入力 and survives later OCR; re-index action."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hokan.knowledge.models import SalesData, VideoAnalysis
from hokan.knowledge.service import record_sales_value, store_analysis
from hokan.knowledge.store import point_id
from tests.knowledge.conftest import analysis_payload

pytestmark = pytest.mark.django_db


def test_lists_filters_and_shows_provenance(admin_client, knowledge_index):
    store_analysis(analysis_payload("tt-001"), index_obj=knowledge_index)
    store_analysis(analysis_payload("ig-002", liver="みお", platform="instagram"), index=False)
    page = admin_client.get("/admin/knowledge/videoanalysis/").content.decode()
    assert "動画分析" in page and "tt-001" in page and "ig-002" in page and "¥1,234,567" in page
    only = admin_client.get("/admin/knowledge/videoanalysis/?platform=instagram").content.decode()
    assert "ig-002" in only and "tt-001" not in only
    pending = admin_client.get("/admin/knowledge/videoanalysis/?indexed=no").content.decode()
    assert "ig-002" in pending and "tt-001" not in pending
    found = admin_client.get("/admin/knowledge/videoanalysis/?q=みお").content.decode()
    assert "ig-002" in found and "tt-001" not in found
    analysis = VideoAnalysis.objects.get(video_id="tt-001")
    change = admin_client.get(f"/admin/knowledge/videoanalysis/{analysis.pk}/change/").content.decode()
    assert "フェーズ" in change and "今だけ3,980円" in change and "売上データ" in change and "分析JSON" in change
    response = admin_client.post("/admin/knowledge/videoanalysis/", {
        "action": "reindex_selected", "_selected_action": [VideoAnalysis.objects.get(video_id="ig-002").pk]},
        follow=True)
    assert "Qdrantに反映しました" in response.content.decode()
    assert knowledge_index.count(video_id="ig-002") == 2


def test_a_hand_edit_is_manual_and_kept(admin_client, knowledge_index):
    analysis = store_analysis(analysis_payload(), index_obj=knowledge_index)
    row = SalesData.objects.get(analysis=analysis, metric="gmv")
    response = admin_client.post(f"/admin/knowledge/salesdata/{row.pk}/change/", {
        "value": "1300000", "unit": "JPY", "shown": "¥1,300,000", "verified": "on"}, follow=True)
    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.value, row.source, row.method, row.confidence) == (Decimal("1300000"), "manual", "manual",
                                                                   Decimal("1.000"))
    assert record_sales_value(analysis, metric="gmv", value=1, unit="JPY", source="api") is None
    point = knowledge_index.client.retrieve(knowledge_index.collection, [point_id("tt-001", 0)])[0]
    assert point.payload["gmv_jpy"] == 1300000
