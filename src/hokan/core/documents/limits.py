"""The limits a document must stay within, and the time budget of one read.

Every limit is checked before the part it protects is decoded: the byte size before reading,
the page count and page sizes before rendering, an image's pixel count from its header before
its pixels are decoded, and a PDF is parsed in a child process with a memory cap and the time
budget, killed when either runs out (``hokan.core.documents.pdf``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hokan.core.errors import DocumentTimeout, DocumentTooLarge


@dataclass(frozen=True)
class DocumentLimits:
    """Limits of one document (settings ``HOKAN_DOCUMENTS_*``, see ``from_settings``).

    max_bytes: file size; max_pages: PDF pages or image frames (multi-page TIFF, animated
    GIF / WebP); max_pixels: one image, one rendered page or one image embedded in a PDF page,
    width x height; max_seconds: the whole read, OCR included; render_dpi: resolution of a
    scanned page rendered for OCR; max_memory_mb: address space of the PDF parsing process.
    """

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 200
    max_pixels: int = 40_000_000
    max_seconds: float = 120.0
    render_dpi: int = 200
    max_memory_mb: int = 1024

    @classmethod
    def from_settings(cls) -> DocumentLimits:
        from django.conf import settings

        return cls(
            max_bytes=settings.HOKAN_DOCUMENTS_MAX_BYTES,
            max_pages=settings.HOKAN_DOCUMENTS_MAX_PAGES,
            max_pixels=settings.HOKAN_DOCUMENTS_MAX_PIXELS,
            max_seconds=settings.HOKAN_DOCUMENTS_MAX_SECONDS,
            render_dpi=settings.HOKAN_DOCUMENTS_RENDER_DPI,
            max_memory_mb=settings.HOKAN_DOCUMENTS_MAX_MEMORY_MB,
        )

    def check_bytes(self, source: str, size: int) -> None:
        if size > self.max_bytes:
            raise DocumentTooLarge(
                f"{source}: ファイルが大きすぎます（{size:,} バイト、上限 {self.max_bytes:,} バイト）",
                source=source, limit="bytes", maximum=self.max_bytes, actual=size,
            )  # fmt: skip

    def check_pages(self, source: str, pages: int) -> None:
        if pages > self.max_pages:
            raise DocumentTooLarge(
                f"{source}: ページ数が多すぎます（{pages:,} ページ、上限 {self.max_pages:,} ページ）",
                source=source, limit="pages", maximum=self.max_pages, actual=pages,
            )  # fmt: skip

    def check_pixels(self, source: str, width: int, height: int, *, what: str = "画像") -> None:
        if width * height > self.max_pixels:
            raise DocumentTooLarge(
                f"{source}: {what}が大きすぎます（{width:,}×{height:,} = {width * height:,} 画素、"
                f"上限 {self.max_pixels:,} 画素）",
                source=source, limit="pixels", maximum=self.max_pixels, actual=width * height,
            )  # fmt: skip


class Deadline:
    """The time budget of one read, on the monotonic clock. ``check()`` raises once it has passed."""

    def __init__(self, source: str, seconds: float) -> None:
        self.source = source
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0.0 or more)."""
        return max(0.0, self._end - time.monotonic())

    def check(self) -> float:
        """Seconds left; raises ``DocumentTimeout`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise self.timeout()
        return left

    def timeout(self) -> DocumentTimeout:
        return DocumentTimeout(
            f"{self.source}: 読み取りが時間の上限（{self.seconds:g} 秒）を超えたため中止しました",
            source=self.source, seconds=self.seconds,
        )  # fmt: skip
