"""Read a document — a PDF or an image — into page texts, with OCR where there is no text layer.

``read_document`` guarantees, in this order:

1. the byte size is checked before the file is read (``HOKAN_DOCUMENTS_MAX_BYTES``);
2. the result is looked up in the cache by the content's SHA-256 and the reading options
   (``hokan.core.documents.cache``); a hit runs no parser and no OCR engine;
3. a PDF is parsed in a child process under a memory cap (``pdf_worker``): each page's text
   layer; pages with no text layer are rendered and read by OCR;
   an image is checked from its header (pixels, frames) before it is decoded, then read by OCR;
4. OCR uses the first engine of ``HOKAN_OCR_ENGINES`` that runs, the next one when an engine
   is unavailable or fails;
5. the whole read stays within ``HOKAN_DOCUMENTS_MAX_SECONDS``: checked before each page's OCR
   and enforced on the PDF parser and Tesseract by killing them; past it, ``DocumentTimeout``
   and nothing is cached;
6. the result is cached, then returned.

Every refusal is a ``DocumentError`` whose Japanese message names the file and the reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hokan.core.documents import cache
from hokan.core.documents.images import frames, open_image
from hokan.core.documents.limits import Deadline, DocumentLimits
from hokan.core.documents.ocr import OcrEngine, OcrResult, configured_engines
from hokan.core.documents.pdf import OcrMode, pdf_pages
from hokan.core.documents.pdf_worker import MIN_TEXT_CHARS
from hokan.core.errors import DocumentTimeout, DocumentUnreadable, OcrUnavailable

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """One PDF page or image frame.

    number: 1-based; text_layer: the PDF's own text ("" for images); ocr: what OCR read, or
    None when the page was not OCRed; method: where ``text`` comes from — "text_layer" or "ocr";
    width_pt / height_pt: PDF page size in points (None for images); dpi: resolution the page
    was rendered at for OCR (OCR boxes are in those pixels), None when not rendered.
    """

    number: int
    text_layer: str
    ocr: OcrResult | None
    width_pt: float | None = None
    height_pt: float | None = None
    dpi: int | None = None

    @property
    def method(self) -> Literal["text_layer", "ocr"]:
        has_text = len("".join(self.text_layer.split())) >= MIN_TEXT_CHARS
        return "ocr" if self.ocr is not None and not has_text else "text_layer"

    @property
    def text(self) -> str:
        """The page's text: its text layer, or the OCR lines when it has none."""
        return self.ocr.text if self.method == "ocr" and self.ocr is not None else self.text_layer

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "text_layer": self.text_layer, "ocr": self.ocr.to_dict() if self.ocr else None,
                "width_pt": self.width_pt, "height_pt": self.height_pt, "dpi": self.dpi}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        ocr = OcrResult.from_dict(data["ocr"]) if data.get("ocr") else None
        return cls(int(data["number"]), str(data["text_layer"]), ocr, data.get("width_pt"), data.get("height_pt"),
                   data.get("dpi"))  # fmt: skip


@dataclass(frozen=True)
class Document:
    """A read document. source: the name given (file path or URL); sha256: of its bytes (hex);
    kind: "pdf" | "image"; from_cache: True when this result was read from the cache."""

    source: str
    sha256: str
    kind: Literal["pdf", "image"]
    pages: tuple[Page, ...]
    from_cache: bool = False

    @property
    def text(self) -> str:
        """All pages' text, pages separated by a blank line."""
        return "\n\n".join(page.text for page in self.pages)

    @property
    def ocr_engines(self) -> tuple[str, ...]:
        """The engines that read at least one page (none for a PDF with text layers only)."""
        return tuple(dict.fromkeys(page.ocr.engine for page in self.pages if page.ocr))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "kind": self.kind, "pages": [page.to_dict() for page in self.pages]}


