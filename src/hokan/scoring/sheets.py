"""Google Sheets for the scoring app: read a sheet by URL, stream results back in batches
(design document 002 §1 input, §3 SheetWriter; issue 11 §1, §2 Writer).

Everything goes through **gspread** (its low-level ``HTTPClient`` methods, one HTTP request
each, so every request can be counted against Google's quota) with a service account::

    client = sheets_client_from_settings()              # credentials from the environment only
    sheet = client.read(url)                            # SheetInput: header, Table of rows
    writer = client.writer(sheet, flush_batch_size=50, flush_interval_s=2.0)
    writer.ensure_columns(["スコア:満足", "状態"])       # header cells added when missing
    writer.add(row_number=5, values={"スコア:満足": 0.8, "状態": "done"})
    writer.maybe_flush()                                # by count (50 rows) or time (2 s)
    writer.close()                                      # everything pending, or SheetsWriteError

Credentials (never in code or files of the repository): ``GOOGLE_SERVICE_ACCOUNT_JSON`` (the
key JSON itself) or ``GOOGLE_SERVICE_ACCOUNT_FILE`` (a path to it). The JSON's ``token_uri``
is where the OAuth2 JWT-bearer exchange goes (RFC 7523; google-auth's
``service_account.Credentials``), so tests point it at the fake.

HTTP: gspread sends through a ``requests.Session`` (google-auth's ``AuthorizedSession``, which
adds the bearer token and refreshes it on 401). ``GuardedAdapter`` is a ``requests`` transport
adapter mounted on that session (and on the token session) that sends each request through
``hokan.core.web.http.guarded_client`` — the SSRF check at connect time, the body cap
(``HOKAN_SHEETS_MAX_BYTES``), no environment proxies. requests cannot take an httpx client
directly; an adapter is requests' documented extension point (``Session.mount``). The same
adapter rewrites ``https://sheets.googleapis.com`` to ``HOKAN_SHEETS_API_BASE_URL`` (tests:
the fake on 127.0.0.1); the token URL is the credentials' own ``token_uri``.

Quota (https://developers.google.com/workspace/sheets/api/limits, read 2026-12-01): 300 read
and 300 write requests per minute per project, 60 of each per minute per user; a 429 asks for
truncated exponential backoff. Every request takes a slot of two ``hokan.core.ratelimit``
limiters before it is sent — ``sheets:{read|write}:project:{project_id}`` (300/min,
``HOKAN_SHEETS_PROJECT_WRITES_PER_MIN``) and ``sheets:{read|write}:user:{client_email}``
(60/min, ``HOKAN_SHEETS_USER_WRITES_PER_MIN``), both sliding windows shared by every process
(Redis or the database). A 429 blocks the user key for its ``Retry-After`` (else the backoff)
for every process; 5xx, timeouts and connection errors are retried with backoff
``min(HOKAN_SHEETS_BACKOFF_MAX_S, 2**attempt) + jitter`` up to ``HOKAN_SHEETS_MAX_RETRIES``.
After the last retry a read raises ``SheetsUnavailable`` and a flush raises
``SheetsWriteError`` naming every row not written (§3.2: 「上限到達でパイプラインにエラー通知」).

One flush is ONE ``values.batchUpdate`` request (all pending rows; contiguous cells of a row
in one range), so 50 rows every 2 s is 30 write requests a minute, half the user quota.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import requests
from gspread.utils import rowcol_to_a1

from hokan.core.errors import FetchBlocked, FetchTooLarge, HokanError, InputError, TransientError
from hokan.core.ratelimit import Limiter, Outcome, Rate, Store
from hokan.core.tabular import Table
from hokan.core.web.http import guarded_client, parse_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")

GOOGLE_SHEETS_ORIGIN = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
_URL_ID = re.compile(r"/spreadsheets/d/([a-zA-Z0-9_-]+)")
_GID = re.compile(r"[#&?]gid=(\d+)")


# --- errors -----------------------------------------------------------------------------------
class SheetsError(HokanError):
    """A Google Sheets operation failed. ``url``: the sheet's URL (or "" before one is known).
    The message is Japanese, for the user."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class SheetsConfigError(SheetsError):
    """No or malformed service-account credentials (GOOGLE_SERVICE_ACCOUNT_JSON / _FILE), a
    refused token exchange (bad key, unknown account), or a base URL the SSRF guard refuses."""


class SheetsAccessError(SheetsError):
    """Google refused the sheet: 401/403 (not shared with the service account) or 404 (no such
    sheet or tab). ``status_code``: the HTTP status."""

    def __init__(self, message: str, *, url: str = "", status_code: int) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


class SheetsUnavailable(SheetsError, TransientError):
    """429 / 5xx / timeouts still failing after the retries (a read). ``retry_after_s``: the
    wait Google asked for last, or None."""

    def __init__(self, message: str, *, url: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message, url=url)
        self.retry_after_s = retry_after_s


