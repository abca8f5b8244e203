"""Storing analyses (issue 12 §1, §7): validation of the analysis JSON and ``store_analysis``.

The analysis JSON (one stream; docs/knowledge.md shows a full example)::

    {
      "video_id": "tt-20261120-001",                     required, ≤ 200 characters
      "video_url": "https://www.tiktok.com/@shop/live/…", optional http(s) URL
      "platform": "tiktok",                              tiktok | instagram | youtube | rakuten | yahoo | line | other
      "liver": "さくら",                                  the host (ライバー)
      "stream_date": "2026-11-20",                       a date (2026/11/20, 2026年11月20日 too)
      "duration_s": 3600,                                seconds, or "01:00:00"
      "title": "…", "summary": "…",
      "products": [{"name": "…", "sku": "A-1", "price_jpy": 3980}, …]   (or a list of names)
      "phases": [                                        required, at least one
        {"index": 0, "start_s": 0, "end_s": 300,         seconds or "mm:ss" / "hh:mm:ss"; end ≥ start
         "title": "…", "speech": "…", "visuals": "…", "insight": "…",
         "performance": {…}, "gmv_jpy": 120000, "comments": ["…", …]}, …],
      "sales": {"gmv": 1234567, "orders": 321, "viewers": 12000, "ctr": 3.2, …}
               or [{"metric", "value", "unit", "sku", "source", "shown", "quote", "confidence",
                    "source_ref", "method"}, …]
    }

Sales values: JPY metrics (gmv, average_order_value) are whole yen; counts are whole numbers;
ctr / conversion_rate are percent; watch_time / average_watch_time seconds. A value given as
null or absent is not stored (a missing value is never 0). Sales from the JSON get source
``analysis`` unless an item names its source; a stored value from a better source (manual >
api > csv/json > screenshot > recording > analysis) is never replaced by a worse one.

``store_analysis(payload)`` is idempotent by video id: the same JSON again changes nothing;
a new analysis of the same video replaces its phases (``revision`` + 1) and the Qdrant points
of phases that no longer exist are deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from hokan.core.errors import HokanError, InvalidValue
from hokan.core.fields import FieldSpec, clean
from hokan.knowledge.errors import AnalysisInvalid, KnowledgeStoreUnavailable
from hokan.knowledge.models import (
    METRIC_CODES,
    PLATFORM_CODES,
    SOURCE_CODES,
    SOURCE_RANK,
    UNIT_CODES,
    Phase,
    SalesData,
    VideoAnalysis,
)

log = logging.getLogger(__name__)

MAX_PHASES = 1000
MAX_TEXT_CHARS = 50_000
MAX_COMMENTS = 500
METRIC_UNITS = {
    "gmv": "JPY", "average_order_value": "JPY",
    "ctr": "percent", "conversion_rate": "percent",
    "watch_time": "seconds", "average_watch_time": "seconds",
}
# Accepted spellings of metric keys in the "sales" object (document 001 keeps GMV in JPY).
METRIC_ALIASES = {"gmv_jpy": "gmv", "sales": "gmv", "revenue": "gmv", "average_order_value_jpy": "average_order_value",
                  "aov": "average_order_value", "ctr_percent": "ctr", "conversion_rate_percent": "conversion_rate",
                  "watch_time_s": "watch_time", "average_watch_time_s": "average_watch_time"}
PLATFORM_ALIASES = {"tik tok": "tiktok", "ティックトック": "tiktok", "インスタ": "instagram", "ig": "instagram",
                    "yt": "youtube", "楽天": "rakuten"}

_URL = FieldSpec("video_url", "動画URL", kind="url")
_DATE = FieldSpec("stream_date", "配信日", kind="date")
_PRICE = FieldSpec("price_jpy", "価格", kind="fee")
_CLOCK = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d(?:\.\d+)?)$")


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append((path, reason))


def _text(value: Any, path: str, problems: _Problems, *, max_chars: int = MAX_TEXT_CHARS, required: bool = False) -> str:
    if value is None:
        if required:
            problems.add(path, "必須です")
        return ""
    if not isinstance(value, str):
        problems.add(path, f"文字列で指定してください（{type(value).__name__}）")
        return ""
    if "\x00" in value:
        problems.add(path, "使えない文字（NUL）が含まれています")
        return ""
    value = value.strip()
    if required and not value:
        problems.add(path, "空です")
    if len(value) > max_chars:
        problems.add(path, f"{max_chars:,}文字以内にしてください（{len(value):,}文字）")
        return ""
    return value


def parse_seconds(value: Any) -> Decimal | None:
    """Seconds from a number (int/float/Decimal/"12.5") or "mm:ss" / "hh:mm:ss"; None for None.

    Raises:
        ValueError: not a time, or negative.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("真偽値は時間として使えません")
    if isinstance(value, (int, float, Decimal)):
        seconds = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        m = _CLOCK.match(text)
        if m:
            seconds = Decimal(m.group(1) or 0) * 3600 + Decimal(m.group(2)) * 60 + Decimal(m.group(3))
        else:
            try:
                seconds = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"秒数または hh:mm:ss で指定してください（{value!r}）") from None
    else:
        raise ValueError(f"秒数または hh:mm:ss で指定してください（{type(value).__name__}）")
    if not seconds.is_finite() or seconds < 0:
        raise ValueError(f"0以上の秒数にしてください（{value!r}）")
    return seconds.quantize(Decimal("0.001"))


