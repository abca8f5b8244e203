"""``hokan municipal``: the municipal app's commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="自治体サービス情報（設計書003）: 公式サイトの事実を根拠付きの下書きに。", no_args_is_help=True, add_completion=False)
