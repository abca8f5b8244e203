"""The Notion record of design document 004 §9.4 (Notion API ``POST /v1/pages``).

Request (https://developers.notion.com/reference/post-page)::

    POST {NOTION_API_BASE_URL}/v1/pages
    Authorization: Bearer <NOTION_API_KEY>
    Notion-Version: 2022-06-28
    {"parent": {"database_id": NOTION_DATABASE_ID},
     "properties": {"名前": {"title": [{"text": {"content": name}}]},
                    "会社名": {"rich_text": [{"text": {"content": company}}]},
                    "メールアドレス": {"email": email},
                    "種別": {"select": {"name": "お見積もり"}},
                    "ステータス": {"status": {"name": "未対応"}}}}

429 rate_limited: Notion sends ``Retry-After`` (seconds,
https://developers.notion.com/reference/request-limits); it is honoured up to
``NOTION_RETRY_WAIT_MAX_S`` per wait, three attempts in all (429 and 5xx; without Retry-After a
short backoff). The retries are core's one ``RetryPolicy``; the request goes through
``hokan.core.web.http.guarded_client`` (SSRF check at connect time, 20 s timeouts, answer cap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from django.conf import settings

from hokan.core.errors import FetchError, HokanError, TransientError
from hokan.core.llm.retry import RetryPolicy
from hokan.core.web.http import guarded_client, parse_retry_after

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
TIMEOUT_S = 20.0  # each of connect / read / write


class NotionError(HokanError):
    """The page could not be created. ``status_code``: last HTTP status, or None."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class NotionUnavailable(NotionError, TransientError):
    """429 or 5xx: worth another attempt. retry_after_s: Notion's Retry-After, or None."""

    def __init__(self, message: str, *, status_code: int, retry_after_s: float | None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after_s = retry_after_s


def notion_configured() -> bool:
    return bool(settings.NOTION_API_KEY and settings.NOTION_DATABASE_ID)


def page_payload(contact: dict[str, str]) -> dict[str, Any]:
    """The ``POST /v1/pages`` body for one estimate request (§9.4)."""
    properties: dict[str, Any] = {
        "名前": {"title": [{"text": {"content": contact.get("name") or "（未入力）"}}]},
        "会社名": {"rich_text": [{"text": {"content": contact.get("company", "")}}]},
        "種別": {"select": {"name": "お見積もり"}},
        "ステータス": {"status": {"name": "未対応"}},
    }
    if contact.get("email"):
        properties["メールアドレス"] = {"email": contact["email"]}
    return {"parent": {"database_id": settings.NOTION_DATABASE_ID}, "properties": properties}


def create_page(contact: dict[str, str], *, sleep: Callable[[float], None] = time.sleep) -> str:
    """Create the page; returns its Notion id.

    Raises:
        NotionError: refused (4xx), still 429/5xx after ``MAX_ATTEMPTS`` (NotionUnavailable),
            the connection failed, or the SSRF guard refused ``NOTION_API_BASE_URL``.
    """
    url = settings.NOTION_API_BASE_URL.rstrip("/") + "/v1/pages"
    headers = {"Authorization": f"Bearer {settings.NOTION_API_KEY}", "Notion-Version": settings.NOTION_VERSION}
    payload = page_payload(contact)
    wait_max = float(settings.NOTION_RETRY_WAIT_MAX_S)
    policy = RetryPolicy(max_retries=MAX_ATTEMPTS - 1, rate_limit_wait_s=None, backoff_initial_s=1.0,
                         backoff_max_s=wait_max, max_wait_s=wait_max, long_wait="cap", retry_on=(NotionUnavailable,))
    with guarded_client(timeout_s=TIMEOUT_S, headers=headers) as http:

        def attempt(_left: float | None) -> str:
            try:
                response = http.post(url, json=payload)
            except (httpx.HTTPError, FetchError) as exc:
                raise NotionError(f"Notion に接続できませんでした: {exc}") from exc
            status = response.status_code
            if status == 200:
                return str(response.json().get("id", ""))
            if status == 429 or status >= 500:
                log.info("Notion HTTP %d", status)
                raise NotionUnavailable(f"Notion への保存に失敗しました: HTTP {status}", status_code=status,
                                        retry_after_s=parse_retry_after(response.headers))
            raise NotionError(f"Notion への保存に失敗しました: HTTP {status}", status_code=status)

        page_id, _ = policy.call(attempt, provider="notion", sleep=sleep)
        return page_id
