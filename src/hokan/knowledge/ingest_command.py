"""``hokan knowledge ocr`` and ``hokan knowledge backfill`` (issue 12 §2, §6, §7).

Registered on the knowledge typer app (``hokan.knowledge.command.app``) by importing this module
there. The readers are imported inside the commands, so ``hokan --help`` loads no OCR model.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hokan.knowledge.command import app

UNIT_JA = {"JPY": "円", "USD": "米ドル", "count": "件数", "number": "数値", "percent": "%", "ratio": "倍",
           "seconds": "秒", "time_of_day": "時刻", "date": "日付"}  # fmt: skip


@app.command("ocr", help="売上ダッシュボードのスクリーンショット（または売上の JSON / CSV エクスポート）から数値を読み取ります。")
def ocr(
    file: Path = typer.Argument(..., help="画像（PNG / JPEG / WebP …）、または JSON / CSV の売上エクスポート"),
    output_format: str = typer.Option("json", "--format", help="出力形式: json / table"),
    engine: str | None = typer.Option(None, "--engine", help="OCR エンジン（ppocrv6 / ppocrv5 / tesseract）。既定は HOKAN_OCR_ENGINES"),
    refresh: bool = typer.Option(False, "--refresh", help="OCR のキャッシュを使わずに読み直す"),
    vision: bool | None = typer.Option(None, "--vision/--no-vision", help="見出しが分からない数値を画像 LLM に尋ねる（既定 HOKAN_KNOWLEDGE_VISION_LABELS）"),
) -> None:
    from hokan.core.documents import get_engine
    from hokan.core.errors import DocumentError, InputError
    from hokan.knowledge.sales_data_ingester import metrics_from_export, read_screenshot

    if output_format not in ("json", "table"):
        raise typer.BadParameter("json / table のいずれかを指定してください", param_hint="--format")
    try:
        if file.suffix.lower() in (".json", ".csv"):
            reading = metrics_from_export(file.read_bytes(), name=str(file))
        else:
            reading = read_screenshot(file, engines=[get_engine(engine)] if engine else None, refresh=refresh,
                                      vision=vision)  # fmt: skip
    except (DocumentError, InputError) as exc:
        typer.echo(f"読み取れませんでした: {exc}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"読み取れませんでした: {file}: {exc.strerror}", err=True)
        raise typer.Exit(1) from exc
    if output_format == "json":
        typer.echo(json.dumps({"text": reading.text, "metrics": [m.to_dict() for m in reading.metrics]},
                              ensure_ascii=False, indent=2))  # fmt: skip
        return
    console = Console()
    table = Table(title=f"{escape(reading.source)}  （{len(reading.metrics)} 件、OCR: {reading.engine or 'なし'}）")
    for header in ("見出し", "指標", "値", "単位", "表示", "行", "確度"):
        table.add_column(header, overflow="fold")
    for m in reading.metrics:
        table.add_row(escape(m.label or "（なし）"), m.metric or "-", str(m.value), UNIT_JA.get(m.unit, m.unit),
                      escape(m.shown), escape(m.row or ""), f"{m.confidence:.2f}" + ("" if m.verified else " 未検証"))
    console.print(table)
    for problem in reading.problems:
        console.print(f"[yellow]スキップ:[/yellow] {escape(problem)}")


METRIC_JA = {"viewers": "視聴者数", "likes": "いいね", "comments": "コメント"}


@app.command("screen", help="画面収録の動画から視聴者数・いいね・コメントの推移を読み取ります（パターンB）。")
def screen(
    video: Path = typer.Argument(..., help="画面収録の動画（MP4 / MOV / WebM …）"),
    fps: float | None = typer.Option(None, "--fps", help="1秒あたりに読むフレーム数（既定 HOKAN_KNOWLEDGE_SCREEN_FPS）"),
    output_format: str = typer.Option("table", "--format", help="出力形式: table / json"),
    video_id: str | None = typer.Option(None, "--video-id", help="登録済みの動画分析に時系列と最大・平均視聴者数を保存する"),
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hokan.knowledge.models import VideoAnalysis

    from hokan.core.errors import DocumentError
    from hokan.knowledge.screen_metrics_extractor import extract_screen_metrics

    if output_format not in ("json", "table"):
        raise typer.BadParameter("json / table のいずれかを指定してください", param_hint="--format")
    analysis = None
    if video_id is not None:
        analysis = VideoAnalysis.objects.filter(video_id=video_id).first()
        if analysis is None:
            typer.echo(f"動画分析「{video_id}」がありません（先に hokan knowledge store / backfill で登録してください）", err=True)
            raise typer.Exit(1)
    console = Console(stderr=output_format == "json")
    with Progress(TextColumn("フレームを読み取り中"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:  # fmt: skip
        task = progress.add_task("frames", total=None)
        try:
            result = extract_screen_metrics(video, fps=fps,
                                            on_frame=lambda done, total: progress.update(task, completed=done, total=total))
        except DocumentError as exc:
            progress.stop()
            typer.echo(f"読み取れませんでした: {exc}", err=True)
            raise typer.Exit(1) from exc
    stored = None
    if analysis is not None:
        from hokan.knowledge.screen_metrics_extractor import store_screen_metrics

        stored = store_screen_metrics(analysis, result)
    if output_format == "json":
        typer.echo(json.dumps({**result.to_dict(), "stored": stored}, ensure_ascii=False, indent=2))
        return
    out = Console()
    out.print(f"{escape(result.source)}: {result.duration_s:g} 秒、{result.frames_sampled} フレームを確認、"
              f"{result.frames_read} フレームを OCR（{result.fps:g} fps）", highlight=False, soft_wrap=True)  # fmt: skip
    if result.stopped:
        out.print(f"[yellow]{escape(result.stopped)}[/yellow]")
    table = Table(title="指標の推移")
    for header in ("指標", "件数", "最初", "最後", "最大（秒）", "平均", "1分あたりの増加"):
        table.add_column(header)
    for metric, t in result.trends.items():
        growth = "-" if t.growth_per_minute is None else f"{t.growth_per_minute:+,.1f}"
        table.add_row(METRIC_JA.get(metric, metric), str(t.samples), f"{t.first:,}", f"{t.last:,}",
                      f"{t.peak:,}（{t.peak_t_s:g}）", f"{t.average:,.1f}", growth)  # fmt: skip
    out.print(table)
    for problem in result.problems:
        out.print(f"[yellow]スキップ:[/yellow] {escape(problem)}")
    if stored is not None:
        out.print(f"{escape(str(video_id))} に保存しました: 時系列 {stored['samples']} 件、売上データ "
                  f"{', '.join(stored['stored']) or 'なし（より確かな値が登録済み）'}")  # fmt: skip


@app.command("backfill", help="過去の分析JSONをまとめて登録します（設計書001 §4.1）。何度実行しても同じ結果です。")
def backfill(
    source: str = typer.Option(..., "--source", help="local（フォルダの JSON）/ azure（Blob Storage）/ api（既存API）"),
    directory: Path | None = typer.Option(None, "--dir", help="--source local: JSON ファイルのフォルダ（サブフォルダも読みます）"),
    container: str | None = typer.Option(None, "--container", help="--source azure: コンテナ名（接続は AZURE_STORAGE_CONNECTION_STRING）"),
    prefix: str = typer.Option("", "--prefix", help="--source azure: Blob 名の先頭（フォルダ）で絞り込む"),
    url: str | None = typer.Option(None, "--url", help="--source api: 分析一覧の URL（next を辿ります）"),
    page_size: int | None = typer.Option(None, "--page-size", help="1ページの件数（既定 HOKAN_KNOWLEDGE_BACKFILL_PAGE_SIZE）"),
) -> None:
    from django.conf import settings
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hokan.core.console import print_row_errors
    from hokan.knowledge import backfill as bf

    size = page_size or settings.HOKAN_KNOWLEDGE_BACKFILL_PAGE_SIZE
    if size < 1:
        raise typer.BadParameter("1 以上にしてください", param_hint="--page-size")
    if source == "local":
        if directory is None:
            raise typer.BadParameter("--source local には --dir が必要です", param_hint="--dir")
        pages = bf.local_pages(directory, page_size=size)
    elif source == "azure":
        if not container:
            raise typer.BadParameter("--source azure には --container が必要です", param_hint="--container")
        pages = bf.azure_pages(container, prefix=prefix, page_size=size)
    elif source == "api":
        if not url:
            raise typer.BadParameter("--source api には --url が必要です", param_hint="--url")
        pages = bf.api_pages(url, page_size=size)
    else:
        raise typer.BadParameter("local / azure / api のいずれかを指定してください", param_hint="--source")
    console = Console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task("読み込み中…", total=None)

        def tick(report: bf.BackfillReport, doc: bf.Document) -> None:
            progress.update(task, description=f"{report.documents} 件目: 新規 {report.created}・更新 {report.updated}・"
                                              f"変更なし {report.unchanged}・スキップ {len(report.failed)}")  # fmt: skip

        try:
            report = bf.run_backfill(pages, on_document=tick)
        except bf.BackfillError as exc:
            progress.stop()
            typer.echo(f"バックフィルを中止しました: {exc.reason}", err=True)
            raise typer.Exit(1) from exc
    console.print(f"ファイル {report.documents} 件: 新規 {report.created}、更新 {report.updated}、変更なし "
                  f"{report.unchanged}、スキップ {len(report.failed)}", highlight=False)  # fmt: skip
    if report.index_errors:
        console.print(f"[yellow]Qdrant に登録できなかった分析が {report.index_errors} 件あります"
                      f"（hokan knowledge reindex で登録し直せます）[/yellow]")  # fmt: skip
    if report.failed:
        print_row_errors(console, [escape(f"{name}: {reason}") for name, reason in report.failed])
        raise typer.Exit(1 if not (report.created or report.updated or report.unchanged) else 0)
