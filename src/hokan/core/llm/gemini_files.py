"""The Gemini File API (upload, state, delete) over the guarded async HTTP client.

Wire format (https://ai.google.dev/api/files, the resumable protocol as in Google's
``quickstarts/file-api/sample.sh``; checked 2026-12-01)::

    # 1. start a resumable session (the file's metadata; our own resource name)
    POST {base}/upload/v1beta/files
    x-goog-api-key: <key>
    X-Goog-Upload-Protocol: resumable
    X-Goog-Upload-Command: start
    X-Goog-Upload-Header-Content-Length: <bytes>
    X-Goog-Upload-Header-Content-Type: video/mp4
    {"file": {"name": "files/hokan-…", "displayName": "…"}}
    200, header X-Goog-Upload-URL: <session URL>   (X-Goog-Upload-Status: active)

    # 2. the bytes, in chunks (multiples of 256 KiB; 8 MiB here), the last one finalizes
    POST <session URL>
    X-Goog-Upload-Command: upload            | upload, finalize
    X-Goog-Upload-Offset: <byte offset>
    200 (X-Goog-Upload-Status: active)       | 200 {"file": {File}} (X-Goog-Upload-Status: final)
    # after a failed chunk: X-Goog-Upload-Command: query → X-Goog-Upload-Size-Received

    # 3. wait until the file can be used (videos start PROCESSING)
    GET {base}/v1beta/files/{id}  → {File: name, uri, mimeType, sizeBytes, state, error, videoMetadata}
        state: STATE_UNSPECIFIED | PROCESSING | ACTIVE | FAILED

    # 4. use it: generateContent with {"fileData": {"mimeType", "fileUri"}} (core.llm.gemini.FileRef)
    # 5. delete it
    DELETE {base}/v1beta/files/{id}  → 200 {}     (404 NOT_FOUND: already gone)

Resource names: the File's ``name`` may be chosen on create ("files/" + up to 40 lowercase
letters, digits or dashes, not starting or ending with a dash); ``new_file_name()`` makes
one so a caller can record the name *before* the upload starts and delete it after a crash.
Uploaded files expire after 48 hours on their own; nothing here relies on that.

Errors: as ``core.llm.gemini.status_error`` (429/408/5xx → LLMTransientError, retried here
``max_retries`` times with Retry-After / RetryInfo or exponential backoff; 401/403/404 →
LLMConfigError; other 4xx → LLMRequestError); connection failures and timeouts →
LLMTransientError; a base URL refused by the SSRF guard → LLMConfigError; a file that ends
FAILED, or is not ACTIVE within the wait → ``GeminiFileNotActive``. The File API is free
(no ledger); the generateContent call that uses the file is the paid one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hokan.core.errors import FetchBlocked, FetchTooLarge, LLMConfigError, LLMError, LLMOutputError, LLMTransientError
from hokan.core.llm.gemini import DEFAULT_BASE_URL, FileRef, status_error
from hokan.core.web.http import guarded_async_client

log = logging.getLogger(__name__)

CHUNK_GRANULARITY = 256 * 1024  # the resumable protocol's chunk multiple
DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024  # Google's sample.sh
STATES = ("STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED")


class GeminiFileNotActive(LLMError):
    """An uploaded file cannot be used: it ended ``FAILED``, or was still ``PROCESSING`` when
    the wait ran out. ``file_name``: "files/…"; ``state``: the last state seen; ``reason``:
    the File's ``error.message`` or the wait that ran out."""

    def __init__(self, message: str, *, file_name: str, state: str, reason: str = "") -> None:
        super().__init__(message, provider="gemini")
        self.file_name = file_name
        self.state = state
        self.reason = reason


@dataclass(frozen=True)
class GeminiFile:
    """A File resource as the API describes it.

    name: "files/abc"; uri: the URI for ``fileData``; mime_type; size_bytes; state (``STATES``);
    error_message: the File's ``error.message`` when FAILED; video_duration_s: from
    ``videoMetadata.videoDuration`` ("13.5s") once processed, else None.
    """

    name: str
    uri: str
    mime_type: str
    size_bytes: int
    state: str
    error_message: str = ""
    video_duration_s: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> GeminiFile:
        """Parse a File (or ``{"file": File}``). Raises LLMOutputError when it has no name."""
        if isinstance(data, dict) and isinstance(data.get("file"), dict):
            data = data["file"]
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            raise LLMOutputError("gemini: File API の応答にファイル名がありません", provider="gemini",
                                 schema_name="file", raw_output=str(data)[:2000])
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        duration = None
        video = data.get("videoMetadata")
        if isinstance(video, dict):
            text = str(video.get("videoDuration") or "").strip()
            if text.endswith("s"):
                try:
                    duration = float(text[:-1])
                except ValueError:
                    duration = None
        try:
            size = int(data.get("sizeBytes") or 0)
        except (TypeError, ValueError):
            size = 0
        return cls(name=data["name"], uri=str(data.get("uri") or ""), mime_type=str(data.get("mimeType") or ""),
                   size_bytes=size, state=str(data.get("state") or "STATE_UNSPECIFIED"),
                   error_message=str((error or {}).get("message") or ""), video_duration_s=duration)

    def ref(self) -> FileRef:
        """The ``fileData`` reference of this file for ``GeminiClient.complete_json(files=...)``."""
        return FileRef(uri=self.uri, mime_type=self.mime_type)