def read_document(
    source: Path | str | bytes,
    *,
    name: str | None = None,
    ocr: OcrMode = "auto",
    engines: Sequence[OcrEngine] | None = None,
    limits: DocumentLimits | None = None,
    refresh: bool = False,
) -> Document:
    """Read a PDF or an image file (a path) or its bytes into pages.

    name: how the document is named in messages and in ``Document.source`` (default: the path;
    for bytes, "文書"); ocr: "auto" (OCR the pages without a text layer, and every image),
    "always" (OCR every page too), "never" (text layers only); engines: the OCR engines to try in
    order (default ``HOKAN_OCR_ENGINES``); limits: default from the settings; refresh: read
    again and overwrite the cached result.

    Raises:
        DocumentTooLarge: bytes, pages, pixels, text or memory over the limits.
        DocumentUnreadable: missing file, unsupported format, corrupt or truncated, encrypted.
        DocumentTimeout: the time budget ran out.
        OcrUnavailable: a page needs OCR and no engine could run.
    """
    limits = limits or DocumentLimits.from_settings()
    if isinstance(source, bytes):
        label = name or "文書"
        limits.check_bytes(label, len(source))
        data = source
    else:
        path = Path(source)
        label = name or str(source)
        try:
            limits.check_bytes(label, path.stat().st_size)
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise DocumentUnreadable(f"{label}: ファイルを開けません（{exc.strerror}）", source=label,
                                     reason="missing") from exc  # fmt: skip
        limits.check_bytes(label, len(data))  # it may have grown since stat()
    deadline = Deadline(label, limits.max_seconds)
    engines = list(configured_engines() if engines is None else engines)
    sha256 = hashlib.sha256(data).hexdigest()
    key = cache.options_key(_options(ocr, limits, engines))
    stored_at = cache.path_for(cache.cache_dir(), sha256, key)
    if not refresh and (stored := cache.load(stored_at)) is not None:
        pages = tuple(Page.from_dict(page) for page in stored["pages"])
        return Document(label, sha256, stored["kind"], pages, from_cache=True)

    if b"%PDF-" in data[:1024]:
        document = Document(label, sha256, "pdf", _read_pdf(data, label, ocr, engines, limits, deadline))
    else:
        document = Document(label, sha256, "image", _read_image(data, label, ocr, engines, limits, deadline))
    cache.store(stored_at, document.to_dict())
    return document


def _options(ocr: str, limits: DocumentLimits, engines: Sequence[OcrEngine]) -> dict[str, Any]:
    described = []
    for engine in engines:
        try:
            described.append(engine.describe())
        except OcrUnavailable:
            described.append({"engine": engine.name, "version": "unavailable"})
    return {"ocr": ocr, "dpi": limits.render_dpi, "pdfium": metadata.version("pypdfium2"), "engines": described}


def _read_pdf(data: bytes, source: str, ocr: OcrMode, engines: Sequence[OcrEngine], limits: DocumentLimits,
              deadline: Deadline) -> tuple[Page, ...]:  # fmt: skip
    from PIL import Image as PILImage

    pages = []
    with pdf_pages(data, source=source, limits=limits, deadline=deadline, ocr=ocr) as parsed:
        for page in parsed:
            result = None
            if page.image is not None:
                with PILImage.open(page.image) as rendered:  # our own PNG, within the pixel limit
                    result = _recognise(rendered.convert("RGB"), source, engines, deadline)
            pages.append(Page(page.number, page.text, result, page.width_pt, page.height_pt,
                              page.dpi if page.image is not None else None))  # fmt: skip
    return tuple(pages)


def _read_image(data: bytes, source: str, ocr: OcrMode, engines: Sequence[OcrEngine], limits: DocumentLimits,
                deadline: Deadline) -> tuple[Page, ...]:  # fmt: skip
    image = open_image(data, source=source, limits=limits)
    pages = []
    for number, frame in enumerate(frames(image, source=source), start=1):
        result = None if ocr == "never" else _recognise(frame, source, engines, deadline)
        pages.append(Page(number, "", result))
    return tuple(pages)


def _recognise(image: Image.Image, source: str, engines: Sequence[OcrEngine], deadline: Deadline) -> OcrResult:
    failures = []
    for engine in engines:
        try:
            return engine.recognise(image, timeout_s=deadline.check())
        except DocumentTimeout as exc:
            raise deadline.timeout() from exc
        except OcrUnavailable as exc:
            log.warning("%s: OCR engine %s unavailable (%s), trying the next one", source, engine.name, exc)
            failures.append(exc)
    if not failures:
        raise OcrUnavailable(f"{source}: OCR が必要ですが、OCR エンジンが設定されていません（HOKAN_OCR_ENGINES）",
                             source=source, engine="", reason="none configured")  # fmt: skip
    last = failures[-1]
    raise OcrUnavailable(
        f"{source}: OCR が必要ですが、使える OCR エンジンがありません（" + "; ".join(str(f) for f in failures) + "）",
        source=source, engine=last.engine, reason=last.reason,
    ) from last  # fmt: skip