class SheetsWriteError(SheetsError):
    """A flush could not be written after the retries (§3.2). ``rows``: the sheet row numbers
    (1-based, as the sheet shows them) whose results were NOT written, sorted; they stay in
    the result store and are written by the next run. ``status_code``: the last HTTP status
    (None for timeouts / connection errors)."""

    def __init__(self, message: str, *, url: str = "", rows: Sequence[int], status_code: int | None) -> None:
        super().__init__(message, url=url)
        self.rows = list(rows)
        self.status_code = status_code


# --- credentials ----------------------------------------------------------------------------------
def service_account_info(settings: Any = None) -> dict[str, Any]:
    """The service-account key as a dict, from ``GOOGLE_SERVICE_ACCOUNT_JSON`` (the JSON text)
    or else ``GOOGLE_SERVICE_ACCOUNT_FILE`` (a path to it).

    Raises:
        SheetsConfigError: neither is set, the file is missing, the JSON is malformed or is not
            a service-account key (type, client_email, private_key, token_uri).
    """
    if settings is None:
        from django.conf import settings as django_settings

        settings = django_settings
    text = str(getattr(settings, "GOOGLE_SERVICE_ACCOUNT_JSON", "") or "").strip()
    source = "GOOGLE_SERVICE_ACCOUNT_JSON"
    if not text:
        path = str(getattr(settings, "GOOGLE_SERVICE_ACCOUNT_FILE", "") or "").strip()
        source = f"GOOGLE_SERVICE_ACCOUNT_FILE ({path})"
        if not path:
            raise SheetsConfigError(
                "Google スプレッドシートの認証情報がありません。サービスアカウントの鍵 JSON を環境変数 "
                "GOOGLE_SERVICE_ACCOUNT_JSON に、またはそのファイルのパスを GOOGLE_SERVICE_ACCOUNT_FILE に設定してください"
            )
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SheetsConfigError(f"{source}: サービスアカウントの鍵ファイルを読めません（{exc.__class__.__name__}）") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise SheetsConfigError(f"{source}: サービスアカウントの鍵が JSON として読めません") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SheetsConfigError(f"{source}: サービスアカウントの鍵ではありません（\"type\": \"service_account\" がありません）")
    missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
    if missing:
        raise SheetsConfigError(f"{source}: サービスアカウントの鍵に {', '.join(missing)} がありません")
    return info


def credentials_from_info(info: Mapping[str, Any]) -> Any:
    """google-auth service-account credentials with the Sheets scope.

    Raises:
        SheetsConfigError: the private key cannot be loaded.
    """
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(dict(info), scopes=list(SCOPES))
    except (ValueError, TypeError) as exc:
        raise SheetsConfigError(f"サービスアカウントの鍵（秘密鍵）を読み込めません: {exc}") from None


# --- the transport: requests → the guarded httpx client -------------------------------------------------
class GuardedAdapter(requests.adapters.BaseAdapter):
    """A ``requests`` transport adapter that sends through ``guarded_client`` (module docstring).

    rewrite: ``{origin: replacement}`` applied to each URL's start (the Sheets API base URL).
    timeout_s: default per-phase timeout when the caller gives none. max_bytes: body cap.
    allow_hosts: SSRF exemptions (None = ``HOKAN_FETCH_ALLOW_HOSTS``).

    httpx errors become requests' (``Timeout``, ``ConnectionError``) so google-auth and
    gspread handle them as with their own transport; ``FetchBlocked`` / ``FetchTooLarge``
    pass through unchanged.
    """

    def __init__(self, *, rewrite: Mapping[str, str] | None = None, timeout_s: float = 60.0,
                 max_bytes: int | None = None, allow_hosts: Sequence[str] | None = None) -> None:
        super().__init__()
        self.rewrite = {k.rstrip("/"): v.rstrip("/") for k, v in (rewrite or {}).items()}
        self._http = guarded_client(timeout_s=timeout_s, max_bytes=max_bytes, allow_hosts=allow_hosts)

    def target(self, url: str) -> str:
        """``url`` with a rewritten origin (the fake's in tests)."""
        for origin, replacement in self.rewrite.items():
            if url == origin or url.startswith(origin + "/"):
                return replacement + url[len(origin):]
        return url

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        url = self.target(str(request.url))
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        try:
            answer = self._http.request(str(request.method), url, headers=headers, content=body,
                                        timeout=_httpx_timeout(timeout) or httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException as exc:
            raise requests.exceptions.Timeout(f"{url}: {exc.__class__.__name__}", request=request) from exc
        except httpx.TransportError as exc:
            raise requests.exceptions.ConnectionError(f"{url}: {exc.__class__.__name__}", request=request) from exc
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = requests.structures.CaseInsensitiveDict(answer.headers.items())
        response._content = answer.content  # already read and decompressed by httpx
        response.encoding = answer.encoding
        response.reason = answer.reason_phrase
        response.url = str(request.url)
        response.request = request
        response.connection = self  # type: ignore[attr-defined]
        # httpx decoded gzip already; keep requests from decoding again.
        response.headers.pop("content-encoding", None)
        return response

    def close(self) -> None:
        self._http.close()


def _httpx_timeout(timeout: Any) -> httpx.Timeout | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        connect, read = timeout
        return httpx.Timeout(read, connect=connect)
    return httpx.Timeout(float(timeout))


def guarded_session(credentials: Any, adapter: GuardedAdapter) -> requests.Session:
    """google-auth's ``AuthorizedSession`` for ``credentials`` whose requests AND token
    exchanges go through ``adapter`` (no environment proxies)."""
    from google.auth.transport.requests import AuthorizedSession, Request

    token_session = requests.Session()
    token_session.trust_env = False
    token_session.mount("https://", adapter)
    token_session.mount("http://", adapter)
    session = AuthorizedSession(credentials, auth_request=Request(session=token_session))
    session.trust_env = False
    session.max_redirects = 5
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --- quota -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SheetsPolicy:
    """Limits and retries of the Sheets client (settings in brackets; module docstring).

    user_per_min / project_per_min: requests per minute of each kind (read, write) per user
    [HOKAN_SHEETS_USER_WRITES_PER_MIN = 60] and per project [HOKAN_SHEETS_PROJECT_WRITES_PER_MIN
    = 300]; max_retries: retries after the first attempt [HOKAN_SHEETS_MAX_RETRIES = 5];
    backoff_max_s: the longest backoff step, seconds [HOKAN_SHEETS_BACKOFF_MAX_S = 64, Google's
    recommendation]; max_wait_s: the longest Retry-After slept through, seconds (longer → the
    error at once); timeout_s: per request phase, seconds [HOKAN_SHEETS_TIMEOUT_S = 60].
    """

    user_per_min: int = 60
    project_per_min: int = 300
    max_retries: int = 5
    backoff_max_s: float = 64.0
    max_wait_s: float = 600.0
    timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any = None) -> "SheetsPolicy":
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(
            user_per_min=int(getattr(settings, "HOKAN_SHEETS_USER_WRITES_PER_MIN", 60)),
            project_per_min=int(getattr(settings, "HOKAN_SHEETS_PROJECT_WRITES_PER_MIN", 300)),
            max_retries=int(getattr(settings, "HOKAN_SHEETS_MAX_RETRIES", 5)),
            backoff_max_s=float(getattr(settings, "HOKAN_SHEETS_BACKOFF_MAX_S", 64.0)),
            timeout_s=float(getattr(settings, "HOKAN_SHEETS_TIMEOUT_S", 60.0)),
        )


