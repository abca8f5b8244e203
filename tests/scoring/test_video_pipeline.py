"""A sheet whose utterance column holds videos, through the scoring pipeline (``service.run_job``):
each video uploaded to the fake File API, attached to the call that asks its row, deleted
afterwards; a broken video reported on its row only; nothing left at the fake or on disk."""

from __future__ import annotations

import csv
import json
import re

import pytest

from hokan.core.models import UsageReservation
from hokan.scoring import service
from hokan.scoring.config import RunConfig, load_categories
from hokan.scoring.io import STATUS_HEADER, FileSource
from hokan.scoring.models import ScoringResult
from tests.fakes.gemini_files_server import FakeGeminiFilesServer
from tests.fakes.gemini_server import GeminiReply
from tests.fakes.site_server import FakeSite
from tests.scoring.helpers import CATEGORIES, write_categories

pytestmark = pytest.mark.django_db(transaction=True)
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(300_000)


def answer(body):
    """Scores for every id of the request (0.5 for text rows, 0.9 for rows sent with a video)."""
    user = "".join(p.get("text", "") for c in body["contents"] for p in c["parts"] if "text" in p)
    ids = re.findall(r'"id": "(\d+)"', user)
    videos = set(re.findall(r"id ([\d・]+) の発話は動画です", user)[0].split("・")) if "の発話は動画です" in user else set()
    return GeminiReply.json({"results": [{"id": i, "scores": {c["name"]: 0.9 if i in videos else 0.5 for c in CATEGORIES}}
                                         for i in ids]})


@pytest.fixture
def world(settings, tmp_path):
    with FakeGeminiFilesServer(processing_polls=1, responder=answer) as fake, FakeSite() as site:
        for name in ("a", "b", "c"):
            site.pages[f"/v/{name}.mp4"] = (VIDEO, "video/mp4")
        settings.HOKAN_LLM_PROVIDER = settings.HOKAN_SCORING_LLM_PROVIDER = "gemini"
        settings.GEMINI_API_KEY = "test-key"
        settings.HOKAN_LLM_BASE_URL = fake.base_url
        settings.HOKAN_LLM_MODEL = "gemini-2.5-flash"
        settings.HOKAN_LLM_MAX_RETRIES = 0
        settings.HOKAN_LLM_TIMEOUT_S = 10
        settings.HOKAN_SCORING_VIDEO_STATE_DIR = str(tmp_path / "video-state")
        settings.HOKAN_SCORING_VIDEO_POLL_INTERVAL_S = 0
        settings.HOKAN_SCORING_VIDEO_UPLOAD_CHUNK_BYTES = 256 * 1024
        yield fake, site


def run(tmp_path, name, cells, per_call):
    path = tmp_path / f"{name}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "発話"])
        writer.writerows([[f"r{i}", text] for i, text in enumerate(cells)])
    sjob, table, _ = service.prepare_job(
        FileSource(path), categories=load_categories(write_categories(tmp_path / "cats.json")), text_column="発話",
        id_column="ID", output=str(tmp_path / f"{name}-out.csv"), name=name,
        config=RunConfig.from_settings(utterances_per_call=per_call, chunk_retry_limit=0, cache_enabled=False,
                                      concurrency_min=1, concurrency_max=1, flush_interval=60, flush_batch_size=10_000))
    report = service.run_job(sjob, table)
    with (tmp_path / f"{name}-out.csv").open(encoding="utf-8-sig", newline="") as handle:
        return sjob, report, list(csv.DictReader(handle))


def assert_nothing_left(fake, tmp_path):
    assert fake.leaks() == []
    assert list((tmp_path / "video-state" / "tmp").iterdir()) == []
    assert list((tmp_path / "video-state" / "pending").iterdir()) == []


def test_video_rows_are_scored_with_their_videos_attached_and_deleted(world, tmp_path):
    fake, site = world
    cells = [site.url("/v/a.mp4"), site.url("/v/b.mp4"), "配送が遅いので改善してほしい", site.url("/v/c.mp4")]
    sjob, report, out = run(tmp_path, "videos", cells, per_call=2)

    assert report.status == "completed", report.message
    assert fake.uploads == 3 and fake.deletes == 3
    generates = [r for r in fake.requests if r.path.endswith(":generateContent")]
    attached = [[p["fileData"]["fileUri"] for p in r.json["contents"][0]["parts"] if "fileData" in p] for r in generates]
    assert sorted(len(a) for a in attached) == [1, 2]  # two videos in one call, the third beside a text row
    assert all(line[STATUS_HEADER] == "完了" for line in out)
    assert [line["不満"] for line in out] == ["0.9", "0.9", "0.5", "0.9"]
    # the URLs reached the prompt intact (not masked), and each call was one paid reservation
    assert all(site.url("/v/") in json.dumps(r.json, ensure_ascii=False) for r in generates)
    assert UsageReservation.objects.filter(scope="scoring", status="committed").count() == 2
    assert (sjob.provider, sjob.model) == ("gemini", "gemini-2.5-flash")
    assert_nothing_left(fake, tmp_path)


def test_a_broken_video_fails_its_row_only_and_leaves_nothing(world, tmp_path):
    fake, site = world
    cells = [site.url("/v/a.mp4"), site.url("/v/missing.mp4"), f"http://10.0.0.9:{site.port}/v/a.mp4"]
    sjob, report, out = run(tmp_path, "broken", cells, per_call=1)

    assert report.status == "failed"  # the chunk holding the broken rows, no retry allowed here
    assert out[0][STATUS_HEADER] == "完了"
    assert "HTTP 404" in out[1][STATUS_HEADER] and "missing.mp4" in out[1][STATUS_HEADER]
    assert "接続先が拒否されました" in out[2][STATUS_HEADER]
    errors = ScoringResult.objects.filter(job=sjob, score=None)
    assert errors.count() == 2 * len(CATEGORIES)
    assert fake.uploads == 1 and fake.deletes == 1
    assert not UsageReservation.objects.filter(scope="scoring", status="reserved").exists()
    assert_nothing_left(fake, tmp_path)
