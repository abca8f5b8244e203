"""``hokan knowledge backfill`` (issue 12 §6; document 001 §4.1): local folders, an API with
next links (a local fake on 127.0.0.1) and Azure Blob Storage (Azurite, the npm package, started
here on 127.0.0.1 and stopped by PID): idempotent, paginated, bad documents reported and skipped."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hokan.knowledge.backfill import BackfillError, api_pages, azure_pages, container_client, local_pages, run_backfill
from hokan.knowledge.command import app as knowledge_app
from hokan.knowledge.models import Phase, VideoAnalysis
from tests.fakes.local_http import JSONHandler, LocalHTTPServer
from tests.knowledge.conftest import analysis_payload
from tests.servers import free_port, stop_process_group

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
cli = typer.Typer()
cli.add_typer(knowledge_app, name="knowledge")
runner = CliRunner()


def _write(folder: Path, name: str, content) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def past(tmp_path: Path) -> Path:
    folder = tmp_path / "past"
    _write(folder, "2026-11/a.json", analysis_payload("tt-a"))
    _write(folder, "2026-11/b.json", analysis_payload("tt-b", liver="ひまわり"))
    _write(folder, "both.json", {"analyses": [analysis_payload("tt-c"), analysis_payload("tt-d")]})
    _write(folder, "broken.json", '{"video_id": "tt-x", "phases": [')
    _write(folder, "invalid.json", {"video_id": "tt-y", "phases": []})
    _write(folder, "notes.txt", "not an analysis")
    return folder


def test_local_backfill_is_idempotent_paginated_and_skips_bad_files(past: Path, knowledge_index):
    pages = list(local_pages(past, page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]  # five *.json files, two a page
    report = run_backfill(iter(pages), index_obj=knowledge_index)
    assert (report.documents, report.created, report.updated, report.unchanged) == (5, 4, 0, 0)
    failed = dict(report.failed)
    assert "JSON として読めません" in failed[str(past / "broken.json")]
    assert "phases" in failed[str(past / "invalid.json")]
    assert knowledge_index.count() == 8 and Phase.objects.count() == 8
    again = run_backfill(local_pages(past, page_size=2), index_obj=knowledge_index)
    assert (again.created, again.updated, again.unchanged, len(again.failed)) == (0, 0, 4, 2)
    changed = analysis_payload("tt-a", phases=[{"index": 0, "start_s": 0, "end_s": 60, "speech": "再分析"}])
    _write(past, "2026-11/a.json", changed)
    third = run_backfill(local_pages(past, page_size=100), index_obj=knowledge_index)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 3)
    assert knowledge_index.count() == 7 and VideoAnalysis.objects.count() == 4


def test_a_document_over_the_size_limit_is_named_and_skipped(past: Path, settings):
    settings.HOKAN_KNOWLEDGE_BACKFILL_MAX_ITEM_BYTES = 100
    report = run_backfill(local_pages(past, page_size=10))
    assert report.created == 0 and len(report.failed) == 5
    too_large = sorted(Path(name).name for name, reason in report.failed if "大きすぎます" in reason)
    assert too_large == ["a.json", "b.json", "both.json"]  # the two small bad files fail for their own reasons


def test_the_command_reports_bad_files_in_japanese(past: Path, knowledge_index):
    result = runner.invoke(cli, ["knowledge", "backfill", "--source", "local", "--dir", str(past)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "新規 4" in result.output and "スキップ 2" in result.output and "broken.json" in result.output
    missing = runner.invoke(cli, ["knowledge", "backfill", "--source", "local", "--dir", str(past / "nope")])
    assert missing.exit_code == 1 and "フォルダがありません" in missing.output
    usage = runner.invoke(cli, ["knowledge", "backfill", "--source", "azure"])
    assert usage.exit_code == 2 and "--container" in usage.output


class FakeAnalysesApi(LocalHTTPServer):
    """Pages of analyses with relative next links; page 2 holds one broken analysis."""

    thread_name = "fake-analyses-api"
    pages: dict[str, dict]


class _Handler(JSONHandler):
    fake: FakeAnalysesApi

    def do_GET(self) -> None:
        self.fake.record((self.path, self.header_dict()))
        page = self.fake.pages.get(self.path.split("?")[0])
        if page is None:
            self.send_json(404, {"detail": "not found"})
        else:
            self.send_json(200, page)


FakeAnalysesApi.handler_class = _Handler


def test_api_backfill_follows_next_links_through_the_guarded_client(knowledge_index, settings):
    with FakeAnalysesApi() as server:
        server.pages = {
            "/analyses": {"items": [analysis_payload("tt-1"), analysis_payload("tt-2")], "next": "/analyses/p2"},
            "/analyses/p2": {"items": [analysis_payload("tt-3"), {"video_id": "bad"}], "next": None},
            "/loop": {"items": [], "next": "/loop"},
            "/away": {"items": [], "next": "http://example.com/steal"},
        }
        report = run_backfill(api_pages(server.root_url + "/analyses", page_size=2, token="secret-token"),
                              index_obj=knowledge_index)
        assert (report.documents, report.created, len(report.failed)) == (4, 3, 1)
        assert server.requests[0][0] == "/analyses?page_size=2"
        assert all(headers["authorization"] == "Bearer secret-token" for _, headers in server.requests)
        for path, words in (("/loop", "終わりません"), ("/away", "別のサイト"), ("/missing", "HTTP 404")):
            with pytest.raises(BackfillError, match=words):
                list(api_pages(server.root_url + path, page_size=2, token=""))
        assert all("example.com" not in p for p, _ in server.requests)
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    with pytest.raises(BackfillError, match="取得できません"):  # loopback refused by the SSRF guard
        list(api_pages("http://127.0.0.1:9/analyses", page_size=2, token=""))


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("azurite did not listen")


@pytest.fixture
def azurite(tmp_path: Path):
    """Azurite's blob service on 127.0.0.1 (a free port), data in tmp_path; stopped by PID."""
    if not AZURITE.exists():
        pytest.fail("node_modules/.bin/azurite-blob がありません: `make install`（npm ci）で入ります")
    port = free_port()
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(tmp_path / "azurite"),
         "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    finally:
        # Azurite waits for idle keep-alive connections before exiting; its data is a tmp folder,
        # so after 2 s it is killed (SIGKILL to its process group, by PID)
        stop_process_group(process, signal.SIGTERM, timeout_s=2)


