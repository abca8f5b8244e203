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
``NOTION_RETRY_WAIT_MAX_S`` per wait, three attempts in all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from django.conf import settings

from hokan.core.errors import HokanError
from hokan.core.llm.openai_compat import parse_retry_after

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class NotionError(HokanError):
    """The page could not be created. ``status_code``: last HTTP status, or None."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


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
    """Create the page; returns its Notion id. Raises NotionError (after 429 retries)."""
    url = settings.NOTION_API_BASE_URL.rstrip("/") + "/v1/pages"
    headers = {"Authorization": f"Bearer {settings.NOTION_API_KEY}", "Notion-Version": settings.NOTION_VERSION}
    payload = page_payload(contact)
    status: int | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = httpx.post(url, json=payload, headers=headers, timeout=20)
        except httpx.HTTPError as exc:
            raise NotionError(f"Notion に接続できませんでした: {exc}") from exc
        status = response.status_code
        if status == 200:
            return str(response.json().get("id", ""))
        if (status == 429 or status >= 500) and attempt < MAX_ATTEMPTS:
            wait = parse_retry_after(response.headers)
            wait = min(wait if wait is not None else float(attempt), settings.NOTION_RETRY_WAIT_MAX_S)
            log.info("Notion HTTP %d, retrying in %.1fs", status, wait)
            sleep(wait)
            continue
        break
    raise NotionError(f"Notion への保存に失敗しました: HTTP {status}", status_code=status)
