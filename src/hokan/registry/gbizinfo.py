"""A client of the gBizINFO REST API v2 (経済産業省 gBizINFO) and its adapter to CompanyRecord.

API (OpenAPI document "GビズインフォREST API" version v2, served by gBizINFO at
https://info.gbiz.go.jp/hojin/swagger-ui.html; usage page https://info.gbiz.go.jp/api/index.html):

- base URL ``https://api.info.gbiz.go.jp/hojin`` (setting ``GBIZINFO_API_BASE_URL``); no trailing
  slash (the spec: 「末尾にスラッシュ（/）があるとエラーになります」);
- authentication: the header ``X-hojinInfo-api-token`` (token from 「Web API利用申請」;
  setting / environment variable ``GBIZINFO_API_TOKEN``);
- ``GET /v2/hojin/{corporate_number}``: the basic information of one 法人;
- ``GET /v2/hojin?name=…&prefecture=NN&page=1&limit=N``: search; ``name`` matches partially,
  ``prefecture`` is the 2-digit 全国地方公共団体コード of the prefecture (01 北海道 … 47 沖縄県),
  ``limit`` 0–5000 (default 1000), ``page`` 1–10;
- the answer: ``{"hojin-infos": [HojinInfo…], "id", "message", "errors"?}``; a HojinInfo has
  ``corporate_number``, ``name``, ``location``, ``postal_code`` (7 digits), ``capital_stock``
  (int, JPY), ``employee_number`` (int), ``date_of_establishment``, ``founding_year`` (創業年, not
  設立), ``representative_name``, ``company_url``, ``business_summary``, ``industry`` (list) …

Rate limit: gBizINFO does not publish a per-second limit in its API page; the documented rule,
as quoted by Domo's gBizINFO connector manual (https://www.domo.com/docs/ja/s/article/5241119778967),
is that a token making 6,000 or more calls within 10 minutes is blocked for 10 minutes. All
processes together send at most one request per ``GBIZINFO_API_MIN_INTERVAL_S`` seconds per
token (default 1.0, i.e. 600 per 10 minutes, the pace of that connector and of the ``gbizinfo``
PyPI client's default ``rate_limit_per_sec=1.0``): ``hokan.core.ratelimit``, key
``gbizinfo:<SHA-256 of the token, 16 hex>``, in Redis or the database. A 429 is raised as
``RegistryRateLimited`` with the server's Retry-After, and blocks the token for that long for
every process; the client does not retry (the caller's task does, STYLE §2 "stacked retries").

Every request URL passes the SSRF guard (``hokan.core.web.check_url``, with
``HOKAN_FETCH_ALLOW_HOSTS`` so tests can reach their fake on 127.0.0.1) before anything is
sent, and again at connect time: the HTTP client is ``hokan.core.web.http.guarded_client``
(address check after DNS resolution, no rebinding, answer cap, timeouts); redirects are not
followed. Retry-After is read by ``hokan.core.web.http.parse_retry_after``.

The adapter from gBizINFO's English field names to ours is ``gbizinfo_reader.company_row`` (the
same column table as gBizINFO CSV imports); ``lookup.fetch_company`` looks a 法人番号 up and
stores the answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from hokan.core import ja
from hokan.core.fields import parse_prefecture
from hokan.core.errors import RateLimited
from hokan.core.ratelimit import Limiter, Outcome, Permit, Rate
from hokan.core.web import check_url
from hokan.core.web.http import guarded_client, parse_retry_after
from hokan.registry.errors import (
    RegistryAuthError,
    RegistryConfigError,
    RegistryRateLimited,
    RegistryRequestError,
    RegistryUnavailable,
)
from hokan.registry.models import CompanyRecord

TOKEN_HEADER = "X-hojinInfo-api-token"
SOURCE = CompanyRecord.Source.GBIZINFO_API


class GbizinfoClient:
    """gBizINFO REST API v2. Thread-safe; create with ``from_settings()``.

    token: the API token; base_url: up to ``/hojin``; min_interval_s: seconds between the starts of
    two requests of all processes with this token (0 = no pacing); timeout_s: connect/read
    timeout in seconds, also the longest wait for the token's turn; allow_hosts: hosts the SSRF
    guard lets through (tests); sleep/clock: injectable for tests (the clock in Unix seconds:
    the pace is shared); limiter: the token's pace (default: built from min_interval_s on the
    settings' store, Redis or the database).
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str = "https://api.info.gbiz.go.jp/hojin",
        min_interval_s: float = 1.0,
        timeout_s: float = 30.0,
        allow_hosts: tuple[str, ...] | list[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        if not token:
            raise RegistryConfigError("gBizINFO の API トークンが設定されていません（環境変数 GBIZINFO_API_TOKEN）")
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.min_interval_s = min_interval_s
        self.allow_hosts = tuple(allow_hosts)
        self.timeout_s = timeout_s
        if limiter is None and min_interval_s > 0:
            digest = hashlib.sha256(token.encode()).hexdigest()[:16]
            limiter = Limiter(f"gbizinfo:{digest}", rate=Rate.every(min_interval_s), clock=clock, sleep=sleep)
        self.limiter = limiter
        self._http = guarded_client(
            timeout_s=timeout_s, allow_hosts=self.allow_hosts,
            headers={TOKEN_HEADER: token, "Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls) -> "GbizinfoClient":
        """A client from ``GBIZINFO_API_*`` settings. Raises RegistryConfigError without a token."""
        from django.conf import settings

        return cls(
            token=settings.GBIZINFO_API_TOKEN,
            base_url=settings.GBIZINFO_API_BASE_URL,
            min_interval_s=settings.GBIZINFO_API_MIN_INTERVAL_S,
            timeout_s=settings.GBIZINFO_API_TIMEOUT_S,
            allow_hosts=settings.HOKAN_FETCH_ALLOW_HOSTS,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GbizinfoClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints -------------------------------------------------------------------------
    def get(self, corporate_number: str) -> dict[str, Any] | None:
        """``GET /v2/hojin/{corporate_number}``: the HojinInfo dict, or None when unknown (404 or
        an empty list).

        Raises:
            ValueError: ``corporate_number`` is not a valid 法人番号.
            RegistryAuthError, RegistryRateLimited, RegistryUnavailable, RegistryRequestError,
            FetchBlocked (the SSRF guard refused the base URL, before sending or at connect
            time), FetchTooLarge (an answer over ``API_MAX_BYTES``).
        """
        number = ja.parse_corporate_number(corporate_number)
        if number is None:
            raise ValueError(f"法人番号として正しくありません: {corporate_number}")
        data = self._get(f"/v2/hojin/{number}", {}, not_found_ok=True)
        infos = (data or {}).get("hojin-infos") or []
        return infos[0] if infos else None

    def search(self, *, name: str, prefecture: str = "", limit: int = 10) -> list[dict[str, Any]]:
        """``GET /v2/hojin?name=…``: HojinInfo dicts whose name contains ``name`` (gBizINFO's
        partial match), in ``prefecture`` when given (a prefecture name, e.g. "東京都"). At most
        ``limit`` (1–5000) results, first page only.

        Raises:
            ValueError: an unknown prefecture or a limit out of range. Else as ``get``.
        """
        if not 1 <= limit <= 5000:
            raise ValueError(f"limit must be 1–5000, got {limit}")
        params = {"name": ja.fold(name).strip(), "page": "1", "limit": str(limit)}
        if prefecture:
            params["prefecture"] = prefecture_code(prefecture)
        data = self._get("/v2/hojin", params, not_found_ok=True)
        return list((data or {}).get("hojin-infos") or [])

    def url_for(self, path: str) -> str:
        return self.base_url + path

    # --- transport -------------------------------------------------------------------------
    def _pace(self) -> Permit | None:
        """Wait for this token's turn (shared by all processes); the permit, None without pacing.

        Raises:
            RegistryRateLimited: the token is blocked (a 429's Retry-After) or its turn is more
                than ``timeout_s`` away; nothing was sent.
        """
        if self.limiter is None:
            return None
        try:
            return self.limiter.acquire(max_wait_s=self.timeout_s)
        except RateLimited as exc:
            raise RegistryRateLimited(
                f"gBizINFO API の利用制限中です。{exc.retry_after_s:.0f} 秒後に再試行してください",
                retry_after_s=exc.retry_after_s,
            ) from exc

    def _get(self, path: str, params: dict[str, str], *, not_found_ok: bool) -> dict[str, Any] | None:
        url = self.url_for(path)
        check_url(url, allow_hosts=self.allow_hosts)
        permit = self._pace()
        try:
            response = self._http.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(f"gBizINFO API がタイムアウトしました: {url}") from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"gBizINFO API に接続できません: {url} ({exc})") from exc
        status = response.status_code
        if status == 404 and not_found_ok:
            return None
        if status in (401, 403):
            raise RegistryAuthError(
                f"gBizINFO API がトークンを拒否しました（HTTP {status}）。GBIZINFO_API_TOKEN を確認してください",
                status_code=status,
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if permit is not None:  # every process waits it out
                permit.report(Outcome.RATE_LIMITED, retry_after_s=retry_after)
            raise RegistryRateLimited(
                f"gBizINFO API の利用制限に達しました（HTTP 429）"
                + (f"。{retry_after:.0f} 秒後に再試行してください" if retry_after is not None else ""),
                retry_after_s=retry_after,
            )
        if status >= 500:
            raise RegistryUnavailable(f"gBizINFO API のサーバーエラーです（HTTP {status}）", status_code=status)
        if status != 200:
            raise RegistryRequestError(f"gBizINFO API がリクエストを拒否しました（HTTP {status}）", status_code=status)
        try:
            data = response.json()
        except ValueError as exc:
            raise RegistryUnavailable(f"gBizINFO API の応答が JSON ではありません: {url}", status_code=status) from exc
        if not isinstance(data, dict):
            raise RegistryUnavailable(f"gBizINFO API の応答の形式が想定外です: {url}", status_code=status)
        return data


def prefecture_code(prefecture: str) -> str:
    """The 2-digit 全国地方公共団体コード prefix of a prefecture: "東京都" → "13".

    Raises:
        ValueError: not one of the 47 prefectures.
    """
    folded = parse_prefecture(prefecture)  # the one prefecture parser (東京 → 東京都)
    if folded is None:
        raise ValueError(f"都道府県名として正しくありません: {prefecture}")
    return f"{ja.PREFECTURES.index(folded) + 1:02d}"