@dataclass
class _Failure:
    """What went wrong with the last attempt (for the final error)."""

    status: int | None
    detail: str
    retry_after_s: float | None = None


# --- the sheet -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SheetRef:
    """A spreadsheet and (optionally) one tab of it, from a URL. gid: the tab's sheetId, None =
    the first tab."""

    spreadsheet_id: str
    gid: int | None = None


def parse_sheet_url(url: str) -> SheetRef:
    """The spreadsheet id and tab (``#gid=``) of a Google Sheets URL
    (``https://docs.google.com/spreadsheets/d/<id>/edit#gid=<n>``).

    Raises:
        InputError: not a Google Sheets URL.
    """
    match = _URL_ID.search(url or "")
    if not match:
        raise InputError("Google スプレッドシートの URL ではありません（…/spreadsheets/d/<ID>/… の形式）", source=url)
    gid = _GID.search(url)
    return SheetRef(match.group(1), int(gid.group(1)) if gid else None)


@dataclass
class SheetInput:
    """A tab read from Google Sheets.

    header: the first row's cells (str); table: a ``core.tabular.Table`` over ALL rows
    (number 1 = the header, as the sheet numbers them; encoding "google_sheets") — the same
    shape CSV and XLSX input give; title / sheet_id / column_count / row_count: the tab's.
    """

    url: str
    spreadsheet_id: str
    sheet_id: int
    title: str
    header: list[str]
    rows: list[list[str]]
    row_count: int
    column_count: int

    @property
    def table(self) -> Table:
        return Table(rows=iter(list(enumerate(self.rows, start=1))), encoding="google_sheets")  # type: ignore[arg-type]

    def column_index(self, name: str) -> int:
        """0-based index of the header cell ``name``.

        Raises:
            InputError: no such column (names the sheet and the columns it has).
        """
        try:
            return self.header.index(name)
        except ValueError:
            have = "、".join(h for h in self.header if h) or "（見出しなし）"
            raise InputError(f"列がありません（この表の列: {have}）", source=self.url, row=1, field=name) from None


def quote_title(title: str) -> str:
    """A tab title as an A1 range prefix: ``'My Sheet'`` (single quotes doubled)."""
    return "'" + title.replace("'", "''") + "'"


