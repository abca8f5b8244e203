"""Viewer / like / comment counts read from a screen recording (design document 001 §4.2
pattern B; issue 12 §3).

``extract_screen_metrics(video)``:

1. opens the video with OpenCV (``cv2.VideoCapture``; any container / codec FFmpeg decodes)
   and samples a frame every ``1 / fps`` seconds of video time (``HOKAN_KNOWLEDGE_SCREEN_FPS``).
   The timestamp of a sample is its frame index / the video's frame rate. At most
   ``HOKAN_KNOWLEDGE_SCREEN_MAX_FRAMES`` samples: a longer video is sampled more sparsely over
   its whole length (``ScreenMetrics.fps`` says the rate used); the whole run stops at
   ``HOKAN_KNOWLEDGE_SCREEN_MAX_SECONDS`` (``stopped`` says why, the samples so far are kept);
2. skips near-duplicate frames: a frame whose perceptual hash (``imagehash.dhash``, 32x32) is
   within ``HOKAN_KNOWLEDGE_SCREEN_HASH_DISTANCE`` of the last frame read *and* whose pixels
   differ nowhere by more than ``PIXEL_TOLERANCE`` (grey levels, at quarter size) is not read
   again — its numbers are the last frame's. The pixel check is there because a perceptual hash
   barely sees a changed digit: measured on the generated dashboard, ``145`` → ``146`` moved the
   32x32 dhash by 4 bits and the 16x16 one by 0, while JPEG noise alone moved them by 10 and 6;
3. reads each kept frame by OCR (``hokan.core.documents.read_document``, the engines of
   ``HOKAN_OCR_ENGINES``) and labels its figures by the pattern-A layout rules
   (``sales_data_ingester.metrics_from_ocr``); the counts of ``metrics`` (default viewers,
   likes, comments) become a time series — a frame where a metric cannot be read has no sample
   for it (missing, never 0);
4. computes each series' trend: peak (value and time), time-weighted average, growth per
   minute (least-squares slope x 60), first and last.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hokan.core.errors import DocumentError, DocumentUnreadable

#: Largest grey-level difference (0-255, images at quarter size) still counted as "unchanged".
PIXEL_TOLERANCE = 48
DEFAULT_METRICS = ("viewers", "likes", "comments")


@dataclass(frozen=True)
class Sample:
    """One metric read at one time. t_s: seconds from the start of the video; value: int count
    (or the unit's number); frame_index: the video frame it was read from."""

    metric: str
    t_s: float
    value: int | float
    unit: str
    shown: str
    quote: str
    confidence: float
    frame_index: int


@dataclass(frozen=True)
class Trend:
    """A series' trend. peak / peak_t_s: the highest value and when it was first shown;
    average: time-weighted mean over [first sample, end of the video); growth_per_minute: the
    least-squares slope in value per minute (None with one sample)."""

    metric: str
    samples: int
    first: int | float
    last: int | float
    peak: int | float
    peak_t_s: float
    average: float
    growth_per_minute: float | None


@dataclass
class ScreenMetrics:
    """What was read from one recording.

    duration_s: the video's length; fps: the sampling rate used; frames_sampled: frames looked
    at; frames_read: frames OCRed (the others were near-duplicates); stopped: why sampling ended
    early ("" when the whole video was read); series: metric -> samples in time order.
    """

    source: str
    duration_s: float
    fps: float
    frames_sampled: int = 0
    frames_read: int = 0
    stopped: str = ""
    series: dict[str, list[Sample]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def trends(self) -> dict[str, Trend]:
        return {metric: trend(samples, self.duration_s) for metric, samples in self.series.items() if samples}

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "duration_s": self.duration_s, "fps": self.fps,
            "frames_sampled": self.frames_sampled, "frames_read": self.frames_read, "stopped": self.stopped,
            "series": {m: [[s.t_s, s.value] for s in samples] for m, samples in self.series.items()},
            "trends": {m: t.__dict__ for m, t in self.trends.items()}, "problems": self.problems,
        }  # fmt: skip


def trend(samples: Sequence[Sample], duration_s: float) -> Trend:
    """The trend of one series (samples in time order, at least one)."""
    values = [float(s.value) for s in samples]
    times = [s.t_s for s in samples]
    peak_index = max(range(len(values)), key=lambda i: (values[i], -i))
    end = max(duration_s, times[-1])
    span = end - times[0]
    if span > 0:
        bounds = times[1:] + [end]
        average = sum(v * (b - t) for v, t, b in zip(values, times, bounds, strict=True)) / span
    else:
        average = values[-1]
    growth = None
    if len(samples) >= 2:
        mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
        var = sum((t - mean_t) ** 2 for t in times)
        growth = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / var * 60 if var else None
    return Trend(samples[0].metric, len(samples), samples[0].value, samples[-1].value, samples[peak_index].value,
                 samples[peak_index].t_s, round(average, 4), None if growth is None else round(growth, 4))  # fmt: skip


def _same_picture(a: Any, b: Any) -> bool:
    from PIL import ImageChops

    small = (max(1, a.width // 4), max(1, a.height // 4))
    diff = ImageChops.difference(a.convert("L").resize(small), b.convert("L").resize(small))
    return diff.getextrema()[1] <= PIXEL_TOLERANCE


def extract_screen_metrics(
    video: Path | str,
    *,
    fps: float | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    hash_distance: int | None = None,
    engines: Sequence[Any] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> ScreenMetrics:
    """Read the time series of ``metrics`` from the screen recording ``video`` (steps in the
    module docstring). Settings give the defaults of ``fps``, ``max_frames``, ``max_seconds``,
    ``hash_distance`` (``HOKAN_KNOWLEDGE_SCREEN_*``). ``on_frame(done, total)`` is called after each
    sampled frame (a progress bar).

    Raises:
        DocumentUnreadable: not a video OpenCV can decode (reason "format"), or over
            ``HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES``.
        OcrUnavailable: no OCR engine can run.
    """
    import cv2
    import imagehash
    from django.conf import settings
    from PIL import Image

    from hokan.core.documents import read_document
    from hokan.knowledge.sales_data_ingester import metrics_from_ocr

    fps = float(fps or settings.HOKAN_KNOWLEDGE_SCREEN_FPS)
    max_frames = int(max_frames or settings.HOKAN_KNOWLEDGE_SCREEN_MAX_FRAMES)
    max_seconds = float(max_seconds or settings.HOKAN_KNOWLEDGE_SCREEN_MAX_SECONDS)
    hash_distance = settings.HOKAN_KNOWLEDGE_SCREEN_HASH_DISTANCE if hash_distance is None else hash_distance
    path = Path(video)
    name = str(video)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DocumentUnreadable(f"{name}: ファイルを開けません（{exc.strerror}）", source=name, reason="missing") from exc
    if size > settings.HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES:
        raise DocumentUnreadable(f"{name}: 動画が大きすぎます（{size:,} バイト、上限 "
                                 f"{settings.HOKAN_KNOWLEDGE_SCREEN_MAX_BYTES:,} バイト）", source=name, reason="size")  # fmt: skip
    # FFmpeg's own log lines ("moov atom not found") would reach the user's terminal beside our
    # Japanese error; an operator who wants them sets OPENCV_FFMPEG_LOGLEVEL themselves.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    capture = cv2.VideoCapture(str(path))
    video_fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0
    frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    if not capture.isOpened() or video_fps <= 0 or frame_count <= 0:
        capture.release()
        raise DocumentUnreadable(f"{name}: 動画として読めません（OpenCV / FFmpeg で開けない形式です）", source=name,
                                 reason="format")  # fmt: skip
    duration = frame_count / video_fps
    if duration * fps > max_frames:
        fps = max_frames / duration
    result = ScreenMetrics(name, round(duration, 3), round(fps, 4), series={m: [] for m in metrics})
    total = min(max_frames, math.ceil(duration * fps - 1e-9))  # sample times k / fps < duration
    started = time.monotonic()
    next_t = 0.0
    last_hash = last_image = None
    last_values: dict[str, Any] = {}
    index = -1
    try:
        while result.frames_sampled < total:
            if not capture.grab():
                break
            index += 1
            t = index / video_fps
            if t + 1e-9 < next_t:
                continue
            next_t += 1 / fps
            if time.monotonic() - started > max_seconds:
                result.stopped = f"時間の上限（{max_seconds:g} 秒）に達したため {t:.1f} 秒で中止しました"
                break
            ok, frame = capture.retrieve()
            if not ok:
                result.problems.append(f"{t:.1f} 秒のフレームを読めませんでした")
                continue
            result.frames_sampled += 1
            image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            frame_hash = imagehash.dhash(image, hash_size=32)
            duplicate = (last_hash is not None and frame_hash - last_hash <= hash_distance
                         and _same_picture(image, last_image))  # fmt: skip
            if not duplicate:
                last_hash, last_image = frame_hash, image
                buffer = io.BytesIO()
                image.save(buffer, "PNG")
                try:
                    document = read_document(buffer.getvalue(), name=f"{name}@{t:.2f}s", ocr="always", engines=engines)
                except DocumentError as exc:
                    if exc.__class__.__name__ == "OcrUnavailable":
                        raise
                    result.problems.append(f"{t:.1f} 秒: {exc}")
                    continue
                result.frames_read += 1
                last_values = {}
                for page in document.pages:
                    for m in metrics_from_ocr(page.ocr, source="recording") if page.ocr else []:
                        if m.metric in result.series and m.metric not in last_values and m.row is None \
                                and m.unit == "count" and isinstance(m.value, int):
                            last_values[m.metric] = m
                for metric, m in last_values.items():
                    result.series[metric].append(Sample(metric, round(t, 3), m.value, m.unit, m.shown, m.quote,
                                                        m.confidence, index))  # fmt: skip
            if on_frame:
                on_frame(result.frames_sampled, total)
    finally:
        capture.release()
    return result


def save_samples(analysis: Any, result: ScreenMetrics) -> int:
    """Store ``result``'s samples as ``ScreenMetricSample`` rows of ``analysis`` (a VideoAnalysis),
    one per (metric, time): reading the same recording again updates them. Returns the count."""
    from decimal import Decimal

    from django.db import transaction

    from hokan.knowledge.models import ScreenMetricSample

    count = 0
    with transaction.atomic():
        for metric, samples in result.series.items():
            for s in samples:
                ScreenMetricSample.objects.update_or_create(
                    analysis=analysis, metric=metric, t_s=Decimal(str(s.t_s)),
                    defaults={"value": Decimal(str(s.value)), "unit": s.unit, "shown": s.shown[:200], "quote": s.quote,
                              "confidence": Decimal(str(round(s.confidence, 3))), "frame_index": s.frame_index,
                              "source_ref": result.source[:1000]},
                )  # fmt: skip
                count += 1
    return count


def store_screen_metrics(analysis: Any, result: ScreenMetrics) -> dict[str, Any]:
    """Store ``result`` on ``analysis``: every sample (``save_samples``), and from the viewers
    series the stream's ``peak_viewers`` (its highest reading) and ``average_viewers`` (the
    time-weighted mean, 4 decimals) as sales metrics of source "recording" (a better source
    already stored is kept). Returns {"samples": n, "stored": [metric, …]}."""
    from decimal import Decimal

    from hokan.knowledge.service import record_sales_value

    count = save_samples(analysis, result)
    stored = []
    viewers = result.series.get("viewers") or []
    if viewers:
        t = trend(viewers, result.duration_s)
        peak = next(s for s in viewers if s.value == t.peak)
        for metric, value, shown, quote in (
            ("peak_viewers", Decimal(str(t.peak)), peak.shown, peak.quote),
            ("average_viewers", Decimal(str(t.average)).quantize(Decimal("0.0001")), "", ""),
        ):
            row = record_sales_value(analysis, metric=metric, value=value, unit="count", source="recording",
                                     shown=shown, quote=quote, source_ref=result.source[:1000], method="ocr_rules",
                                     confidence=Decimal(str(round(peak.confidence, 3))))  # fmt: skip
            if row is not None:
                stored.append(metric)
    return {"samples": count, "stored": stored}
