"""Japanese live-commerce dashboards rendered by Chromium, with the numbers they show as labels.

Used by ``bench/ocr_numbers.py``. Each dashboard is an HTML page built from a seed (the same
seed gives the same page), rendered to PNG by headless Chromium (Debian's ``chromium``, in
apt-packages.txt) with the Japanese fonts of the machine (Noto Sans CJK JP, IPAexGothic). The
label of a dashboard is the list of every number printed on it, as printed (``¥1,234,567``,
``4,567件``, ``12.3%``, ``12.5万``, ``01:23:45``, ``2026/11/30``), in reading order. Nothing
else on the page contains a digit, so the list is complete: an OCR number that is not in it is
a misread.

The variety is on purpose: light and dark themes, two fonts, regular and bold figures from 13
to 56 CSS px, device scale 1 and 2 (a Retina screenshot), ¥ / ￥ / 円, 万, K / M with English
labels, signed changes, durations.

Run alone to look at one:  .venv/bin/python bench/ocr_dashboards.py OUT_DIR [--count N]
"""

from __future__ import annotations

import argparse
import html
import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PRODUCTS = [
    "国産はちみつ", "有機栽培ほうじ茶", "手作りいちごジャム", "北海道産チーズケーキ", "天然水スキンケアセット",
    "シルクのパジャマ", "本革ミニ財布", "抹茶チョコレート", "ふわふわタオル", "和牛ハンバーグ",
    "高保湿ハンドクリーム", "職人の包丁", "季節のフルーツ詰め合わせ", "低反発まくら", "無添加せっけん",
]  # fmt: skip


@dataclass(frozen=True)
class Dashboard:
    """One rendered dashboard: its PNG and the numbers it shows (as printed, reading order)."""

    name: str
    png: Path
    numbers: tuple[str, ...]
    words: tuple[str, ...]  # the Japanese labels, headings and product names printed on it


def _yen(rng: random.Random, low: int, high: int) -> str:
    value = rng.randint(low, high)
    style = rng.random()
    if style < 0.6:
        return f"¥{value:,}"
    if style < 0.8:
        return f"￥{value:,}"
    return f"{value:,}円"


def _count(rng: random.Random, low: int, high: int, unit: str = "") -> str:
    value = rng.randint(low, high)
    if unit == "万" or (unit == "" and value >= 10_000 and rng.random() < 0.3):
        return f"{value / 10_000:.1f}万"
    return f"{value:,}{unit}"


def _percent(rng: random.Random, *, signed: bool = False) -> str:
    value = rng.uniform(0.1, 35.0)
    text = f"{value:.{rng.choice((1, 2))}f}%"
    if signed:
        return rng.choice(("+", "-")) + text
    return text


def _duration(rng: random.Random, *, hours: bool) -> str:
    seconds = rng.randint(60, 3 * 3600 if hours else 59 * 60)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" if hours else f"{m + 60 * h:02d}:{s:02d}"


def _kpis(rng: random.Random, english: bool) -> list[tuple[str, str, str | None]]:
    """[(label, value, change or None)] for the cards."""
    if english:
        big = lambda low, high: (  # noqa: E731
            f"{rng.randint(low, high) / 1000:.1f}K" if rng.random() < 0.5 else f"{rng.randint(low, high) / 1e6:.2f}M"
        )
        return [
            ("GMV", f"¥{rng.randint(100_000, 99_999_999):,}", _percent(rng, signed=True)),
            ("Orders", f"{rng.randint(100, 9_999):,}", _percent(rng, signed=True)),
            ("Viewers", big(10_000, 2_000_000), None),
            ("Likes", big(10_000, 900_000), None),
            ("CTR", _percent(rng), None),
            ("Avg. watch time", _duration(rng, hours=False), None),
        ]
    cards = [
        (rng.choice(("総売上", "売上", "GMV（総売上）")), _yen(rng, 50_000, 99_999_999), _percent(rng, signed=True)),
        ("注文数", _count(rng, 10, 99_999, "件"), _percent(rng, signed=True)),
        ("視聴者数", _count(rng, 1_000, 900_000, rng.choice(("人", "万", ""))), None),
        ("最高同時視聴者数", _count(rng, 100, 50_000), None),
        ("いいね", _count(rng, 100, 2_000_000), None),
        ("コメント", _count(rng, 10, 90_000, "件"), None),
        ("客単価", _yen(rng, 500, 99_999), None),
        (rng.choice(("CTR", "クリック率")), _percent(rng), None),
        ("購入率", _percent(rng), None),
        ("平均視聴時間", _duration(rng, hours=False), None),
        ("配信時間", _duration(rng, hours=True), None),
    ]
    rng.shuffle(cards)
    return cards[: rng.choice((6, 8))]


