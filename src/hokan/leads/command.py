"""``hokan leads …`` and ``hokan usage``: import, enrich, export the lead list; show usage."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hokan.core.console import print_row_errors
from hokan.core.errors import InputError

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)

CENT = Decimal("0.01")
TABLE_LEADS = 20  # companies in the results table of ``hokan leads enrich`` unless --all
METHOD_LABELS = {"registry": "公的データ", "rule": "ルール", "ai": "AI", "manual": "手入力"}
LLM_LABELS = {
    "called": "問い合わせ済み", "offline": "スキップ（オフライン）", "not_needed": "不要", "dry_run": "問い合わせ予定",
    "budget": "上限により中止", "error": "エラー",
}


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    )


@app.command("import", help="CSV（UTF-8 / BOM付き / Shift_JIS）または Excel（.xlsx）の営業リストを取り込みます。")
def import_command(
    file: Path = typer.Argument(..., help="取り込むファイル（.csv / .xlsx）"),
    skip_bad_lines: bool = typer.Option(
        False, "--skip-bad-lines", help="文字コードとして読めない行を読み飛ばし、残りを取り込む（読み飛ばした行は一覧に表示）",
    ),
) -> None:
    from hokan.leads.import_leads import import_leads

    with _progress() as progress:
        task = progress.add_task("取り込み中", total=None)
        try:
            report = import_leads(file, progress=lambda n: progress.advance(task, n), skip_bad_lines=skip_bad_lines)
        except InputError as exc:
            err_console.print(f"[red]取り込めません（何も保存していません）:[/red] {exc}")
            raise typer.Exit(2) from None
        progress.update(task, total=progress.tasks[0].completed)
    console.print(
        f"[bold]{report.source}[/bold]（{report.encoding}）: {report.rows:,} 行 → "
        f"新規 {report.created:,} 件、更新 {report.updated:,} 件、変更なし {report.unchanged:,} 件、"
        f"[{'red' if report.errors else 'green'}]スキップ {len(report.errors):,} 行[/]"
    )
    if report.ignored_headers:
        console.print(f"使わなかった列: {', '.join(report.ignored_headers)}")
    for duplicate in report.duplicates[:50]:
        console.print(f"  [yellow]重複[/yellow] {duplicate.message(report.source)}")
    if len(report.duplicates) > 50:
        console.print(f"  …ほか重複 {len(report.duplicates) - 50:,} 件")
    print_row_errors(console, report.errors)
    if report.errors:
        raise typer.Exit(1)


@app.command("export", help="営業リストを CSV（BOM付き UTF-8 / Shift_JIS）または Excel に書き出します。")
def export_command(
    file: Path = typer.Argument(..., help="書き出し先（.csv / .xlsx）"),
    encoding: str = typer.Option("utf-8-sig", "--encoding", help="CSV の文字コード: utf-8-sig または cp932"),
    with_sources: bool = typer.Option(False, "--with-sources", help="各項目の取得方法・出典URL・根拠・確度も出力する"),
) -> None:
    from hokan.leads.export_leads import export_leads
    from hokan.leads.models import Lead

    if encoding not in ("utf-8-sig", "utf-8", "cp932"):
        err_console.print(f"[red]文字コードは utf-8-sig / utf-8 / cp932 のいずれかです:[/red] {encoding}")
        raise typer.Exit(2)
    with _progress() as progress:
        task = progress.add_task("書き出し中", total=Lead.objects.count())
        try:
            count = export_leads(file, encoding=encoding, with_sources=with_sources,
                                 progress=lambda n: progress.advance(task, n))
        except InputError as exc:
            err_console.print(f"[red]書き出せません:[/red] {exc}")
            raise typer.Exit(2) from None
    console.print(f"{count:,} 件を {file} に書き出しました。")


@app.command("enrich", help="欠損項目を補完します（公式サイトのルール抽出 → 残りだけ AI に問い合わせ）。")
def enrich_command(
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="処理する最大件数（日次上限も適用）"),
    dry_run: bool = typer.Option(False, "--dry-run", help="取得・問い合わせ予定と見積コストだけ表示し、何も書き込まない"),
    lead_id: list[int] = typer.Option([], "--id", help="この ID の企業だけを処理する（複数指定可）"),
    show_values: bool = typer.Option(True, "--table/--no-table", help="補完した値の表を表示する"),
    show_all: bool = typer.Option(False, "--all", help=f"値の表を全件表示する（既定は先頭 {TABLE_LEADS} 社）"),
) -> None:
    from hokan.leads.enrich import enrich_leads

    with _progress() as progress:
        task = progress.add_task("補完中", total=None)

        def started(total: int) -> None:
            progress.update(task, total=total)

        def done(outcome) -> None:
            progress.update(task, advance=1, description=f"補完中: {outcome.name[:20]}")

        report = enrich_leads(limit=limit, dry_run=dry_run, lead_ids=lead_id or None, on_start=started, on_lead=done,
                              shared=not lead_id)
        progress.update(task, description="補完")
    if dry_run:
        _print_dry_run(report)
    elif show_values:
        _print_values(report, limit=None if show_all else TABLE_LEADS)
    _print_summary(report)
    if report.failed:
        # Interrupted (the provider, the key, a limit) or every lead failed: not a success.
        raise typer.Exit(1)


def _print_dry_run(report) -> None:
    table = Table(title="試行（何も取得・課金・保存していません）", show_lines=False)
    table.add_column("ID", justify="right")
    table.add_column("企業名")
    table.add_column("取得予定のURL")
    table.add_column("欠損項目")
    table.add_column("AIへの問い合わせ")
    from hokan.leads.columns import BY_NAME

    for o in report.outcomes:
        table.add_row(
            str(o.lead_id), o.name, "\n".join(o.fetched) or "-",
            "、".join(BY_NAME[f].label for f in o.missing_before) or "なし",
            f"{LLM_LABELS.get(o.llm, o.llm)}: " + "、".join(BY_NAME[f].prompt_label for f in o.asked) if o.asked else "不要",
        )
    console.print(table)
    asked = sum(1 for o in report.outcomes if o.llm == "dry_run")
    console.print(
        f"AI 問い合わせは最大 {asked:,} 件、見積コストは最大 ${report.estimated_cost_usd}"
        "（ルール抽出で埋まった項目は問い合わせないため、実際はこれ以下です）"
    )


def _print_values(report, *, limit: int | None = TABLE_LEADS) -> None:
    """company × field: value, method, confidence and the words it was read from.

    limit: at most this many companies (None = all); the rest are counted below the table.
    The table is built in memory before it is printed, so a run of thousands of leads shows
    its first rows only unless ``--all`` is given.
    """
    from hokan.leads.columns import BY_NAME

    shown_outcomes = report.outcomes if limit is None else report.outcomes[:limit]
    table = Table(title="補完結果（企業 × 項目）", show_lines=False)
    table.add_column("企業名 / 読んだページ", overflow="fold", max_width=34)
    table.add_column("項目", no_wrap=True)
    table.add_column("値", overflow="fold", max_width=36)
    table.add_column("方法", no_wrap=True)
    table.add_column("確度", justify="right")
    table.add_column("根拠（原文）", overflow="fold", max_width=40)
    for o in shown_outcomes:
        company = o.name + ("\n[dim]" + "\n".join(o.fetched) + "[/dim]" if o.fetched else "")
        if o.error:
            table.add_row(company, "-", f"[red]{o.error}[/red]", "", "", "")
            continue
        rows = []
        previous_quote = None
        for name in o.missing_before:
            value = o.filled.get(name)
            if value is None:
                continue
            unit = {"capital": "円", "revenue": "円", "employee_count": "名"}.get(name)
            shown = f"{value.value:,}{unit}" if unit else str(value.value)
            quote = value.quote if len(value.quote) <= 60 else value.quote[:59] + "…"
            quote, previous_quote = ("〃" if quote == previous_quote else quote), quote
            rows.append([BY_NAME[name].label, shown, METHOD_LABELS.get(value.method, value.method),
                         f"{value.confidence:.2f}", quote])
        missing = [BY_NAME[name].label for name in o.still_missing]
        if missing:
            rows.append(["未取得", "[dim]" + "、".join(missing) + "[/dim]", "", "", ""])
        for index, row in enumerate(rows or [["-", "[dim]欠損なし[/dim]", "", "", ""]]):
            table.add_row(company if index == 0 else "", *row)
        table.add_section()
    console.print(table)
    hidden = len(report.outcomes) - len(shown_outcomes)
    if hidden > 0:
        console.print(f"…ほか {hidden:,} 社（全件の表は --all、全項目の値は hokan leads export で確認できます）")


def _print_summary(report) -> None:
    usage = report.usage
    filled = report.filled_by_method
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("実行ID", report.run_id)
    summary.add_row("LLM プロバイダ", report.provider)
    skipped = f"、本日分を支払済み・問い合わせ中のためスキップ {report.leads_skipped:,} 件" if report.leads_skipped else ""
    summary.add_row("処理した企業", f"{report.leads_done + report.leads_failed:,} 件（失敗 {report.leads_failed:,} 件{skipped}）")
    if report.joined:
        summary.add_row("実行", "同時に起動された別の hokan leads enrich と同じ実行を分担しました（数は実行全体）")
    summary.add_row("補完前の欠損項目", f"{report.missing_before:,}")
    summary.add_row(
        "補完した項目",
        "、".join(f"{METHOD_LABELS.get(m, m)} {n:,}" for m, n in sorted(filled.items())) or "0",
    )
    summary.add_row("まだ欠損している項目", f"{report.still_missing:,}")
    offline = sum(1 for o in report.outcomes if o.llm == "offline")
    summary.add_row("AI 問い合わせ", f"{report.llm_calls:,} 件（${format(report.cost_usd.normalize(), 'f')}）" + (
        f"、オフラインのためスキップ {offline:,} 件" if offline else ""))
    if report.ai_values:
        summary.add_row("AI の値の裏付け", f"{report.ai_grounded:,} / {report.ai_values:,} 項目で根拠の原文を"
                        "ページ上に確認（残りは未検証・確度低）")
    if usage is not None:
        summary.add_row(
            "今月の残り",
            f"{usage.remaining_calls:,} 件 / 推定残コスト ${usage.remaining_cost_usd.quantize(CENT)}",
        )
        summary.add_row("本日の処理件数", f"{usage.records_today:,} / {usage.daily_record_limit:,} 件")
    if report.stopped_reason:
        if report.interrupted or report.will_retry:
            summary.add_row("停止理由", f"[red]{report.stopped_reason}[/red]")
        else:
            summary.add_row("お知らせ", f"[yellow]{report.stopped_reason}[/yellow]")
    if report.log_path:
        summary.add_row("ログ", str(report.log_path))
    console.print(summary)


def usage() -> None:
    """今月の API 使用量と上限を、アプリ（スコープ）ごとに表示します。"""
    # Every scope's usage is core's (hokan.core.budget_command); registered by cli.py from here.
    from hokan.core.budget_command import usage as show_usage

    show_usage()
