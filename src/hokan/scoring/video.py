"""Video mode (design document 002 §1.2, issue 11 §5): score rows that point at videos.

For each video row::

    source (URL or local path)
      └─ download (URL: hokan.core.web.http guarded client — SSRF check at connect time, every
         redirect hop guarded, HOKAN_SCORING_VIDEO_MAX_BYTES cap, timeouts) to a temporary file
      └─ upload to the Gemini File API (resumable; core.llm.gemini_files) under a name chosen
         here and recorded on disk BEFORE the upload starts
      └─ wait until the file is ACTIVE (FAILED → VideoError; still PROCESSING after
         HOKAN_SCORING_VIDEO_ACTIVE_TIMEOUT_S → VideoUnavailable, retried later)
      └─ generateContent with a ``fileData`` part — a paid call through the ledger (scope
         "scoring", ``core.llm.budgeted.paid_call``: reservation, idempotency key, commit)
      └─ cleanup, in EVERY case (success, error, cancellation of the asyncio task): the local
         temporary file is deleted at once (synchronously, in ``finally``), the uploaded file is
         deleted by a task of the ``CleanupQueue`` that a second cancellation cannot stop, and
         ``VideoScorer``'s exit drains that queue.

A process killed by SIGKILL runs no ``finally``: what it left is found on the next start
(``CleanupQueue.recover``, run by ``VideoScorer.__aenter__``) — uploads recorded in
``{state_dir}/pending/*.json`` are deleted at the File API (404 counts as deleted) and
temporary files in ``{state_dir}/tmp/`` are removed, unless the process that made them is
still alive (a record whose deletion already failed is retried whoever owns it) (the record holds pid, host and the process start time, so a reused pid is not
mistaken for the owner). Gemini itself expires uploads after 48 hours; nothing relies on it.

Local paths are read only under ``HOKAN_SCORING_VIDEO_LOCAL_ROOT`` ("" = local paths refused:
a sheet must not make hokan upload /etc/passwd to a provider). A source is a video when its
Content-Type (URLs) or file extension is one of ``VIDEO_MIME_TYPES`` (the formats Gemini
accepts, https://ai.google.dev/gemini-api/docs/video-understanding#supported-formats).

Costs: the File API is free; the generateContent call is reserved at
``max(HOKAN_SCORING_VIDEO_COST_PER_CALL_USD, the price of duration × 300 tokens/s + the
answer)`` (about 300 tokens per second of video at the default media resolution, Gemini video
docs) and committed at the cost the answer reports.

Errors raised by ``VideoScorer.score``: ``VideoError`` (the row cannot be scored: refused
address, over the size cap, not a video, HTTP 4xx, processing FAILED, path outside the root),
``VideoUnavailable`` (a TransientError: download 5xx/429/timeout, still PROCESSING), and the
core.llm errors of the paid call (LLMTransientError, LLMOutputError, BudgetExceeded,
AlreadyPaid, ...). Messages are Japanese and name the source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import mimetypes
import os
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from hokan.core.errors import FetchBlocked, FetchTooLarge, HokanError, TransientError
from hokan.core.llm.budgeted import paid_call
from hokan.core.llm.client import Completion, JsonRequest
from hokan.core.llm.gemini_files import GeminiFile, GeminiFilesClient, GeminiFileNotActive, new_file_name
from hokan.core.web.http import guarded_async_client

log = logging.getLogger(__name__)
T = TypeVar("T")

# Gemini's supported video formats (video-understanding docs, read 2026-12-01).
VIDEO_MIME_TYPES = {
    "video/mp4": (".mp4", ".m4v"),
    "video/mpeg": (".mpeg",),
    "video/mov": (".mov",),
    "video/quicktime": (".qt",),
    "video/avi": (".avi",),
    "video/x-flv": (".flv",),
    "video/mpg": (".mpg",),
    "video/webm": (".webm",),
    "video/wmv": (".wmv",),
    "video/3gpp": (".3gp", ".3gpp"),
}
_BY_EXTENSION = {ext: mime for mime, exts in VIDEO_MIME_TYPES.items() for ext in exts}
TOKENS_PER_VIDEO_SECOND = 300
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class VideoError(HokanError):
    """A video row that cannot be scored (module docstring). ``source``: the row's URL or path;
    ``reason``: a code — "blocked", "too_large", "not_video", "http_status", "processing_failed",
    "outside_root", "not_found"."""

    def __init__(self, message: str, *, source: str, reason: str) -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason


class VideoUnavailable(VideoError, TransientError):
    """Worth trying the row again later: the download failed transiently (timeout, 5xx, 429)
    or the uploaded file was still PROCESSING. ``retry_after_s``: the server's Retry-After."""

    def __init__(self, message: str, *, source: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, source=source, reason=reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class VideoSettings:
    """The video mode's settings (settings.py "scoring video/offline (S3)"). Bytes and seconds.

    max_bytes: download / local file cap; download_timeout_s: per phase of the download;
    poll_interval_s / active_timeout_s: the wait for ACTIVE; upload_chunk_bytes; local_root:
    None = local paths refused; state_dir: pending-upload records and temporary files;
    cost_per_call_usd: the least reserved per paid call.
    """

    max_bytes: int = 500 * 1024 * 1024
    download_timeout_s: float = 60.0
    poll_interval_s: float = 5.0
    active_timeout_s: float = 600.0
    upload_chunk_bytes: int = 8 * 1024 * 1024
    local_root: Path | None = None
    state_dir: Path = Path("var/scoring/video")
    cost_per_call_usd: Decimal = Decimal("0.10")

    @classmethod
    def from_settings(cls, **overrides: Any) -> VideoSettings:
        from django.conf import settings

        root = str(getattr(settings, "HOKAN_SCORING_VIDEO_LOCAL_ROOT", "") or "")
        state = str(getattr(settings, "HOKAN_SCORING_VIDEO_STATE_DIR", "") or "")
        values: dict[str, Any] = {
            "max_bytes": int(settings.HOKAN_SCORING_VIDEO_MAX_BYTES),
            "download_timeout_s": float(settings.HOKAN_SCORING_VIDEO_DOWNLOAD_TIMEOUT_S),
            "poll_interval_s": float(settings.HOKAN_SCORING_VIDEO_POLL_INTERVAL_S),
            "active_timeout_s": float(settings.HOKAN_SCORING_VIDEO_ACTIVE_TIMEOUT_S),
            "upload_chunk_bytes": int(settings.HOKAN_SCORING_VIDEO_UPLOAD_CHUNK_BYTES),
            "local_root": Path(root).resolve() if root else None,
            "state_dir": Path(state) if state else Path(settings.HOKAN_DATA_DIR) / "scoring" / "video",
            "cost_per_call_usd": Decimal(str(settings.HOKAN_SCORING_VIDEO_COST_PER_CALL_USD)),
        }
        values.update(overrides)
        return cls(**values)


def is_video_source(value: str) -> bool:
    """True when ``value`` (a cell) is a video reference: one token (no blank inside), an
    http(s) URL or a path whose name ends with a video extension of ``VIDEO_MIME_TYPES``."""
    text = (value or "").strip()
    if not text or any(c.isspace() for c in text):  # one token: a sentence mentioning a.mp4 is text
        return False
    path = urlsplit(text).path if text.lower().startswith(("http://", "https://")) else text
    return Path(path).suffix.lower() in _BY_EXTENSION


def _mime_for_name(name: str) -> str | None:
    return _BY_EXTENSION.get(Path(name).suffix.lower())


# --- who owns a record: pid + start time on this host -----------------------------------------------
def _start_time(pid: int) -> str:
    """The process start time (clock ticks since boot, /proc/<pid>/stat field 22); "" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state == "Z":  # killed, not yet reaped
        return False
    return not start or _start_time(pid) in ("", start)


_HOST = socket.gethostname()
_ME = {"pid": os.getpid(), "start": _start_time(os.getpid()), "host": _HOST}


def _owner_alive(record: dict[str, Any]) -> bool:
    if record.get("host") != _HOST:
        return True  # another machine's run: not ours to judge (its own next start cleans it)
    try:
        pid = int(record.get("pid", 0))
    except (TypeError, ValueError):
        return False
    return pid > 0 and _alive(pid, str(record.get("start", "")))


# --- the cleanup queue -----------------------------------------------------------------------------
@dataclass
class CleanupStats:
    """What a CleanupQueue did: remote files deleted (or already gone), deletions that failed
    (their records stay for the next start), local files removed."""

    remote_deleted: int = 0
    remote_failed: int = 0
    local_removed: int = 0
    recovered_remote: int = 0
    recovered_local: int = 0


class CleanupQueue:
    """Uploaded files and temporary files to delete, with a record on disk (module docstring).

    files: the File API client; state_dir: holds ``pending/`` (one JSON record per upload) and
    ``tmp/`` (temporary downloads named ``{pid}-{start}-{hex}.part``).
    """

    def __init__(self, files: GeminiFilesClient, state_dir: Path) -> None:
        self.files = files
        self.state_dir = Path(state_dir)
        self.pending_dir = self.state_dir / "pending"
        self.tmp_dir = self.state_dir / "tmp"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.stats = CleanupStats()
        self._tasks: set[asyncio.Task[bool]] = set()

    # local temporary files
    def new_temp_path(self, suffix: str = "") -> Path:
        """A fresh temporary file path in ``tmp/`` owned by this process (not created)."""
        return self.tmp_dir / f"{_ME['pid']}-{_ME['start'] or 0}-{uuid.uuid4().hex}{suffix}.part"

    def remove_local(self, path: Path) -> None:
        """Delete a temporary file now (missing is fine; other errors are logged, never raised)."""
        try:
            path.unlink()
            self.stats.local_removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:  # pragma: no cover - a read-only disk; the next start retries
            log.error("scoring video: could not remove temporary file %s: %s", path, exc)

    # uploads
    def _record_path(self, name: str) -> Path:
        return self.pending_dir / (name.replace("/", "_") + ".json")

    def remember_upload(self, name: str) -> None:
        """Record ``name`` as an upload in progress (call BEFORE the upload starts)."""
        record = dict(_ME, name=name, created_at=time.time())
        path = self._record_path(name)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(record))
        temp.replace(path)

    def _mark_abandoned(self, name: str) -> None:
        """The deletion failed: the next ``recover`` retries it even while this process lives."""
        path = self._record_path(name)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = dict(_ME, name=name)
        record["abandoned"] = True
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(record))
        temp.replace(path)

    def pending(self) -> list[str]:
        """Names of the uploads recorded and not yet deleted (any process)."""
        return sorted(json.loads(p.read_text()).get("name", "") for p in self.pending_dir.glob("*.json"))

    def delete_later(self, name: str) -> asyncio.Task[bool]:
        """Queue the deletion of the uploaded file ``name``: a task of its own, so cancelling the
        caller does not stop it; ``drain`` awaits it. Returns the task."""
        task = asyncio.get_running_loop().create_task(self._delete(name), name=f"video-cleanup-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _delete(self, name: str) -> bool:
        try:
            await self.files.delete(name)
        except Exception as exc:  # transient after retries, or config: keep the record for next start
            self.stats.remote_failed += 1
            log.error("scoring video: could not delete uploaded file %s (kept for the next run): %s", name, exc)
            self._mark_abandoned(name)
            return False
        self.stats.remote_deleted += 1
        self._record_path(name).unlink(missing_ok=True)
        return True

    async def drain(self) -> CleanupStats:
        """Wait for every queued deletion (even if the caller is being cancelled)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        return self.stats

    async def recover(self) -> CleanupStats:
        """Delete what dead processes left: recorded uploads and temporary files (module docstring)."""
        for path in sorted(self.pending_dir.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                record = {}
            name = str(record.get("name", ""))
            if record and not record.get("abandoned") and _owner_alive(record):
                continue  # an upload in progress in a live process
            if name:
                log.warning("scoring video: deleting file %s left by a previous run (pid %s)", name, record.get("pid"))
                if await self._delete(name):
                    self.stats.recovered_remote += 1
            else:
                path.unlink(missing_ok=True)
        for path in sorted(self.tmp_dir.glob("*.part")):
            pid, _, rest = path.name.partition("-")
            start = rest.partition("-")[0]
            if pid.isdigit() and _owner_alive({"host": _HOST, "pid": pid, "start": "" if start == "0" else start}):
                continue
            self.remove_local(path)
            self.stats.recovered_local += 1
        return self.stats


# --- the scorer ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoResult:
    """One scored video: the paid answer (``completion.data`` to validate, usage as committed),
    the uploaded file's name, the bytes uploaded, the MIME type and the duration (seconds, if
    the API reported it)."""

    completion: Completion
    file_name: str
    size_bytes: int
    mime_type: str
    duration_s: float | None


class VideoScorer:
    """Scores video rows (module docstring). Use as ``async with``: entering recovers what a
    killed run left, leaving drains the cleanup queue.

    client: the scoring profile's Gemini client (``GeminiClient``, possibly wrapped by
        ``core.llm.limited.limited_client``; must accept ``files=``). files: the File API client.
    ledger: the "scoring" ledger (``core.budget.get_ledger("scoring")``).
    settings: ``VideoSettings``. clock: monotonic seconds for the ACTIVE wait (tests).
    """

    def __init__(self, *, client: Any, files: GeminiFilesClient, ledger: Any, settings: VideoSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.files = files
        self.ledger = ledger
        self.settings = settings
        self.cleanup = CleanupQueue(files, settings.state_dir)
        self._clock = clock

    @classmethod
    def from_settings(cls, *, client: Any = None, ledger: Any = None, **overrides: Any) -> VideoScorer:
        """The scorer the Django settings describe (scoring profile; GEMINI_API_KEY)."""
        from hokan.core.budget import get_ledger
        from hokan.core.llm.factory import get_client
        from hokan.core.llm.gemini_files import files_client

        settings = VideoSettings.from_settings(**overrides)
        files = files_client(profile="scoring", chunk_bytes=settings.upload_chunk_bytes)
        return cls(client=client or get_client(profile="scoring"), files=files,
                   ledger=ledger or get_ledger("scoring"), settings=settings)

    async def __aenter__(self) -> VideoScorer:
        await self.cleanup.recover()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cleanup.drain()

    async def score(self, source: str, request: JsonRequest, *, key: str) -> VideoResult:
        """Score the video at ``source`` with ``request`` (its system/user prompt and schema; the
        video follows the user text as a ``fileData`` part). key: the idempotency key of this
        paid work (e.g. "scoring:<job>:<row>:<block>").

        Raises: see the module docstring. Whatever happens, the temporary file is gone when
        this returns or raises, and the uploaded file's deletion is queued.
        """

        async def use(files: list[GeminiFile]) -> VideoResult:
            active = files[0]
            completion = await asyncio.to_thread(
                paid_call, self.client, request, ledger=self.ledger, estimate_usd=self._estimate(active, request),
                key=key, files=(active.ref(),),
            )
            return VideoResult(completion, active.name, active.size_bytes, active.mime_type, active.video_duration_s)

        return await self.with_videos([source], use, label=key)

    async def with_videos(self, sources: Sequence[str], use: Callable[[list[GeminiFile]], Awaitable[T]], *,
                          label: str = "") -> T:
        """Download and upload every video of ``sources`` (in order), wait until all are ACTIVE,
        then ``await use(files)`` (the ACTIVE Files, in the order of ``sources``); its result.

        Cleanup in every case: each temporary file is deleted as soon as its upload is done (and
        in ``finally``), every uploaded file's deletion is queued and awaited (shielded: a
        second cancellation leaves it running for ``CleanupQueue.drain``). A cancellation that
        arrives while cleaning up after a success is not lost: CancelledError is raised.

        Raises: VideoError / VideoUnavailable (module docstring); what ``use`` raises.
        """
        temps: list[Path] = []
        names: list[str] = []
        completed = False
        try:
            uploaded: list[tuple[str, GeminiFile]] = []
            for source in sources:
                path, mime, temp = await self._local_copy(source)
                if temp is not None:
                    temps.append(temp)
                name = new_file_name()
                self.cleanup.remember_upload(name)
                names.append(name)
                file = await self.files.upload(path, mime_type=mime, name=name,
                                               display_name=f"hokan-scoring {label}"[:500])
                if file.name != name:  # the API chose another name: track that one too
                    self.cleanup.remember_upload(file.name)
                    names.append(file.name)
                if temp is not None:
                    self.cleanup.remove_local(temp)
                    temps.remove(temp)
                uploaded.append((source, file))
            actives = [await self._wait_active(source, file) for source, file in uploaded]
            result = await use(actives)
            completed = True
            return result
        finally:
            for temp in temps:
                self.cleanup.remove_local(temp)
            if names:
                deleting = asyncio.gather(*(self.cleanup.delete_later(n) for n in names), return_exceptions=True)
                try:
                    await asyncio.shield(deleting)
                except asyncio.CancelledError:
                    if completed:
                        raise  # cancelled while cleaning up after a success: the caller asked to stop
                    # otherwise the original error (cancellation included) propagates; drain() awaits

    # --- steps ------------------------------------------------------------------------------------
    async def _local_copy(self, source: str) -> tuple[Path, str, Path | None]:
        """(path to upload, MIME type, temporary file to delete or None)."""
        text = source.strip()
        if text.lower().startswith(("http://", "https://")):
            temp = self.cleanup.new_temp_path(Path(urlsplit(text).path).suffix.lower()[:8])
            try:
                mime = await self._download(text, temp)
            except BaseException:
                self.cleanup.remove_local(temp)
                raise
            return temp, mime, temp
        return self._local_path(text)

    def _local_path(self, text: str) -> tuple[Path, str, None]:
        root = self.settings.local_root
        if root is None:
            raise VideoError(f"動画 {text}: ローカルファイルは HOKAN_SCORING_VIDEO_LOCAL_ROOT の設定がないため読めません",
                             source=text, reason="outside_root")
        path = (root / text).resolve() if not Path(text).is_absolute() else Path(text).resolve()
        if not path.is_relative_to(root):
            raise VideoError(f"動画 {text}: {root} の外のファイルは読めません", source=text, reason="outside_root")
        if not path.is_file():
            raise VideoError(f"動画 {text}: ファイルがありません", source=text, reason="not_found")
        mime = _mime_for_name(path.name)
        if mime is None:
            raise VideoError(f"動画 {text}: 動画ファイルではありません(対応: {', '.join(sorted(_BY_EXTENSION))})",
                             source=text, reason="not_video")
        size = path.stat().st_size
        if size > self.settings.max_bytes:
            raise VideoError(f"動画 {text}: {size:,} バイトは上限 {self.settings.max_bytes:,} バイトを超えています",
                             source=text, reason="too_large")
        return path, mime, None

    async def _download(self, url: str, target: Path) -> str:
        """Stream ``url`` into ``target``; returns the MIME type. Raises VideoError / VideoUnavailable."""
        settings = self.settings
        try:
            async with guarded_async_client(timeout_s=settings.download_timeout_s, max_bytes=settings.max_bytes,
                                            follow_redirects=True) as http:
                async with http.stream("GET", url) as response:
                    if response.status_code == 429 or response.status_code >= 500:
                        raise VideoUnavailable(f"動画 {url}: HTTP {response.status_code}(後で再試行します)",
                                               source=url, reason="http_status",
                                               retry_after_s=_retry_after(response))
                    if response.status_code >= 400:
                        raise VideoError(f"動画 {url}: HTTP {response.status_code}", source=url, reason="http_status")
                    mime = _mime_of(response, url)
                    if mime is None:
                        raise VideoError(f"動画 {url}: 動画ではありません(Content-Type: "
                                         f"{response.headers.get('content-type', 'なし')})", source=url, reason="not_video")
                    with target.open("wb") as out:
                        async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK_BYTES):
                            out.write(chunk)
        except FetchBlocked as exc:
            raise VideoError(f"動画 {url}: 接続先が拒否されました({exc})", source=url, reason="blocked") from exc
        except FetchTooLarge as exc:
            raise VideoError(f"動画 {url}: 上限 {settings.max_bytes:,} バイトを超えています", source=url,
                             reason="too_large") from exc
        except httpx.TimeoutException as exc:
            raise VideoUnavailable(f"動画 {url}: ダウンロードがタイムアウトしました({settings.download_timeout_s:g}秒)",
                                   source=url, reason="timeout") from exc
        except (httpx.TransportError, httpx.TooManyRedirects) as exc:
            raise VideoUnavailable(f"動画 {url}: ダウンロードできませんでした({type(exc).__name__})",
                                   source=url, reason="connection") from exc
        except httpx.InvalidURL as exc:
            raise VideoError(f"動画 {url}: URL が不正です", source=url, reason="blocked") from exc
        return mime

    async def _wait_active(self, source: str, uploaded: GeminiFile) -> GeminiFile:
        if uploaded.state == "ACTIVE":
            return uploaded
        try:
            return await self.files.wait_active(uploaded.name, poll_interval_s=self.settings.poll_interval_s,
                                                timeout_s=self.settings.active_timeout_s, clock=self._clock)
        except GeminiFileNotActive as exc:
            if exc.state == "FAILED":
                raise VideoError(f"動画 {source}: Gemini での処理に失敗しました: {exc.reason or 'FAILED'}",
                                 source=source, reason="processing_failed") from exc
            raise VideoUnavailable(f"動画 {source}: {self.settings.active_timeout_s:g}秒以内に処理が終わりませんでした",
                                   source=source, reason="processing_timeout") from exc

    def _estimate(self, file: GeminiFile, request: JsonRequest) -> Decimal:
        """The reservation for the paid call (USD): the per-call setting, or more for a long video."""
        least = self.settings.cost_per_call_usd
        price = getattr(self.client, "price_table", {}).get(getattr(self.client, "model", ""), None)
        if price is None or file.video_duration_s is None:
            return least
        tokens = int(file.video_duration_s * TOKENS_PER_VIDEO_SECOND) + len(request.system) + len(request.user)
        return max(least, price.cost_usd(tokens, request.max_output_tokens or 1024))


def _mime_of(response: httpx.Response, url: str) -> str | None:
    declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared in VIDEO_MIME_TYPES:
        return declared
    if declared in ("", "application/octet-stream", "binary/octet-stream"):
        return _mime_for_name(urlsplit(url).path) or _guess(url)
    return None


def _guess(url: str) -> str | None:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed if guessed in VIDEO_MIME_TYPES else None


def _retry_after(response: httpx.Response) -> float | None:
    from hokan.core.web.http import parse_retry_after

    return parse_retry_after(response.headers)


# --- the engine's Scorer for sheets with video rows -----------------------------------------------------
VIDEO_NOTE = ("\n\nid {ids} の発話は動画です（text は動画の所在）。添付した動画（この順）の内容を、"
              "ほかの発話と同じ尺度・カテゴリで採点してください。")


_TEXT_ITEM = re.compile(r'"text": ("(?:[^"\\]|\\.)*")')


def video_sources(request: JsonRequest) -> list[str]:
    """The video references among the utterances of a scoring request (``questions.build_request``
    puts each utterance in a JSON item ``"text": …``), in prompt order; [] for a text-only request."""
    found = []
    for literal in _TEXT_ITEM.findall(request.user):
        try:
            text = json.loads(literal)
        except ValueError:
            continue
        if isinstance(text, str) and is_video_source(text):
            found.append(text)
    return found


class VideoClient:
    """The scoring engine's client for sheets with video rows: ``complete_json(request)`` attaches
    the videos the request's rows point at (``sources_of(request)``) through
    ``VideoScorer.with_videos`` — download, upload, ACTIVE, then ``inner.complete_json(request,
    files=…)`` on the Gemini client, then cleanup — inside one ``asyncio.run`` (the engine's
    Invoker threads have no event loop). A request without videos goes to ``inner`` unchanged.

    The ledger reservation is the engine's (``paid_call`` around this call); the rate limiter
    gates each HTTP attempt of ``inner`` (``inner`` runs its attempts through RetryPolicy).
    Errors: VideoUnavailable (a TransientError) passes; a VideoError becomes LLMRequestError
    ("final for this row", chained) so the engine reports it on the row's cells.
    """

    def __init__(self, inner: Any, video: VideoScorer, sources_of: Callable[[JsonRequest], list[str]]) -> None:
        self.inner = inner
        self.video = video
        self.sources_of = sources_of

    def __getattr__(self, name: str) -> Any:  # provider, model, available, profile, scope, price_table
        return getattr(self.inner, name)

    def complete_json(self, request: JsonRequest, **options: Any) -> Completion:
        from hokan.core.errors import LLMRequestError

        sources = self.sources_of(request)
        if not sources:
            return self.inner.complete_json(request, **options)

        async def use(files: list[GeminiFile]) -> Completion:
            refs = tuple(f.ref() for f in files)
            return await asyncio.to_thread(self.inner.complete_json, request, files=refs, **options)

        try:
            return asyncio.run(self.video.with_videos(sources, use, label=request.schema_name))
        except VideoUnavailable:
            raise
        except VideoError as exc:
            raise LLMRequestError(str(exc), provider="gemini", status_code=0) from exc

    def __repr__(self) -> str:
        return f"VideoClient({self.inner!r})"


def video_scorer(sjob: Any, table: Any, counters: Any, *, no_cache: bool = False, client: Any = None) -> Any:
    """The engine Scorer for a job whose utterance column holds videos (``is_video_source``), or
    None when no row does (the caller then uses the LLM or offline scorer).

    An ``LLMScorer`` (same chunks, cache, idempotency keys, validation, re-asks) whose client is
    a ``VideoClient`` on the scoring profile's Gemini client; video rows go into the prompt
    unmasked (a URL or path is not personal data and must stay intact), with a note saying
    which ids are videos. Reserves HOKAN_SCORING_VIDEO_COST_PER_CALL_USD (or the per-call
    setting, if larger) per call. Leftovers of a killed run are deleted first.

    Raises:
        LLMConfigError: video rows, but the scoring profile's provider is not Gemini or has no key.
    """
    from django.conf import settings

    from hokan.core.budget import get_ledger
    from hokan.core.errors import LLMConfigError
    from hokan.core.llm import get_client
    from hokan.core.llm.gemini_files import files_client
    from hokan.scoring.config import Categories, RunConfig
    from hokan.scoring.engine import LLMScorer
    from hokan.scoring.models import ScoringJob
    from hokan.scoring.questions import build_request, masked
    from hokan.scoring.service import job_rows

    rows = job_rows(sjob, table)
    if not any(is_video_source(row.text) for row in rows):
        return None
    gemini = client or get_client(profile="scoring")
    if getattr(gemini, "provider", "") != "gemini" or not getattr(gemini, "available", False):
        raise LLMConfigError("動画の行を採点するには HOKAN_SCORING_LLM_PROVIDER=gemini と GEMINI_API_KEY を設定してください"
                             f"（現在: {getattr(gemini, 'provider', '?')}）", provider=str(getattr(gemini, "provider", "")))
    video_settings = VideoSettings.from_settings()
    video = VideoScorer(client=gemini, files=files_client(profile="scoring", chunk_bytes=video_settings.upload_chunk_bytes),
                        ledger=None, settings=video_settings)
    asyncio.run(video.cleanup.recover())
    config = RunConfig.from_json(sjob.config)
    if no_cache:
        config = RunConfig.from_json({**config.to_json(), "cache_enabled": False})
    categories = Categories.from_json(sjob.categories, config.categories_per_call)
    if not sjob.provider:
        ScoringJob.objects.filter(pk=sjob.pk).update(provider=str(gemini.provider), model=str(gemini.model))
        sjob.provider, sjob.model = str(gemini.provider), str(gemini.model)
    class _VideoLLMScorer(LLMScorer):
        def request(self, rows: Any, block: int) -> JsonRequest:
            texts = [u.text.strip() if is_video_source(u.text) else masked(u.text) for u in rows]
            built = build_request(texts, self.block(block), system_prompt=self.sjob.system_prompt, config=self.config)
            videos = [(n, t) for n, t in enumerate(texts, start=1) if is_video_source(t)]
            if not videos:
                return built
            return dataclasses.replace(built, user=built.user + VIDEO_NOTE.format(ids="・".join(str(n) for n, _ in videos)))

    estimate = max(Decimal(str(settings.HOKAN_SCORING_VIDEO_COST_PER_CALL_USD)),
                   Decimal(str(settings.HOKAN_SCORING_COST_PER_CALL_USD)))
    return _VideoLLMScorer(sjob, config, categories, client=VideoClient(gemini, video, video_sources),
                           ledger=get_ledger("scoring"), estimate_usd=estimate, counters=counters)
