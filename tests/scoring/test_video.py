"""Video mode (issue 11 §5, document 002 §1.2): download → File API upload → ACTIVE → paid
generateContent with fileData → delete, against a real HTTP fake of the File API
(tests/fakes/gemini_files_server.py) and a fake website serving the video. After every test,
success or not: no file left at the fake, no temporary file, no pending-upload record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import pytest

from hokan.core.budget import get_ledger
from hokan.core.errors import LLMTransientError
from hokan.core.llm.client import JsonRequest
from hokan.core.llm.gemini import GeminiClient
from hokan.core.llm.gemini_files import GeminiFilesClient
from hokan.core.models import UsageReservation
from hokan.scoring.video import VideoError, VideoScorer, VideoSettings, VideoUnavailable, is_video_source
from tests.conftest import REPO_ROOT
from tests.fakes.gemini_files_server import FakeGeminiFilesServer
from tests.fakes.gemini_server import GeminiReply
from tests.fakes.site_server import FakeSite

CHUNK = 256 * 1024
VIDEO = bytes(range(256)) * (3 * CHUNK // 256 + 100)  # three chunks and a bit: 4 upload requests
REQUEST = JsonRequest(system="動画の発話を各カテゴリで0〜1で採点してください。", user="この動画を採点してください。",
                      schema={"type": "object", "properties": {"scores": {"type": "object"}}, "required": ["scores"]},
                      schema_name="scores")
ANSWER = {"scores": {"接客態度": 0.8, "商品説明": 0.4}}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


@pytest.fixture
def fake():
    with FakeGeminiFilesServer(processing_polls=2) as server:
        yield server


@pytest.fixture
def site():
    with FakeSite() as server:
        server.pages["/videos/shop.mp4"] = (VIDEO, "video/mp4")
        server.pages["/videos/plain.mp4"] = (VIDEO, "application/octet-stream")
        server.pages["/page.html"] = (b"<html>not a video</html>", "text/html")
        yield server


def make_scorer(fake, tmp_path, *, files_timeout_s=10.0, files_retries=3, **overrides) -> VideoScorer:
    values = dict(poll_interval_s=0.0, active_timeout_s=60, upload_chunk_bytes=CHUNK, state_dir=tmp_path / "state",
                  max_bytes=10 * 1024 * 1024, cost_per_call_usd=Decimal("0.10"))
    values.update(overrides)
    settings = VideoSettings(**values)

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    files = GeminiFilesClient("test-key", fake.base_url, chunk_bytes=CHUNK, timeout_s=files_timeout_s,
                              max_retries=files_retries, sleep=no_wait)
    client = GeminiClient("test-key", "gemini-2.5-flash", fake.base_url, max_retries=2, sleep=lambda s: None,
                          profile="scoring")
    return VideoScorer(client=client, files=files, ledger=get_ledger("scoring"), settings=settings)


def assert_nothing_left(fake: FakeGeminiFilesServer, scorer: VideoScorer) -> None:
    assert fake.leaks() == [], "an uploaded file was not deleted"
    assert list(scorer.cleanup.tmp_dir.iterdir()) == [], "a temporary file was left"
    assert scorer.cleanup.pending() == [], "a pending-upload record was left"


async def score_once(scorer: VideoScorer, source: str, key: str = "scoring:test:row1"):
    async with scorer:
        return await scorer.score(source, REQUEST, key=key)


def reservations(key_prefix: str) -> list[tuple[str, str]]:
    return sorted((r.key, r.status) for r in UsageReservation.objects.filter(scope="scoring", key__startswith=key_prefix))


@pytest.mark.django_db(transaction=True)
def test_a_video_row_is_scored_through_the_file_api_and_everything_is_deleted(fake, site, tmp_path):
    # a 500 on one chunk (resumed after a query), a 429 while polling, a 500 on generateContent
    fake.fault("chunk", GeminiReply.error(500))
    fake.fault("get", GeminiReply.rate_limited(retry_after="0"))
    fake.enqueue(GeminiReply.error(500), GeminiReply.json(ANSWER))
    scorer = make_scorer(fake, tmp_path)

    result = run(score_once(scorer, site.url("/videos/shop.mp4")))

    assert result.completion.data == ANSWER
    assert result.mime_type == "video/mp4" and result.size_bytes == len(VIDEO) and result.duration_s == 12.0
    assert fake.uploads == 1 and fake.deletes == 1 and fake.sessions == 1
    assert fake.polls >= 2  # it waited through PROCESSING
    # what the File API received is the video, byte for byte
    uploaded = [r for r in fake.requests if r.method == "POST" and r.path == "/upload/v1beta/files" and r.json]
    assert uploaded[0].json["file"]["name"] == result.file_name
    assert uploaded[0].headers["x-goog-upload-header-content-length"] == str(len(VIDEO))
    # generateContent saw the fileData part of the ACTIVE file (after one 500 it was asked again)
    generates = [r for r in fake.requests if r.path.endswith(":generateContent")]
    assert len(generates) == 2
    parts = generates[-1].json["contents"][0]["parts"]
    assert parts[0] == {"text": REQUEST.user}
    assert parts[1]["fileData"]["mimeType"] == "video/mp4"
    assert parts[1]["fileData"]["fileUri"].endswith(result.file_name)
    # one paid call, committed once in the scoring ledger at the reported cost
    assert reservations("scoring:test:row1") == [("scoring:test:row1", "committed")]
    assert result.completion.usage.cost_usd > 0
    assert_nothing_left(fake, scorer)
    assert scorer.cleanup.stats.remote_deleted == 1 and scorer.cleanup.stats.local_removed == 1


@pytest.mark.django_db(transaction=True)
def test_processing_failed_and_a_provider_down_delete_the_file_and_pay_nothing(fake, site, tmp_path):
    fake.final_state = "FAILED"
    scorer = make_scorer(fake, tmp_path)
    with pytest.raises(VideoError) as failed:
        run(score_once(scorer, site.url("/videos/shop.mp4")))
    assert failed.value.reason == "processing_failed" and "unsupported codec" in str(failed.value)
    assert not isinstance(failed.value, VideoUnavailable)
    assert fake.generate_calls == 0 and fake.uploads == 1 and fake.deletes == 1
    assert reservations("scoring:test") == []
    assert_nothing_left(fake, scorer)

    # ACTIVE, but generateContent answers 500 every time: the reservation is released, the file deleted
    fake.final_state = "ACTIVE"
    fake.default_reply = GeminiReply.error(500)
    scorer = make_scorer(fake, tmp_path)
    with pytest.raises(LLMTransientError):
        run(score_once(scorer, site.url("/videos/plain.mp4"), key="scoring:test:row2"))
    assert fake.generate_calls == 3 and fake.uploads == 2 and fake.deletes == 2
    assert reservations("scoring:test:row2") == [("scoring:test:row2", "released")]
    assert_nothing_left(fake, scorer)

    # still PROCESSING when the wait runs out: a transient error (the row is retried later)
    fake.final_state = None
    ticks = iter(range(0, 10_000, 100))
    scorer = make_scorer(fake, tmp_path, active_timeout_s=250)
    scorer._clock = lambda: float(next(ticks))
    with pytest.raises(VideoUnavailable) as waited:
        run(score_once(scorer, site.url("/videos/shop.mp4"), key="scoring:test:row3"))
    assert waited.value.reason == "processing_timeout"
    assert fake.uploads == 3 and fake.deletes == 3
    assert_nothing_left(fake, scorer)


@pytest.mark.django_db(transaction=True)
def test_cancelling_the_task_while_it_waits_for_active_still_deletes_everything(fake, site, tmp_path):
    fake.final_state = None  # stays PROCESSING
    scorer = make_scorer(fake, tmp_path, poll_interval_s=0.01)

    async def scenario() -> None:
        async with scorer:
            task = asyncio.create_task(scorer.score(site.url("/videos/shop.mp4"), REQUEST, key="scoring:test:c"))
            assert await asyncio.to_thread(fake.wait_polls, 3), "the scorer never polled"
            assert fake.leaks() != []  # uploaded and waiting
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(scenario())
    assert fake.uploads == 1 and fake.deletes == 1 and fake.generate_calls == 0
    assert reservations("scoring:test") == []
    assert_nothing_left(fake, scorer)


@pytest.mark.django_db(transaction=True)
def test_an_oversized_video_is_refused_before_anything_is_uploaded(fake, site, tmp_path):
    scorer = make_scorer(fake, tmp_path, max_bytes=len(VIDEO) - 1)
    with pytest.raises(VideoError) as refused:
        run(score_once(scorer, site.url("/videos/shop.mp4")))
    assert refused.value.reason == "too_large" and f"{len(VIDEO) - 1:,}" in str(refused.value)
    # a page that is not a video is refused too
    with pytest.raises(VideoError) as not_video:
        run(score_once(make_scorer(fake, tmp_path), site.url("/page.html")))
    assert not_video.value.reason == "not_video"
    assert fake.sessions == 0 and fake.uploads == 0
    assert_nothing_left(fake, scorer)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("host", ["localhost", "10.0.0.7", "169.254.169.254", "[::1]", "2130706433"])
def test_a_video_on_a_private_address_is_refused_without_a_connection(fake, site, tmp_path, host):
    scorer = make_scorer(fake, tmp_path)
    url = f"http://{host}:{site.port}/videos/shop.mp4"
    with pytest.raises(VideoError) as refused:
        run(score_once(scorer, url))
    assert refused.value.reason == "blocked" and refused.value.source == url
    assert site.requests == [] and fake.sessions == 0
    assert_nothing_left(fake, scorer)


@pytest.mark.django_db(transaction=True)
def test_local_paths_only_under_the_configured_root(fake, tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "a.mp4").write_bytes(VIDEO)
    (tmp_path / "secret.mp4").write_bytes(b"x")
    fake.enqueue(GeminiReply.json(ANSWER))
    with pytest.raises(VideoError) as unset:
        run(score_once(make_scorer(fake, tmp_path), str(root / "a.mp4")))
    assert unset.value.reason == "outside_root"
    scorer = make_scorer(fake, tmp_path, local_root=root.resolve())
    with pytest.raises(VideoError) as outside:
        run(score_once(scorer, "../secret.mp4"))
    assert outside.value.reason == "outside_root"
    result = run(score_once(scorer, "a.mp4"))
    assert result.completion.data == ANSWER and fake.uploads == 1
    assert (root / "a.mp4").exists()  # the user's own file is never deleted
    assert_nothing_left(fake, scorer)


@pytest.mark.django_db(transaction=True)
def test_a_delete_that_fails_is_kept_and_done_by_the_next_run(fake, site, tmp_path):
    fake.enqueue(GeminiReply.json(ANSWER))
    fake.fault("delete", GeminiReply.error(503), GeminiReply.error(503))
    scorer = make_scorer(fake, tmp_path, files_retries=1)
    result = run(score_once(scorer, site.url("/videos/shop.mp4")))
    assert result.completion.data == ANSWER
    assert fake.leaks() == [result.file_name] and scorer.cleanup.pending() == [result.file_name]
    assert scorer.cleanup.stats.remote_failed == 1

    later = make_scorer(fake, tmp_path)
    run(later.__aenter__())
    assert later.cleanup.stats.recovered_remote == 1
    assert_nothing_left(fake, later)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_what_a_process_killed_by_sigkill_left_is_deleted_on_the_next_run(fake, site, tmp_path):
    fake.final_state = None  # the worker waits for ACTIVE forever
    state = tmp_path / "state"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src") + os.pathsep + str(REPO_ROOT))
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.scoring.video_worker", fake.base_url, site.url("/videos/shop.mp4"), str(state)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        assert fake.wait_polls(2, timeout_s=60), worker.stderr.read().decode() if worker.poll() is not None else ""
        # meanwhile a live process (this one) owns a record that the next run must leave alone
        live = make_scorer(fake, tmp_path)
        live.cleanup.remember_upload("files/hokan-live")
        fake.add_file("files/hokan-live")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    leaked = [name for name in fake.leaks() if name != "files/hokan-live"]
    assert len(leaked) == 1 and fake.deletes == 0  # the killed worker's upload is still there
    record = json.loads(next((state / "pending").glob("*hokan-*.json")).read_text())
    assert record["pid"] == worker.pid

    nxt = make_scorer(fake, tmp_path)
    run(nxt.__aenter__())
    assert fake.leaks() == ["files/hokan-live"] and nxt.cleanup.pending() == ["files/hokan-live"]
    assert nxt.cleanup.stats.recovered_remote == 1
    assert list(nxt.cleanup.tmp_dir.iterdir()) == []  # the worker's partial download is gone too
    run(fake_delete_live(nxt))
    assert_nothing_left(fake, nxt)


async def fake_delete_live(scorer: VideoScorer) -> None:
    await scorer.cleanup.delete_later("files/hokan-live")


def test_is_video_source():
    assert is_video_source("https://example.com/a/b.MP4?x=1")
    assert is_video_source("clips/shop.webm")
    assert not is_video_source("https://example.com/page.html")
    assert not is_video_source("こんにちは。動画.mp4 を見ました\n次の行")
    assert not is_video_source("")


@pytest.mark.django_db(transaction=True)
def test_a_hung_file_api_request_times_out_and_is_retried(fake, site, tmp_path):
    # the first poll is accepted and never answered; the client gives up after its timeout and asks again
    fake.fault("get", GeminiReply.hang())
    fake.enqueue(GeminiReply.json(ANSWER))
    scorer = make_scorer(fake, tmp_path, files_timeout_s=0.3)
    result = run(score_once(scorer, site.url("/videos/shop.mp4")))
    assert result.completion.data == ANSWER
    gets = [r for r in fake.requests if r.method == "GET" and r.path.startswith("/v1beta/files/")]
    assert len(gets) >= 2
    assert fake.uploads == 1 and fake.deletes == 1
    assert_nothing_left(fake, scorer)