class SheetsClient:
    """gspread over the guarded transport, with the quota and retries of ``policy``.

    info: the service-account key (``service_account_info``); base_url: the Sheets API origin
    ("" = Google's; tests: the fake); policy: ``SheetsPolicy``; store: the rate-limit store
    (default: Redis or the database, shared by processes); clock / sleep: for the limiters and
    the backoff (tests move a fake clock instead of waiting); allow_hosts: SSRF exemptions.

    Raises:
        SheetsConfigError: the key cannot be loaded.
    """

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        base_url: str = "",
        policy: SheetsPolicy | None = None,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        max_bytes: int | None = 128 * 1024 * 1024,
        allow_hosts: Sequence[str] | None = None,
    ) -> None:
        import gspread

        self.policy = policy or SheetsPolicy()
        self.client_email = str(info["client_email"])
        self.project_id = str(info.get("project_id") or self.client_email.partition("@")[2] or "default")
        self.credentials = credentials_from_info(info)
        rewrite = {GOOGLE_SHEETS_ORIGIN: base_url} if base_url else {}
        self.adapter = GuardedAdapter(rewrite=rewrite, timeout_s=self.policy.timeout_s, max_bytes=max_bytes,
                                      allow_hosts=allow_hosts)
        self.session = guarded_session(self.credentials, self.adapter)
        self.gc = gspread.Client(auth=None, session=self.session)  # type: ignore[arg-type]
        self.gc.set_timeout(self.policy.timeout_s)
        self._sleep = sleep or time.sleep
        self._clock = clock
        self.limiters: dict[str, list[Limiter]] = {
            kind: [
                Limiter(f"sheets:{kind}:project:{self.project_id}", rate=Rate.window(self.policy.project_per_min),
                        store=store, clock=clock, sleep=sleep),
                Limiter(f"sheets:{kind}:user:{self.client_email}", rate=Rate.window(self.policy.user_per_min),
                        store=store, clock=clock, sleep=sleep),
            ]
            for kind in ("read", "write")
        }
        self.requests_sent = {"read": 0, "write": 0}
        self.rate_limited = 0

    def close(self) -> None:
        self.session.close()
        self.adapter.close()

    def __enter__(self) -> "SheetsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one request, limited and retried ------------------------------------------------------
    def _call(self, kind: str, url: str, send: Callable[[], T], give_up: Callable[[_Failure], SheetsError]) -> T:
        """``send()`` (one gspread request) under the ``kind`` limiters, retried per the policy.

        Raises:
            ``give_up(last failure)``: the retries are used up (the caller words the error).
            SheetsAccessError / SheetsConfigError: final refusals, never retried.
        """
        from google.auth.exceptions import RefreshError, TransportError
        from gspread.exceptions import APIError

        failure = _Failure(None, "")
        for attempt in range(self.policy.max_retries + 1):
            permits = [limiter.acquire() for limiter in self.limiters[kind]]
            try:
                self.requests_sent[kind] += 1
                result = send()
            except APIError as exc:
                status = exc.response.status_code
                detail = str(exc.error.get("message", "")) if isinstance(exc.error, dict) else str(exc)
                retry_after = parse_retry_after(exc.response.headers)
                if status == 429:
                    self.rate_limited += 1
                    wait = retry_after if retry_after is not None else self._backoff(attempt)
                    for permit in permits:
                        permit.report(Outcome.RATE_LIMITED, retry_after_s=wait)
                    failure = _Failure(429, detail, retry_after)
                    if wait > self.policy.max_wait_s:
                        raise give_up(failure) from None
                    # the shared block makes the next acquire wait ``wait`` seconds
                    continue
                for permit in permits:
                    permit.report(Outcome.ERROR)
                if status >= 500 or status == 408:
                    failure = _Failure(status, detail, retry_after)
                    if attempt < self.policy.max_retries:
                        self._sleep(self._backoff(attempt))
                    continue
                raise _access_error(status, detail, url) from exc
            except RefreshError as exc:
                for permit in permits:
                    permit.report(Outcome.ERROR)
                raise SheetsConfigError(
                    f"サービスアカウント {self.client_email} のトークンを取得できません"
                    f"（鍵が無効・失効したか、アカウントが存在しません）: {_refresh_detail(exc)}", url=url,
                ) from None
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError, TransportError) as exc:
                for permit in permits:
                    permit.report(Outcome.TIMEOUT if _is_timeout(exc) else Outcome.ERROR)
                failure = _Failure(None, "タイムアウトまたは接続エラー" if _is_timeout(exc) else "接続できませんでした")
                if attempt < self.policy.max_retries:
                    self._sleep(self._backoff(attempt))
                continue
            except FetchBlocked as exc:
                for permit in permits:
                    permit.report(Outcome.ERROR)
                raise SheetsConfigError(f"Google Sheets API の接続先が拒否されました: {exc}", url=url) from None
            except FetchTooLarge as exc:
                for permit in permits:
                    permit.report(Outcome.SUCCESS)
                raise SheetsError(f"シートの応答が大きすぎます（設定 HOKAN_SHEETS_MAX_BYTES）: {exc}", url=url) from None
            except BaseException:
                for permit in permits:
                    permit.report(Outcome.ERROR)
                raise
            for permit in permits:
                permit.report(Outcome.SUCCESS)
            return result
        raise give_up(failure)

    def _backoff(self, attempt: int) -> float:
        """Truncated exponential backoff with jitter (Google's recommendation), seconds."""
        step = min(self.policy.backoff_max_s, float(2 ** attempt))
        return step + random.uniform(0, min(1.0, step))

    def _read(self, url: str, send: Callable[[], T]) -> T:
        def give_up(failure: _Failure) -> SheetsError:
            return SheetsUnavailable(
                f"Google スプレッドシートを読めません（{self.policy.max_retries}回再試行しました。"
                f"{_status_text(failure)}）: {failure.detail}", url=url, retry_after_s=failure.retry_after_s,
            )

        return self._call("read", url, send, give_up)

    # --- reading ----------------------------------------------------------------------------------
    def read(self, url: str, *, header_only: bool = False) -> SheetInput:
        """Read one tab (``#gid=`` of ``url``, else the first tab): its metadata, then all its
        values — or only the header row with ``header_only`` (what a writer needs); two
        requests, both under the read quota.

        Raises:
            InputError: not a Sheets URL, or the tab is empty (no header row).
            SheetsAccessError: 401/403 (not shared with the service account), 404 (no sheet / tab).
            SheetsConfigError: credentials refused. SheetsUnavailable: 429/5xx after the retries.
        """
        ref = parse_sheet_url(url)
        metadata = self._read(url, lambda: self.gc.http_client.fetch_sheet_metadata(ref.spreadsheet_id))
        tabs = [s.get("properties", {}) for s in metadata.get("sheets", [])]
        if ref.gid is not None:
            tabs = [t for t in tabs if int(t.get("sheetId", -1)) == ref.gid]
        if not tabs:
            raise SheetsAccessError(f"シート（タブ gid={ref.gid}）が見つかりません", url=url, status_code=404)
        tab = tabs[0]
        title = str(tab.get("title", ""))
        grid = tab.get("gridProperties", {})
        cells = quote_title(title) + ("!1:1" if header_only else "")
        body = self._read(url, lambda: self.gc.http_client.values_get(
            ref.spreadsheet_id, cells,
            params={"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"},
        ))
        rows = [[str(cell) for cell in row] for row in body.get("values", [])]
        if not rows or not any(cell.strip() for cell in rows[0]):
            raise InputError("シートの1行目に見出しがありません", source=url, row=1)
        return SheetInput(
            url=url, spreadsheet_id=ref.spreadsheet_id, sheet_id=int(tab.get("sheetId", 0)), title=title,
            header=list(rows[0]), rows=rows, row_count=int(grid.get("rowCount", len(rows))),
            column_count=int(grid.get("columnCount", len(rows[0]))),
        )

    def writer(self, sheet: SheetInput, *, flush_batch_size: int = 50, flush_interval_s: float = 2.0) -> "SheetWriter":
        """A ``SheetWriter`` for ``sheet`` (§3.1 flush_batch_size / flush_interval)."""
        return SheetWriter(self, sheet, flush_batch_size=flush_batch_size, flush_interval_s=flush_interval_s)


