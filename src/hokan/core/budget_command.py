"""``hokan usage``: every ledger scope's calls and cost this month, and records today, against
its limits (``hokan.core.budget.snapshots``), as one rich table in Japanese.

Exit status 0; 2 with a Japanese message (no traceback) when the usage cannot be read: Redis
unreachable (REDIS_URL set), the database unreachable, or a limit setting unusable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from hokan.core.budget import UsageSnapshot

CENT = Decimal("0.01")


def _masked(url: str) -> str:
    """``url`` without its password (redis://:secret@host → redis://:***@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _usd(amount: Decimal) -> str:
    return f"${amount.quantize(CENT):,}"


def usage_table(snaps: list[UsageSnapshot]) -> Table:
    """The table of ``snapshots()``: one row per scope (``UsageSnapshot``)."""
    first = snaps[0]
    table = Table(title=f"API 使用量（{first.month}、本日 {first.day.isoformat()}）", title_justify="left")
    table.add_column("アプリ", no_wrap=True)
    table.add_column("呼び出し（月）", justify="right")
    table.add_column("予約中", justify="right")
    table.add_column("上限", justify="right")
    table.add_column("残り", justify="right")
    table.add_column("コスト（月, USD）", justify="right")
    table.add_column("予約中", justify="right")
    table.add_column("上限", justify="right")
    table.add_column("残り", justify="right")
    table.add_column("本日の処理件数", justify="right")
    table.add_column("状態", no_wrap=True)
    for snap in snaps:
        if snap.call_limit == 0 or snap.cost_limit_usd == 0:
            state = "[yellow]停止（上限 0）[/yellow]"
        elif snap.limit_reached:
            state = "[red]上限到達[/red]"
        else:
            state = "[green]利用可[/green]"
        table.add_row(
            f"{snap.label} [dim]({snap.scope})[/dim]",
            f"{snap.calls:,}", f"{snap.reserved_calls:,}", f"{snap.call_limit:,}", f"{snap.remaining_calls:,}",
            _usd(snap.cost_usd), _usd(snap.reserved_cost_usd), _usd(snap.cost_limit_usd),
            _usd(snap.remaining_cost_usd),
            f"{snap.records_today:,} / {snap.daily_record_limit:,}",
            state,
        )
    table.caption = (
        "上限の設定: 営業リスト補完は POWERPLEXY_MONTHLY_COST_LIMIT_USD / POWERPLEXY_MONTHLY_CALL_LIMIT、"
        "ほかは HOKAN_<アプリ>_MONTHLY_COST_LIMIT_USD / HOKAN_<アプリ>_MONTHLY_CALL_LIMIT。上限 0 はそのアプリの"
        "有料の呼び出しを止めます。月と日は日本時間です。"
    )
    table.caption_justify = "left"
    return table


def usage() -> None:
    """今月の API 使用量と上限を、アプリ（スコープ）ごとに表示します。"""
    import redis
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError

    from hokan.core.budget import snapshots

    err_console = Console(stderr=True)
    try:
        snaps = snapshots()
    except redis.exceptions.RedisError as exc:
        err_console.print(
            f"[red]使用量を読めません:[/red] Redis（REDIS_URL={_masked(settings.REDIS_URL)}）に接続できません"
            f"（{type(exc).__name__}: {exc}）。Redis を起動するか、REDIS_URL の設定を確認してください。"
        )
        raise typer.Exit(2) from None
    except ImproperlyConfigured as exc:
        err_console.print(f"[red]使用量を読めません:[/red] {exc}")
        raise typer.Exit(2) from None
    except DatabaseError as exc:
        err_console.print(
            f"[red]使用量を読めません:[/red] データベースを読めません（{type(exc).__name__}: {exc}）。"
            "DATABASE_URL の設定を確認してください。"
        )
        raise typer.Exit(2) from None
    Console().print(usage_table(snaps))