def new_file_name(prefix: str = "hokan") -> str:
    """A fresh File resource name "files/{prefix}-{32 hex}" (at most 40 characters after
    "files/"; ``prefix`` lower-case letters/digits, at most 7 characters)."""
    return f"files/{prefix[:7]}-{uuid.uuid4().hex}"


class GeminiFilesClient:
    """Async client of the File API (module docstring).

    api_key: the secret (``GEMINI_API_KEY``); empty → LLMConfigError. base_url: API root
    without ``/v1beta`` (tests: the fake). timeout_s: per request phase (seconds);
    chunk_bytes: upload chunk size (a multiple of 256 KiB). max_retries: retries of one request
    after 429/408/5xx/timeouts; backoff_initial_s / backoff_max_s: the exponential backoff
    (seconds); max_wait_s: the longest Retry-After slept through (longer → raised at once).
    allow_hosts: hosts exempt from the SSRF address check (None = ``HOKAN_FETCH_ALLOW_HOSTS``).
    sleep: ``asyncio.sleep`` (tests inject a recorder).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = "",
        *,
        timeout_s: float = 60.0,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        max_retries: int = 3,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_wait_s: float = 120.0,
        allow_hosts: Sequence[str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not api_key:
            raise LLMConfigError("Gemini のAPIキー(GEMINI_API_KEY)が設定されていません", provider="gemini")
        if chunk_bytes < CHUNK_GRANULARITY or chunk_bytes % CHUNK_GRANULARITY:
            raise ValueError(f"chunk_bytes must be a positive multiple of {CHUNK_GRANULARITY} (got {chunk_bytes})")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_wait_s = max_wait_s
        self.allow_hosts = None if allow_hosts is None else tuple(allow_hosts)
        self._sleep = sleep
        self._key = api_key

    def __repr__(self) -> str:
        return f"GeminiFilesClient(base_url={self.base_url!r})"

    # --- the calls ------------------------------------------------------------------------------
    async def upload(self, path: Path, *, mime_type: str, name: str | None = None, display_name: str = "") -> GeminiFile:
        """Upload the file at ``path`` (resumable protocol, ``chunk_bytes`` at a time).

        name: the resource name to create ("files/…", e.g. ``new_file_name()``); None lets the
        API choose. Returns the File of the finalize answer (a video is usually PROCESSING).

        Raises: see the module docstring; OSError when ``path`` cannot be read.
        """
        size = path.stat().st_size
        metadata: dict[str, Any] = {"displayName": display_name or path.name}
        if name:
            metadata["name"] = name
        headers = {
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        }
        start = await self._retrying("upload start", lambda http: http.post(
            f"{self.base_url}/upload/v1beta/files", json={"file": metadata}, headers=headers))
        session = start.headers.get("x-goog-upload-url", "")
        if not session:
            raise LLMOutputError("gemini: アップロード開始の応答に X-Goog-Upload-URL がありません", provider="gemini",
                                 schema_name="file", raw_output=start.text[:2000])
        offset = 0
        failures = 0
        with path.open("rb") as stream:
            while True:
                stream.seek(offset)
                chunk = stream.read(self.chunk_bytes)
                last = offset + len(chunk) >= size
                headers = {"X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                           "X-Goog-Upload-Offset": str(offset)}
                try:
                    response = await self._once(lambda http: http.post(session, content=chunk, headers=headers))
                except LLMTransientError as exc:
                    failures += 1
                    if failures > self.max_retries:
                        raise
                    await self._backoff(exc, failures, "upload chunk")
                    received, status = await self._query(session)
                    if status == "final" and name:  # the finalize went through; its answer was lost
                        return await self.get(name)
                    if received is not None:
                        offset = min(received, size)  # resume where the server stands
                    continue
                if last:
                    return GeminiFile.from_json(_json(response))
                offset += len(chunk)
                failures = 0

    async def get(self, name: str) -> GeminiFile:
        """The File ``name`` ("files/…"). Raises LLMConfigError for 404 (no such file)."""
        response = await self._retrying("get", lambda http: http.get(f"{self.base_url}/v1beta/{name}"))
        return GeminiFile.from_json(_json(response))

    async def delete(self, name: str) -> bool:
        """Delete the File ``name``; True when deleted, False when it did not exist (404)."""
        response = await self._retrying("delete", lambda http: http.delete(f"{self.base_url}/v1beta/{name}"),
                                        ok_statuses=(404,))
        return response.status_code != 404

    async def wait_active(
        self,
        name: str,
        *,
        poll_interval_s: float = 5.0,
        timeout_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> GeminiFile:
        """Poll ``get(name)`` every ``poll_interval_s`` seconds until the file is ACTIVE.

        Raises:
            GeminiFileNotActive: state FAILED, or not ACTIVE after ``timeout_s`` seconds.
            asyncio.CancelledError: the waiting task was cancelled (the caller deletes the file).
        """
        started = clock()
        while True:
            file = await self.get(name)
            if file.state == "ACTIVE":
                return file
            if file.state == "FAILED":
                raise GeminiFileNotActive(
                    f"gemini: ファイル {name} の処理に失敗しました(FAILED){': ' + file.error_message if file.error_message else ''}",
                    file_name=name, state="FAILED", reason=file.error_message)
            if clock() - started >= timeout_s:
                raise GeminiFileNotActive(
                    f"gemini: ファイル {name} が {timeout_s:g} 秒以内に ACTIVE になりませんでした(状態 {file.state})",
                    file_name=name, state=file.state, reason=f"timeout {timeout_s:g}s")
            await self._sleep(poll_interval_s)

    # --- one request, retried ---------------------------------------------------------------------
    async def _query(self, session: str) -> tuple[int | None, str]:
        """(bytes the session has received or None, X-Goog-Upload-Status) after a failed chunk."""
        try:
            response = await self._once(lambda http: http.post(session, headers={"X-Goog-Upload-Command": "query"}))
        except LLMTransientError:
            return None, ""
        value = response.headers.get("x-goog-upload-size-received", "")
        return (int(value) if value.isdigit() else None), response.headers.get("x-goog-upload-status", "")

    async def _retrying(
        self, what: str, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                return await self._once(send, ok_statuses)
            except LLMTransientError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                await self._backoff(exc, attempt, what)

    async def _backoff(self, exc: LLMTransientError, attempt: int, what: str) -> None:
        delay = exc.retry_after_s
        if delay is not None and delay > self.max_wait_s:
            raise exc
        if delay is None:
            base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
            delay = base + random.uniform(0, self.backoff_initial_s)
        log.warning("gemini files: %s retry %d after %.1fs: %s", what, attempt, delay, exc)
        await self._sleep(delay)

    async def _once(
        self, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        try:
            async with guarded_async_client(timeout_s=self.timeout_s, headers={"x-goog-api-key": self._key},
                                            allow_hosts=self.allow_hosts) as http:
                response = await send(http)
                await response.aread()
        except httpx.TimeoutException as exc:
            raise LLMTransientError(f"gemini files: タイムアウトしました({self.timeout_s:g}秒)", provider="gemini") from exc
        except httpx.TransportError as exc:
            raise LLMTransientError("gemini files: 接続できませんでした", provider="gemini") from exc
        except FetchBlocked as exc:
            raise LLMConfigError(f"gemini files: 接続先が拒否されました: {exc}", provider="gemini") from exc
        except FetchTooLarge as exc:
            raise LLMOutputError(f"gemini files: 応答が大きすぎます: {exc}", provider="gemini", schema_name="file",
                                 raw_output="") from exc
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise status_error(response)
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise LLMOutputError("gemini files: 応答がJSONではありません", provider="gemini", schema_name="file",
                             raw_output=response.text[:2000]) from exc


def files_client(*, profile: str = "scoring", **options: Any) -> GeminiFilesClient:
    """The File API client for ``profile``'s Gemini settings (``GEMINI_API_KEY``, the profile's
    base URL, timeout, retries and ``HOKAN_FETCH_ALLOW_HOSTS``; core.llm.factory).

    options: overrides of ``GeminiFilesClient`` arguments (chunk_bytes, sleep, ...).

    Raises:
        LLMConfigError: the profile's provider is not "gemini", or GEMINI_API_KEY is empty.
    """
    from django.conf import settings

    from hokan.core.llm.factory import provider_config

    config = provider_config(settings, profile)
    if config.provider != "gemini":
        setting = f"HOKAN_{profile.upper()}_LLM_PROVIDER" if profile != "estimate" else "LLM_PROVIDER"
        raise LLMConfigError(f"Gemini の File API を使うには {setting}=gemini を設定してください(現在: {config.provider})",
                             provider=config.provider)
    arguments: dict[str, Any] = {"timeout_s": config.timeout_s, "max_retries": config.max_retries,
                                 "allow_hosts": config.allow_hosts}
    arguments.update(options)
    return GeminiFilesClient(config.api_key, config.base_url, **arguments)
