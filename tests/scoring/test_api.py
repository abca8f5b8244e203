"""The scoring REST API (issue 11 §6): create from an upload, status with chunks, cancel, resume,
download the results; API keys and JSON errors (core.api)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hokan.core.api_keys import ApiKey
from hokan.scoring.models import ScoringJob, ScoringResult
from tests.scoring.helpers import CATEGORIES, texts

pytestmark = pytest.mark.django_db

BASE = "/api/scoring/jobs"


@pytest.fixture
def key():
    return ApiKey.generate("スコアリング連携")[1]


def upload(rows: int = 3, *, encoding: str = "cp932"):
    data = io.StringIO()
    writer = csv.writer(data)
    writer.writerow(["ID", "発話"])
    for i, text in enumerate(texts(rows)):
        writer.writerow([f"r{i}", text])
    return {
        "input": SimpleUploadedFile("comments.csv", data.getvalue().encode(encoding), content_type="text/csv"),
        "categories": SimpleUploadedFile("cats.json", json.dumps(CATEGORIES, ensure_ascii=False).encode(),
                                         content_type="application/json"),
        "text_column": "発話", "id_column": "ID", "name": "api-job", "start": "false",
    }


def test_create_status_cancel_resume_and_download(client, key, settings, tmp_path):
    settings.HOKAN_DATA_DIR = tmp_path
    headers = {"X-API-Key": key}
    created = client.post(BASE, upload(3), headers=headers)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["status"], body["rows_total"], body["cells_total"]) == ("api-job", "pending", 3, 9)
    assert body["chunks"] == [{"chunk_id": 0, "row_range": [0, 3], "status": "pending", "retry_count": 0,
                               "last_error": ""}]
    again = client.post(BASE, upload(3), headers=headers)  # the same name and input: the same job
    assert again.status_code == 200 and again.json()["public_id"] == body["public_id"]
    assert client.get(f"{BASE}/{body['public_id']}", headers=headers).json()["name"] == "api-job"
    cancelled = client.post(f"{BASE}/api-job/cancel", headers=headers).json()
    assert cancelled["status"] == "interrupted" and "取り消しました" in cancelled["message"]
    resumed = client.post(f"{BASE}/api-job/resume?start=false", headers=headers)
    assert resumed.status_code == 202 and resumed.json()["status"] == "pending"
    sjob = ScoringJob.objects.get(name="api-job")
    ScoringResult.objects.create(job=sjob, row_index=0, category="不満", score=0.25, status="ok", method="llm")
    ScoringResult.objects.create(job=sjob, row_index=0, category="要望", score=None, status="error",
                                 error="回答が不正です")
    download = client.get(f"{BASE}/api-job/results", headers=headers)
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["ID", "発話", "不満", "要望", "称賛", "採点ステータス"]
    assert rows[1][2] == "0.25" and rows[1][5] == "エラー（要望: 回答が不正です）" and rows[2][5] == "未処理"
    xlsx = client.get(f"{BASE}/api-job/results?format=xlsx", headers=headers)
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content)[:2] == b"PK"


def test_errors_are_json_in_japanese(client, key, settings, tmp_path):
    settings.HOKAN_DATA_DIR = tmp_path
    assert client.get(f"{BASE}/nothing").status_code == 401
    missing = client.get(f"{BASE}/nothing", headers={"X-API-Key": key})
    assert missing.status_code == 400 and "見つかりません" in missing.json()["detail"]
    bad = upload(2)
    bad["text_column"] = "コメント"
    refused = client.post(BASE, bad, headers={"X-API-Key": key})
    assert refused.status_code == 400 and "列「コメント」がありません" in refused.json()["detail"]
    assert not ScoringJob.objects.exists()  # nothing created from a refused request
    no_input = upload(2)
    del no_input["input"]
    assert "input" in client.post(BASE, no_input, headers={"X-API-Key": key}).json()["detail"]
    fmt = client.get(f"{BASE}/x/results?format=pdf", headers={"X-API-Key": key})
    assert fmt.status_code == 400 and "csv か xlsx" in fmt.json()["detail"]


def test_the_admin_shows_jobs_chunks_and_cancels(admin_client, client, key, settings, tmp_path):
    settings.HOKAN_DATA_DIR = tmp_path
    client.post(BASE, upload(3), headers={"X-API-Key": key})
    sjob = ScoringJob.objects.get()
    listing = admin_client.get("/admin/scoring/scoringjob/")
    assert listing.status_code == 200 and "api-job" in listing.content.decode()
    page = admin_client.get(f"/admin/scoring/scoringjob/{sjob.pk}/change/").content.decode()
    assert "チャンクの状態" in page and "待機中" in page and "不満" in page
    done = admin_client.post("/admin/scoring/scoringjob/", {"action": "cancel_jobs", "_selected_action": [sjob.pk]})
    assert done.status_code == 302
    sjob.job.refresh_from_db()
    assert sjob.job.status == "interrupted"
