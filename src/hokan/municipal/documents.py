"""Step 4 of the fetch flow (document 003 §4.1 step 5, §9): a fetched page into text.

- HTML → its visible text (``hokan.core.extract.html.visible_text``; the reference text of every
  quote), other text types (Markdown, plain text) as they are, Markdown without its emphasis
  markers (``**``, ``__``);
- PDF → its text layer, scanned pages → OCR; images → OCR: ``hokan.core.documents.read_document``
  (PP-OCR / Tesseract, limits, and its cache by the content's SHA-256, so a file read once is never
  read again). Every PDF or image read is also kept by URL (``DocumentText``, §9.2: the URL's
  SHA-256), which the OCR API of §9.3 answers from.

A document that cannot be read (``DocumentError``: OCR unavailable, corrupt, too large, timeout)
raises for the flow to record; it then tries the next URL (§5.4 「PDF OCR失敗: エラーを記録、他のURLを試行」).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hokan.core.documents import read_document
from hokan.core.extract.html import visible_text
from hokan.core.web.fetch import Page
from hokan.municipal.models import DocumentText

PDF_TYPES = ("application/pdf",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
DOCUMENT_SUFFIXES = (".pdf", *IMAGE_SUFFIXES)
# Markdown emphasis markers (**受付時間**): not part of what the page says.
_MARKDOWN_EMPHASIS = re.compile(r"\*\*|__")


@dataclass(frozen=True)
class PageText:
    """The text of one source. kind: html | text | pdf | image; method: html | text | text_layer |
    ocr | mixed (pages of both); html: the markup for HTML pages ("" otherwise); sha256: of ``text``
    (UTF-8) — an unchanged text costs no LLM call (§4.2)."""

    url: str
    text: str
    kind: str
    method: str
    html: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def url_sha256(url: str) -> str:
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()


def is_document(page: Page) -> bool:
    """True for a PDF or an image (by content type, the bytes, or the URL's suffix, §9.1)."""
    mime = page.content_type.split(";", 1)[0].strip().lower()
    path = urlsplit(page.final_url or page.url).path.lower()
    return (mime in PDF_TYPES or mime.startswith("image/") or page.content[:5] == b"%PDF-"
            or path.endswith(DOCUMENT_SUFFIXES))


def read_bytes(url: str, content: bytes, *, refresh: bool = False, quotas: Any = None) -> tuple[str, str, int, bool]:
    """(text, method, pages, from_cache) of a PDF or image, stored by URL in ``DocumentText``.
    quotas: a ``MunicipalQuotas`` whose monthly OCR claim (keyed by the content's SHA-256, so a
    document read before costs nothing) wraps the read; None = no claim.

    Raises DocumentError (core.documents) when it cannot be read; BudgetExceeded when the
    month's OCR quota is used up."""
    if quotas is not None:
        with quotas.ocr(key=hashlib.sha256(content).hexdigest()):
            document = read_document(content, name=url, refresh=refresh)
    else:
        document = read_document(content, name=url, refresh=refresh)
    methods = {page.method for page in document.pages}
    method = methods.pop() if len(methods) == 1 else ("mixed" if methods else "text_layer")
    DocumentText.objects.update_or_create(
        url_sha256=url_sha256(url),
        defaults={"url": url[:2000], "content_sha256": document.sha256, "text": document.text, "method": method,
                  "pages": len(document.pages)})
    return document.text, method, len(document.pages), document.from_cache


def page_text(page: Page, *, quotas: Any = None) -> PageText:
    """The text of a fetched page (module docstring). Raises DocumentError for an unreadable
    PDF or image; BudgetExceeded when the OCR quota of ``quotas`` is used up."""
    url = page.final_url or page.url
    if is_document(page):
        text, method, _, _ = read_bytes(url, page.content, quotas=quotas)
        kind = "pdf" if page.content[:5] == b"%PDF-" else "image"
        return PageText(url=url, text=text, kind=kind, method=method)
    mime = page.content_type.split(";", 1)[0].strip().lower()
    if mime in ("text/html", "application/xhtml+xml") or "<html" in page.text[:2000].lower():
        return PageText(url=url, text=visible_text(page.text), kind="html", method="html", html=page.text)
    text = page.text
    if "markdown" in mime or urlsplit(url).path.lower().endswith(".md"):
        text = _MARKDOWN_EMPHASIS.sub("", text)
    return PageText(url=url, text=text, kind="text", method="text")
