"""Tesseract OCR through its command-line program (Debian ``tesseract-ocr``, ``-jpn``, ``-jpn-vert``).

The image goes to ``tesseract stdin stdout ... tsv`` as PNG on standard input; the TSV answer
(one row per word, with its line number, box and confidence) is grouped into lines. The program
runs under ``timeout_s`` and is killed (by its own process id) when that passes.

Preparation, measured on Japanese screenshots by ``bench/ocr_numbers.py``: the image is turned
to greyscale and enlarged so that its width is at least ``MIN_WIDTH_PX`` (Tesseract's models are
trained on text about 30 px high; screen text is 12-16 px). Output fix-up: Tesseract's Japanese
model writes the yen sign as ``\\`` (the JIS X 0201 code 0x5C); before a digit it is given back as ``¥``.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

from hokan.core.documents.ocr import OcrLine, OcrResult, sort_lines
from hokan.core.errors import DocumentTimeout, OcrUnavailable

if TYPE_CHECKING:
    from PIL import Image

# Enlarge narrower images to this width (x2 for a 1x screenshot): measured in docs/perf/ocr.md.
MIN_WIDTH_PX = 2000
# At most this factor, so a tiny image does not become a huge one.
MAX_SCALE = 3.0
_YEN = re.compile(r"\\(?=\s?\d)")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


class TesseractEngine:
    """Tesseract with ``lang`` (e.g. "jpn+eng") and page segmentation mode ``psm`` (3: automatic;
    vertical Japanese needs ``lang="jpn_vert", psm=5``: in mode 3 it reads vertical columns as noise).

    Raises ``OcrUnavailable`` from ``recognise`` when the program or a language model is not
    installed (apt-packages.txt lists them), ``DocumentTimeout`` when ``timeout_s`` passes.
    """

    def __init__(self, *, lang: str = "jpn+eng", psm: int = 3, min_width_px: int = MIN_WIDTH_PX,
                 program: str = "tesseract", name: str = "tesseract") -> None:  # fmt: skip
        self.name = name
        self.lang = lang
        self.psm = psm
        self.min_width_px = min_width_px
        self.program = program
        self._version: str | None = None
        self.calls = 0  # images recognised by this instance (the document cache is tested with it)

    def _check(self) -> str:
        if self._version is not None:
            return self._version
        path = shutil.which(self.program)
        if path is None:
            raise OcrUnavailable(
                f"Tesseract（{self.program}）が見つかりません。apt で tesseract-ocr を入れてください",
                source="", engine=self.name, reason="program missing",
            )  # fmt: skip
        listed = subprocess.run([path, "--list-langs"], capture_output=True, text=True, timeout=30)
        have = {line.strip() for line in listed.stdout.splitlines()[1:]}
        missing = [lang for lang in self.lang.split("+") if lang not in have]
        if missing:
            raise OcrUnavailable(
                f"Tesseract の言語データ {', '.join(missing)} がありません（apt: tesseract-ocr-jpn, tesseract-ocr-jpn-vert）",
                source="", engine=self.name, reason="language missing",
            )  # fmt: skip
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        first = (version.stdout or version.stderr).splitlines()[0].strip()
        self._version = f"{first} ({self.lang})"
        return self._version

    def describe(self) -> dict[str, str]:
        return {"engine": self.name, "version": self._check(), "lang": self.lang, "psm": str(self.psm),
                "min_width_px": str(self.min_width_px)}  # fmt: skip

    def recognise(self, image: Image.Image, *, timeout_s: float | None = None) -> OcrResult:
        """Read ``image`` (any mode; converted to greyscale). Boxes are in ``image``'s pixels."""
        from PIL import Image as PILImage

        version = self._check()
        self.calls += 1
        grey = image.convert("L")
        scale = min(MAX_SCALE, self.min_width_px / grey.width) if grey.width < self.min_width_px else 1.0
        if scale > 1.0:
            grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), PILImage.Resampling.LANCZOS)
        png = io.BytesIO()
        grey.save(png, format="PNG")
        command = [self.program, "stdin", "stdout", "-l", self.lang, "--psm", str(self.psm), "tsv"]
        try:
            done = subprocess.run(command, input=png.getvalue(), capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child before raising
            raise DocumentTimeout(
                f"Tesseract が {timeout_s:.0f} 秒以内に終わりませんでした", source="", seconds=timeout_s or 0.0
            ) from exc
        if done.returncode != 0:
            raise OcrUnavailable(
                f"Tesseract が失敗しました（終了コード {done.returncode}）: {done.stderr.decode(errors='replace')[-300:]}",
                source="", engine=self.name, reason="engine error",
            )  # fmt: skip
        lines = _lines(done.stdout.decode("utf-8", errors="replace"), scale)
        return OcrResult(sort_lines(lines), self.name, version, image.width, image.height)


def _join(words: list[str]) -> str:
    """Join a line's words: no space between two Japanese characters, one space otherwise."""
    text = ""
    for word in words:
        if text and not (_CJK.match(text[-1]) and _CJK.match(word[0])):
            text += " "
        text += word
    return _YEN.sub("¥", text)


def _lines(tsv: str, scale: float) -> list[OcrLine]:
    """Group Tesseract's word rows (level 5) into lines; boxes scaled back to the input image."""
    grouped: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != "5" or not (row.get("text") or "").strip():
            continue
        grouped.setdefault((row["page_num"], row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    lines = []
    for words in grouped.values():
        left = min(int(w["left"]) for w in words)
        top = min(int(w["top"]) for w in words)
        right = max(int(w["left"]) + int(w["width"]) for w in words)
        bottom = max(int(w["top"]) + int(w["height"]) for w in words)
        confidences = [max(float(w["conf"]), 0.0) / 100 for w in words]
        box = (round(left / scale), round(top / scale), round(right / scale), round(bottom / scale))
        lines.append(OcrLine(_join([w["text"].strip() for w in words]), round(sum(confidences) / len(confidences), 4), box))
    return lines
