"""``hokan knowledge``: the knowledge app's commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="ライブコマース知識ベース（設計書001）: 分析の保存・検索・売上の読み取り。", no_args_is_help=True, add_completion=False)
from hokan.knowledge import ingest_command  # noqa: E402,F401  (registers ocr, backfill: K2)