def _whole(value: Any, path: str, problems: _Problems, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        problems.add(path, "真偽値は数値として使えません")
        return None
    try:
        number = Decimal(str(value).replace(",", "").strip()) if isinstance(value, (str, int, float, Decimal)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        problems.add(path, f"整数で指定してください（{value!r}）")
        return None
    if number < minimum:
        problems.add(path, f"{minimum}以上にしてください（{value!r}）")
        return None
    return int(number)


def _number(value: Any, path: str, problems: _Problems) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        problems.add(path, f"数値で指定してください（{value!r}）")
        return None
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        problems.add(path, f"数値で指定してください（{value!r}）")
        return None
    if not number.is_finite() or number < 0:
        problems.add(path, f"0以上の数値にしてください（{value!r}）")
        return None
    return number


def _platform(value: Any, problems: _Problems) -> str:
    text = _text(value, "platform", problems, max_chars=40)
    if not text:
        return "other"
    key = text.lower()
    key = PLATFORM_ALIASES.get(key, key)
    if key not in PLATFORM_CODES:
        problems.add("platform", f"未対応のプラットフォームです（{text!r}; 対応: {', '.join(PLATFORM_CODES)}）")
        return "other"
    return key


def _products(value: Any, problems: _Problems) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("products", "配列で指定してください")
        return []
    out = []
    for i, item in enumerate(value):
        path = f"products[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            problems.add(path, "商品名の文字列か {name, sku, price_jpy} で指定してください")
            continue
        name = _text(item.get("name"), f"{path}.name", problems, max_chars=300, required=True)
        sku = _text(item.get("sku"), f"{path}.sku", problems, max_chars=200)
        price = None
        if item.get("price_jpy") is not None:
            try:
                price = clean(_PRICE, item.get("price_jpy"))
            except InvalidValue as exc:
                problems.add(f"{path}.price_jpy", exc.reason)
        out.append({"name": name, "sku": sku, "price_jpy": price})
    return out


def _phases(value: Any, duration: Decimal | None, problems: _Problems) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        problems.add("phases", "フェーズを1件以上、配列で指定してください")
        return []
    if len(value) > MAX_PHASES:
        problems.add("phases", f"{MAX_PHASES}件以内にしてください（{len(value)}件）")
        return []
    out, seen = [], set()
    for i, item in enumerate(value):
        path = f"phases[{i}]"
        if not isinstance(item, dict):
            problems.add(path, "オブジェクトで指定してください")
            continue
        index = _whole(item.get("index", i), f"{path}.index", problems)
        if index is not None:
            if index in seen:
                problems.add(f"{path}.index", f"フェーズ番号 {index} が重複しています")
            seen.add(index)
        times = []
        for name in ("start_s", "end_s"):
            raw = item.get(name)
            if raw is None:
                problems.add(f"{path}.{name}", "必須です")
                times.append(None)
                continue
            try:
                times.append(parse_seconds(raw))
            except ValueError as exc:
                problems.add(f"{path}.{name}", str(exc))
                times.append(None)
        start, end = times
        if start is not None and end is not None and end < start:
            problems.add(f"{path}.end_s", f"終了（{end}秒）が開始（{start}秒）より前です")
        if duration is not None and end is not None and end > duration:
            problems.add(f"{path}.end_s", f"配信時間（{duration}秒）を超えています（{end}秒）")
        performance = item.get("performance") or {}
        if not isinstance(performance, dict):
            problems.add(f"{path}.performance", "オブジェクトで指定してください")
            performance = {}
        comments = item.get("comments") or []
        if not isinstance(comments, list) or not all(isinstance(c, str) for c in comments):
            problems.add(f"{path}.comments", "文字列の配列で指定してください")
            comments = []
        if len(comments) > MAX_COMMENTS:
            problems.add(f"{path}.comments", f"{MAX_COMMENTS}件以内にしてください（{len(comments)}件）")
            comments = []
        out.append({
            "index": index, "start_s": start, "end_s": end,
            "title": _text(item.get("title"), f"{path}.title", problems, max_chars=300),
            "speech": _text(item.get("speech"), f"{path}.speech", problems),
            "visuals": _text(item.get("visuals"), f"{path}.visuals", problems),
            "insight": _text(item.get("insight"), f"{path}.insight", problems),
            "performance": performance,
            "gmv_jpy": _whole(item.get("gmv_jpy"), f"{path}.gmv_jpy", problems),
            "comments": [c.strip()[:2000] for c in comments if c.strip()],
        })
    return out


def _sales_item(metric: str, raw: Any, path: str, problems: _Problems, extra: dict[str, Any]) -> dict[str, Any] | None:
    metric = METRIC_ALIASES.get(metric, metric)
    if metric not in METRIC_CODES:
        problems.add(path, f"未対応の指標です（{metric!r}; 対応: {', '.join(METRIC_CODES)}）")
        return None
    unit = extra.get("unit") or METRIC_UNITS.get(metric, "count")
    if unit not in UNIT_CODES:
        problems.add(f"{path}.unit", f"未対応の単位です（{unit!r}）")
        return None
    if raw is None:
        return None  # missing, never 0
    if unit in ("JPY", "count"):
        number = _whole(raw, path, problems)
        value = Decimal(number) if number is not None else None
    else:
        value = _number(raw, path, problems)
    if value is None:
        return None
    source = extra.get("source") or "analysis"
    if source not in SOURCE_CODES:
        problems.add(f"{path}.source", f"未対応の出典です（{source!r}; 対応: {', '.join(SOURCE_CODES)}）")
        return None
    confidence = extra.get("confidence")
    if confidence is not None:
        conf = _number(confidence, f"{path}.confidence", problems)
        if conf is not None and conf > 1:
            problems.add(f"{path}.confidence", f"0〜1で指定してください（{confidence!r}）")
            conf = None
        confidence = conf.quantize(Decimal("0.001")) if conf is not None else None
    return {
        "metric": metric, "value": value, "unit": unit, "source": source,
        "sku": _text(extra.get("sku"), f"{path}.sku", problems, max_chars=200),
        "shown": _text(extra.get("shown"), f"{path}.shown", problems, max_chars=200),
        "quote": _text(extra.get("quote"), f"{path}.quote", problems, max_chars=2000),
        "source_ref": _text(extra.get("source_ref"), f"{path}.source_ref", problems, max_chars=1000),
        "method": _text(extra.get("method"), f"{path}.method", problems, max_chars=40),
        "confidence": confidence, "verified": bool(extra.get("verified", True)),
    }


def _sales(value: Any, problems: _Problems) -> list[dict[str, Any]]:
    if value is None:
        return []
    items: list[dict[str, Any]] = []
    if isinstance(value, dict):
        for metric, raw in value.items():
            item = _sales_item(str(metric), raw, f"sales.{metric}", problems, {})
            if item:
                items.append(item)
    elif isinstance(value, list):
        for i, entry in enumerate(value):
            if not isinstance(entry, dict) or "metric" not in entry:
                problems.add(f"sales[{i}]", "{metric, value, …} で指定してください")
                continue
            item = _sales_item(str(entry["metric"]), entry.get("value"), f"sales[{i}]", problems, entry)
            if item:
                items.append(item)
    else:
        problems.add("sales", "オブジェクトか配列で指定してください")
    return items


def validate_analysis(payload: Any, *, source: str = "") -> dict[str, Any]:
    """The cleaned analysis (module docstring), or ``AnalysisInvalid`` listing every problem
    (path and Japanese reason). source: a file name / URL for the message."""
    problems = _Problems()
    if not isinstance(payload, dict):
        raise AnalysisInvalid([("$", "JSONオブジェクトで指定してください")], source=source)
    video_id = _text(payload.get("video_id"), "video_id", problems, max_chars=200, required=True)
    if video_id and any(ord(ch) < 32 for ch in video_id):
        problems.add("video_id", "制御文字は使えません")
    url = ""
    if payload.get("video_url"):
        try:
            url = clean(_URL, payload.get("video_url")) or ""
        except InvalidValue as exc:
            problems.add("video_url", exc.reason)
    stream_date = None
    if payload.get("stream_date") is not None:
        try:
            text = clean(_DATE, payload.get("stream_date"))
            stream_date = dt.date.fromisoformat(text) if text else None
        except (InvalidValue, ValueError) as exc:
            problems.add("stream_date", getattr(exc, "reason", str(exc)))
    duration = None
    try:
        duration = parse_seconds(payload.get("duration_s"))
    except ValueError as exc:
        problems.add("duration_s", str(exc))
    cleaned = {
        "video_id": video_id,
        "video_url": url,
        "platform": _platform(payload.get("platform"), problems),
        "liver": _text(payload.get("liver"), "liver", problems, max_chars=200),
        "stream_date": stream_date,
        "duration_s": int(duration) if duration is not None else None,
        "title": _text(payload.get("title"), "title", problems, max_chars=500),
        "summary": _text(payload.get("summary"), "summary", problems),
        "products": _products(payload.get("products"), problems),
        "phases": _phases(payload.get("phases"), duration, problems),
        "sales": _sales(payload.get("sales"), problems),
    }
    if problems.items:
        raise AnalysisInvalid(problems.items, source=source)
    return cleaned


def record_sales_value(analysis: VideoAnalysis, *, metric: str, value: Decimal | int, unit: str, source: str,
                       sku: str = "", shown: str = "", quote: str = "", source_ref: str = "", method: str = "",
                       confidence: Decimal | None = None, verified: bool = True,
                       observed_at: dt.datetime | None = None, sync_index: bool = True) -> SalesData | None:
    """Store one sales metric with its provenance unless a value from a better source is kept
    (``SOURCE_RANK``; a manual value is never replaced by anything else). Returns the row
    written, or None when the stored one was kept. The stream's GMV in Qdrant follows
    (``sync_index=False`` leaves it to the caller's next indexing).

    Raises:
        ValueError: unknown metric, unit or source (a programming error of the caller).
    """
    if metric not in METRIC_CODES or unit not in UNIT_CODES or source not in SOURCE_CODES:
        raise ValueError(f"record_sales_value: unknown metric/unit/source {metric!r}/{unit!r}/{source!r}")
    fields = {"value": Decimal(value), "unit": unit, "source": source, "shown": shown, "quote": quote,
              "source_ref": source_ref, "method": method, "confidence": confidence, "verified": verified,
              "observed_at": observed_at or timezone.now()}
    with transaction.atomic():
        current = SalesData.objects.select_for_update().filter(analysis=analysis, metric=metric, sku=sku).first()
        if current is not None:
            if current.source == "manual" and source != "manual":
                return None
            if SOURCE_RANK[current.source] > SOURCE_RANK[source]:
                return None
            for name, field_value in fields.items():
                setattr(current, name, field_value)
            current.save()
            row = current
        else:
            row = SalesData.objects.create(analysis=analysis, metric=metric, sku=sku, **fields)
    if metric == "gmv" and not sku and sync_index:
        _sync_gmv(analysis)
    return row


def _sync_gmv(analysis: VideoAnalysis) -> None:
    """Write the stream's GMV into its Qdrant points (best effort: reindex repairs)."""
    from hokan.knowledge.store import KnowledgeIndex

    try:
        index = KnowledgeIndex()
        if index.exists() and index.count(video_id=analysis.video_id):
            from hokan.knowledge.store import _video_filter

            index.client.set_payload(index.collection, payload={"gmv_jpy": analysis.gmv_jpy},
                                     points=_video_filter(analysis.video_id), wait=True)
    except HokanError as exc:  # Qdrant away or the embedder misconfigured: the database row stands
        log.warning("knowledge: GMV of %s not written to Qdrant (run hokan knowledge reindex): %s",
                    analysis.video_id, exc)


def _fields(cleaned: dict[str, Any]) -> dict[str, Any]:
    return {k: cleaned[k] for k in ("video_url", "platform", "liver", "stream_date", "duration_s", "title", "summary",
                                    "products")}


def _jsonable(payload: Any) -> Any:
    import json

    return json.loads(json.dumps(payload, ensure_ascii=False, default=str))


def store_analysis(payload: dict[str, Any], *, source: str = "", index: bool = True,
                   index_obj: Any = None) -> VideoAnalysis:
    """Validate and store one analysis JSON (module docstring); idempotent by ``video_id``.

    Then its phases are indexed in Qdrant (``index=False`` skips it; ``index_obj``: a
    ``KnowledgeIndex`` to use). When Qdrant cannot be reached the analysis stays stored and
    ``analysis.index_error`` holds the Japanese reason (``hokan knowledge reindex`` repairs
    it) — also when paid embeddings were refused (budget, provider error); otherwise
    ``index_error`` is None.

    Returns the ``VideoAnalysis`` (with ``created``: True when the video was new, ``changed``:
    False when the same JSON was stored already).

    Raises:
        AnalysisInvalid: the JSON fails validation; nothing was stored.
    """
    cleaned = validate_analysis(payload, source=source)
    raw = _jsonable(payload)
    created = changed = False
    for attempt in range(2):
        try:
            with transaction.atomic():
                analysis = VideoAnalysis.objects.select_for_update().filter(video_id=cleaned["video_id"]).first()
                if analysis is None:
                    analysis = VideoAnalysis.objects.create(video_id=cleaned["video_id"], raw=raw, **_fields(cleaned))
                    created = changed = True
                elif analysis.raw != raw:
                    for name, value in _fields(cleaned).items():
                        setattr(analysis, name, value)
                    analysis.raw = raw
                    analysis.revision += 1
                    analysis.save()
                    analysis.phases.all().delete()
                    changed = True
                if changed:
                    Phase.objects.bulk_create([
                        Phase(analysis=analysis, **{k: v for k, v in phase.items()}) for phase in cleaned["phases"]
                    ])
            break
        except IntegrityError:
            if attempt:
                raise
            continue  # another process created the same video first: update it instead
    if changed:
        for item in cleaned["sales"]:
            record_sales_value(analysis, **item, sync_index=False)  # the indexing below writes the payload
    analysis.created = created
    analysis.changed = changed
    analysis.index_error = None
    if index and (changed or analysis.indexed_revision != analysis.revision):
        try:
            from hokan.knowledge.store import KnowledgeIndex

            (index_obj or KnowledgeIndex()).index_analysis(analysis)
        except HokanError as exc:  # Qdrant away, or the embeddings provider / budget refused (paid embeddings)
            reason = exc.reason if isinstance(exc, KnowledgeStoreUnavailable) else str(exc)
            analysis.index_error = (f"{analysis.video_id}: 保存しましたが検索索引（Qdrant）に反映できませんでした: {reason} "
                                    "— hokan knowledge reindex で反映できます")
            log.warning("%s", analysis.index_error)
    return analysis