@pytest.mark.slow  # starts Azurite (node)
def test_azure_backfill_from_azurite_pages_with_continuation_tokens(azurite: str, knowledge_index, settings):
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    container = service.create_container("analyses")
    for i in range(5):
        container.upload_blob(f"2026/tt-az-{i}.json", json.dumps(analysis_payload(f"tt-az-{i}"), ensure_ascii=False))
    container.upload_blob("2026/broken.json", b"\xff\xfe not json")
    container.upload_blob("2026/readme.txt", b"skipped: not *.json")
    container.upload_blob("other/tt-other.json", json.dumps(analysis_payload("tt-other")))
    settings.AZURE_STORAGE_CONNECTION_STRING = azurite
    client = container_client("analyses")
    pages = list(azure_pages("analyses", prefix="2026/", page_size=2, client=client))
    # seven blobs under 2026/ listed two at a time, by name: [broken, readme.txt] [0, 1] [2, 3] [4]
    assert [len(p) for p in pages] == [1, 2, 2, 1]
    report = run_backfill(iter(pages), index_obj=knowledge_index)
    assert (report.documents, report.created, len(report.failed)) == (6, 5, 1)
    assert report.failed[0][0] == "azure://analyses/2026/broken.json"
    again = run_backfill(azure_pages("analyses", prefix="2026/", page_size=2, client=client), index_obj=knowledge_index)
    assert (again.created, again.unchanged) == (0, 5)
    assert not VideoAnalysis.objects.filter(video_id="tt-other").exists()
    with pytest.raises(BackfillError, match="コンテナ「missing」がありません"):
        list(azure_pages("missing", page_size=2))
    result = runner.invoke(cli, ["knowledge", "backfill", "--source", "azure", "--container", "analyses", "--prefix", "other/"])
    assert result.exit_code == 0 and "新規 1" in result.output, result.output
    client.close()
    service.close()
    settings.HOKAN_FETCH_ALLOW_HOSTS = []  # the account URL is loopback: refused before any request
    with pytest.raises(BackfillError, match="127.0.0.1"):
        container_client("analyses")


def test_azure_without_credentials_is_a_clear_error(settings):
    settings.AZURE_STORAGE_CONNECTION_STRING = ""
    settings.AZURE_STORAGE_ACCOUNT_URL = ""
    with pytest.raises(BackfillError, match="AZURE_STORAGE_CONNECTION_STRING"):
        container_client("analyses")
    with pytest.raises(BackfillError, match="接続文字列を読めません"):
        container_client("analyses", connection_string="this is not one")


def test_the_blob_transport_sends_only_to_the_account_host(settings):
    from azure.core.rest import HttpRequest

    from hokan.core.errors import FetchBlocked
    from hokan.knowledge.backfill import _pinned_transport

    transport = _pinned_transport("http://127.0.0.1:10000/devstoreaccount1")
    for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:10001/devstoreaccount1",
                "https://127.0.0.1:10000/devstoreaccount1"):
        with pytest.raises(FetchBlocked, match="アカウント以外"):
            transport.send(HttpRequest("GET", url))
    settings.HOKAN_FETCH_ALLOW_HOSTS = []
    with pytest.raises(FetchBlocked):  # the account host itself is checked again before each request
        transport.send(HttpRequest("GET", "http://127.0.0.1:10000/devstoreaccount1/analyses?restype=container"))
    transport.close()