def sheets_client_from_settings(**kwargs: Any) -> SheetsClient:
    """A ``SheetsClient`` from the Django settings: credentials (``service_account_info``),
    ``HOKAN_SHEETS_API_BASE_URL``, ``SheetsPolicy.from_settings()``, ``HOKAN_SHEETS_MAX_BYTES``.
    kwargs override (store, clock, sleep ...).

    Raises:
        SheetsConfigError: missing or malformed credentials.
    """
    from django.conf import settings

    options: dict[str, Any] = {
        "base_url": str(getattr(settings, "HOKAN_SHEETS_API_BASE_URL", "") or ""),
        "policy": SheetsPolicy.from_settings(settings),
        "max_bytes": int(getattr(settings, "HOKAN_SHEETS_MAX_BYTES", 128 * 1024 * 1024)),
    }
    options.update(kwargs)
    return SheetsClient(service_account_info(settings), **options)


# --- the writer ------------------------------------------------------------------------------------------
@dataclass
class _Pending:
    values: dict[int, Any] = field(default_factory=dict)  # 0-based column → value


class SheetWriter:
    """Streams results into a tab: rows are queued with ``add`` and written by ``flush`` in ONE
    ``values.batchUpdate`` (valueInputOption RAW) when ``flush_batch_size`` rows wait or
    ``flush_interval_s`` seconds passed since the last flush (``maybe_flush``). Not thread-safe:
    one writer stage owns it.

    A flush that fails after the client's retries raises ``SheetsWriteError`` naming the rows
    not written; they stay queued (``pending_rows``), so a later ``flush`` may still write them.
    ``written_rows`` counts the rows written; ``flushes`` the batchUpdate requests sent OK.
    """

    def __init__(self, client: SheetsClient, sheet: SheetInput, *, flush_batch_size: int = 50,
                 flush_interval_s: float = 2.0) -> None:
        if flush_batch_size < 1 or flush_interval_s < 0:
            raise ValueError("flush_batch_size must be >= 1 and flush_interval_s >= 0")
        self.client = client
        self.sheet = sheet
        self.flush_batch_size = flush_batch_size
        self.flush_interval_s = flush_interval_s
        self.header = list(sheet.header)
        self.column_count = sheet.column_count
        self._pending: dict[int, _Pending] = {}
        self._header_cells: dict[int, str] = {}
        self._clock = client._clock or time.monotonic
        self._last_flush = self._clock()
        self.written_rows = 0
        self.flushes = 0

    # --- columns ---------------------------------------------------------------------------
    def ensure_columns(self, names: Iterable[str]) -> dict[str, int]:
        """The 0-based column of each name; names missing from the header are appended after
        the last header cell (written with the next flush), and the grid is widened first when
        it has too few columns (one ``spreadsheets.batchUpdate`` appendDimension, a write).

        Raises:
            SheetsWriteError: the grid could not be widened (rows = none yet).
        """
        indexes: dict[str, int] = {}
        for name in names:
            if name in self.header:
                indexes[name] = self.header.index(name)
                continue
            self.header.append(name)
            indexes[name] = len(self.header) - 1
            self._header_cells[len(self.header) - 1] = name
        needed = len(self.header) - self.column_count
        if needed > 0:
            body = {"requests": [{"appendDimension": {"sheetId": self.sheet.sheet_id, "dimension": "COLUMNS",
                                                      "length": needed}}]}
            self._write(lambda: self.client.gc.http_client.batch_update(self.sheet.spreadsheet_id, body), rows=[])
            self.column_count += needed
        return indexes

    # --- queueing and flushing -----------------------------------------------------------------
    def add(self, row_number: int, values: Mapping[str, Any]) -> None:
        """Queue ``values`` (column name → value; ``ensure_columns`` first) for sheet row
        ``row_number`` (1-based, the header is row 1). A later value for the same cell wins.

        Raises:
            ValueError: row 1 (the header) or a column not in the header.
        """
        if row_number < 2:
            raise ValueError(f"row {row_number}: results go below the header (row >= 2)")
        pending = self._pending.setdefault(row_number, _Pending())
        for name, value in values.items():
            if name not in self.header:
                raise ValueError(f"column {name!r} is not in the header; call ensure_columns first")
            pending.values[self.header.index(name)] = "" if value is None else value

    @property
    def pending_rows(self) -> list[int]:
        """Row numbers queued and not yet written, sorted."""
        return sorted(self._pending)

    def due(self) -> bool:
        """Whether ``maybe_flush`` would flush now (count or time)."""
        if not self._pending and not self._header_cells:
            return False
        return len(self._pending) >= self.flush_batch_size or self._clock() - self._last_flush >= self.flush_interval_s

    def maybe_flush(self) -> int:
        """``flush()`` when due (``due``); rows written (0 when not due)."""
        return self.flush() if self.due() else 0

    def flush(self) -> int:
        """Write every queued row (and new header cells) in one ``values.batchUpdate``; the
        number of rows written.

        Raises:
            SheetsWriteError: after the retries; names the rows not written (still queued).
            SheetsAccessError / SheetsConfigError: refused (not shared, bad credentials).
        """
        self._last_flush = self._clock()
        if not self._pending and not self._header_cells:
            return 0
        rows = sorted(self._pending)
        data = []
        if self._header_cells:
            data += _ranges(self.sheet.title, 1, self._header_cells)
        for row in rows:
            data += _ranges(self.sheet.title, row, self._pending[row].values)
        body = {"valueInputOption": "RAW", "data": data}
        self._write(lambda: self.client.gc.http_client.values_batch_update(self.sheet.spreadsheet_id, body), rows=rows)
        self._header_cells.clear()
        for row in rows:
            del self._pending[row]
        self.written_rows += len(rows)
        self.flushes += 1
        self._last_flush = self._clock()
        return len(rows)

    def close(self) -> int:
        """Flush what is left; rows written. Raises as ``flush``."""
        return self.flush()

    def _write(self, send: Callable[[], Any], *, rows: list[int]) -> Any:
        def give_up(failure: _Failure) -> SheetsError:
            return SheetsWriteError(
                f"Google スプレッドシートに書き込めませんでした（{self.client.policy.max_retries}回再試行しました。"
                f"{_status_text(failure)}）。未書き込みの行: {_row_list(rows)}"
                + (f": {failure.detail}" if failure.detail else ""),
                url=self.sheet.url, rows=rows, status_code=failure.status,
            )

        return self.client._call("write", self.sheet.url, send, give_up)


