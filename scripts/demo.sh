#!/usr/bin/env bash
# The main job on real input: import the FSA's EDINET code list into the company registry,
# import the demo lead list (name + website only), enrich it — the registry first ($0), then
# rules over the offline snapshot of real company pages — print what was filled, export the CSV.
# With HOKAN_LLM_PROVIDER and a key set, the same run asks the LLM for what is still missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOKAN_SHARED_DATA="${HOKAN_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export HOKAN_DATA_DIR="${HOKAN_DEMO_DIR:-$PWD/var/demo}"
export HOKAN_SNAPSHOT_DIR="${HOKAN_SNAPSHOT_DIR:-$HOKAN_SHARED_DATA/company_pages}"
export HOKAN_LLM_PROVIDER="${HOKAN_LLM_PROVIDER:-offline}"
export COLUMNS="${COLUMNS:-160}"
HOKAN=.venv/bin/hokan
rm -rf "$HOKAN_DATA_DIR"
mkdir -p "$HOKAN_DATA_DIR" out
.venv/bin/python scripts/make_demo_leads.py "$HOKAN_DATA_DIR/demo_leads.csv"
echo "== 1. 企業台帳の取り込み（金融庁 EDINET コードリスト）"
$HOKAN registry import "$HOKAN_SHARED_DATA/company_truth/edinet/EdinetcodeDlInfo_20260811_cp932.csv"
echo "== 2. 営業リストの取り込み（企業名と公式サイトのみ）"
$HOKAN leads import "$HOKAN_DATA_DIR/demo_leads.csv"
echo "== 3. 補完（企業台帳 → オフラインのスナップショットからルール抽出、LLM: $HOKAN_LLM_PROVIDER）"
$HOKAN leads enrich
echo "== 4. 書き出し"
$HOKAN leads export out/demo_enriched.csv --with-sources
$HOKAN usage
scripts/demo_municipal.sh  # municipal (M1): the fetch job offline on 音威子府村 pages and 鯖江市 PDFs
bash scripts/demo_knowledge.sh  # knowledge (K2): backfill, OCR of the shared screenshots, a generated recording, Japanese search and stats
bash scripts/demo_scoring.sh  # scoring (S3): a sheet of real utterances scored offline (method embedding) by hokan scoring run, shown as a table
