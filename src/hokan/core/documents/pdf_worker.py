"""The child process that parses one PDF: ``python -m hokan.core.documents.pdf_worker OPTIONS OUT_DIR``.

PDF parsers are C code reading untrusted input; a crafted file can make one allocate without
end (a deflate bomb in a content stream or an image) or loop. So the parsing runs here, in a
process of its own, under an address-space cap (``max_memory_mb``, RLIMIT_AS) and the parent's
time budget; the parent kills it (by its process id) when the budget runs out.

Input: the PDF's bytes on standard input; OPTIONS, a JSON object with the fields of
``DocumentLimits`` plus ``source`` (the name used in messages) and ``ocr`` ("auto" | "always" |
"never"). Output, one JSON object on standard output:

- ``{"pages": [{"number", "text", "width_pt", "height_pt", "image"}]}``: ``text`` is the page's
  text layer (PDFium, ``\\n`` line ends); ``image`` is the file name in OUT_DIR of the page
  rendered at ``render_dpi`` (PNG) when the page needs OCR, else null;
- or ``{"error": {"kind": "too_large" | "unreadable", "message", ...}}``.

A page needs OCR ("auto") when its text layer has fewer than ``MIN_TEXT_CHARS`` characters
other than spaces: a scanned page, or one whose text was drawn as outlines.

Only pypdfium2 (PDFium, BSD-3-Clause / Apache-2.0) and this package's limits are imported:
no Django, no OCR engine.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

from hokan.core.documents.limits import DocumentLimits
from hokan.core.errors import DocumentTooLarge

# Fewer non-space characters than this on a page: it is treated as scanned (a page number or a
# stamp on a scanned page must not hide the scan).
MIN_TEXT_CHARS = 10
# More text than this on one page is not a real page (a dense A4 page holds ~4,000 Japanese
# characters); it bounds what the parent reads back.
MAX_CHARS_PER_PAGE = 100_000


def _too_large(exc: DocumentTooLarge, **extra: Any) -> dict[str, Any]:
    return {"error": {"kind": "too_large", "message": str(exc), "limit": exc.limit,
                      "maximum": exc.maximum, "actual": exc.actual, **extra}}  # fmt: skip


def _unreadable(source: str, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": "unreadable", "reason": reason, "message": f"{source}: {message}"}}


def parse(data: bytes, options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    source = str(options.get("source") or "PDF")
    mode = options.get("ocr", "auto")
    limits = DocumentLimits(**{k: options[k] for k in DocumentLimits.__dataclass_fields__ if k in options})
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        text = str(exc)
        if "password" in text.lower():
            return _unreadable(source, "encrypted", "パスワード付きの PDF は読めません")
        return _unreadable(source, "corrupt", f"PDF として読めません（壊れているか途中で切れています: {text}）")
    try:
        count = len(pdf)
        limits.check_pages(source, count)
        pages = []
        for index in range(count):
            page = pdf[index]
            number = index + 1
            width_pt, height_pt = page.get_size()
            text = page.get_textpage().get_text_bounded().replace("\r\n", "\n").replace("\r", "\n")
            if len(text) > MAX_CHARS_PER_PAGE:
                raise DocumentTooLarge(
                    f"{source}: {number} ページ目のテキストが多すぎます（{len(text):,} 文字、上限 {MAX_CHARS_PER_PAGE:,} 文字）",
                    source=source, limit="text", maximum=MAX_CHARS_PER_PAGE, actual=len(text),
                )  # fmt: skip
            scanned = len("".join(text.split())) < MIN_TEXT_CHARS
            image = None
            if mode == "always" or (mode == "auto" and scanned):
                scale = limits.render_dpi / 72
                limits.check_pixels(source, round(width_pt * scale), round(height_pt * scale),
                                    what=f"{number} ページ目（{limits.render_dpi} dpi で描画）")  # fmt: skip
                # Rendering decodes every image of the page at its own size: check them first.
                for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
                    width_px, height_px = obj.get_px_size()
                    limits.check_pixels(source, width_px, height_px, what=f"{number} ページ目の埋め込み画像")
                image = f"page-{number:04d}.png"
                page.render(scale=scale).to_pil().save(out_dir / image)
            pages.append({"number": number, "text": text, "width_pt": width_pt, "height_pt": height_pt, "image": image})
        return {"pages": pages}
    except DocumentTooLarge as exc:
        return _too_large(exc)
    except pdfium.PdfiumError as exc:
        return _unreadable(source, "corrupt", f"PDF の一部が読めません（{exc}）")
    finally:
        pdf.close()


def main() -> None:
    options = json.loads(sys.argv[1])
    out_dir = Path(sys.argv[2])
    cap = int(options.get("max_memory_mb", 1024)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        result = parse(sys.stdin.buffer.read(), options, out_dir)
    except MemoryError:
        maximum = int(options.get("max_memory_mb", 1024))
        result = {"error": {"kind": "too_large", "limit": "memory", "maximum": maximum, "actual": None,
                            "message": f"{options.get('source') or 'PDF'}: PDF の解析がメモリの上限"
                                       f"（{maximum:,} MB）を超えたため中止しました"}}  # fmt: skip
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
