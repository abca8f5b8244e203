"""``hokan scoring``: the scoring app's commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="発話スコアリング（設計書002）: シートの全行を一度だけ採点。", no_args_is_help=True, add_completion=False)
