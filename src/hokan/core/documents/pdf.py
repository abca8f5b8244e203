"""PDF pages: the text layer of each page, and a rendered image of each page that needs OCR.

The PDF is parsed by PDFium (pypdfium2) in a child process (``pdf_worker``), under a memory cap
and the read's time budget: a PDF bomb costs at most that memory and that time, and the child
is killed by its process id when the budget runs out. Rendered pages are PNG files in a
temporary folder that lives as long as the ``with`` block.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from hokan.core.documents.limits import Deadline, DocumentLimits
from hokan.core.errors import DocumentTooLarge, DocumentUnreadable

OcrMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class PdfPage:
    """One page: number (1-based), text layer, size in points (1/72 inch), and the rendered
    page (PNG path, at ``dpi``) when it needs OCR."""

    number: int
    text: str
    width_pt: float
    height_pt: float
    image: Path | None
    dpi: int


@contextmanager
def pdf_pages(data: bytes, *, source: str, limits: DocumentLimits, deadline: Deadline,
              ocr: OcrMode = "auto") -> Iterator[list[PdfPage]]:  # fmt: skip
    """Parse ``data`` in a child process; yield its pages (rendered images removed afterwards).

    Raises:
        DocumentTooLarge: pages, page or embedded image pixels, text, or memory over the limit.
        DocumentUnreadable: not a PDF, corrupt or truncated, encrypted, or the parser crashed.
        DocumentTimeout: the time budget ran out (the child was killed).
    """
    options = {**asdict(limits), "source": source, "ocr": ocr}
    with tempfile.TemporaryDirectory(prefix="hokan-pdf-") as folder:
        command = [sys.executable, "-m", "hokan.core.documents.pdf_worker", json.dumps(options), folder]
        try:
            done = subprocess.run(command, input=data, capture_output=True, timeout=deadline.check())
        except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child by then
            raise deadline.timeout() from exc
        try:
            answer = json.loads(done.stdout) if done.returncode == 0 else None
        except ValueError:
            answer = None
        if answer is None:
            # Killed by a signal (negative code: e.g. SIGSEGV in the parser, SIGKILL from the
            # kernel) or a Python error; the last lines of its error output say which.
            detail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            if "MemoryError" in detail[0]:
                raise DocumentTooLarge(
                    f"{source}: PDF の解析がメモリの上限（{limits.max_memory_mb:,} MB）を超えたため中止しました",
                    source=source, limit="memory", maximum=limits.max_memory_mb, actual=None,
                )  # fmt: skip
            raise DocumentUnreadable(
                f"{source}: PDF の解析中に処理が異常終了しました（終了コード {done.returncode}）: {detail[0][:200]}",
                source=source, reason="crashed",
            )  # fmt: skip
        if "error" in answer:
            error = answer["error"]
            if error["kind"] == "too_large":
                raise DocumentTooLarge(error["message"], source=source, limit=error["limit"],
                                       maximum=error["maximum"], actual=error["actual"])  # fmt: skip
            raise DocumentUnreadable(error["message"], source=source, reason=error["reason"])
        yield [
            PdfPage(page["number"], page["text"], page["width_pt"], page["height_pt"],
                    Path(folder) / page["image"] if page["image"] else None, limits.render_dpi)  # fmt: skip
            for page in answer["pages"]
        ]
