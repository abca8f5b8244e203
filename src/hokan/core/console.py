"""Shared pieces of the command-line output (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

MAX_LISTED_ERRORS = 50


def print_row_errors(console: Console, errors: Sequence[object], *, limit: int = MAX_LISTED_ERRORS) -> None:
    """List an import's bad rows (each error's text names file, row, column and reason),
    at most ``limit`` of them, then how many more there were."""
    for error in errors[:limit]:
        console.print(f"  [red]✗[/red] {error}")
    if len(errors) > limit:
        console.print(f"  …ほか {len(errors) - limit:,} 行")