def _ranges(title: str, row: int, cells: Mapping[int, Any]) -> list[dict[str, Any]]:
    """Contiguous runs of ``cells`` (0-based column → value) of one row as A1 ranges."""
    ranges = []
    columns = sorted(cells)
    start = 0
    while start < len(columns):
        end = start
        while end + 1 < len(columns) and columns[end + 1] == columns[end] + 1:
            end += 1
        first, last = columns[start], columns[end]
        a1 = rowcol_to_a1(row, first + 1) + (f":{rowcol_to_a1(row, last + 1)}" if last > first else "")
        ranges.append({"range": f"{quote_title(title)}!{a1}",
                       "values": [[_cell(cells[c]) for c in columns[start:end + 1]]]})
        start = end + 1
    return ranges


def _cell(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, float, str)):
        return value
    return str(value)  # Decimal, dates: as text, never a float rounding


def _row_list(rows: Sequence[int]) -> str:
    if not rows:
        return "なし（列の追加に失敗）"
    shown = ", ".join(str(r) for r in rows[:50])
    return f"{shown}{f' ほか{len(rows) - 50}行' if len(rows) > 50 else ''}（{len(rows)}行）"


def _status_text(failure: _Failure) -> str:
    if failure.status == 429:
        return "最後の応答: HTTP 429（利用上限）"
    if failure.status is not None:
        return f"最後の応答: HTTP {failure.status}"
    return f"最後のエラー: {failure.detail or '接続エラー'}"


