"""``hokan registry …``: import registry files, look a company up."""

from __future__ import annotations

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

KIND_LABELS = {"edinet": "EDINET コードリスト", "gbizinfo": "gBizINFO 形式 CSV"}
FIELD_LABELS = {
    "corporate_number": "法人番号", "prefecture": "都道府県", "city": "市区町村", "location": "所在地",
    "capital": "資本金", "employee_count": "従業員数", "industry": "業種", "website_url": "公式サイト",
    "postal_code": "郵便番号", "established_year": "設立年", "representative_name": "代表者名",
    "representative_title": "代表者役職", "phone": "電話番号",
}  # fmt: skip


@app.command("import", help="EDINET コードリスト（CP932 / UTF-8）または gBizINFO 形式の CSV を企業台帳に取り込みます。")
def import_command(
    file: Path = typer.Argument(..., help="取り込む CSV ファイル"),
    kind: Optional[str] = typer.Option(None, "--kind", help="ファイルの種類: edinet または gbizinfo（省略時は自動判別）"),
    skip_bad_lines: bool = typer.Option(
        False, "--skip-bad-lines", help="文字コードとして読めない行を読み飛ばし、残りを取り込む（読み飛ばした行は一覧に表示）",
    ),
) -> None:
    from hokan.registry.import_registry import KINDS, import_registry

    if kind is not None and kind not in KINDS:
        err_console.print(f"[red]--kind は edinet / gbizinfo のいずれかです:[/red] {kind}")
        raise typer.Exit(2)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console,
    )
    with progress:
        task = progress.add_task("取り込み中", total=None)
        try:
            report = import_registry(file, kind=kind, progress=lambda n: progress.advance(task, n),
                                     skip_bad_lines=skip_bad_lines)
        except InputError as exc:
            err_console.print(f"[red]取り込めません（何も保存していません）:[/red] {exc}")
            raise typer.Exit(2) from None
        progress.update(task, total=progress.tasks[0].completed)
    console.print(
        f"[bold]{report.source}[/bold]（{KIND_LABELS.get(report.kind, report.kind)}、{report.encoding}）: "
        f"{report.rows:,} 行 → 新規 {report.created:,} 件、更新 {report.updated:,} 件、変更なし {report.unchanged:,} 件、"
        f"[{'red' if report.errors else 'green'}]エラー {len(report.errors):,} 行[/]"
    )
    for reason, count in report.skipped.items():
        console.print(f"  取り込み対象外: {reason} {count:,} 行")
    print_row_errors(console, report.errors)
    if report.errors:
        raise typer.Exit(1)


@app.command("lookup", help="社名または法人番号で企業台帳を検索し、一致した企業と補完できる値を表示します。")
def lookup_command(
    query: str = typer.Argument(..., help="社名（例: (株)サカタのタネ）または13桁の法人番号"),
    prefecture: str = typer.Option("", "--prefecture", "-p", help="都道府県（社名で探すときの絞り込み）"),
) -> None:
    from hokan.core import ja
    from hokan.registry.match import OPTIONAL_FIELDS, REGISTRY_FIELDS, match_lead

    number = ja.parse_corporate_number(query)
    result = match_lead(corporate_number=number or "", name="" if number else query, prefecture=prefecture)
    console.print(result.message)
    if result.status == "ambiguous":
        table = Table(title="候補")
        for column in ("企業名", "法人番号", "EDINETコード", "所在地"):
            table.add_column(column)
        for record in result.candidates:
            table.add_row(record.name, record.corporate_number or "-", record.edinet_code or "-", record.address or "-")
        console.print(table)
        raise typer.Exit(1)
    if result.record is None:
        raise typer.Exit(1)
    table = Table(title=result.record.name, show_lines=True)
    table.add_column("項目")
    table.add_column("値", overflow="fold")
    table.add_column("確度", justify="right")
    table.add_column("根拠", overflow="fold")
    table.add_column("出典", overflow="fold")
    for value in result.values((*REGISTRY_FIELDS, *OPTIONAL_FIELDS)):
        shown = f"{value.value:,}" if isinstance(value.value, int) else str(value.value)
        table.add_row(FIELD_LABELS.get(value.field, value.field), shown, f"{value.confidence:.2f}", value.quote,
                      value.source_url or "-")
    console.print(table)
