"""Google Sheets input and the streaming writer (issue 11 §1, §2 Writer; document 002 §3.2),
against the local fake of the Sheets v4 REST API and its OAuth token endpoint
(tests/fakes/sheets_server.py). gspread, google-auth, the guarded transport, the rate limiter
(database store) and the fake are all real; only the clock is a fake one that ``sleep`` moves,
so the per-minute quota is checked without waiting."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from hokan.core.errors import InputError
from hokan.scoring.sheets import (
    SheetsAccessError,
    SheetsClient,
    SheetsConfigError,
    SheetsPolicy,
    SheetsWriteError,
    parse_sheet_url,
    service_account_info,
    sheets_client_from_settings,
)
from tests.fakes.clock import FakeClock
from tests.fakes.sheets_server import FakeSheetsServer, Fault

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock):
    with FakeSheetsServer(clock=clock) as fake:
        yield fake


ROWS = [["ID", "発話", "メモ"], ["u1", "商品がとても良かったです", ""], ["u2", "配送が遅い", "至急"], ["u3", "普通", ""]]


def make_client(server, clock, info=None, **policy) -> SheetsClient:
    info = info or server.service_account()
    return SheetsClient(info, base_url=server.base_url, policy=SheetsPolicy(**policy), clock=clock, sleep=clock.sleep)


def test_read_by_url_through_gspread_and_the_token_exchange(server, clock):
    info = server.service_account("reader@hokan-test.iam.gserviceaccount.com")
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]], tab_title="回答 1")
    with make_client(server, clock, info) as client:
        sheet = client.read(server.url(sid, gid=0))

    assert sheet.header == ["ID", "発話", "メモ"]
    assert sheet.title == "回答 1"
    assert [cells for _, cells in sheet.table.rows][1:] == [["u1", "商品がとても良かったです"], ["u2", "配送が遅い", "至急"],
                                                          ["u3", "普通"]]
    assert sheet.column_index("発話") == 1
    with pytest.raises(InputError, match="発言.*この表の列: ID、発話、メモ"):
        sheet.column_index("発言")
    kinds = [(r.kind, r.status) for r in server.requests]
    assert kinds == [("token", 200), ("read", 200), ("read", 200)]  # one JWT exchange, metadata, values
    assert unquote(server.requests[2].path).endswith("/values/'回答 1'")
    with make_client(server, clock, info) as client:
        header = client.read(server.url(sid), header_only=True)  # what a writer needs: row 1 only
    assert header.header == ["ID", "発話", "メモ"] and header.rows == [["ID", "発話", "メモ"]]
    with make_client(server, clock, info) as client:  # the fake's other endpoints gspread has
        client.gc.http_client.values_update(sid, "'回答 1'!C3", params={"valueInputOption": "RAW"},
                                            body={"values": [["済"]]})
        got = client.gc.http_client.values_batch_get(sid, ["'回答 1'!A2:B2", "'回答 1'!C3"])
    assert [r.get("values") for r in got["valueRanges"]] == [[["u1", "商品がとても良かったです"]], [["済"]]]


def test_an_unknown_tab_a_bad_url_and_a_sheet_not_shared(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    other = server.add_spreadsheet(ROWS, readers=["someone@else.example"])
    with make_client(server, clock, info) as client:
        with pytest.raises(SheetsAccessError, match="gid=99"):
            client.read(server.url(sid, gid=99))
        with pytest.raises(SheetsAccessError, match="共有してください") as refused:
            client.read(server.url(other))
        assert refused.value.status_code == 403
    with pytest.raises(InputError, match="URL ではありません"):
        parse_sheet_url("https://example.com/not-a-sheet")


def test_writes_are_batched_and_stay_within_the_per_user_quota(server, clock):
    """600 rows flushed 5 at a time = 120 batchUpdate requests: the limiter spreads them so no
    minute (by the fake's clock) sees more than 60 at Google's side."""
    info = server.service_account()
    rows = [["ID", "発話"]] + [[f"u{i}", f"発話{i}"] for i in range(600)]
    sid = server.add_spreadsheet(rows, readers=[info["client_email"]])
    with make_client(server, clock, info) as client:
        sheet = client.read(server.url(sid))
        writer = client.writer(sheet, flush_batch_size=5, flush_interval_s=3600)
        columns = writer.ensure_columns(["満足度", "状態"])
        assert columns == {"満足度": 2, "状態": 3}
        for number in range(2, 602):
            writer.add(number, {"満足度": round(number / 1000, 3), "状態": "done"})
            writer.maybe_flush()
        writer.close()

    assert writer.flushes == 120 and writer.written_rows == 600 and writer.pending_rows == []
    assert len(server.writes) == 120
    assert server.max_writes_per_window(60.0) <= 60
    assert clock.now - server.writes[0].at >= 60.0  # the limiter really held requests back
    first = server.writes[0].json
    assert first["valueInputOption"] == "RAW"
    assert first["data"][0] == {"range": "'シート1'!C1:D1", "values": [["満足度", "状態"]]}  # header cells first
    assert [d["range"] for d in first["data"][1:]] == [f"'シート1'!C{n}:D{n}" for n in range(2, 7)]
    values = server.values(sid)
    assert values[0] == ["ID", "発話", "満足度", "状態"]
    assert values[600] == ["u599", "発話599", 0.601, "done"]


def test_flush_by_time(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    with make_client(server, clock, info) as client:
        writer = client.writer(client.read(server.url(sid)), flush_batch_size=50, flush_interval_s=2.0)
        writer.ensure_columns(["スコア"])
        writer.add(2, {"スコア": 1})
        assert writer.maybe_flush() == 0 and server.writes == []
        clock.now += 2.0
        assert writer.maybe_flush() == 1
    assert len(server.writes) == 1


def test_429_with_and_without_retry_after_then_success(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    server.fail("write", Fault.rate_limited(retry_after="7"), Fault.rate_limited())
    with make_client(server, clock, info) as client:
        writer = client.writer(client.read(server.url(sid)))
        writer.ensure_columns(["スコア"])
        for number in (2, 3, 4):
            writer.add(number, {"スコア": number})
        assert writer.flush() == 3
        assert client.rate_limited == 2

    assert [r.status for r in server.writes] == [429, 429, 200]
    first, second, third = (r.at for r in server.writes)
    assert second - first >= 7.0  # Retry-After honoured (a shared block of the user's key)
    assert third - second >= 1.0  # no Retry-After: exponential backoff
    assert [row[3] for row in server.values(sid)[1:]] == [2, 3, 4]


def test_persistent_500_stops_with_the_rows_not_written(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    with make_client(server, clock, info, max_retries=3) as client:
        writer = client.writer(client.read(server.url(sid)))
        writer.ensure_columns(["スコア"])
        for number in (2, 3, 4):
            writer.add(number, {"スコア": 0.5})
        server.always_fail("write", Fault.error(500))
        with pytest.raises(SheetsWriteError) as failed:
            writer.flush()
        assert failed.value.rows == [2, 3, 4]
        assert failed.value.status_code == 500
        assert "未書き込みの行: 2, 3, 4（3行）" in str(failed.value) and "HTTP 500" in str(failed.value)
        assert len(server.writes) == 4  # the first attempt and 3 retries
        assert writer.pending_rows == [2, 3, 4]  # kept: nothing lost

        server.always_fail("write", None)  # Google is back: the same rows are written
        assert writer.flush() == 3
    assert [row[3] for row in server.values(sid)[1:]] == [0.5, 0.5, 0.5]


def test_a_hung_write_times_out_and_is_retried(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    with make_client(server, clock, info, timeout_s=0.5) as client:
        writer = client.writer(client.read(server.url(sid)))
        writer.ensure_columns(["スコア"])
        writer.add(2, {"スコア": 1})
        server.fail("write", Fault.hang())
        assert writer.flush() == 1
    assert len(server.writes) == 2 and server.writes[1].status == 200


def test_the_grid_is_widened_before_new_columns_are_written(server, clock):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]], column_count=3)
    with make_client(server, clock, info) as client:
        writer = client.writer(client.read(server.url(sid)))
        writer.ensure_columns(["カテゴリA", "カテゴリB", "状態"])
        writer.add(2, {"カテゴリA": 0.1, "カテゴリB": 0.9, "状態": "done"})
        writer.flush()
    append = server.writes[0].json["requests"][0]["appendDimension"]
    assert append == {"sheetId": 0, "dimension": "COLUMNS", "length": 3}
    assert server.values(sid)[1] == ["u1", "商品がとても良かったです", "", 0.1, 0.9, "done"]


def test_bad_credentials_give_a_clear_japanese_error(server, clock, settings, tmp_path):
    unknown = server.service_account("ghost@hokan-test.iam.gserviceaccount.com", register=False)
    sid = server.add_spreadsheet(ROWS, readers=[unknown["client_email"]])
    with make_client(server, clock, unknown) as client:
        with pytest.raises(SheetsConfigError, match="ghost@hokan-test.iam.gserviceaccount.com のトークンを取得できません"):
            client.read(server.url(sid))
    assert [r.status for r in server.requests] == [400]  # the token endpoint refused; no Sheets call

    settings.GOOGLE_SERVICE_ACCOUNT_JSON = ""
    settings.GOOGLE_SERVICE_ACCOUNT_FILE = ""
    with pytest.raises(SheetsConfigError, match="GOOGLE_SERVICE_ACCOUNT_JSON"):
        service_account_info(settings)
    settings.GOOGLE_SERVICE_ACCOUNT_FILE = str(tmp_path / "missing.json")
    with pytest.raises(SheetsConfigError, match="鍵ファイルを読めません"):
        service_account_info(settings)
    (tmp_path / "key.json").write_text('{"type": "authorized_user"}', encoding="utf-8")
    settings.GOOGLE_SERVICE_ACCOUNT_FILE = str(tmp_path / "key.json")
    with pytest.raises(SheetsConfigError, match="サービスアカウントの鍵ではありません"):
        service_account_info(settings)
    broken = dict(unknown, private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    settings.GOOGLE_SERVICE_ACCOUNT_JSON = json.dumps(broken)
    with pytest.raises(SheetsConfigError, match="秘密鍵"):
        sheets_client_from_settings()


def test_settings_build_the_client_and_the_ssrf_guard_applies(server, clock, settings, tmp_path):
    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    settings.GOOGLE_SERVICE_ACCOUNT_JSON = ""
    settings.GOOGLE_SERVICE_ACCOUNT_FILE = str(path)
    settings.HOKAN_SHEETS_API_BASE_URL = server.base_url
    with sheets_client_from_settings(clock=clock, sleep=clock.sleep) as client:
        assert client.read(server.url(sid)).header == ["ID", "発話", "メモ"]

    settings.HOKAN_FETCH_ALLOW_HOSTS = []  # 127.0.0.1 is a loopback address: refused at connect time
    with sheets_client_from_settings(clock=clock, sleep=clock.sleep) as client:
        with pytest.raises(SheetsConfigError, match="拒否されました"):
            client.read(server.url(sid))


def test_the_sink_refuses_to_write_into_rows_that_moved_during_the_run(server, clock):
    """Scores go to the row they were made for: a row inserted above stops the writes, naming
    the rows, instead of shifting every score by one."""
    from hokan.scoring.io import CellOutcome
    from hokan.scoring.sheets import SheetsError, SheetSink, SheetSource

    info = server.service_account()
    sid = server.add_spreadsheet(ROWS, readers=[info["client_email"]])
    with make_client(server, clock, info) as client:
        table = SheetSource(server.url(sid), client=client).read()
        assert table.row_numbers == [2, 3, 4] and table.encoding == "google_sheets"
        writer = client.writer(client.read(server.url(sid), header_only=True), flush_interval_s=0)
        sink = SheetSink(writer, table, ["満足"], "0-1", check_column="発話")
        sink.write([CellOutcome(row=0, category="満足", score=0.25)])
        assert server.values(sid)[1] == ["u1", "商品がとても良かったです", "", 0.25, "完了"]

        server.spreadsheets[sid].tabs[0].rows.insert(2, ["u9", "割り込んだ行"])  # someone edits the sheet
        with pytest.raises(SheetsError, match=r"シートの行 3（1行）の内容が読み込み時と違います") as moved:
            sink.write([CellOutcome(row=1, category="満足", score=0.75)])
        assert "誤った行に書き込まないよう停止しました" in str(moved.value)
        sink.close()  # after a refused flush nothing more is tried
    assert [r[3:] for r in server.values(sid)[1:]] == [[0.25, "完了"], [], [], []]  # no score in a wrong row
