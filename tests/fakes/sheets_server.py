"""A real HTTP server on 127.0.0.1 speaking the Google Sheets API v4 REST wire format that
gspread uses, plus the OAuth 2.0 token endpoint of a service account (JWT bearer, RFC 7523).

::

    from tests.fakes.sheets_server import FakeSheetsServer, Fault

    with FakeSheetsServer(clock=clock) as server:
        info = server.service_account("scorer@proj.iam.gserviceaccount.com")  # key JSON, token_uri → here
        sheet_id = server.add_spreadsheet([["id", "発話"], ["1", "こんにちは"]], readers=[info["client_email"]])
        server.fail("write", Fault.rate_limited(retry_after="7"), Fault.error(500))
        client = SheetsClient(info, base_url=server.base_url, ...)
        ...
        assert len(server.writes) == 3

Endpoints (paths as https://sheets.googleapis.com serves them; JSON errors in Google's shape
``{"error": {"code", "message", "status"}}``):

- ``POST /token`` — ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``:
  the JWT's signature is checked against the public key of a registered service account and
  its ``aud`` must be Google's token endpoint (google-auth always signs for
  https://oauth2.googleapis.com/token, whatever token_uri it posts to) or this URL; answers ``{"access_token", "expires_in": 3599, "token_type":
  "Bearer"}``, else 400 ``{"error": "invalid_grant", "error_description": ...}`` as Google does.
- ``GET /v4/spreadsheets/{id}`` (spreadsheets.get, ``includeGridData=false``): properties and
  ``sheets[].properties`` (sheetId, title, index, gridProperties rowCount/columnCount).
- ``GET /v4/spreadsheets/{id}/values/{range}`` (values.get) and ``GET .../values:batchGet?ranges=``:
  ``{"range", "majorDimension": "ROWS", "values"}`` with trailing empty cells/rows trimmed.
- ``POST /v4/spreadsheets/{id}/values:batchUpdate`` (values.batchUpdate) and ``PUT
  .../values/{range}`` (values.update): RAW values; a range past the grid → 400
  INVALID_ARGUMENT "exceeds grid limits" like Google.
- ``POST /v4/spreadsheets/{id}:batchUpdate`` (spreadsheets.batchUpdate): ``appendDimension``.

Every /v4 request needs ``Authorization: Bearer <a token this server issued>`` (else 401
UNAUTHENTICATED) from an account the spreadsheet is shared with (else 403 PERMISSION_DENIED);
an unknown id is 404 NOT_FOUND.

Faults are queued per kind ("read", "write", "token"; ``fail(kind, *faults)``) and used by the
next requests of that kind, in order: ``Fault.rate_limited(retry_after=None)`` (429
RESOURCE_EXHAUSTED, with Retry-After when given), ``Fault.error(status)`` (500 INTERNAL ...),
``Fault.slow(delay_s)`` (answers normally after a delay, in wall-clock seconds — keep it
short), ``Fault.hang()`` (never answers until the server stops). ``always_fail(kind, fault)``
makes every request of the kind fail.

Every request is recorded (``requests``: ``SheetsRequest`` with method, path, kind, json,
``at`` = the injected clock when it arrived, status answered); ``writes`` lists the write
requests, ``writes_in_window(start, seconds)`` counts them in a window (quota checks).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gspread.utils import a1_range_to_grid_range, rowcol_to_a1

from tests.fakes.local_http import JSONHandler, LocalHTTPServer

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class Fault:
    """One injected fault; build with the class methods."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hangs: bool = False

    @classmethod
    def rate_limited(cls, retry_after: str | None = None) -> "Fault":
        return cls(429, {"Retry-After": retry_after} if retry_after is not None else {})

    @classmethod
    def error(cls, status: int = 500) -> "Fault":
        return cls(status)

    @classmethod
    def slow(cls, delay_s: float) -> "Fault":
        return cls(200, delay_s=delay_s)

    @classmethod
    def hang(cls) -> "Fault":
        return cls(hangs=True)


@dataclass
class SheetsRequest:
    method: str
    path: str
    kind: str  # "token" | "read" | "write"
    query: dict[str, list[str]]
    json: Any
    at: float
    email: str = ""
    status: int = 0


@dataclass
class _Tab:
    sheet_id: int
    title: str
    rows: list[list[Any]]
    row_count: int
    column_count: int


