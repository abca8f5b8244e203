"""``hokan scoring``: score every row of a sheet once, at the provider's rate, resumable (issue 11 §6).

::

    hokan scoring run INPUT --categories FILE --text-column COL [--id-column COL]
                      [--output OUT.csv|.xlsx] [--sheet-url URL] [--scale 0-1|1-5] [--job NAME]
                      [--dry-run] [--no-cache] [--mode online|batch] [--prompt FILE]
    hokan scoring status [JOB]        # one job (chunks, retries, errors), or the list of jobs
    hokan scoring resume JOB          # an interrupted / failed job: claimable again, and run it here
    hokan scoring cancel JOB          # stop handing out chunks; a running process stops within a second

``run --job NAME`` with a name that exists resumes that job (same input required). The
provider is the configured core.llm one (profile "scoring": HOKAN_SCORING_LLM_PROVIDER /
HOKAN_LLM_PROVIDER, HOKAN_LLM_BASE_URL, …).

Plug-in points of the other scoring parts (by name, looked up when the option is used):

- ``--sheet-url URL`` → ``hokan.scoring.sheets.open_sheet(url) -> Source`` (rows in) and
  ``hokan.scoring.sheets.sheet_sink(sjob, table) -> Sink`` (results out), see ``hokan.scoring.io``;
- ``--mode batch`` → ``hokan.scoring.batch.run_batch(sjob, table, *, no_cache, on_progress)``
  returning an ``engine.RunReport``-like object (status, message, counters).

Exit codes: 0 completed, 1 finished with failed chunks (their cells carry the reason), 2 bad
input or a stop (budget, key), 130 interrupted (Ctrl-C; run again to resume).
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hokan.core.errors import HokanError, InputError

app = typer.Typer(help="発話スコアリング（設計書002）: シートの全行を一度だけ採点。", no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True)


def _plugin(module: str, name: str, what: str) -> Any:
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise InputError(f"{what}はこのインストールでは使えません（{module}.{name} がありません）") from None
    return found


def _money(value: Decimal | str) -> str:
    return f"${Decimal(value):,.4f}"


class _Bar:
    """The progress bar of a run: cells written (rows), chunks, calls/min, 429s, cache hits, cost."""

    def __init__(self, total_cells: int, done_cells: int, categories: int, chunks_total: int, chunks_done: int) -> None:
        self.categories = max(1, categories)
        self.base_cells, self.base_chunks, self.chunks_total = done_cells, chunks_done, chunks_total
        self.progress = Progress(
            TextColumn("[bold]採点中"), BarColumn(), TextColumn("{task.fields[rows]}"), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[detail]}"), console=err_console, transient=False)
        self.task = self.progress.add_task("", total=max(1, total_cells), completed=done_cells, rows="", detail="")
        self.total_cells = total_cells

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, counters: Any) -> None:
        cells = min(self.total_cells, self.base_cells + counters.cells_written)
        rate = counters.cache_hit_rate
        detail = (f"チャンク {self.base_chunks + counters.chunks_done}/{self.chunks_total}・"
                  f"{counters.calls_per_min:.0f} 回/分・429 {counters.rate_limited} 回・"
                  f"キャッシュ {counters.cache_hits} 件{f'（{rate:.0%}）' if rate is not None else ''}・"
                  f"{_money(counters.cost_usd)}")
        self.progress.update(self.task, completed=cells,
                             rows=f"{cells // self.categories:,}/{self.total_cells // self.categories:,} 行",
                             detail=detail)


def _open_source(input_path: Optional[Path], sheet_url: str) -> Any:
    from hokan.scoring.io import FileSource

    if sheet_url:
        return _plugin("hokan.scoring.sheets", "open_sheet", "Google スプレッドシート入力")(sheet_url)
    if input_path is None:
        raise InputError("入力ファイル（INPUT）か --sheet-url を指定してください")
    return FileSource(input_path)


def _extra_sinks(sjob: Any, table: Any) -> list[Any]:
    if sjob.source_kind == "sheet":
        return [_plugin("hokan.scoring.sheets", "sheet_sink", "Google スプレッドシートへの書き込み")(sjob, table)]
    return []


def _run(sjob: Any, table: Any, *, no_cache: bool, mode: str) -> None:
    from hokan.scoring import service

    before = service.job_report(sjob)
    bar = _Bar(before.cells_total, before.cells_ok, len(sjob.categories), before.chunks_total, before.chunks_done)
    try:
        with bar:
            if mode == "batch":
                report = _plugin("hokan.scoring.batch", "run_batch", "バッチ方式（--mode batch）")(
                    sjob, table, no_cache=no_cache, on_progress=bar.update)
            else:
                report = service.run_job(sjob, table, no_cache=no_cache, sinks=_extra_sinks(sjob, table),
                                         on_progress=bar.update)
    except KeyboardInterrupt:
        err_console.print(f"[yellow]中断しました。[/yellow]保存済みの結果は残っています。再開: hokan scoring run … --job {sjob.name}"
                          f"（または hokan scoring resume {sjob.name}）")
        raise typer.Exit(130) from None
    _summary(sjob, report)
    if report.status == "completed":
        return
    if report.status == "failed":
        raise typer.Exit(1)
    if report.status == "interrupted":
        raise typer.Exit(2)
    err_console.print("残りのチャンクは他のプロセスが処理中です（hokan scoring status で確認できます）")


def _summary(sjob: Any, report: Any) -> None:
    from hokan.scoring import service

    final = service.job_report(sjob)
    counters = report.counters
    table = Table(title=f"ジョブ「{escape(sjob.name)}」: {final.status_label}", show_header=False)
    rate = counters.cache_hit_rate
    rows = [
        ("セル（行×カテゴリ）", f"完了 {final.cells_ok:,} / {final.cells_total:,}・エラー {final.cells_failed:,}"),
        ("チャンク", f"完了 {final.chunks_done}・失敗 {final.chunks_failed}・残り {final.chunks_pending + final.chunks_running}"
                     f"（全 {final.chunks_total}）"),
        ("今回の問い合わせ", f"{counters.calls:,} 回（1件ずつの再質問 {counters.single_calls:,}・429 {counters.rate_limited:,} 回・"
                         f"強制終了後の再質問 {counters.crash_reasks:,}・保存済み回答の再利用 {counters.stored_reused:,}）"),
        ("今回のトークン", f"入力 {counters.input_tokens:,}・出力 {counters.output_tokens:,}"),
        ("今回の費用", f"{_money(counters.cost_usd)}（ジョブ累計 {_money(final.cost_usd)}、{final.calls:,} 回）"),
        ("キャッシュ", f"ヒット {counters.cache_hits:,}・ミス {counters.cache_misses:,}"
                      f"{f'・ヒット率 {rate:.1%}' if rate is not None else ''}・節約 {_money(counters.saved_usd)}"),
        ("段階ごとの時間", "・".join(f"{k} {v:.1f} 秒" for k, v in report.stages.items()) or "-"),
    ]
    if sjob.output:
        rows.append(("出力", sjob.output))
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    if report.message:
        console.print(f"[{'red' if report.status != 'completed' else 'green'}]{escape(report.message)}[/]")


@app.command("run", help="CSV / Excel（またはスプレッドシート）の各行を、カテゴリごとに採点します。")
def run_command(
    input_path: Optional[Path] = typer.Argument(None, metavar="INPUT", help="入力ファイル（.csv / .xlsx）"),
    categories: Optional[Path] = typer.Option(None, "--categories", help="カテゴリのファイル（.json / .yaml / .csv: name と description）"),
    text_column: str = typer.Option(..., "--text-column", help="発話の列名"),
    id_column: str = typer.Option("", "--id-column", help="ID の列名（省略時は行番号）"),
    output: Optional[Path] = typer.Option(None, "--output", help="出力ファイル（.csv / .xlsx）: 入力＋カテゴリごとの列＋採点ステータス"),
    sheet_url: str = typer.Option("", "--sheet-url", help="Google スプレッドシートの URL（入力と書き込み先）"),
    scale: Optional[str] = typer.Option(None, "--scale", help="尺度: 0-1 または 1-5（既定 HOKAN_SCORING_SCALE）"),
    job: str = typer.Option("", "--job", help="ジョブ名。同じ名前で再実行すると続きから再開します"),
    dry_run: bool = typer.Option(False, "--dry-run", help="行数・問い合わせ回数・トークン・見積り費用を表示するだけ（何も支払いません）"),
    no_cache: bool = typer.Option(False, "--no-cache", help="LLM キャッシュを使わない"),
    mode: str = typer.Option("online", "--mode", help="online（既定）または batch（半額、24 時間以内）"),
    prompt: Optional[Path] = typer.Option(None, "--prompt", help="システムプロンプトのファイル（既定: 同梱の日本語プロンプト）"),
) -> None:
    from hokan.scoring import service
    from hokan.scoring.config import RunConfig, load_categories, load_system_prompt

    if mode not in ("online", "batch"):
        raise InputError(f"--mode は online か batch です（{mode}）")
    config = RunConfig.from_settings(scale=scale, cache_enabled=False if no_cache else None)
    cats = load_categories(categories, per_call=config.categories_per_call) if categories else None
    source = _open_source(input_path, sheet_url)
    system_prompt = load_system_prompt(prompt) if prompt else None
    sjob, table, created = service.prepare_job(
        source, categories=cats, text_column=text_column, id_column=id_column, output=str(output or ""),
        name=job, config=config, system_prompt=system_prompt, mode=mode)
    if not created:
        err_console.print(f"ジョブ「{escape(sjob.name)}」を再開します（{sjob.job.get_status_display()}）")
    if dry_run:
        from hokan.core.llm import get_client

        client = get_client(profile="scoring")
        found = service.estimate(sjob, service.job_rows(sjob, table), client, use_cache=not no_cache)
        report = Table(title=f"見積り（何も支払っていません）: ジョブ「{escape(sjob.name)}」", show_header=False)
        report.add_row("採点する行", f"{found.rows:,} 行（キャッシュで済む {found.cached_rows:,} 件）")
        report.add_row("問い合わせ", f"{found.calls:,} 回（{found.cells:,} セル、1回あたり最大 "
                                    f"{RunConfig.from_json(sjob.config).utterances_per_call} 発話）")
        report.add_row("トークン（推定）", f"入力 {found.input_tokens:,}・出力 {found.output_tokens:,}")
        if sjob.mode == "batch":  # the batch APIs charge half (hokan.scoring.batch, S2)
            from hokan.core.llm.prices import BATCH_PRICE_FACTOR

            report.add_row("費用（推定）", f"{_money(found.cost_usd * BATCH_PRICE_FACTOR)}（{found.price_source}、バッチ方式で半額）")
        else:
            report.add_row("費用（推定）", f"{_money(found.cost_usd)}（{found.price_source}）")
        report.add_row("プロバイダ", f"{found.provider or '-'} / {found.model or '-'}")
        console.print(report)
        if created:  # a dry run leaves nothing behind but the job it had to plan (kept for the real run)
            console.print(f"実行するには --dry-run を外して同じコマンドを実行してください（ジョブ名 {escape(sjob.name)}）")
        return
    _run(sjob, table, no_cache=no_cache, mode=sjob.mode)


@app.command("status", help="ジョブの進み具合（チャンク・再試行・エラー）。JOB を省くと一覧。")
def status_command(job: str = typer.Argument("", help="ジョブ名（または ID）"),
                   as_json: bool = typer.Option(False, "--json", help="JSON で出力（チャンクごとの状態・再試行・エラー付き）")) -> None:
    import json

    from hokan.core.models import JobChunk
    from hokan.scoring import service
    from hokan.scoring.models import ScoringJob

    if as_json and job:
        sjob = service.get_job(job)
        data = service.job_report(sjob).as_json()
        data["chunks"] = [{"chunk_id": c.chunk_id, "row_range": [c.row_start, c.row_end], "status": c.status,
                           "retry_count": c.retry_count, "last_error": c.last_error}
                          for c in JobChunk.objects.filter(job=sjob.job).order_by("chunk_id")]
        print(json.dumps(data, ensure_ascii=False))
        return

    if not job:
        listing = Table("ジョブ名", "状態", "完了セル", "チャンク", "費用", "作成日時")
        for sjob in ScoringJob.objects.select_related("job")[:50]:
            r = service.job_report(sjob)
            listing.add_row(escape(r.name), r.status_label, f"{r.cells_ok:,}/{r.cells_total:,}",
                            f"{r.chunks_done}/{r.chunks_total}", _money(r.cost_usd), f"{r.created_at:%Y-%m-%d %H:%M}")
        console.print(listing)
        return
    sjob = service.get_job(job)
    r = service.job_report(sjob)
    console.print(f"[bold]{escape(r.name)}[/bold]（{r.public_id}）: {r.status_label}・セル {r.cells_ok:,}/{r.cells_total:,}"
                  f"（{r.fraction:.1%}）・エラー {r.cells_failed:,}・問い合わせ {r.calls:,} 回・費用 {_money(r.cost_usd)}・"
                  f"キャッシュヒット {r.cache_hits:,} セル")
    if r.message:
        console.print(f"[red]{escape(r.message)}[/red]")
    chunks = Table("チャンク", "行", "状態", "再試行", "最後のエラー")
    for chunk in JobChunk.objects.filter(job=sjob.job).order_by("chunk_id"):
        chunks.add_row(str(chunk.chunk_id), f"{(chunk.row_start or 0) + 1}〜{chunk.row_end}", chunk.get_status_display(),
                       str(chunk.retry_count), escape(chunk.last_error[:200]))
    console.print(chunks)


@app.command("resume", help="中断・失敗したジョブを再開し、ここで実行します。")
def resume_command(job: str = typer.Argument(..., help="ジョブ名（または ID）"),
                   no_cache: bool = typer.Option(False, "--no-cache", help="LLM キャッシュを使わない")) -> None:
    from hokan.scoring import service

    sjob = service.get_job(job)
    if sjob.source_kind == "sheet":
        source = _open_source(None, sjob.source)
    else:
        from hokan.scoring.io import FileSource

        source = FileSource(sjob.source)
    sjob, table, _ = service.prepare_job(source, categories=None, text_column=sjob.text_column,
                                         id_column=sjob.id_column, name=sjob.name)
    service.resume(sjob)
    sjob.job.refresh_from_db()
    _run(sjob, table, no_cache=no_cache, mode=sjob.mode)


@app.command("cancel", help="ジョブを取り消します（保存済みの結果は残り、resume で再開できます）。")
def cancel_command(job: str = typer.Argument(..., help="ジョブ名（または ID）")) -> None:
    from hokan.scoring import service

    sjob = service.get_job(job)
    service.cancel(sjob)
    sjob.job.refresh_from_db()
    console.print(f"ジョブ「{escape(sjob.name)}」: {sjob.job.get_status_display()}"
                  f"{'' if sjob.job.status == 'interrupted' else '（終了済みのため変更なし）'}")


__all__ = ["app", "HokanError"]
