"""``hokan municipal``: the municipal app's commands.

    hokan municipal import-municipalities [--folder DIR]
    hokan municipal seed-catalogue [--overwrite]
    hokan municipal run --id ID --name 名前 --prefecture 県 [--services a,b] [--free-tier [default|conservative]]
                        [--dry-run] [--resume]
    hokan municipal export [--id ID] [--status draft|approved|rejected] [--output FILE]

Exit codes: 0 done; 1 the run ended interrupted or failed, or bad input; 2 a setting is missing
(a HokanError at the top level, see hokan.cli).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

app = typer.Typer(help="自治体サービス情報（設計書003）: 公式サイトの事実を根拠付きの下書きに。", no_args_is_help=True, add_completion=False)
console = Console()


def _django() -> None:
    from hokan.cli import setup_django

    setup_django()


@app.command("import-municipalities")
def import_municipalities(
    folder: Annotated[Path | None, typer.Option(help="localgovjp のフォルダ（既定: $HOKAN_SHARED_DATA/municipal/localgovjp）")] = None,
) -> None:
    """全国地方公共団体コードの一覧（localgovjp）から自治体を登録・更新します（何度実行しても同じ結果）。"""
    _django()
    from hokan.core.console import print_row_errors
    from hokan.core.errors import InputError
    from hokan.municipal.importer import import_municipalities as run_import

    try:
        report = run_import(folder)
    except InputError as exc:
        console.print(f"[red]読み込めません:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"自治体: 新規 {report.created:,} 件、更新 {report.updated:,} 件、変更なし {report.unchanged:,} 件")
    if report.errors:
        console.print(f"[yellow]{len(report.errors)} 行は読み飛ばしました:[/yellow]")
        print_row_errors(console, report.errors)


@app.command("seed-catalogue")
def seed_catalogue(overwrite: Annotated[bool, typer.Option(help="管理画面での編集をカタログの内容に戻す")] = False) -> None:
    """同梱のカタログ（サービスと変数定義）をデータベースに登録します。"""
    _django()
    from hokan.municipal.seed import sync_catalogue

    report = sync_catalogue(overwrite=overwrite)
    console.print(f"サービス 新規 {report.services_created} 件、変数 新規 {report.variables_created} 件、"
                  f"更新 {report.variables_updated} 件")


def find_municipality(identifier: str, name: str | None, prefecture: str | None) -> Any:
    """The municipality by lgcode or slug; else by name + prefecture (then ``identifier``
    becomes its slug). Raises InputError naming what was looked for."""
    from hokan.core.errors import InputError
    from hokan.municipal.models import Municipality

    found = Municipality.objects.filter(lgcode=identifier).first() or Municipality.objects.filter(slug=identifier).first()
    if found is None and name:
        matches = Municipality.objects.filter(name=name)
        if prefecture:
            matches = matches.filter(prefecture=prefecture)
        if matches.count() > 1:
            raise InputError(f"「{name}」は複数あります。--prefecture で都道府県を指定してください")
        found = matches.first()
        if found is not None and not found.slug and identifier and not identifier.isdigit():
            found.slug = identifier[:60]
            found.save(update_fields=["slug"])
    if found is None:
        raise InputError(f"自治体 {identifier} （{prefecture or ''}{name or ''}）が見つかりません。"
                         "先に hokan municipal import-municipalities を実行してください")
    if name and found.name != name:
        raise InputError(f"--id {identifier} は {found} です（--name {name} と一致しません）")
    return found


def _services(keys: str | None) -> list[Any]:
    from hokan.core.errors import InputError
    from hokan.municipal.models import Service
    from hokan.municipal.seed import ensure_seeded

    ensure_seeded()
    if not keys:
        return list(Service.objects.order_by("key"))
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    found = {s.key: s for s in Service.objects.filter(key__in=wanted)}
    unknown = [k for k in wanted if k not in found]
    if unknown:
        raise InputError(f"サービス {', '.join(unknown)} はありません（hokan municipal seed-catalogue で登録、"
                         "管理画面の「サービス」で確認）", field="services")
    return [found[k] for k in wanted]


def _summary(run: Any) -> Table:
    from hokan.core.models import JobChunk
    from hokan.municipal.models import Draft

    table = Table(title=f"{run.municipality} の取得結果（ジョブ {run.job.public_id}: {run.job.get_status_display()}）")
    for column in ("サービス", "状態", "取得", "未取得", "ページ", "LLM呼び出し", "エラー"):
        table.add_column(column)
    drafts = {d.service.key: d for d in Draft.objects.filter(municipality=run.municipality).select_related("service")}
    for chunk in JobChunk.objects.filter(job=run.job).order_by("chunk_id"):
        for key in chunk.item_keys or []:
            draft = drafts.get(key)
            result = chunk.result or {}
            table.add_row(key, chunk.get_status_display(), str(draft.filled_count if draft else 0),
                          str(draft.missing_count if draft else "-"), str(result.get("pages", "-")),
                          str(result.get("llm_calls", "-")), str(result.get("errors", chunk.last_error[:40] or "-")))
    return table


@app.command("run")
def run(
    id: Annotated[str, typer.Option("--id", help="自治体の短縮ID（例 otoineppu）または全国地方公共団体コード")],
    name: Annotated[str | None, typer.Option(help="自治体名（例 音威子府村）")] = None,
    prefecture: Annotated[str | None, typer.Option(help="都道府県（例 北海道）")] = None,
    services: Annotated[str | None, typer.Option(help="サービスID（カンマ区切り、既定: すべて）")] = None,
    free_tier: Annotated[bool, typer.Option("--free-tier", help="無料枠モード（§5.3）: 続けて default | conservative、省略時は default")] = False,
    tier_mode: Annotated[str | None, typer.Argument(metavar="[default|conservative]", show_default=False,
                                                    help="--free-tier のモード")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="検索クエリと上限だけを表示（取得・LLM呼び出しなし）")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="中断・失敗した前回の取得を続きから再開（完了済みのサービスは飛ばす）")] = False,
) -> None:
    """自治体の公式サイトからサービス情報を取得し、下書きを作ります（§4.1）。"""
    _django()
    from hokan.core.errors import InputError
    from hokan.core.models import Job
    from hokan.municipal import flow, queries
    from hokan.municipal.seed import service_variables

    if tier_mode is not None and (not free_tier or tier_mode not in ("default", "conservative")):
        console.print("[red]--free-tier のモードは default か conservative です（例: --free-tier conservative）[/red]")
        raise typer.Exit(1)
    try:
        municipality = find_municipality(id, name, prefecture)
        chosen = _services(services)
    except InputError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    tier = (tier_mode or "default") if free_tier else ""
    if not dry_run:
        from hokan.core.errors import LLMConfigError, SearchConfigError

        try:  # a missing key or an unusable search provider: one line before any job is made
            flow.context_from_settings(free_tier=tier)
        except (SearchConfigError, LLMConfigError) as exc:
            console.print(f"[red]設定を確認してください: {exc}[/red]")
            raise typer.Exit(2) from exc

    if dry_run:
        table = Table(title=f"{municipality} — 実行しない確認（--dry-run）")
        for column in ("サービス", "変数", "検索クエリ（テンプレート）"):
            table.add_column(column)
        for service in chosen:
            variables = service_variables(service)
            table.add_row(service.key, str(len(variables)), queries.template_query(municipality, service, variables))
        console.print(table)
        crawl = flow.CrawlSetup.from_settings().extra_llm_calls(_pages(tier))
        console.print(f"上限: サービスあたり検索 1 回、ページ {_pages(tier)} 件、LLM 呼び出し最大 {1 + _pages(tier)} 回"
                      + (f"（公式サイトの巡回時は +{crawl} 回）" if crawl else ""))
        return

    if resume:
        previous = flow.latest_run(municipality)
        if previous is None or previous.job.status == Job.Status.COMPLETED:
            console.print("再開できる取得はありません（前回は完了しています）。新しく取得します。")
            current = flow.start_run(municipality, chosen, free_tier=tier)
        else:
            current = flow.resume_run(previous)
            console.print(f"ジョブ {current.job.public_id} を続きから再開します（完了済みのサービスは飛ばします）")
    else:
        previous = flow.latest_run(municipality)
        if previous is not None and previous.job.status in (Job.Status.INTERRUPTED, Job.Status.FAILED):
            console.print(f"[yellow]前回の取得（{previous.job.public_id}）は{previous.job.get_status_display()}"
                          "のままです。--resume で続きから再開できます。[/yellow]")
        current = flow.start_run(municipality, chosen, free_tier=tier)

    keys = list(current.job.params.get("services") or [s.key for s in chosen])
    with Progress(TextColumn("{task.fields[service]:<14}"), BarColumn(), TextColumn("{task.description}"),
                  console=console, transient=False) as progress:
        tasks = {key: progress.add_task("待機中", total=1, service=key) for key in keys}
        from hokan.core.models import JobChunk

        for chunk in JobChunk.objects.filter(job=current.job, status=JobChunk.Status.DONE):
            for key in chunk.item_keys or []:
                if key in tasks:
                    progress.update(tasks[key], completed=1, description="完了（前回）")

        def on_step(service: str, text: str) -> None:
            if service in tasks:
                progress.update(tasks[service], description=text[:60])

        def factory(job: Any, chunk: Any) -> Any:
            for done in JobChunk.objects.filter(job=job, status=JobChunk.Status.DONE):
                for key in done.item_keys or []:
                    if key in tasks:
                        progress.update(tasks[key], completed=1, description="完了")
            return flow.context_from_settings(key=f"municipal:{job.public_id}:{chunk.chunk_id}:{chunk.claim_count}",
                                              on_step=on_step, free_tier=job.params.get("free_tier", ""))

        flow.execute(current, context=factory)
        for chunk in JobChunk.objects.filter(job=current.job):
            for key in chunk.item_keys or []:
                if key in tasks:
                    label = {"done": "完了", "failed": "失敗", "pending": "未実行", "running": "中断"}[chunk.status]
                    progress.update(tasks[key], completed=1 if chunk.status == "done" else 0, description=label)
    current.job.refresh_from_db()
    console.print(_summary(current))
    totals = current.job.totals or {}
    console.print(f"LLM呼び出し {totals.get('llm_calls', 0)} 回、検索 {totals.get('searches', 0)} 回、"
                  f"ページ {totals.get('pages', 0)} 件（うち公式サイトの巡回 {totals.get('crawled_pages', 0)} 件）")
    if current.job.status != Job.Status.COMPLETED:
        console.print(f"[red]取得は{current.job.get_status_display()}で終わりました: {current.job.message}[/red]\n"
                      f"続きから再開: hokan municipal run --id {id} --resume")
        raise typer.Exit(1)


def _pages(tier: str) -> int:
    from django.conf import settings

    pages = int(settings.HOKAN_MUNICIPAL_PAGES_PER_SERVICE)
    if tier:
        from hokan.municipal import quotas

        pages = min(pages, quotas.pages_per_service(tier))
    return pages


@app.command("export")
def export(
    id: Annotated[str | None, typer.Option("--id", help="自治体の短縮IDまたは全国地方公共団体コード（既定: すべて）")] = None,
    status: Annotated[str | None, typer.Option(help="draft | approved | rejected")] = None,
    output: Annotated[Path | None, typer.Option(help="書き出すファイル（既定: 標準出力）")] = None,
) -> None:
    """下書きを §6.1 の JSON で書き出します（1件なら1オブジェクト、複数なら配列）。"""
    _django()
    from hokan.core.errors import InputError
    from hokan.municipal.models import Draft

    drafts = Draft.objects.select_related("municipality", "service")
    if id:
        try:
            municipality = find_municipality(id, None, None)
        except InputError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        drafts = drafts.filter(municipality=municipality)
    if status:
        if status not in Draft.Status.values:
            console.print(f"[red]--status は {' | '.join(Draft.Status.values)} です[/red]")
            raise typer.Exit(1)
        drafts = drafts.filter(status=status)
    data = [d.to_export() for d in drafts]
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"{len(data)} 件の下書きを {output} に書き出しました")
    else:
        sys.stdout.write(text)
app.add_typer(__import__("hokan.municipal.extract_command", fromlist=["app"]).app)  # extract, evaluate (extract_command.py)