@dataclass
class _Spreadsheet:
    id: str
    title: str
    tabs: list[_Tab]
    readers: set[str]


class FakeSheetsServer(LocalHTTPServer):
    """The fake Sheets API + token endpoint. clock: the time recorded per request (tests pass
    the fake clock their limiters use; default ``time.monotonic``)."""

    thread_name = "fake-sheets"

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.clock = clock or time.monotonic
        self.requests: list[SheetsRequest] = []
        self.spreadsheets: dict[str, _Spreadsheet] = {}
        self._public_keys: dict[str, str] = {}  # client_email → public key PEM
        self._tokens: dict[str, str] = {}  # access token → client_email
        self._faults: dict[str, queue.Queue[Fault]] = {k: queue.Queue() for k in ("token", "read", "write")}
        self._always: dict[str, Fault] = {}
        self._data_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.root_url

    @property
    def token_uri(self) -> str:
        return f"{self.root_url}/token"

    # --- set-up ------------------------------------------------------------------------------
    def service_account(self, email: str = "scorer@hokan-test.iam.gserviceaccount.com", *,
                        project_id: str = "hokan-test", register: bool = True) -> dict[str, Any]:
        """A new service-account key JSON (a fresh RSA key) whose ``token_uri`` is this server;
        registered (its JWTs accepted) unless ``register=False`` (an unknown account)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        if register:
            self._public_keys[email] = public_pem
        return {
            "type": "service_account", "project_id": project_id, "private_key_id": uuid.uuid4().hex,
            "private_key": private_pem, "client_email": email, "client_id": "1" * 21,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.token_uri,
        }

    def add_spreadsheet(self, rows: Sequence[Sequence[Any]], *, readers: Sequence[str] = (), title: str = "採点シート",
                        tab_title: str = "シート1", sheet_id: int = 0, row_count: int | None = None,
                        column_count: int | None = None, spreadsheet_id: str | None = None) -> str:
        """Store a spreadsheet with one tab holding ``rows``; its id. The grid is at least
        1000 x 26 (Google's default), or ``row_count`` x ``column_count``."""
        sid = spreadsheet_id or uuid.uuid4().hex + "Ab-_"
        width = max((len(r) for r in rows), default=0)
        tab = _Tab(sheet_id, tab_title, [list(r) for r in rows], row_count or max(1000, len(rows)),
                   column_count or max(26, width))
        self.spreadsheets[sid] = _Spreadsheet(sid, title, [tab], set(readers))
        return sid

    def url(self, spreadsheet_id: str, gid: int | None = None) -> str:
        """The browser URL of a stored spreadsheet (what a user pastes)."""
        return f"https://docs.google.com/spreadsheets/d/{spreadsheet_id}/edit" + (f"#gid={gid}" if gid is not None else "")

    def values(self, spreadsheet_id: str, tab: int = 0) -> list[list[Any]]:
        """The tab's cells now (a copy)."""
        with self._data_lock:
            return [list(r) for r in self.spreadsheets[spreadsheet_id].tabs[tab].rows]

    def fail(self, kind: str, *faults: Fault) -> None:
        for fault in faults:
            self._faults[kind].put(fault)

    def always_fail(self, kind: str, fault: Fault | None) -> None:
        """Every request of ``kind`` answers ``fault`` (None: back to normal)."""
        if fault is None:
            self._always.pop(kind, None)
        else:
            self._always[kind] = fault

    # --- records ---------------------------------------------------------------------------------
    @property
    def writes(self) -> list[SheetsRequest]:
        return [r for r in self.requests if r.kind == "write"]

    def writes_in_window(self, start: float, seconds: float = 60.0) -> int:
        return sum(1 for r in self.writes if start <= r.at < start + seconds)

    def max_writes_per_window(self, seconds: float = 60.0) -> int:
        """The most write requests received in any window of ``seconds`` (by the clock)."""
        times = sorted(r.at for r in self.writes)
        return max((sum(1 for t in times if s <= t < s + seconds) for s in times), default=0)

    def _next_fault(self, kind: str) -> Fault | None:
        if kind in self._always:
            return self._always[kind]
        try:
            return self._faults[kind].get_nowait()
        except queue.Empty:
            return None


def _split_range(a1: str) -> tuple[str | None, str]:
    """("Title", "A1:B2") from "'Title'!A1:B2" / "Title!A1" / "'Title'" (title None if absent)."""
    if a1.startswith("'"):
        end = 1
        while True:
            end = a1.index("'", end)
            if end + 1 < len(a1) and a1[end + 1] == "'":
                end += 2
                continue
            break
        title = a1[1:end].replace("''", "'")
        rest = a1[end + 1:]
        return title, rest[1:] if rest.startswith("!") else ""
    if "!" in a1:
        title, _, cells = a1.rpartition("!")
        return title, cells
    return None, a1


class _Handler(JSONHandler):
    fake: FakeSheetsServer
    content_type = "application/json; charset=UTF-8"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}},
                       headers)

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        raw = self.read_body()
        kind = "token" if path == "/token" else ("read" if method == "GET" else "write")
        body: Any = None
        if kind != "token" and raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        record = SheetsRequest(method, path, kind, query, body, fake.clock())
        fake.record(record)
        fault = fake._next_fault(kind)
        if fault is not None:
            if fault.hangs:
                return self.hang()
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status != 200:
                record.status = fault.status
                if kind == "token":
                    return self.send_json(fault.status, {"error": "internal_failure"}, fault.headers)
                message = ("Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'"
                           if fault.status == 429 else "Internal error encountered.")
                return self._error(fault.status, message, fault.headers)
        if kind == "token":
            return self._token(raw.decode("utf-8", "replace"), record)
        auth = self.headers.get("Authorization", "")
        email = fake._tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
        if email is None:
            record.status = 401
            return self._error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
        record.email = email
        if not path.startswith("/v4/spreadsheets/"):
            record.status = 404
            return self._error(404, f"no route {path}")
        rest = path[len("/v4/spreadsheets/"):]
        sid, sep, tail = rest.partition("/")
        action = ""
        if not sep and ":" in sid:
            sid, _, action = sid.partition(":")
        sheet = fake.spreadsheets.get(unquote(sid))
        if sheet is None:
            record.status = 404
            return self._error(404, "Requested entity was not found.")
        if email not in sheet.readers:
            record.status = 403
            return self._error(403, "The caller does not have permission")
        with fake._data_lock:
            status, answer = self._route(method, sheet, action, tail, query, body)
        record.status = status
        if status >= 400:
            return self._error(status, answer["message"])
        self.send_json(status, answer)

    def _token(self, form_text: str, record: SheetsRequest) -> None:
        from google.auth import jwt

        form = {k: v[0] for k, v in parse_qs(form_text).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            record.status = 400
            return self.send_json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        assertion = form["assertion"]
        try:
            claims = jwt.decode(assertion, verify=False)
            email = str(claims.get("iss", ""))
            public = self.fake._public_keys.get(email)
            if public is None:
                raise ValueError("account not found")
            jwt.decode(assertion, certs=public, audience=[GOOGLE_TOKEN_AUDIENCE, self.fake.token_uri])
        except ValueError as exc:
            record.status = 400
            reason = "Invalid JWT Signature." if "account not found" not in str(exc) else "Invalid grant: account not found"
            return self.send_json(400, {"error": "invalid_grant", "error_description": reason})
        token = f"ya29.fake-{uuid.uuid4().hex}"
        self.fake._tokens[token] = email
        record.email = email
        record.status = 200
        self.send_json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # --- the Sheets API ------------------------------------------------------------------------------
    def _route(self, method: str, sheet: _Spreadsheet, action: str, tail: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, dict[str, Any]]:
        if method == "GET" and not tail and not action:
            return 200, {
                "spreadsheetId": sheet.id,
                "properties": {"title": sheet.title, "locale": "ja_JP", "timeZone": "Asia/Tokyo"},
                "sheets": [{"properties": {"sheetId": t.sheet_id, "title": t.title, "index": i, "sheetType": "GRID",
                                           "gridProperties": {"rowCount": t.row_count, "columnCount": t.column_count}}}
                           for i, t in enumerate(sheet.tabs)],
                "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sheet.id}/edit",
            }
        if method == "POST" and action == "batchUpdate":
            replies = []
            for request in (body or {}).get("requests", []):
                append = request.get("appendDimension")
                if not append:
                    return 400, {"message": f"unsupported request {list(request)}"}
                tab = next((t for t in sheet.tabs if t.sheet_id == append.get("sheetId")), None)
                if tab is None:
                    return 400, {"message": f"No grid with id: {append.get('sheetId')}"}
                if append.get("dimension") == "COLUMNS":
                    tab.column_count += int(append.get("length", 0))
                else:
                    tab.row_count += int(append.get("length", 0))
                replies.append({})
            return 200, {"spreadsheetId": sheet.id, "replies": replies}
        if tail.startswith("values"):
            sub = tail[len("values"):]
            if method == "GET" and sub == ":batchGet":
                ranges = query.get("ranges", [])
                found = []
                for a1 in ranges:
                    status, value_range = self._get_range(sheet, a1)
                    if status != 200:
                        return status, value_range
                    found.append(value_range)
                return 200, {"spreadsheetId": sheet.id, "valueRanges": found}
            if method == "POST" and sub == ":batchUpdate":
                responses = []
                for item in (body or {}).get("data", []):
                    status, result = self._put_range(sheet, item.get("range", ""), item.get("values", []))
                    if status != 200:
                        return status, result
                    responses.append(result)
                return 200, {
                    "spreadsheetId": sheet.id,
                    "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                    "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
                    "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
                    "totalUpdatedSheets": len({r["updatedRange"].rpartition("!")[0] for r in responses}),
                    "responses": responses,
                }
            if sub.startswith("/"):
                a1 = unquote(sub[1:])
                if method == "GET":
                    return self._get_range(sheet, a1)
                if method == "PUT":
                    return self._put_range(sheet, a1, (body or {}).get("values", []))
        return 404, {"message": f"no route {method} {tail or action}"}

    @staticmethod
    def _tab(sheet: _Spreadsheet, title: str | None) -> _Tab | None:
        if title is None:
            return sheet.tabs[0]
        return next((t for t in sheet.tabs if t.title == title), None)

    def _get_range(self, sheet: _Spreadsheet, a1: str) -> tuple[int, dict[str, Any]]:
        title, cells = _split_range(a1)
        tab = self._tab(sheet, title)
        if tab is None:
            return 400, {"message": f"Unable to parse range: {a1}"}
        grid = a1_range_to_grid_range(cells) if cells else {}
        r0, r1 = grid.get("startRowIndex", 0), grid.get("endRowIndex", tab.row_count)
        c0, c1 = grid.get("startColumnIndex", 0), grid.get("endColumnIndex", tab.column_count)
        values = [[("" if v is None else v) for v in row[c0:c1]] for row in tab.rows[r0:r1]]
        values = [_trim(row) for row in values]
        while values and not values[-1]:
            values.pop()
        label = f"{_quoted(tab.title)}!{rowcol_to_a1(r0 + 1, c0 + 1)}:{rowcol_to_a1(r1, c1)}"
        answer: dict[str, Any] = {"range": label, "majorDimension": "ROWS"}
        if values:
            answer["values"] = values
        return 200, answer

    def _put_range(self, sheet: _Spreadsheet, a1: str, values: list[list[Any]]) -> tuple[int, dict[str, Any]]:
        title, cells = _split_range(a1)
        tab = self._tab(sheet, title)
        if tab is None or not cells:
            return 400, {"message": f"Unable to parse range: {a1}"}
        grid = a1_range_to_grid_range(cells)
        r0, c0 = grid.get("startRowIndex", 0), grid.get("startColumnIndex", 0)
        height = len(values)
        width = max((len(row) for row in values), default=0)
        if r0 + height > tab.row_count or c0 + width > tab.column_count:
            return 400, {"message": f"Range ({_quoted(tab.title)}!{cells}) exceeds grid limits. Max rows: "
                                    f"{tab.row_count}, max columns: {tab.column_count}"}
        for i, row in enumerate(values):
            while len(tab.rows) <= r0 + i:
                tab.rows.append([])
            target = tab.rows[r0 + i]
            for j, value in enumerate(row):
                while len(target) <= c0 + j:
                    target.append("")
                target[c0 + j] = value
        updated = f"{_quoted(tab.title)}!{rowcol_to_a1(r0 + 1, c0 + 1)}:{rowcol_to_a1(r0 + max(height, 1), c0 + max(width, 1))}"
        return 200, {"spreadsheetId": sheet.id, "updatedRange": updated, "updatedRows": height,
                     "updatedColumns": width, "updatedCells": sum(len(r) for r in values)}


def _trim(row: list[Any]) -> list[Any]:
    while row and row[-1] in ("", None):
        row = row[:-1]
    return [str(v) if not isinstance(v, str) else v for v in row]


def _quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


FakeSheetsServer.handler_class = _Handler
