#!/usr/bin/env bash
# The municipal job on real input, offline (issue 10 §7): the saved 音威子府村 pages and the
# 鯖江市 PDFs served by the snapshot fetcher and the snapshot search index; one core.jobs job
# per municipality, one chunk per service; rules only (no LLM: $0). Prints every draft value
# with its quote and source, and the variables left missing; then exports the drafts (§6.1 JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
export HOKAN_SHARED_DATA="${HOKAN_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export HOKAN_DATA_DIR="${HOKAN_MUNICIPAL_DEMO_DIR:-$PWD/var/demo_municipal}"
export HOKAN_LLM_PROVIDER="${HOKAN_LLM_PROVIDER:-offline}"
export COLUMNS="${COLUMNS:-160}"
rm -rf "$HOKAN_DATA_DIR"
mkdir -p "$HOKAN_DATA_DIR" out
echo "== 自治体サービス情報: 音威子府村（保存ページ）と鯖江市（PDF）をオフラインで取得"
.venv/bin/python -m hokan.municipal.demo --folder "$HOKAN_DATA_DIR/snapshot"
echo "== 下書きの書き出し（§6.1 JSON）"
.venv/bin/hokan municipal export --output out/demo_municipal_drafts.json