def build(seed: int) -> tuple[str, list[str], list[str], float]:
    """(html, numbers as printed in reading order, Japanese words printed, device scale factor)
    of dashboard ``seed``."""
    rng = random.Random(seed)
    english = seed % 5 == 4
    dark = rng.random() < 0.35
    font = rng.choice(('"Noto Sans CJK JP"', '"IPAexGothic"'))
    value_px = rng.choice((24, 30, 38, 46, 56))
    value_weight = rng.choice((700, 700, 400))
    table_px = rng.choice((13, 14, 16))
    scale = rng.choice((1.0, 1.0, 2.0))
    bg, card, ink, muted = ("#111827", "#1f2937", "#f9fafb", "#9ca3af") if dark else ("#f4f5f7", "#ffffff", "#111827", "#6b7280")
    numbers: list[str] = []
    words: list[str] = []

    month, day, hour = rng.randint(1, 12), rng.randint(1, 28), rng.randint(10, 22)
    date = f"2026/{month:02d}/{day:02d}"
    start = f"{hour:02d}:00"
    numbers += [date, start]
    title = "Live dashboard" if english else rng.choice(("ライブ配信ダッシュボード", "配信レポート", "ライブコマース実績"))
    words.append(title)
    parts = [f'<header>{html.escape(title)}　{date} {start}〜</header><div class="grid">']
    for label, value, change in _kpis(rng, english):
        numbers.append(value)
        words.append(label)
        parts.append(f'<div class="card"><div class="label">{html.escape(label)}</div>'
                     f'<div class="value">{html.escape(value)}</div>')
        if change:
            numbers.append(change)
            word = "vs last" if english else "前回比"
            words.append(word)
            parts.append(f'<div class="delta {"down" if change.startswith("-") else "up"}">{word} {change}</div>')
        parts.append("</div>")
    parts.append("</div>")

    heads = ("Product", "Price", "Sold", "Sales") if english else ("商品名", "価格", "販売数", "売上")
    words += heads
    parts.append('<table><tr>' + "".join(f"<th>{h}</th>" for h in heads) + "</tr>")
    for product in rng.sample(PRODUCTS, rng.randint(3, 6)):
        price = rng.choice((980, 1_280, 1_980, 2_480, 3_300, 4_980, 7_800, 12_800, 29_800))
        sold = rng.randint(1, 2_500)
        cells = [f"¥{price:,}", f"{sold:,}", f"¥{price * sold:,}"]
        numbers += cells
        words.append(product)
        parts.append(f"<tr><td>{html.escape(product)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")

    style = f"""
body{{margin:0;font-family:{font},sans-serif;background:{bg};color:{ink}}}
header{{background:#0f172a;color:#fff;padding:14px 24px;font-size:18px}}
.grid{{display:grid;grid-template-columns:repeat(4,1fr);gap:16px;padding:20px}}
.card{{background:{card};border-radius:8px;padding:16px;box-shadow:0 1px 3px rgba(0,0,0,.15)}}
.label{{font-size:13px;color:{muted}}}
.value{{font-size:{value_px}px;font-weight:{value_weight};margin-top:6px;white-space:nowrap}}
.delta{{font-size:12px;margin-top:4px}} .up{{color:#059669}} .down{{color:#dc2626}}
table{{margin:0 20px 24px;border-collapse:collapse;font-size:{table_px}px;background:{card}}}
th,td{{padding:8px 18px;border-bottom:1px solid {muted};text-align:right}}
th:first-child,td:first-child{{text-align:left}}
th{{color:{muted};font-weight:400}}
"""
    page = f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><style>{style}</style></head><body>{"".join(parts)}</body></html>'
    return page, numbers, [w for w in words if not w.isascii()], scale


def render(folder: Path, count: int, *, first_seed: int = 1) -> list[Dashboard]:
    """Render dashboards ``first_seed`` .. ``first_seed + count - 1`` into ``folder``.

    Raises RuntimeError when Chromium is not installed (apt-packages.txt lists it).
    """
    if CHROMIUM is None:
        raise RuntimeError("chromium not found (apt-packages.txt lists it; scripts/install-apt.sh installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    dashboards = []
    for seed in range(first_seed, first_seed + count):
        page, numbers, words, scale = build(seed)
        name = f"dashboard_{seed:02d}"
        source = folder / f"{name}.html"
        source.write_text(page, encoding="utf-8")
        png = folder / f"{name}.png"
        profile = tempfile.mkdtemp(prefix="hokan-chromium-")
        try:
            subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--force-device-scale-factor={scale:g}",
                 f"--screenshot={png}", "--window-size=1280,640", source.as_uri()],
                check=True, capture_output=True, timeout=90,
            )  # fmt: skip
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        dashboards.append(Dashboard(name, png, tuple(numbers), tuple(words)))
    return dashboards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    for dashboard in render(args.folder, args.count):
        print(dashboard.png, json.dumps(dashboard.numbers, ensure_ascii=False))


if __name__ == "__main__":
    main()
