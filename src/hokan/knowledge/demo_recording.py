"""A screen recording whose numbers are known: a Japanese live dashboard page rendered by
Chromium step by step and encoded by ffmpeg (issue 12 §3, §7, §8).

Used by the pattern-B test (``tests/knowledge/test_screen_metrics.py``) and by ``make demo``:
the page shows 視聴者数 / いいね / コメント (and the elapsed time); step ``i`` of ``schedule`` is
on screen from ``i * step_s`` to ``(i + 1) * step_s`` seconds, so the true series is
``[(i * step_s, values)]``.

Chromium is Debian's (``HOKAN_CHROMIUM_PATH``, default ``/usr/bin/chromium``) driven by
Playwright; the page is set from memory and every request it would make is aborted (route
interception), so rendering sends no traffic anywhere. ffmpeg (apt) encodes the PNGs as H.264.

Run alone:  .venv/bin/python -m hokan.knowledge.demo_recording OUT.mp4
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The demo's schedule: one dict of metric values per step (metric codes of knowledge.models).
DEFAULT_SCHEDULE: tuple[dict[str, int], ...] = (
    {"viewers": 1_204, "likes": 3_518, "comments": 87},
    {"viewers": 1_352, "likes": 4_207, "comments": 112},
    {"viewers": 1_587, "likes": 5_960, "comments": 145},
    {"viewers": 1_549, "likes": 7_431, "comments": 163},
    {"viewers": 1_826, "likes": 9_088, "comments": 201},
)

LABELS_JA = {"viewers": "視聴者数", "likes": "いいね", "comments": "コメント", "gmv": "売上", "orders": "注文数"}

_STYLE = """
body{margin:0;width:960px;height:540px;font-family:"Noto Sans CJK JP","IPAexGothic",sans-serif;
     background:#0f172a;color:#f8fafc}
header{padding:18px 32px;font-size:24px;background:#1e293b}
.live{background:#ef4444;color:#fff;border-radius:6px;padding:2px 10px;margin-right:14px}
.grid{display:flex;gap:28px;padding:48px 32px}
.card{flex:1;background:#1e293b;border-radius:12px;padding:26px 24px}
.label{font-size:22px;color:#94a3b8}
.value{font-size:52px;font-weight:700;margin-top:14px}
footer{padding:0 32px;font-size:20px;color:#94a3b8}
"""


def page_html(values: Mapping[str, int], elapsed_s: float, *, title: str = "ライブ配信ダッシュボード") -> str:
    """The dashboard page of one step: one card per metric (``LABELS_JA``), figures with commas."""
    minutes, seconds = divmod(int(elapsed_s), 60)
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(LABELS_JA.get(k, k))}</div>'
        f'<div class="value">{v:,}</div></div>'
        for k, v in values.items()
    )
    return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><style>{_STYLE}</style></head><body>'
            f'<header><span class="live">LIVE</span>{html.escape(title)}</header><div class="grid">{cards}</div>'
            f"<footer>配信経過 {minutes:02d}:{seconds:02d}</footer></body></html>")  # fmt: skip


def chromium_path() -> str:
    """The Chromium binary (``HOKAN_CHROMIUM_PATH`` or ``/usr/bin/chromium``); RuntimeError if absent."""
    import os

    path = os.environ.get("HOKAN_CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(f"Chromium がありません（{path}）。apt-packages.txt の chromium を入れてください")
    return path


def render_recording(out: Path, schedule: Sequence[Mapping[str, int]] = DEFAULT_SCHEDULE, *, step_s: float = 1.0,
                     fps: int = 10) -> Path:  # fmt: skip
    """Render ``schedule`` (one step per ``step_s`` seconds) into the H.264 video ``out``
    (960x540, ``fps`` frames per second). Returns ``out``.

    Raises:
        RuntimeError: Chromium or ffmpeg is missing, or ffmpeg failed (its last lines).
    """
    from playwright.sync_api import sync_playwright

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg がありません（apt-packages.txt）")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hokan-recording-") as tmp:
        folder = Path(tmp)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 960, "height": 540})
                page.route("**/*", lambda route: route.abort())  # the page is local: no request leaves
                for index, values in enumerate(schedule):
                    page.set_content(page_html(values, index * step_s))
                    page.screenshot(path=str(folder / f"step_{index:04d}.png"))
            finally:
                browser.close()
        # image2 gives the last picture no duration: repeat it once, and cut at the schedule's end
        shutil.copy(folder / f"step_{len(schedule) - 1:04d}.png", folder / f"step_{len(schedule):04d}.png")
        done = subprocess.run(
            [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"1/{step_s:g}", "-i", str(folder / "step_%04d.png"),
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", str(fps), "-t", f"{len(schedule) * step_s:g}", str(out)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg が失敗しました: {done.stderr.strip()[-500:]}")
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(render_recording(Path(sys.argv[1] if len(sys.argv) > 1 else "recording.mp4")))