def _access_error(status: int, detail: str, url: str) -> SheetsError:
    if status in (401, 403):
        return SheetsAccessError(
            f"Google スプレッドシートへのアクセスが拒否されました（HTTP {status}）。シートをサービスアカウントの"
            f"メールアドレスに共有してください: {detail}", url=url, status_code=status)
    if status == 404:
        return SheetsAccessError(f"Google スプレッドシートが見つかりません（HTTP 404）: {detail}", url=url, status_code=404)
    return SheetsAccessError(f"Google スプレッドシートへの要求が拒否されました（HTTP {status}）: {detail}",
                             url=url, status_code=status)


def _refresh_detail(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else exc.__class__.__name__


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, (requests.exceptions.Timeout, httpx.TimeoutException, TimeoutError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def iter_rows(sheet: SheetInput) -> Iterator[tuple[int, list[str]]]:
    """(sheet row number, cells) for every data row of ``sheet`` (the header excluded)."""
    for number, cells in enumerate(sheet.rows[1:], start=2):
        yield number, cells


# --- the scoring run's Source and Sink (hokan.scoring.io seams) -----------------------------------
class SheetSource:
    """Rows in from a Google Sheets tab (``hokan.scoring.io.Source``): ``read`` returns the same
    ``InputTable`` as CSV/XLSX input — header trimmed, blank rows dropped, each row padded to
    the header, row numbers as the sheet shows them, cells checked against the import limits.

    client: a ``SheetsClient`` (default ``sheets_client_from_settings()`` at read time).
    """

    kind = "sheet"

    def __init__(self, url: str, *, client: SheetsClient | None = None) -> None:
        self.url = url
        self.label = url
        self.client = client
        self.sheet: SheetInput | None = None

    def read(self) -> Any:
        """Raises: InputError (bad URL, no header, a cell over the limit), SheetsError."""
        from hokan.scoring.io import InputTable, scoring_limits

        from hokan.core.tabular import check_cells, is_blank_row

        client = self.client or sheets_client_from_settings()
        self.sheet = client.read(self.url)
        limits = scoring_limits()
        headers = [h.strip() for h in self.sheet.header]
        rows, numbers = [], []
        for number, cells in iter_rows(self.sheet):
            if is_blank_row(cells):
                continue
            check_cells(cells, limits=limits, source=self.label, row=number, headers=headers)
            rows.append(list(cells) + [""] * (len(headers) - len(cells)))
            numbers.append(number)
        return InputTable(headers, rows, numbers, "google_sheets")


def open_sheet(url: str) -> SheetSource:
    """The ``Source`` of ``--sheet-url URL`` (the CLI's plug-in point)."""
    return SheetSource(url)


class SheetSink:
    """Results out to the same tab (``hokan.scoring.io.Sink``): one column per category (added
    after the last header cell when missing) and the status column ``採点ステータス``, scores as
    the output file shows them (``io.format_score``).

    ``write`` queues the cells' rows in a ``SheetWriter`` and flushes when ``flush_interval_s``
    passed since the last flush (or ``max_rows`` rows wait): at most one request per interval
    whatever the pipeline's speed, so the quota never throttles scoring. ``chunk_done`` writes
    the chunk's stored rows this sink has not written and flushes everything (a chunk is
    completed only after its rows are in the sheet, §3.2); a flush that fails after the
    retries raises ``SheetsWriteError`` naming the rows — the pipeline stops with it, the
    cells stay in the result store, and the next run (``resume``) writes them.

    Before each flush the text column of the rows about to be written is read back (one read
    request) and compared with what was scored: a sheet edited during the run (rows inserted,
    deleted, sorted) stops the run naming the rows instead of putting scores in wrong rows.

    grid: () → the result store's {row index: {category: (score, error)}}, read once at the
    first write so a resumed run writes whole rows (status included). done_label: the status
    of a row scored in full (FileSink's; the status text is FileSink's own rule).
    """

    def __init__(self, writer: SheetWriter, table: Any, categories: Sequence[str], scale: str, *,
                 grid: Callable[[], dict[int, dict[str, tuple[float | None, str]]]] | None = None,
                 max_rows: int = 1000, done_label: str = "完了", check_column: str = "") -> None:
        from hokan.scoring.io import STATUS_HEADER

        self.done_label = done_label  # the status of a row scored in full (as FileSink's)
        # the column whose cells must still say what they said when the run read the sheet
        self.check_index = table.headers.index(check_column) if check_column in table.headers else None
        self.expected = ({number: cells[self.check_index] for cells, number in zip(table.rows, table.row_numbers)}
                         if self.check_index is not None else {})
        self.writer = writer
        self.table = table
        self.categories = list(categories)
        self.scale = scale
        self.max_rows = max_rows
        self._grid_of = grid
        self._grid: dict[int, dict[str, tuple[float | None, str]]] | None = None
        self.status_header = STATUS_HEADER
        self._columns_ready = False
        self._flushed: set[int] = set()  # sheet rows this sink has written
        self.failed: SheetsError | None = None  # the error of a flush that gave up

    def _row_values(self, index: int) -> dict[str, Any]:
        from hokan.scoring.io import FileSink, format_score

        assert self._grid is not None
        row = self._grid.get(index, {})
        values: dict[str, Any] = {name: format_score(row.get(name, (None, ""))[0], self.scale) for name in self.categories}
        values[self.status_header] = FileSink._scored(self, row)[-1]  # type: ignore[arg-type]  # the same status text
        return values

    def _ready(self) -> dict[int, dict[str, tuple[float | None, str]]]:
        if not self._columns_ready:
            self.writer.ensure_columns(self.categories + [self.status_header])
            self._columns_ready = True
        if self._grid is None:
            self._grid = self._grid_of() if self._grid_of is not None else {}
        return self._grid

    def _flush(self, *, force: bool) -> None:
        pending = set(self.writer.pending_rows)
        if not (force or len(pending) >= self.max_rows or self.writer.due()):
            return
        try:
            self._check(sorted(pending))
            written = self.writer.flush()
        except SheetsError as exc:
            self.failed = exc
            raise
        if written:
            self._flushed |= pending

    def _check(self, rows: list[int]) -> None:
        """Read ``check_column`` of ``rows`` (one request, read quota) and refuse to write when a
        cell no longer holds the text the run scored: rows were inserted, deleted or sorted
        since the sheet was read, and a score would land in the wrong row.

        Raises:
            SheetsError: naming the rows that changed (nothing is written; the scores stay in
                the result store).
        """
        if self.check_index is None or not rows:
            return
        sheet = self.writer.sheet
        letter = rowcol_to_a1(1, self.check_index + 1).rstrip("0123456789")
        a1 = f"{quote_title(sheet.title)}!{letter}{rows[0]}:{letter}{rows[-1]}"
        client = self.writer.client
        body = client._read(sheet.url, lambda: client.gc.http_client.values_get(
            sheet.spreadsheet_id, a1, params={"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"}))
        values = body.get("values", [])
        changed = []
        for number in rows:
            got = values[number - rows[0]] if number - rows[0] < len(values) else []
            text = str(got[0]) if got else ""
            if text.strip() != str(self.expected.get(number, "")).strip():
                changed.append(number)
        if changed:
            raise SheetsError(
                f"シートの行 {_row_list(changed)}の内容が読み込み時と違います（実行中に行が挿入・削除・並べ替えられた可能性があります）。"
                "誤った行に書き込まないよう停止しました。採点結果はジョブに保存されています: シートを元に戻して再開するか、"
                "--output のファイルで受け取ってください", url=sheet.url)

    def write(self, cells: list[Any]) -> None:
        self._ready()
        assert self._grid is not None
        touched = set()
        for cell in cells:
            row = self._grid.setdefault(cell.row, {})
            if not cell.ok and row.get(cell.category, (None, ""))[0] is not None:
                continue  # an ok cell is never overwritten by a later error (as the result store)
            row[cell.category] = (cell.score, "" if cell.ok else cell.error)
            touched.add(cell.row)
        for index in sorted(touched):
            self.writer.add(self.table.row_numbers[index], self._row_values(index))
        self._flush(force=False)

    def chunk_done(self, rows: range) -> None:
        """Write every stored row of the chunk not yet written by this sink (a resumed run's
        rows stored before a failed flush included), then flush: the chunk is completed only
        after this returns. Raises SheetsWriteError."""
        grid = self._ready()
        for index in rows:
            number = self.table.row_numbers[index]
            if index in grid and number not in self._flushed:
                self.writer.add(number, self._row_values(index))
        self._flush(force=True)

    def close(self) -> None:
        """Flush what is left — unless a flush failed in this run (the pipeline stopped with that
        error; the rows are written by the resumed run, not retried a second time here)."""
        if self.failed is None:
            self._flush(force=True)


def sheet_sink(sjob: Any, table: Any, *, client: SheetsClient | None = None) -> SheetSink:
    """The ``Sink`` of a job whose input is a sheet (the CLI's plug-in point): writes back into
    ``sjob.source`` with the job's categories, scale and flush interval (RunConfig)."""
    from hokan.scoring.config import RunConfig
    from hokan.scoring.engine import result_grid
    from hokan.scoring.service import _in_thread_grid

    config = RunConfig.from_json(sjob.config)
    client = client or sheets_client_from_settings()
    sheet = client.read(sjob.source, header_only=True)
    # by time only (the Writer already batches cells by count): at most one request per interval
    writer = client.writer(sheet, flush_batch_size=1_000_000, flush_interval_s=float(config.flush_interval))
    names = [c["name"] for c in sjob.categories]
    done = "完了（method=embedding）" if sjob.provider == "offline" else "完了"  # as service.file_sink
    return SheetSink(writer, table, names, config.scale, grid=lambda: _in_thread_grid(sjob, result_grid),
                     done_label=done, check_column=sjob.text_column)
