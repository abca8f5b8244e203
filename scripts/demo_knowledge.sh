#!/usr/bin/env bash
# The knowledge part of `make demo` (issue 12 §7), offline: sample analyses backfilled from the
# package (document 001 §4.1), the real shared screenshots read by OCR (pattern A), a screen
# recording rendered here by Chromium and encoded by ffmpeg with known numbers (pattern B),
# then a Japanese hybrid search, the top performers and the stats.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOKAN_SHARED_DATA="${HOKAN_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export HOKAN_DATA_DIR="${HOKAN_KNOWLEDGE_DEMO_DIR:-$PWD/var/demo_knowledge}"
export HOKAN_LLM_PROVIDER="${HOKAN_LLM_PROVIDER:-offline}"
export DJANGO_SETTINGS_MODULE=hokan.settings
export COLUMNS="${COLUMNS:-160}"
HOKAN=.venv/bin/hokan
rm -rf "$HOKAN_DATA_DIR"
mkdir -p "$HOKAN_DATA_DIR" out
echo "== ナレッジ 1. 過去の分析をバックフィル（サンプル 5 本、2 回目は変更なし）"
$HOKAN knowledge backfill --source local --dir src/hokan/knowledge/data/sample_analyses
$HOKAN knowledge backfill --source local --dir src/hokan/knowledge/data/sample_analyses
echo "== ナレッジ 2. 売上スクリーンショットの OCR（共有データの実画面）"
for shot in "$HOKAN_SHARED_DATA"/screenshots/*/*.png; do
  $HOKAN knowledge ocr "$shot" --format table
done
echo "== ナレッジ 3. 画面収録（Chromium で描画・ffmpeg で動画化、数値は既知）から指標の推移"
.venv/bin/python -m hokan.knowledge.demo_recording "$HOKAN_DATA_DIR/live_recording.mp4" >/dev/null
$HOKAN knowledge screen "$HOKAN_DATA_DIR/live_recording.mp4" --fps 2 --video-id demo-tt-001
echo "== ナレッジ 4. 日本語で検索・売上上位・統計"
.venv/bin/python -m hokan.knowledge.demo search "限定価格の告知で注文が増えた場面"
